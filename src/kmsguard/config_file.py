"""Load kmsguard.yaml into a ScanConfig, with errors that name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from kmsguard.config import ScanConfig

DEFAULT_NAME = "kmsguard.yaml"


class ConfigFileError(Exception):
    pass


def _line_of(text: str, key: str) -> int | None:
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(f"{key}:"):
            return n
    return None


def load_config(path: Path | None) -> ScanConfig:
    """The config at ``path``; else ./kmsguard.yaml if present; else defaults."""
    if path is None:
        path = Path(DEFAULT_NAME)
        if not path.exists():
            return ScanConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigFileError(f"{path}:{where} not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping of settings at the top level")
    try:
        return ScanConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        line = _line_of(text, key)
        where = f" line {line}" if line else ""
        raise ConfigFileError(f"{path}:{where} {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
