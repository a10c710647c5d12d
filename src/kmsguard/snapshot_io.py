"""Reading and writing Snapshot files, with errors that name the file and the field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from pydantic import ValidationError

from kmsguard.model.snapshot import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, Snapshot

READABLE = ", ".join(map(str, READABLE_SCHEMA_VERSIONS))


class SnapshotFileError(Exception):
    """The file is not a kmsguard snapshot this version can read."""


def snapshot_bytes(snapshot: Snapshot, gzipped: bool = False) -> bytes:
    """The file contents ``save_snapshot`` writes (for a destination that is not a local file: S3)."""
    data = snapshot.model_dump_json(indent=None).encode("utf-8")
    return gzip.compress(data) if gzipped else data


def save_snapshot(snapshot: Snapshot, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(snapshot_bytes(snapshot, gzipped=path.suffix == ".gz"))
    tmp.replace(path)  # never leave a half-written snapshot behind


def load_snapshot(path: Path) -> Snapshot:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise SnapshotFileError(f"{path}: no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise SnapshotFileError(f"{path}: cannot read: {e}") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise SnapshotFileError(f"{path}: not JSON{where}: {e}") from None
    if not isinstance(data, dict) or "schema_version" not in data or "accounts" not in data:
        raise SnapshotFileError(
            f"{path}: not a kmsguard snapshot (expected an object with schema_version and accounts; "
            "write one with `kmsguard scan --snapshot-out FILE`)"
        )
    if data["schema_version"] not in READABLE_SCHEMA_VERSIONS:
        raise SnapshotFileError(
            f"{path}: snapshot schema_version {data['schema_version']!r}; this kmsguard reads versions {READABLE}"
        )
    data["schema_version"] = SCHEMA_VERSION  # an older file is read as this version (new fields default)
    try:
        return Snapshot.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SnapshotFileError(
            f"{path}: invalid snapshot at {loc}: {first['msg']} ({e.error_count()} problem(s) in all)"
        ) from None
