"""Load kmsguard.yaml into a ScanConfig, with errors that name the file, the line and the key.

The file is read by ``fileio`` (UTF-8, depth and surrogate limits); its node tree keeps every position.
When validation fails, the error's location (``mutes -> 1 -> expires``) is walked down the node tree to the
line that holds the offending value, so ``kmsguard.yaml: line 14: mutes[1].expires: ...`` points at it even
in a nested list. Check ids (in ``checks``, ``severity_overrides`` and a mute's ``check`` unless it is a glob)
are checked against the catalogue: a misspelt id would otherwise configure or mute nothing, silently.

Example::

    required_tags: [Environment, Owner]
    max_rotation_days: 365
    environment_tag: Environment
    trusted_accounts: ["111122223333"]
    trusted_org_ids: [o-a1b2c3d4e5]
    severity_overrides: {key_no_alias: info}
    checks:
      key_rotation_period_too_long: {max_rotation_days: 180}
      config_rule_deletion_missing: {enabled: false}
    mutes:
      - check: key_rotation_disabled
        resource: "arn:aws:kms:*:111122223333:key/legacy-*"
        reason: "Legacy keys, retired in Q3 (JIRA SEC-42)"
        expires: 2026-09-30
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kmsguard.config import ScanConfig
from kmsguard.fileio import LoadError, format_path, load_yaml, read_text

DEFAULT_NAME = "kmsguard.yaml"
_GLOB = set("*?[")


class ConfigFileError(Exception):
    pass


def _line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the node at ``loc`` (keys and list indexes), or of its deepest existing parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    # The key's own line: for a block value the value node starts on the next line.
                    line, nxt = k.start_mark.line + 1, v
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _fail(path: Path, root: yaml.Node | None, loc: Sequence[int | str], msg: str) -> ConfigFileError:
    line = _line_of(root, loc)
    where = f" line {line}:" if line else ""
    return ConfigFileError(f"{path}:{where} {format_path(loc) or '(top level)'}: {msg}")


def load_config(path: Path | None) -> ScanConfig:
    """The config at ``path``; else ./kmsguard.yaml if present; else defaults."""
    if path is None:
        path = Path(DEFAULT_NAME)
        if not path.exists():
            return ScanConfig()
    try:
        root, data = load_yaml(read_text(path))
    except LoadError as e:
        # "kmsguard.yaml: line 3: not valid YAML: ..." as every other config error reads; no line: no prefix.
        where = f" line {e.line}:" if e.line is not None else ""
        raise ConfigFileError(f"{path}:{where} {e.reason}{': ' + e.detail if e.detail else ''}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a mapping of settings at the top level")
    try:
        cfg = ScanConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = list(first["loc"])
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = f"unknown setting {loc[-1]!r}" if loc else "unknown setting"
        raise _fail(path, root, loc, msg) from None
    _check_ids(cfg, path, root)
    return cfg


def _check_ids(cfg: ScanConfig, path: Path, root: yaml.Node | None) -> None:
    from kmsguard.checks.registry import load_builtin_checks  # the registry imports config: import late

    known = set(load_builtin_checks())
    where: list[tuple[list[int | str], str]] = [(["checks", cid], cid) for cid in cfg.checks]
    where += [(["severity_overrides", cid], cid) for cid in cfg.severity_overrides]
    where += [(["mutes", i, "check"], m.check) for i, m in enumerate(cfg.mutes) if not _GLOB & set(m.check)]
    for loc, cid in where:
        if cid not in known:
            raise _fail(path, root, loc, f"unknown check id {cid!r} (see `kmsguard checks`)")


def dump_example() -> dict[str, Any]:
    """The settings and their defaults, as the docs show them."""
    return ScanConfig().model_dump(mode="json")
