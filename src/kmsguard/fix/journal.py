"""The fix journal: the plan of ``kmsguard fix --apply`` and the prior state of everything it changes, written
before the change.

One JSON object per line, appended and fsynced one entry at a time, so that whatever happens to the process
(a failed call, Ctrl-C, a crash) every change that may have reached AWS has its prior state on disk:

- ``{"type": "header", "version": 3, "started_at": ..., "key_id": ...}`` first;
- ``{"type": "plan", "actions": [{...Action.to_dict(), "detail": {...}}, ...]}`` second: the whole plan, so
  that ``fix --apply --resume`` carries on with exactly this plan (never a new scan's); an action of a journal
  written before ``check_ids`` names its checks comma-joined in ``check_id`` (``Action.from_dict`` reads both);
- ``{"type": "before", "seq": n, "index": i, "action": {...}, "detail": {...}, "prior": {...}}`` just before
  the call that changes something (``index``: the action's place in the plan); ``prior`` is read from AWS at
  that moment (for a key policy, the exact text GetKeyPolicy returned);
- ``{"type": "result", "seq": n, "status": "applied" | "partial" | "failed", "error": ...}`` after it
  (``partial``: the action failed after one of its several calls went through, so the resource did change);
- ``{"type": "outcome", "index": i, "status": "skipped" | "failed", "message": ...}`` for a planned action that
  ended without a change (already done, changed by someone else, unreadable), so a resume knows it ended;
- ``{"type": "resume", "started_at": ...}`` where ``--resume`` started appending.

Entries are written by the apply's worker threads one at a time (a lock): the MAC chain needs one order, and
``seq`` numbers are unique.

**Signing.** Rollback writes to AWS whatever a journal says the prior state was, so a journal is only trusted
when this user's kmsguard wrote it. Every line ends with ``"mac": HMAC-SHA256(key, previous line's mac + "\\n" +
the line's text before the mac)``: a chain, so editing, inserting, removing or reordering lines breaks every
MAC after the change, while the file stays plain, append-only JSON lines. The key (32 random bytes, hex) is
``$KMSGUARD_JOURNAL_KEY`` if set, else ``$XDG_CONFIG_HOME/kmsguard/journal.key`` (``~/.config/...``), created
mode 0600 on first use. The header names the key by ``key_id`` (a MAC of a constant, not the key), so a journal
signed with another key is told apart from an edited one. Cutting lines off the end cannot be detected (a crash
does the same) and can only make rollback do less: an entry without its result is never restored.

The run that writes a journal holds an exclusive lock on it (``flock``, where the OS has it), so a resume
cannot append to a journal another run is still writing.

Version 2 journals (signed, without the plan) are read and rolled back, but cannot be resumed. Version 1
journals (before signing) are still read, for inspection; ``load_journal`` says they are unsigned.
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
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmsguard.fileio import LoadError, loads_json, read_text

VERSION = 3
PLAN_VERSION = 3  # the first version holding its plan: the ones ``--resume`` can continue
SIGNED_VERSION = 2  # signed, without the plan: rolled back, never resumed
UNSIGNED_VERSION = 1  # journals of kmsguard before signing: readable, never trusted
READABLE = (UNSIGNED_VERSION, SIGNED_VERSION, VERSION)
KEY_ENV = "KMSGUARD_JOURNAL_KEY"
STATUSES = frozenset({"applied", "partial", "failed"})
OUTCOME_STATUSES = frozenset({"skipped", "failed"})  # of a planned action that ended without a change
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
    """Appends signed entries; ``Journal(path)`` starts a new journal, ``Journal.reopen(path)`` continues one."""

    def __init__(self, path: Path, key: JournalKey | None = None) -> None:
        # The key first: a key that cannot be made or read leaves no empty journal behind.
        self.key = key if key is not None else _users_key()
        self.path = path
        self._seq = 0
        self._mac = ""
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never append to (or overwrite) another run's journal.
        self._fh = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        _lock_file(self._fh.fileno(), path)
        started = datetime.now(UTC).isoformat()
        self._write({"type": "header", "version": VERSION, "started_at": started, "key_id": self.key.key_id})

    @classmethod
    def reopen(cls, path: Path) -> tuple[Journal, JournalFile]:
        """Continue a journal this user's kmsguard wrote (``--resume``): it is locked, read again under the lock,
        and must be verified; new entries extend its MAC chain and number their changes after its last one.
        JournalError (one line, naming the file) for anything else."""
        load_journal(path)  # names the problem of a missing, unreadable or foreign file before opening it
        try:
            fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        except OSError as e:
            raise JournalError(f"{path}: cannot open to append: {e.strerror or e}") from None
        try:
            _lock_file(fh.fileno(), path)
            # Read again under the lock: another run may have appended since.
            found = load_journal(path)
            if not found.verified:
                raise JournalError(f"{path}: {found.problem}; kmsguard appends only to journals it signed")
        except BaseException:
            fh.close()
            raise
        journal = cls.__new__(cls)  # not __init__: no new file, no header
        journal.key = _users_key()  # the key the chain was just verified with
        journal.path, journal._fh, journal._lock = path, fh, threading.Lock()
        journal._seq = max((e.seq for e in found.entries), default=0)
        journal._mac = found.last_mac
        return journal, found

    def _write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._write_locked(entry)

    def plan(self, actions: list[dict[str, Any]]) -> None:
        """The plan about to be applied (each action as ``Action.to_dict()`` plus its ``detail``)."""
        self._write({"type": "plan", "actions": actions})

    def before(
        self, action: dict[str, Any], detail: dict[str, Any], prior: dict[str, Any], index: int | None = None
    ) -> int:
        with self._lock:  # the number and its line in one step: numbers are unique and rise down the file
            self._seq += 1
            seq = self._seq
            entry: dict[str, Any] = {"type": "before", "seq": seq}
            if index is not None:
                entry["index"] = index
            self._write_locked(entry | {"action": action, "detail": detail, "prior": prior})
        return seq

    def _write_locked(self, entry: dict[str, Any]) -> None:
        # The MAC covers the exact bytes written, so no canonical form is needed to check it.
        text = json.dumps(entry, default=str, separators=(",", ":"))
        self._mac = self.key.mac(self._mac, text)
        self._fh.write(f'{text[:-1]},"mac":"{self._mac}"}}\n')
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def result(self, seq: int, status: str, error: str | None = None) -> None:
        entry: dict[str, Any] = {"type": "result", "seq": seq, "status": status}
        if error is not None:
            entry["error"] = error
        self._write(entry)

    def outcome(self, index: int, status: str, message: str) -> None:
        """A planned action that ended without changing anything."""
        self._write({"type": "outcome", "index": index, "status": status, "message": message})

    def resumed(self) -> None:
        self._write({"type": "resume", "started_at": datetime.now(UTC).isoformat()})

    def close(self) -> None:
        self._fh.close()  # closing the file releases its lock

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_file(fd: int, path: Path) -> None:
    """An exclusive lock on the open journal for as long as the run keeps it open, where the OS has flock: two
    runs appending to one journal (a resume while the apply still runs) would both apply what is left."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented in docs/fix.md)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalError(f"{path}: in use by another kmsguard run; wait until it ends") from None


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
    index: int | None = None  # the action's place in the journal's plan (version 3)


@dataclass(frozen=True)
class Ended:
    """A planned action that ended without a change (an ``outcome`` line)."""

    status: str
    message: str


@dataclass
class JournalFile:
    path: Path
    version: int
    entries: list[Entry]
    problem: str | None  # why the journal cannot be trusted for rollback; None: signed by this user's key, intact
    plan: list[dict[str, Any]] | None = None  # the planned actions (with their detail); None before version 3
    ended: dict[int, Ended] = field(default_factory=dict)  # by plan index
    last_mac: str = ""  # the chain's last link, which an appended line continues

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
    if first_line != 1 or header.get("type") != "header" or version not in READABLE:
        versions = ", ".join(map(str, READABLE))
        raise JournalError(f"{path}: line 1: not a kmsguard fix journal (version {versions})")
    reader = _Reader()
    for n, obj in objs[1:]:
        try:
            reader.add(obj)
        except (KeyError, TypeError, ValueError) as e:
            what = e.args[0] if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            raise JournalError(f"{path}: line {n}: not a journal entry ({what})") from None
    if version == UNSIGNED_VERSION:
        problem: str | None = "not signed (a version 1 journal, written before kmsguard signed its journals)"
    else:
        problem = _signature_problem(header, lines)
    last = _MAC_SUFFIX.search(lines[objs[-1][0] - 1])
    entries = [reader.entries[k] for k in sorted(reader.entries)]
    return JournalFile(path, int(version), entries, problem, reader.plan, reader.ended, last.group(1) if last else "")


def _parse(path: Path, n: int, line: str) -> dict[str, Any]:
    try:
        obj = loads_json(line)  # fileio's limits: nesting depth, lone surrogates
    except LoadError as e:
        # A torn last line (the process died mid-write) is the one damage a journal can have: say where.
        raise JournalError(f"{path}: line {n}: not a journal entry ({e.within_line()})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise JournalError(f"{path}: line {n}: not a journal entry (no type)")
    return obj


def _number(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is not a number")
    return value


class _Reader:
    """The entries of a journal, line by line; ValueError (or KeyError, TypeError) says what is wrong with one."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.plan: list[dict[str, Any]] | None = None
        self.ended: dict[int, Ended] = {}
        self._lines = 0
        self._changed: set[int] = set()  # plan indexes with a before entry

    def add(self, obj: dict[str, Any]) -> None:
        self._lines += 1
        kind = obj["type"]
        if kind == "plan":
            self._add_plan(obj)
        elif kind == "before":
            self._add_before(obj)
        elif kind == "result":
            self._add_result(obj)
        elif kind == "outcome":
            self._add_outcome(obj)
        elif kind != "resume":
            raise ValueError(f"unknown entry type {kind!r}")

    def _add_plan(self, obj: dict[str, Any]) -> None:
        if self._lines != 1:
            raise ValueError("the plan must come right after the header")
        actions = obj["actions"]
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            raise ValueError("the plan's actions must be a list of objects")
        self.plan = actions

    def _index(self, obj: dict[str, Any]) -> int | None:
        """The plan index an entry names (None: none, as before version 3), checked against the plan."""
        if "index" not in obj:
            return None
        index = _number(obj["index"], "index")
        if self.plan is None or not 0 <= index < len(self.plan):
            raise ValueError(f"index {index} names no action of the journal's plan")
        return index

    def _add_before(self, obj: dict[str, Any]) -> None:
        seq = _number(obj.get("seq"), "seq")
        if seq in self.entries:
            raise ValueError(f"a second change numbered {seq}")
        action, detail, prior = obj["action"], obj.get("detail", {}), obj["prior"]
        if not all(isinstance(x, dict) for x in (action, detail, prior)):
            raise ValueError("action, detail and prior must be objects")
        index = self._index(obj)
        if index is not None:
            if index in self._changed:
                raise ValueError(f"a second change for action {index} of the plan")
            self._changed.add(index)
        self.entries[seq] = Entry(seq, action, detail, prior, index=index)

    def _add_result(self, obj: dict[str, Any]) -> None:
        seq = _number(obj.get("seq"), "seq")
        if seq not in self.entries:
            raise ValueError(f"a result for change {seq}, which has no before entry")
        entry = self.entries[seq]
        if entry.status is not None:
            raise ValueError(f"a second result for change {seq}")
        if obj["status"] not in STATUSES:
            raise ValueError(f"unknown status {obj['status']!r}")
        entry.status, entry.error = obj["status"], obj.get("error")

    def _add_outcome(self, obj: dict[str, Any]) -> None:
        index = self._index(obj)
        if index is None:
            raise ValueError("an outcome without the index of its action")
        if index in self.ended:
            raise ValueError(f"a second outcome for action {index} of the plan")
        status, message = obj["status"], obj["message"]
        if status not in OUTCOME_STATUSES or not isinstance(message, str):
            raise ValueError(f"unknown outcome {status!r}")
        self.ended[index] = Ended(status, message)


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
