"""The fix journal: the prior state of everything ``kmsguard fix --apply`` changes, written before the change.

One JSON object per line, appended and fsynced one entry at a time, so that whatever happens to the process
(a failed call, Ctrl-C, a crash) every change that may have reached AWS has its prior state on disk:

- ``{"type": "header", "version": 1, "started_at": ...}`` first;
- ``{"type": "before", "seq": n, "action": {...the plan action...}, "key_id": ..., "prior": {...}}`` just
  before the call that changes something; ``prior`` is read from AWS at that moment (for a key policy, the exact
  text GetKeyPolicy returned);
- ``{"type": "result", "seq": n, "status": "applied" | "failed", "error": ...}`` after it.

An entry without a result means the process stopped mid-call: rollback treats it as applied (restoring a prior
state that is already current changes nothing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = 1


class JournalError(Exception):
    """The file is not a kmsguard fix journal this version can read."""


def default_path(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"kmsguard-fix-{stamp}.journal.json")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seq = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never append to (or overwrite) another run's journal.
        self._fh = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        self._write({"type": "header", "version": VERSION, "started_at": datetime.now(UTC).isoformat()})

    def _write(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def before(self, action: dict[str, Any], detail: dict[str, Any], prior: dict[str, Any]) -> int:
        self._seq += 1
        self._write({"type": "before", "seq": self._seq, "action": action, "detail": detail, "prior": prior})
        return self._seq

    def result(self, seq: int, status: str, error: str | None = None) -> None:
        entry: dict[str, Any] = {"type": "result", "seq": seq, "status": status}
        if error is not None:
            entry["error"] = error
        self._write(entry)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Entry:
    seq: int
    action: dict[str, Any]
    detail: dict[str, Any]
    prior: dict[str, Any]
    status: str | None = None  # None: no result recorded (the process stopped mid-call)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_journal(path: Path) -> list[Entry]:
    """Every change entry, in the order it was made. JournalError names the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise JournalError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise JournalError(f"{path}: cannot read: {e}") from None
    entries: dict[int, Entry] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            kind = obj["type"]
            if n == 1:
                if kind != "header" or obj.get("version") != VERSION:
                    raise JournalError(f"{path}: line 1: not a kmsguard fix journal (version {VERSION})")
                continue
            if kind == "before":
                entries[obj["seq"]] = Entry(obj["seq"], obj["action"], obj.get("detail", {}), obj["prior"])
            elif kind == "result":
                entry = entries[obj["seq"]]
                entry.status, entry.error = obj["status"], obj.get("error")
            else:
                raise JournalError(f"{path}: line {n}: unknown entry type {kind!r}")
        except JournalError:
            raise
        except (ValueError, KeyError, TypeError) as e:
            # A torn last line (the process died mid-write) is the one damage a journal can have: say where.
            raise JournalError(f"{path}: line {n}: not a journal entry ({e})") from None
    if not lines:
        raise JournalError(f"{path}: empty file, not a kmsguard fix journal")
    return [entries[k] for k in sorted(entries)]
