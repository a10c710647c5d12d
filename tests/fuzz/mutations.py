"""Hypothesis strategies that turn valid files into hostile ones.

Two kinds: byte mutations (truncation, byte flips, deletions, duplications, hostile tokens spliced in: deep
nesting, invalid UTF-8, lone surrogates, huge numbers, NaN, NUL, YAML tags and aliases) that mostly break the
syntax, and structure mutations (one value anywhere in a parsed document replaced by a value of another type or
a hostile one) that keep the syntax and reach the validation behind it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from hypothesis import strategies as st

DEPTH = 5000  # the reproduction: "[" * 5000

# Byte sequences that broke (or could break) a loader, spliced into otherwise valid files.
TOKENS: dict[str, bytes] = {
    "deep list": b"[" * DEPTH,
    "deep object": b'{"a":' * DEPTH,
    "deep closed list": b"[" * DEPTH + b"]" * DEPTH,
    "deep yaml block": b"".join(b"  " * i + b"- \n" for i in range(300)),
    "invalid utf-8": b"\xff\xfe\xc3\x28",
    "utf-8 encoded surrogate": b"\xed\xa0\x80",
    "lone surrogate escape": b'"\\ud800"',
    "reversed surrogate escapes": b'"\\udfff\\ud800"',
    "huge integer": b"9" * 5000,
    "huge exponent": b"1e999999",
    "negative huge exponent": b"-1e-999999",
    "nan": b"NaN",
    "infinity": b"-Infinity",
    "nul": b"\x00",
    "bom": b"\xef\xbb\xbf",
    "long line": b"A" * 100_000,
    "yaml python tag": b"!!python/object/apply:os.system ['true']",
    "yaml alias": b"*undefined",
    "yaml anchor bomb": b"&a [&b [*a]]",
    "yaml merge key": b"<<: [1, 2]",
    "yaml tab": b"\t",
    "yaml document end": b"\n...\n---\n",
    "crlf": b"\r\n",
    "gzip magic": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
}

# Values that replace one node of a parsed document. Strings that json.dumps cannot write as they should be
# (nesting deeper than its recursion limit, integers past Python's 4,300-digit limit) are placeholders swapped
# for the raw text after dumping.
_RAW: dict[str, str] = {
    "RAW-deep-list-7f3a": "[" * DEPTH + "]" * DEPTH,
    "RAW-deep-object-7f3a": '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "RAW-huge-int-7f3a": "9" * 5000,
    "RAW-huge-float-7f3a": "1e999999",
}
SURROGATES = ["\ud800", "\udfff", "a\ud83dz", "\udc80\udcff"]
ODD_STRINGS = ["", " ", "*", "arn:", "arn:aws:kms:::key/", "0" * 12, "\u202e", "\x00", "A" * 10_000, "2013-10-31"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included: json.dumps writes NaN, Infinity
    st.text(max_size=40),
    st.sampled_from(SURROGATES + ODD_STRINGS),
)
hostile_values = st.one_of(
    scalars,
    st.sampled_from(sorted(_RAW)),
    st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)),
)


class Blob(bytes):
    """Bytes whose repr is a Python expression with runs folded (``b'[' * 5000 + b'1'``), so that a failing
    example hypothesis prints is a readable, exact reproduction rather than pages of brackets."""

    def __repr__(self) -> str:
        parts: list[str] = []
        literal = bytearray()
        i = 0
        while i < len(self):
            j = i
            while j < len(self) and self[j] == self[i]:
                j += 1
            if j - i >= 8:
                if literal:
                    parts.append(repr(bytes(literal)))
                    literal.clear()
                parts.append(f"{bytes([self[i]])!r} * {j - i}")
            else:
                literal += self[i:j]
            i = j
        if literal or not parts:
            parts.append(repr(bytes(literal)))
        return " + ".join(parts)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis prints examples with IPython's pretty
        p.text(repr(self))


def raw(text: str) -> str:
    """The text with each placeholder of a huge or deep value replaced by that value."""
    for marker, raw in _RAW.items():
        text = text.replace(json.dumps(marker), raw).replace(marker, raw)  # quoted in JSON, bare in YAML
    return text


# --- byte mutations -------------------------------------------------------------------------------------------


@st.composite
def _mutate(draw: st.DrawFn, data: bytes) -> bytes:
    n = len(data)
    pos = draw(st.integers(0, n))
    span = draw(st.integers(1, max(1, min(64, n - pos))))
    op = draw(st.sampled_from(["truncate", "flip", "delete", "insert", "replace", "duplicate"]))
    if op == "truncate":
        return data[:pos]
    if op == "flip":
        return data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1 :]
    if op == "delete":
        return data[:pos] + data[pos + span :]
    if op == "duplicate":
        return data[: pos + span] + data[pos : pos + span] + data[pos + span :]
    token = draw(st.sampled_from(sorted(TOKENS)).map(TOKENS.__getitem__) | st.binary(min_size=1, max_size=16))
    return data[:pos] + token + data[pos + (span if op == "replace" else 0) :]


@st.composite
def byte_mutants(draw: st.DrawFn, seeds: Sequence[bytes], max_ops: int = 3) -> bytes:
    """A seed with one to ``max_ops`` byte mutations, or (now and then) bytes owing nothing to any seed."""
    if draw(st.integers(0, 9)) == 0:
        return Blob(draw(st.binary(max_size=4096)))
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, max_ops))):
        data = draw(_mutate(data))
    return Blob(data)


# --- structure mutations --------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every node's path in a parsed document (keys and list indexes), the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def replace(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: replace(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = replace(doc[head], rest, value)
    return copy


@st.composite
def tree_mutated(draw: st.DrawFn, docs: Sequence[Any], max_ops: int = 2) -> Any:
    """A parsed seed with one or two nodes replaced by hostile values (wrong types, surrogates, NaN, and
    placeholders for huge and deep values that ``raw`` puts in once the document is text again)."""
    doc = draw(st.sampled_from(docs))
    for _ in range(draw(st.integers(1, max_ops))):
        where = paths(doc)
        doc = replace(doc, where[draw(st.integers(0, len(where) - 1))], draw(hostile_values))
    return doc


def tree_mutants(docs: Sequence[Any], dump: Callable[[Any], str], max_ops: int = 2) -> st.SearchStrategy[Blob]:
    """``tree_mutated`` documents written back with ``dump`` (json_text or yaml_text)."""
    return tree_mutated(docs, max_ops).map(lambda doc: written(doc, dump))


def json_text(doc: Any) -> str:
    return json.dumps(doc)  # ASCII: a lone surrogate is written as the escape \ud800, as an attacker would


def yaml_text(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=False, width=1_000_000)


def written(doc: Any, dump: Callable[[Any], str]) -> Blob:
    """A (mutated) document as file bytes: dumped, placeholders replaced, lone surrogates kept as they are."""
    return Blob(raw(dump(doc)).encode("utf-8", "surrogatepass"))


def gzipped(data: bytes) -> Blob:
    return Blob(gzip.compress(data, mtime=0))
