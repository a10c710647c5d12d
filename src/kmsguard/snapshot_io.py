"""Reading and writing Snapshot files, with errors that name the file and the field."""

from __future__ import annotations

import gzip
from pathlib import Path

from pydantic import ValidationError

from kmsguard.fileio import LoadError, loads_json, write_atomic
from kmsguard.model.snapshot import READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, Snapshot

READABLE = ", ".join(map(str, READABLE_SCHEMA_VERSIONS))


class SnapshotFileError(Exception):
    """The file is not a kmsguard snapshot this version can read."""


def snapshot_bytes(snapshot: Snapshot, gzipped: bool = False) -> bytes:
    """The file contents ``save_snapshot`` writes (for a destination that is not a local file: S3)."""
    data = snapshot.model_dump_json(indent=None).encode("utf-8")
    return gzip.compress(data) if gzipped else data


def save_snapshot(snapshot: Snapshot, path: Path) -> None:
    write_atomic(path, snapshot_bytes(snapshot, gzipped=path.suffix == ".gz"))  # never half a snapshot


# What a gzipped snapshot may inflate to: kmsguard's own JSON compresses about 10-20 times, so 50 times the file
# (at least 128 MB) reads any real snapshot, and a gzip bomb (a kilobyte per megabyte) costs that, not gigabytes.
INFLATE_RATIO = 50
INFLATE_FLOOR = 128 * 2**20


def load_snapshot(path: Path) -> Snapshot:
    from kmsguard.gunzip import GZIP_ERRORS, expand  # bounded gunzip: one home, with the trail reader

    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            limit = max(INFLATE_FLOOR, INFLATE_RATIO * len(raw))
            inflated = expand(raw, limit) if raw[:2] == b"\x1f\x8b" else gzip.decompress(raw)
            if inflated is None:
                raise SnapshotFileError(
                    f"{path}: inflates to more than {limit // 2**20:,} MB ({INFLATE_RATIO} times the file): "
                    "not a kmsguard snapshot (a gzip bomb?)"
                )
            raw = inflated
    except FileNotFoundError:
        raise SnapshotFileError(f"{path}: no such file") from None
    except (OSError, gzip.BadGzipFile, *GZIP_ERRORS) as e:  # type: ignore[misc]  # a tuple of classes
        raise SnapshotFileError(f"{path}: cannot read: {e}") from None
    try:
        data = loads_json(raw)
    except LoadError as e:  # not UTF-8, not JSON, nested too deeply, a lone surrogate: each with its line
        raise SnapshotFileError(f"{path}: {e}") from None
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
