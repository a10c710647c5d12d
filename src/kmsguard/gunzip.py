"""Gunzip with bounds: the one home of reading gzip, for trail log files and snapshot files alike.

ISA-L inflates about twice as fast as zlib when it is installed (a declared dependency; the pure-Python install
falls back to zlib). Every function here bounds what it holds, so a gzip bomb costs its limit, never what it
would inflate to.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from types import ModuleType

_gzip: ModuleType
_zlib_mod: ModuleType
try:  # ISA-L inflates gzip about twice as fast as zlib; optional so the pure-Python install still works.
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib_mod
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip

    _zlib_mod = zlib
# What inflating a truncated or corrupt gzip raises.
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, getattr(_zlib_mod, "error", zlib.error))

# Most bytes one inflate call produces: a small compressed chunk may expand a thousandfold.
INFLATE_STEP = 8 * 1024 * 1024


def is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def decompress(data: bytes) -> bytes:
    return _gzip.decompress(data) if is_gzip(data) else data


def expand(data: bytes, limit: int) -> bytes | None:
    """``data`` gunzipped (as it is when not gzip), or None when that would come to more than ``limit`` bytes: the
    caller streams it instead. Inflating stops as soon as it passes ``limit``, so a gzip bomb (a megabyte that
    inflates to a gigabyte) costs ``limit``, not a gigabyte. The gzip trailer's size only sizes the first buffer (it
    is the last member's, modulo 2**32, and a bomb may state anything)."""
    if not is_gzip(data):
        return data
    hint = int.from_bytes(data[-4:], "little") if len(data) >= 18 else 0
    out: list[bytes] = []
    total = 0
    for piece in inflate((data,), step=max(min(hint, limit) + 1, INFLATE_STEP)):
        total += len(piece)
        if total > limit:
            return None
        out.append(piece)
    return out[0] if len(out) == 1 else b"".join(out)


def inflate(chunks: Iterable[bytes], step: int = INFLATE_STEP) -> Iterator[bytes]:
    """The bytes of ``chunks``, gunzipped (every member) when they start as gzip, at most ``step`` bytes at a
    time: however much one compressed chunk expands to, no buffer holds more than that."""
    it = iter(chunks)
    first = next(it, b"")
    if not is_gzip(first):
        yield first
        yield from it
        return
    d = _zlib_mod.decompressobj(31)
    buf = first
    while True:
        out = d.decompress(buf, step)
        if out:
            yield out
        if d.eof:
            # Another member may follow (concatenated gzip); zero bytes after the last are padding, as gzip allows.
            buf = d.unused_data.lstrip(b"\0")
            while not buf:
                nxt = next(it, None)
                if nxt is None:
                    return
                buf = nxt.lstrip(b"\0")
            d = _zlib_mod.decompressobj(31)
            continue
        buf = d.unconsumed_tail
        if not buf and len(out) < step:  # all input taken and no output held back: the next chunk, if any
            buf = next(it, b"")
            if not buf:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
