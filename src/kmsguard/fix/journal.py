"""The fix journal: the prior state of everything ``kmsguard fix --apply`` changes, written before the change.

One JSON object per line, appended and fsynced one entry at a time, so that whatever happens to the process
(a failed call, Ctrl-C, a crash) every change that may have reached AWS has its prior state on disk:

- ``{"type": "header", "version": 2, "started_at": ..., "key_id": ...}`` first;
- ``{"type": "before", "seq": n, "action": {...the plan action...}, "key_id": ..., "prior": {...}}`` just
  before the call that changes something; ``prior`` is read from AWS at that moment (for a key policy, the exact
  text GetKeyPolicy returned);
- ``{"type": "result", "seq": n, "status": "applied" | "partial" | "failed", "error": ...}`` after it
  (``partial``: the action failed after one of its several calls went through, so the resource did change).

**Signing.** Rollback writes to AWS whatever a journal says the prior state was, so a journal is only trusted
when this user's kmsguard wrote it. Every line ends with ``"mac": HMAC-SHA256(key, previous line's mac + "\\n" +
the line's text before the mac)``: a chain, so editing, inserting, removing or reordering lines breaks every
MAC after the change, while the file stays plain, append-only JSON lines. The key (32 random bytes, hex) is
``$KMSGUARD_JOURNAL_KEY`` if set, else ``$XDG_CONFIG_HOME/kmsguard/journal.key`` (``~/.config/...``), created
mode 0600 on first use. The header names the key by ``key_id`` (a MAC of a constant, not the key), so a journal
signed with another key is told apart from an edited one. Cutting lines off the end cannot be detected (a crash
does the same) and can only make rollback do less: an entry without its result is never restored.

Version 1 journals (before signing) are still read, for inspection; ``load_journal`` says they are unsigned.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmsguard.fileio import LoadError, loads_json, read_text

VERSION = 2
UNSIGNED_VERSION = 1  # journals of kmsguard before signing: readable, never trusted
KEY_ENV = "KMSGUARD_JOURNAL_KEY"
STATUSES = frozenset({"applied", "partial", "failed"})
_MAC_SUFFIX = re.compile(r',"mac":"([0-9a-f]{64})"\}$')


class JournalError(Exception):
    """The file is not a kmsguard fix journal this version can read (or the journal key cannot be used)."""


def default_path(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"kmsguard-fix-{stamp}.journal.json")


# --- the journal key ------------------------------------------------------------------------------------------


def key_path() -> Path:
    """Where this user's journal key lives: ``$KMSGUARD_JOURNAL_KEY``, else the user's config directory."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kmsguard" / "journal.key"


@dataclass(frozen=True)
class JournalKey:
    path: Path
    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """Names the key in a journal's header without revealing it."""
        return hmac.new(self.secret, b"kmsguard journal key id", hashlib.sha256).hexdigest()[:16]

    def mac(self, previous: str, text: str) -> str:
        return hmac.new(self.secret, f"{previous}\n{text}".encode(), hashlib.sha256).hexdigest()

    @classmethod
    def load(cls, *, create: bool) -> JournalKey | None:
        """This user's key; None when there is none and ``create`` is false. JournalError names the file."""
        path = key_path()
        if create and not path.exists():
            _create_key(path)
        try:
            st = path.stat()
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise JournalError(f"journal key {path}: cannot read: {e}") from None
        # A key others can read lets them sign journals that rollback would trust.
        if os.name == "posix" and st.st_mode & 0o077:
            raise JournalError(
                f"journal key {path}: readable or writable by other users (mode {stat.S_IMODE(st.st_mode):o}); "
                f"run chmod 600 {path}"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise JournalError(f"journal key {path}: not a kmsguard journal key (64 hex digits)")
        return cls(path, bytes.fromhex(text))


def _users_key() -> JournalKey:
    key = JournalKey.load(create=True)
    if key is None:  # removed between creating and reading it
        raise JournalError(f"journal key {key_path()}: disappeared while being created")
    return key


def _create_key(path: Path) -> None:
    """Write a new key, mode 0600, atomically: written to a temporary file and linked into place, so that two
    runs starting at once both end up with the one key that won (never a half-written file)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another run created it first: use that one
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise JournalError(f"journal key {path}: cannot create: {e.strerror or e}") from None


# --- writing --------------------------------------------------------------------------------------------------


class Journal:
    def __init__(self, path: Path, key: JournalKey | None = None) -> None:
        # The key first: a key that cannot be made or read leaves no empty journal behind.
        self.key = key if key is not None else _users_key()
        self.path = path
        self._seq = 0
        self._mac = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never append to (or overwrite) another run's journal.
        self._fh = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        started = datetime.now(UTC).isoformat()
        self._write({"type": "header", "version": VERSION, "started_at": started, "key_id": self.key.key_id})

    def _write(self, entry: dict[str, Any]) -> None:
        # The MAC covers the exact bytes written, so no canonical form is needed to check it.
        text = json.dumps(entry, default=str, separators=(",", ":"))
        self._mac = self.key.mac(self._mac, text)
        self._fh.write(f'{text[:-1]},"mac":"{self._mac}"}}\n')
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


# --- reading --------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    seq: int
    action: dict[str, Any]
    detail: dict[str, Any]
    prior: dict[str, Any]
    status: str | None = None  # None: no result recorded (the process stopped mid-call)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class JournalFile:
    path: Path
    version: int
    entries: list[Entry]
    problem: str | None  # why the journal cannot be trusted for rollback; None: signed by this user's key, intact

    @property
    def verified(self) -> bool:
        return self.problem is None


def read_journal(path: Path) -> list[Entry]:
    """Every change entry, in the order it was made, signed or not. JournalError names the file and line."""
    return load_journal(path).entries


def load_journal(path: Path) -> JournalFile:
    """The journal's entries and whether its signature holds. A malformed file is a JournalError (naming the
    file and line); a readable but untrusted one (unsigned, another key, edited) has ``problem`` set."""
    try:
        lines = read_text(path).splitlines()
    except LoadError as e:  # no such file, unreadable, not UTF-8 (naming the line)
        raise JournalError(f"{path}: {e}") from None
    if not any(line.strip() for line in lines):
        raise JournalError(f"{path}: empty file, not a kmsguard fix journal")
    objs = [(n, _parse(path, n, line)) for n, line in enumerate(lines, 1) if line.strip()]
    first_line, header = objs[0]
    version = header.get("version")
    if first_line != 1 or header.get("type") != "header" or version not in (UNSIGNED_VERSION, VERSION):
        raise JournalError(f"{path}: line 1: not a kmsguard fix journal (version {UNSIGNED_VERSION} or {VERSION})")
    entries = _entries(path, objs[1:])
    if version == UNSIGNED_VERSION:
        problem: str | None = "not signed (a version 1 journal, written before kmsguard signed its journals)"
    else:
        problem = _signature_problem(header, lines)
    return JournalFile(path, int(version), entries, problem)


def _parse(path: Path, n: int, line: str) -> dict[str, Any]:
    try:
        obj = loads_json(line)  # fileio's limits: nesting depth, lone surrogates
    except LoadError as e:
        # A torn last line (the process died mid-write) is the one damage a journal can have: say where.
        raise JournalError(f"{path}: line {n}: not a journal entry ({e.within_line()})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise JournalError(f"{path}: line {n}: not a journal entry (no type)")
    return obj


def _entries(path: Path, objs: list[tuple[int, dict[str, Any]]]) -> list[Entry]:
    entries: dict[int, Entry] = {}
    for n, obj in objs:
        try:
            _add(entries, obj)
        except (KeyError, TypeError, ValueError) as e:
            what = e.args[0] if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            raise JournalError(f"{path}: line {n}: not a journal entry ({what})") from None
    return [entries[k] for k in sorted(entries)]


def _add(entries: dict[int, Entry], obj: dict[str, Any]) -> None:
    kind, seq = obj["type"], obj.get("seq")
    if kind not in ("before", "result"):
        raise ValueError(f"unknown entry type {kind!r}")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("seq is not a number")
    if kind == "before":
        if seq in entries:
            raise ValueError(f"a second change numbered {seq}")
        action, detail, prior = obj["action"], obj.get("detail", {}), obj["prior"]
        if not all(isinstance(x, dict) for x in (action, detail, prior)):
            raise ValueError("action, detail and prior must be objects")
        entries[seq] = Entry(seq, action, detail, prior)
        return
    if seq not in entries:
        raise ValueError(f"a result for change {seq}, which has no before entry")
    entry = entries[seq]
    if entry.status is not None:
        raise ValueError(f"a second result for change {seq}")
    if obj["status"] not in STATUSES:
        raise ValueError(f"unknown status {obj['status']!r}")
    entry.status, entry.error = obj["status"], obj.get("error")


def _signature_problem(header: dict[str, Any], lines: list[str]) -> str | None:
    """Why a version 2 journal's MAC chain does not hold with this user's key, or None when it does."""
    try:
        key = JournalKey.load(create=False)
    except JournalError as e:
        return str(e)
    if key is None:
        return f"signed, but this user has no journal key to check it with ({key_path()})"
    if header.get("key_id") != key.key_id:
        return (
            f"signed with another journal key (key id {header.get('key_id')!r}, this user's is {key.key_id!r} "
            f"at {key_path()}): a journal from another user or machine"
        )
    previous = ""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = _MAC_SUFFIX.search(line)
        if m is None:  # no MAC, or one no longer where the writer put it (the line was reformatted)
            what = "does not match its MAC" if '"mac"' in line else "has no MAC"
            return f"line {n} {what}: the journal was edited"
        expected = key.mac(previous, line[: m.start()] + "}")
        if not hmac.compare_digest(expected, m.group(1)):
            return f"line {n} does not match its MAC: the journal was edited"
        previous = expected
    return None
