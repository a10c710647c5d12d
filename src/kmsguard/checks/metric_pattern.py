"""CloudWatch Logs filter patterns: parse one, and say whether it matches a log event.

The audit checks must know whether a metric filter *really* counts the CloudTrail events an alarm is
meant to catch; a filter's name proves nothing, so its pattern is parsed and evaluated here against
synthetic CloudTrail events. Semantics follow the CloudWatch Logs "Filter and pattern syntax" guide:

JSON patterns, ``{ ... }``:
  * selectors ``$.a.b``, ``$.list[0].id``, ``$.m[0][1]`` (names: letters, digits, ``-``, ``_``);
  * ``SELECTOR = VALUE`` / ``!= VALUE`` where VALUE is quoted or unquoted. ``*`` at the start and/or end
    of a value is a wildcard (suffix, prefix, contains; ``*`` alone is any value); a ``*`` inside a
    value is literal ("Ev*ent matches only Ev*ent"). ``%regex%`` values are regular expressions;
  * numeric comparisons ``< > <= >= = !=`` against a number (``+1000``, ``10e-3``, ``55.5``);
  * ``IS NULL``, ``NOT EXISTS``, ``IS TRUE``, ``IS FALSE``; there is no ``EXISTS`` keyword (the AWS
    idiom for "exists" is ``SELECTOR = *``), so ``EXISTS`` is a syntax error, as AWS rejects it;
  * ``&&``, ``||`` and parentheses, with ``&&`` binding tighter than ``||``.
  A comparison whose selector does not reach a string or number (missing, null, boolean, object or
  array) is false for ``=`` and for ``!=`` alike: the guide says a selector must point to a value node.

Text patterns (anything not in braces): space-separated terms matched case-sensitively as substrings
of the event text (the compact JSON of the event, as CloudTrail delivers it to CloudWatch Logs);
``"quoted phrases"``; ``-term`` excludes; ``?term`` terms are alternatives (at least one must appear);
``%regex%`` terms; an empty pattern or ``""`` matches every event. Space-delimited ``[w1, ...]``
patterns cannot describe a JSON event and are reported as unsupported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FilterPattern", "PatternError", "matches", "parse"]


class PatternError(ValueError):
    """The pattern is not valid filter-pattern syntax (or uses syntax this module does not evaluate)."""


_MISSING = object()  # a selector that does not reach anything in the event

Path = tuple[str | int, ...]


# --- values on the right-hand side of a comparison -------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    text: str  # the literal as written, without quotes
    number: float | None  # set when the literal is a number (unquoted)
    regex: re.Pattern[str] | None = None

    def equals(self, actual: object) -> bool:
        """Whether a value node equals this literal (wildcards and regexes honoured)."""
        if isinstance(actual, bool) or not isinstance(actual, str | int | float):
            return False  # null, booleans, objects and arrays are not value nodes for = / !=
        if self.number is not None and not isinstance(actual, str):
            return float(actual) == self.number
        text = actual if isinstance(actual, str) else json.dumps(actual)
        if self.regex is not None:
            return self.regex.search(text) is not None
        return _wildcard_equals(self.text, text)


def _wildcard_equals(pattern: str, text: str) -> bool:
    # Only a leading and/or trailing "*" is a wildcard; one in the middle is a literal character.
    if pattern == "*":
        return True
    lead, trail = pattern.startswith("*"), pattern.endswith("*")
    core = pattern[1 if lead else 0 : len(pattern) - 1 if trail else len(pattern)]
    if lead and trail:
        return core in text
    if lead:
        return text.endswith(core)
    if trail:
        return text.startswith(core)
    return text == pattern


# --- the JSON expression tree ----------------------------------------------------------------------------


class _Node:
    def eval(self, event: Mapping[str, Any]) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class _Compare(_Node):
    path: Path
    op: str
    value: _Value

    def eval(self, event: Mapping[str, Any]) -> bool:
        actual = _resolve(event, self.path)
        if self.op == "=":
            return self.value.equals(actual)
        if self.op == "!=":
            return _is_value_node(actual) and not self.value.equals(actual)
        return _numeric(self.op, actual, self.value)


@dataclass(frozen=True)
class _Predicate(_Node):
    path: Path
    kind: Literal["IS NULL", "NOT EXISTS", "IS TRUE", "IS FALSE"]

    def eval(self, event: Mapping[str, Any]) -> bool:
        actual = _resolve(event, self.path)
        if self.kind == "NOT EXISTS":
            return actual is _MISSING
        if self.kind == "IS NULL":
            return actual is None
        return actual is (self.kind == "IS TRUE")


@dataclass(frozen=True)
class _And(_Node):
    left: _Node
    right: _Node

    def eval(self, event: Mapping[str, Any]) -> bool:
        return self.left.eval(event) and self.right.eval(event)


@dataclass(frozen=True)
class _Or(_Node):
    left: _Node
    right: _Node

    def eval(self, event: Mapping[str, Any]) -> bool:
        return self.left.eval(event) or self.right.eval(event)


def _is_value_node(actual: object) -> bool:
    return isinstance(actual, str | int | float) and not isinstance(actual, bool)


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _numeric(op: str, actual: object, value: _Value) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, int | float) or value.number is None:
        return False
    return _NUMERIC_OPS[op](float(actual), value.number)


def _resolve(event: object, path: Path) -> object:
    node: object = event
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return _MISSING
            node = node[step]
    return node


# --- the JSON expression parser ----------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_UNQUOTED_RE = re.compile(r"[^\s()&|{}=!<>\"]+")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")


class _JsonParser:
    """Recursive descent over ``expr := and ('||' and)* ; and := atom ('&&' atom)*``."""

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.pos = offset  # positions are reported relative to the whole pattern

    def error(self, what: str) -> PatternError:
        return PatternError(f"{what} at character {self.pos + 1}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip_ws()
        return self.text.startswith(token, self.pos)

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def take_word(self, word: str) -> bool:
        self.skip_ws()
        end = self.pos + len(word)
        if self.text[self.pos : end].upper() == word and (end == len(self.text) or not self.text[end].isalnum()):
            self.pos = end
            return True
        return False

    def parse(self) -> _Node:
        node = self.expr()
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.text[self.pos]!r}")
        return node

    def expr(self) -> _Node:
        node = self.conjunction()
        while self.take("||"):
            node = _Or(node, self.conjunction())
        return node

    def conjunction(self) -> _Node:
        node = self.atom()
        while self.take("&&"):
            node = _And(node, self.atom())
        return node

    def atom(self) -> _Node:
        if self.take("("):
            node = self.expr()
            if not self.take(")"):
                raise self.error("missing ')'")
            return node
        return self.condition()

    def condition(self) -> _Node:
        path = self.selector()
        if self.take_word("IS"):
            for kind in ("NULL", "TRUE", "FALSE"):
                if self.take_word(kind):
                    return _Predicate(path, f"IS {kind}")  # type: ignore[arg-type]
            raise self.error("expected NULL, TRUE or FALSE after IS")
        if self.take_word("NOT"):
            if self.take_word("EXISTS"):
                return _Predicate(path, "NOT EXISTS")
            raise self.error("expected EXISTS after NOT")
        op = next((o for o in _OPERATORS if self.take(o)), None)
        if op is None:
            raise self.error("expected a comparison operator, IS or NOT EXISTS")
        value = self.value()
        if op not in ("=", "!=") and value.number is None:
            raise self.error(f"operator {op} needs a number")
        return _Compare(path, op, value)

    def selector(self) -> Path:
        self.skip_ws()
        if not self.text.startswith("$", self.pos):
            raise self.error("expected a selector starting with '$'")
        self.pos += 1
        path: list[str | int] = []
        while self.pos < len(self.text) and self.text[self.pos] in ".[":
            if self.text[self.pos] == ".":
                m = _NAME_RE.match(self.text, self.pos + 1)
                if m is None:
                    raise self.error("expected a property name after '.'")
                path.append(m.group())
            else:
                m = re.compile(r"\[(\d+)\]").match(self.text, self.pos)
                if m is None or not path:
                    raise self.error("expected [NUMBER] after a property")
                path.append(int(m.group(1)))
            self.pos = m.end()
        if not path:
            raise self.error("a selector needs at least one property ($.name)")
        return tuple(path)

    def value(self) -> _Value:
        self.skip_ws()
        if self.text.startswith('"', self.pos):
            return _Value(self.quoted(), None)
        if self.text.startswith("%", self.pos):
            end = self.text.find("%", self.pos + 1)
            if end < 0:
                raise self.error("unterminated %regex%")
            source = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return _Value(source, None, _compile_regex(source))
        m = _UNQUOTED_RE.match(self.text, self.pos)
        if m is None:
            raise self.error("expected a value")
        self.pos = m.end()
        word = m.group()
        number = float(word) if _NUMBER_RE.fullmatch(word) else None
        return _Value(word, number)

    def quoted(self) -> str:
        out: list[str] = []
        i = self.pos + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
                continue
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            out.append(ch)
            i += 1
        raise self.error("unterminated quoted string")


def _compile_regex(source: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except re.error as e:
        raise PatternError(f"invalid regular expression %{source}%: {e}") from e


# --- text (term) patterns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    text: str
    regex: re.Pattern[str] | None = None

    def found_in(self, message: str) -> bool:
        return self.regex.search(message) is not None if self.regex else self.text in message


@dataclass(frozen=True)
class _TextPattern:
    required: tuple[_Term, ...]
    optional: tuple[_Term, ...]  # ?term: at least one must appear when there are any
    excluded: tuple[_Term, ...]

    def eval(self, message: str) -> bool:
        if any(t.found_in(message) for t in self.excluded):
            return False
        if not all(t.found_in(message) for t in self.required):
            return False
        return not self.optional or any(t.found_in(message) for t in self.optional)


_TEXT_TOKEN_RE = re.compile(r'\s*([?-]?)\s*("(?:[^"\\]|\\.)*"|%[^%]*%|[^\s"]+)')


def _parse_text(pattern: str) -> _TextPattern:
    required: list[_Term] = []
    optional: list[_Term] = []
    excluded: list[_Term] = []
    pos = 0
    while pos < len(pattern):
        if pattern[pos:].strip() == "":
            break
        m = _TEXT_TOKEN_RE.match(pattern, pos)
        if m is None:
            raise PatternError(f"unterminated quoted term at character {pos + 1}")
        prefix, raw = m.group(1), m.group(2)
        pos = m.end()
        term = _text_term(raw)
        if term is None:
            continue  # "" alone: matches everything, adds no condition
        {"": required, "?": optional, "-": excluded}[prefix].append(term)
    return _TextPattern(tuple(required), tuple(optional), tuple(excluded))


def _text_term(raw: str) -> _Term | None:
    if raw.startswith('"'):
        text = re.sub(r"\\(.)", r"\1", raw[1:-1])
        return _Term(text) if text else None
    if len(raw) >= 2 and raw.startswith("%") and raw.endswith("%"):
        return _Term(raw, _compile_regex(raw[1:-1]))
    return _Term(raw)


# --- public API --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterPattern:
    """A parsed filter pattern. Parse once (``parse``), evaluate against many events (``matches``)."""

    source: str
    kind: Literal["json", "text"]
    _json: _Node | None = None
    _text: _TextPattern | None = None

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self._json is not None:
            return self._json.eval(event)
        assert self._text is not None
        return self._text.eval(json.dumps(event, separators=(",", ":")))


def parse(pattern: str) -> FilterPattern:
    """Parse a CloudWatch Logs filter pattern; a ``PatternError`` names what is wrong and where."""
    stripped = pattern.strip()
    if stripped.startswith("{"):
        if not stripped.endswith("}"):
            raise PatternError("a JSON pattern must end with '}'")
        start = pattern.index("{") + 1
        end = pattern.rindex("}")
        inner = pattern[:end]
        if not inner[start:].strip():
            raise PatternError("empty JSON pattern '{ }'")
        return FilterPattern(pattern, "json", _json=_JsonParser(inner, start).parse())
    if stripped.startswith("["):
        raise PatternError("space-delimited patterns ([w1, w2, ...]) cannot describe a JSON event; not evaluated")
    return FilterPattern(pattern, "text", _text=_parse_text(pattern))


def matches(pattern: str | FilterPattern, event: Mapping[str, Any]) -> bool:
    """Whether ``pattern`` matches ``event`` (a decoded JSON log event). Raises PatternError if malformed."""
    parsed = parse(pattern) if isinstance(pattern, str) else pattern
    return parsed.matches(event)
