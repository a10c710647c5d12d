"""Files kmsguard reads from others and files it writes: the one home of both.

Reading. Policies, snapshots, kmsguard.yaml, journals and JSON reports come from people and programs that
may be careless or hostile, so every loader reads them here, and anything wrong is a ``LoadError`` naming
the line and column (and the field, where one is to blame), never a traceback:

- bytes that are not UTF-8 (the line and column of the first bad byte);
- JSON or YAML nested deeper than ``MAX_DEPTH``: ``json`` and PyYAML's composer recurse once per level and
  raise ``RecursionError`` on ``"[" * 5000``; the limit also keeps every recursive reader after them (the
  policy parser's position map, pydantic, ``==``) far from Python's recursion limit. Real documents are a
  dozen levels deep at most;
- lone UTF-16 surrogates (``"\\ud800"`` escaped in JSON or YAML): they decode to a ``str`` that cannot be
  encoded, so the first report, log line or API call holding one would crash. Nothing AWS returns holds one.

Writing. ``write_atomic`` writes a temporary file in the target's directory and renames it over the
target: a run that fails half-way (a full disk, a crash, Ctrl-C) leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import yaml

MAX_DEPTH = 64
NOT_JSON = "not JSON"  # LoadError.reason of a JSON syntax error (its detail is json's message)

# An escaped surrogate in JSON text; a backslash pair is matched first so that ``\\ud800`` (an escaped
# backslash, then the letters ud800) is not taken for one. Paired high+low escapes are one character.
_ESCAPES = re.compile(
    r"\\\\|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a literal prefix: searched at memchr speed
_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class LoadError(ValueError):
    """A file (or a document inside one) kmsguard will not read. ``str()`` is one line, without the file name:
    ``[field: ]reason[ at line L[ column C]][: detail]``; loaders prefix the file."""

    def __init__(
        self, reason: str, line: int | None = None, column: int | None = None, field: str = "", detail: str = ""
    ) -> None:
        self.reason, self.line, self.column, self.field, self.detail = reason, line, column, field, detail
        super().__init__(self._text())

    def _text(self, with_line: bool = True) -> str:
        out = f"{self.field}: {self.reason}" if self.field else self.reason
        if self.line is not None and with_line:
            out += f" at line {self.line}" + (f" column {self.column}" if self.column is not None else "")
        elif self.column is not None:
            out += f" at column {self.column}"
        return out + (f": {self.detail}" if self.detail else "")

    def within_line(self) -> str:
        """The message for a document that is one line of a file (a journal entry): the caller names the
        line, this names the column."""
        return self._text(with_line=False)


def format_path(path: Sequence[str | int]) -> str:
    """("mutes", 1, "expires") -> "mutes[1].expires"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- reading text -------------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file's text, strictly UTF-8. LoadError: no such file, unreadable, or not UTF-8 (naming the line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LoadError("no such file") from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a file") from None
    except OSError as e:
        raise LoadError("cannot read", detail=str(e.strerror or e)) from None
    return decode_utf8(raw)


def decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = raw.rfind(b"\n", 0, e.start) + 1
        column = len(raw[start : e.start].decode("utf-8", "replace")) + 1
        line = raw.count(b"\n", 0, e.start) + 1
        raise LoadError("not UTF-8 text", line, column, detail=f"byte 0x{raw[e.start]:02x}") from None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


# --- JSON ---------------------------------------------------------------------------------------------------


def loads_json(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` for text from outside (``kwargs`` go to it). LoadError: not UTF-8, not JSON, nested
    deeper than MAX_DEPTH, or holding a lone surrogate. Other ValueErrors of ``kwargs``' hooks pass through."""
    from_bytes = isinstance(text, bytes)
    if isinstance(text, bytes):
        text = decode_utf8(text)  # strict UTF-8 cannot hold a surrogate: only escapes are left to look for
    kwargs.setdefault("parse_int", _bounded_int)
    try:
        data = json.loads(text, **kwargs)
    except RecursionError:
        raise _too_deep(text) from None
    except json.JSONDecodeError as e:
        raise LoadError(NOT_JSON, e.lineno, e.colno, detail=e.msg) from None
    # Fewer brackets than the limit cannot nest deeper (two C-speed counts: every small policy stops here).
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(data, MAX_DEPTH):
        raise _too_deep(text)
    if _SURROGATE_ESCAPE.search(text) or not (from_bytes or _encodable(text)):
        _reject_json_surrogate(text, data)
    return data


# Python refuses to turn more digits than this into an int (sys.get_int_max_str_digits), with a ValueError that
# is not a JSON error: say so as a load error instead. No AWS document holds such a number.
MAX_INT_DIGITS = 4300


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise LoadError(f"a number of {len(digits):,} digits (more than {MAX_INT_DIGITS:,})")
    return int(digits)


def _encodable(text: str) -> bool:
    """Whether ``text`` holds no raw surrogate (the C encoder answers far faster than a regex scan)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iterative: the data may be deep)."""
    stack = [(data, 1)]
    while stack:
        obj, depth = stack.pop()
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep(text: str) -> LoadError:
    """The error for JSON nested deeper than MAX_DEPTH, at the bracket that goes one level too far."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()  # a bracket, or a whole string (brackets inside one do not count)
        if tok == "[" or tok == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return LoadError(f"nested deeper than {MAX_DEPTH} levels", *_line_col(text, m.start()))
        elif tok == "]" or tok == "}":
            depth -= 1
    return LoadError(f"nested deeper than {MAX_DEPTH} levels")


def _reject_json_surrogate(text: str, data: Any) -> None:
    """LoadError at the first lone surrogate: a raw one in ``text``, or an escape that is not half of a pair."""
    found: tuple[int, str] | None = None
    raw = _RAW_SURROGATE.search(text)
    if raw is not None:
        found = raw.start(), _escape(raw.group())
    for m in _ESCAPES.finditer(text, 0, found[0] if found else len(text)):
        if m.group() != "\\\\" and m.group(1) is None:  # neither an escaped backslash nor a pair
            found = m.start(), m.group().lower()
            break
    if found is None:
        return  # only paired surrogates (characters beyond U+FFFF) or escaped backslashes
    raise LoadError(_lone(found[1]), *_line_col(text, found[0]), field=_surrogate_field(data))


def _escape(ch: str) -> str:
    return f"\\u{ord(ch):04x}"


def _lone(shown: str) -> str:
    return f"a lone surrogate {shown} (half of a UTF-16 pair, not a character)"


def _surrogate_field(data: Any) -> str:
    """Where the first key or string holding a surrogate is (breadth first), or "". A key is named by its
    object: the key itself cannot be printed."""
    queue: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    for path, obj in queue:
        items: Iterator[tuple[str | int, Any]] = (
            iter(obj.items()) if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else iter(())
        )
        for k, v in items:
            if isinstance(k, str) and _RAW_SURROGATE.search(k):
                return f"a key of {format_path(path) or 'the top-level object'}"
            if isinstance(v, str) and _RAW_SURROGATE.search(v):
                return format_path((*path, k))
            if isinstance(v, dict | list):
                queue.append(((*path, k), v))
    return ""


# --- YAML ---------------------------------------------------------------------------------------------------


def load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """(root node, data) of a YAML document: the node tree keeps each value's line for error messages.
    LoadError: not YAML, nested deeper than MAX_DEPTH, or holding a lone surrogate (each naming the line)."""
    try:
        _check_yaml_events(text)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            try:
                data = loader.construct_document(root) if root is not None else None
            except (ValueError, OverflowError) as e:
                # A scalar YAML resolves to a value Python cannot hold (an integer of 5,000 digits, a date in
                # year 0): the constructor raises a plain ValueError, without the line.
                raise LoadError("a value that cannot be read", detail=str(e).splitlines()[0]) from None
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise LoadError("not valid YAML", line, detail=str(getattr(e, "problem", None) or e)) from None
    return root, data


def _check_yaml_events(text: str) -> None:
    """Depth and surrogates, from the parser's events: the parser is iterative (the composer that follows
    recurses once per level), and each scalar's event carries its line."""
    depth = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        where = (ev.start_mark.line + 1, ev.start_mark.column + 1) if ev.start_mark else (None, None)
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise LoadError(f"nested deeper than {MAX_DEPTH} levels", *where)
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(ev, yaml.ScalarEvent):
            m = _RAW_SURROGATE.search(ev.value)
            if m is not None:
                raise LoadError(_lone(_escape(m.group())), *where)


def check_yaml_events(text: str) -> None:
    """``load_yaml``'s depth and surrogate checks alone, for loaders that compose YAML with their own tags."""
    _check_yaml_events(text)


# --- writing ------------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers and later runs see the old file or the new one,
    never a part. OSError as the file system raises it (the old file untouched)."""
    with open_atomic(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through, piece by piece, that replaces ``path`` all at once when the block ends
    (``write_atomic``'s guarantee for a report written as a stream); on an error the old file is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        # /dev/stdout, a FIFO: renaming over it would replace the device itself; write through it instead.
        with path.open("wb") as fh:
            yield fh
        return
    target = path.resolve() if path.is_symlink() else path  # keep the link, replace what it points to
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # 0o666 through the umask, as a plain open() would create it; an existing file's mode is kept.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if st is None else stat.S_IMODE(st.st_mode))
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename, so a crash cannot leave an empty file behind it
        if st is not None:
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # the umask may have narrowed it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
