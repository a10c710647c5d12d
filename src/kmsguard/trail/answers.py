"""The detections' answers, kept beside the cache: a re-run over unchanged logs asks no SQL at all.

The SQL's answers (coverage, each detection's groups and evidence, the summaries) depend only on the events in
the cache's parts, the run's filters and the SQL itself (thresholds included). ``fingerprint`` hashes exactly
those: every part's name, size and modification time (a part is never changed in place: a part that loses a
file's rows is rewritten and replaced), the filters, the text of every query, the engine and kmsguard's version.
Any change, one new log file included, is a miss, and the engine answers as before. What is judged from the answers
(findings, against the snapshot and the configuration) is never kept: it runs on every run.

Answers are stored with msgspec's MessagePack and kept only when they read back equal (a naive datetime, as
Spark returns, would come back as text: such answers are not kept). A damaged or unreadable file is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from kmsguard import __version__
from kmsguard.trail.sources import Filters

KEEP = 8  # answer files kept per cache (the most recent): a few filter sets used in turn all stay fast
Rows = list[dict[str, Any]]


@dataclass
class Answers:
    coverage: dict[str, Any]
    detections: dict[str, tuple[Rows, Rows]]  # name -> (groups, evidence)
    summaries: dict[str, Rows]
    engine: str  # the engine that answered


def fingerprint(parts: list[str], filters: Filters, queries: list[str], engine: str) -> str | None:
    """What the answers depend on, hashed; None when a part cannot be examined (then nothing is kept)."""
    try:
        stats = [(Path(p).name, (st := os.stat(p)).st_size, st.st_mtime_ns) for p in sorted(parts)]
    except OSError:
        return None
    what = {
        "version": __version__,
        "engine": engine,
        "parts": stats,
        "filters": [
            filters.since.isoformat() if filters.since else None,
            filters.until.isoformat() if filters.until else None,
            sorted(filters.accounts),
            sorted(filters.regions),
        ],
        "queries": queries,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "answers" / f"{key}.msgpack"


def load(cache_dir: Path, key: str | None) -> Answers | None:
    if key is None:
        return None
    try:
        data = msgspec.msgpack.decode(_path(cache_dir, key).read_bytes())
        return Answers(
            coverage=dict(data["coverage"]),
            detections={name: (list(g), list(e)) for name, (g, e) in data["detections"].items()},
            summaries={name: list(rows) for name, rows in data["summaries"].items()},
            engine=str(data["engine"]),
        )
    except (OSError, msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


def save(cache_dir: Path, key: str | None, answers: Answers) -> bool:
    """Keep ``answers`` under ``key`` (atomically), when they read back equal; prune to the ``KEEP`` newest."""
    if key is None:
        return False
    plain = {
        "coverage": answers.coverage,
        "detections": {name: [g, e] for name, (g, e) in answers.detections.items()},
        "summaries": answers.summaries,
        "engine": answers.engine,
    }
    try:
        data = msgspec.msgpack.encode(plain)
        if msgspec.msgpack.decode(data) != json_like(plain):
            return False
    except (TypeError, ValueError, OverflowError):  # a value MessagePack cannot hold: answer again next time
        return False
    path = _path(cache_dir, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        kept = sorted(path.parent.glob("*.msgpack"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:  # a cache that cannot be written costs the next run its speed, not its answer
        return False
    return True


def json_like(value: Any) -> Any:
    """``value`` with tuples as lists, as MessagePack gives them back: what a faithful round trip equals."""
    if isinstance(value, dict):
        return {k: json_like(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_like(v) for v in value]
    return value


__all__ = ["Answers", "fingerprint", "load", "save"]
