"""Ingest with the native fast path gives the same cache as ingest with the msgspec decoder alone: the same
events in the parts and the same accounting per file, for small files gathered into one native call, for files
the scanner leaves to msgspec, and for huge files streamed in pieces."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kmsguard.trail import cache, decode, fastpath
from kmsguard.trail.sources import list_sources
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, DEVGUIDE, INVICTUS, T0, user

pytestmark = pytest.mark.usefixtures("native_scanner")


def _ingest(root: Path, cache_dir: Path) -> tuple[pa.Table, dict[str, dict]]:
    report, parts = cache.ingest(list_sources([str(root)]), cache_dir, workers=1)
    table = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None
    rows = sorted(table.to_pylist(), key=lambda r: (r["file"], r["event_id"] or "", str(r))) if table else []
    stats = {s.file: (s.records, s.kms, s.skipped, s.error, s.skip_reasons) for s in report.stats}
    return rows, stats  # type: ignore[return-value]


def _both(root: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _ingest(root, tmp / "fast")
    with monkeypatch.context() as m:
        m.setattr(fastpath, "AVAILABLE", False)
        slow = _ingest(root, tmp / "slow")
    assert fast[1] == slow[1]
    assert fast[0] == slow[0] and fast[0]


def test_mixed_logs_same_cache_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real samples (small files; some the scanner leaves to msgspec? every kind is here), synthetic trail
    files, a file of another shape, a truncated gzip and a JSON-lines export, side by side."""
    logs = tmp_path / "logs"
    shutil.copytree(INVICTUS, logs / "invictus")
    shutil.copy(DEVGUIDE, logs / "devguide.json")
    recs = [
        event("Decrypt", key_arn(ACCT, "us-east-1", i % 5), user(f"u{i % 3}"), T0 + timedelta(minutes=i))
        for i in range(300)
    ]
    write_trail_files(logs / "synth", recs)
    escaped = [event("Decrypt", key_arn(ACCT, "us-east-1", 1), user("bob"), T0)]
    escaped[0]["userAgent"] = 'agent "quoted"'  # an escape in a needed string: this file goes to msgspec
    (logs / "escaped.json").write_text(json.dumps({"Records": escaped}))
    (logs / "other.json").write_text('{"foo": 1}')
    (logs / "cut.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[:20]}).encode())[:-30])
    (logs / "export.jsonl").write_text("\n".join(json.dumps(r) for r in recs[:7]))
    # Invalid UTF-8 in a typed field: that file fails with kmsguard's reason, the others are read.
    (logs / "badutf8.json").write_bytes(json.dumps({"Records": recs[:3]}).encode().replace(b"aws-sdk", b"\xffsdk"))
    _both(logs, tmp_path, monkeypatch)
    stats = _ingest(logs, tmp_path / "again")[1]
    bad = next(v for k, v in stats.items() if k.endswith("badutf8.json"))
    assert bad[3] is not None and bad[3].startswith("invalid UTF-8 at byte ")
    assert sum(v[1] for v in stats.values()) > 300  # every other file's events were read


def test_streamed_huge_file_same_cache_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "STREAM_THRESHOLD", 1000)
    monkeypatch.setattr(decode, "PIECE_BYTES", 5000)
    recs = [
        event("GenerateDataKey", key_arn(ACCT, "eu-west-1", i % 4), user("app"), T0 + timedelta(seconds=i))
        for i in range(500)
    ]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "big.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))
    calls: list[int] = []
    real = fastpath.decode_table

    def spy(data: bytes, file: str, stats: decode.FileStats) -> pa.Table | None:
        calls.append(len(data))
        return real(data, file, stats)

    monkeypatch.setattr(fastpath, "decode_table", spy)
    _both(logs, tmp_path, monkeypatch)
    assert len(calls) > 10  # the pieces went through the native scanner
