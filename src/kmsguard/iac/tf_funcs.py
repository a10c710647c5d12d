"""Terraform values and the built-in functions a key policy or a key reference is usually written with.

Values are plain Python: str, int, float, bool, None, list, dict. A value that cannot be known before apply is
an *unknown* (``declared.unknown``): a string marker that survives JSON encoding. Functions take known values;
``UnknownResult`` says "the result depends on an unknown", and the evaluator names the call in the unknown it
returns. Only the functions that keep structure (``jsonencode``, ``concat``, ``merge``, ``format``, ``join``,
``coalesce``, conversions) look inside unknowns; every other function gets an unknown result when any argument
holds one. Functions not listed here are not evaluated (``Unsupported``): their value is an unknown naming them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.declared import UNKNOWN_PREFIX, UNKNOWN_RE, unknown

Value = Any
MAX_RANGE = 1024  # range() beyond this is not a key policy; refused instead of building a huge list


class EvalError(Exception):
    """What Terraform itself would refuse (a missing attribute, null in a template, an index out of range):
    ``try()`` and ``can()`` catch it; elsewhere the value becomes an unknown naming the expression."""


class UnknownResult(Exception):
    """The function's result depends on an unknown argument."""


class Unsupported(Exception):
    """A function this evaluator does not implement."""


def unknown_value(reason: str) -> str:
    """``declared.unknown`` with a reason that stays valid inside a JSON string written by hand (heredocs)."""
    reason = reason.replace('"', "'").replace("\\", "/")
    return unknown(reason if len(reason) <= 200 else reason[:197] + "...")


def is_whole_unknown(value: object) -> bool:
    """Whether ``value`` is one unknown and nothing else (not a string with an unknown inside)."""
    return isinstance(value, str) and value.startswith(UNKNOWN_PREFIX) and UNKNOWN_RE.fullmatch(value) is not None


def first_unknown(value: Value) -> str | None:
    """The reason of the first unknown anywhere in ``value`` (iterative: values may be deep)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            m = UNKNOWN_RE.search(v) if UNKNOWN_PREFIX in v else None
            if m is not None:
                return m.group(1)
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
            stack.extend(k for k in v if isinstance(k, str))
        elif isinstance(v, list):
            stack.extend(reversed(v))
    return None


def to_str(value: Value) -> str:
    """A value as Terraform converts it to a string (templates, string arguments)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if value is None:
        raise EvalError("null where a string is needed")
    raise EvalError(f"a {type_name(value)} where a string is needed")


def to_num(value: Value) -> int | float:
    if isinstance(value, bool):
        raise EvalError("a bool where a number is needed")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            n = float(value)
        except ValueError:
            raise EvalError(f"{value[:40]!r} is not a number") from None
        return int(n) if n.is_integer() and "." not in value and "e" not in value.lower() else n
    raise EvalError(f"a {type_name(value)} where a number is needed")


def to_bool(value: Value) -> bool | None:
    """True/False, or None when ``value`` is unknown."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    if isinstance(value, str) and UNKNOWN_PREFIX in value:
        return None
    raise EvalError(f"a {type_name(value)} where a bool is needed")


def type_name(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _seq(value: Value) -> list[Value]:
    if is_whole_unknown(value):
        raise UnknownResult
    if isinstance(value, list):
        return value
    raise EvalError(f"a {type_name(value)} where a list is needed")


def _map(value: Value) -> Mapping[str, Value]:
    if is_whole_unknown(value):
        raise UnknownResult
    if isinstance(value, Mapping):
        return value
    raise EvalError(f"a {type_name(value)} where a map is needed")


def _distinct(items: list[Value]) -> list[Value]:
    out: list[Value] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# --- functions that look inside unknowns ----------------------------------------------------------------------


def _jsonencode(value: Value) -> Value:
    if is_whole_unknown(value):
        return value  # still one unknown: a JSON text nobody can know yet
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _concat(*lists: Value) -> Value:
    return [item for lst in lists for item in _seq(lst)]


def _merge(*maps: Value) -> Value:
    out: dict[str, Value] = {}
    for m in maps:
        if m is None:
            continue
        if is_whole_unknown(m):
            # A map nobody knows yet: its keys are unknown too. Kept as one entry so tags and contexts built
            # with merge(var.tags, {...}) still show that something unknown is in them.
            out[m] = m
            continue
        out.update(_map(m))
    return out


def _coalesce(*values: Value) -> Value:
    for v in values:
        if is_whole_unknown(v):
            raise UnknownResult
        if v is not None and v != "":
            return v
    raise EvalError("coalesce: every argument is null or empty")


def _join(sep: Value, *lists: Value) -> Value:
    return to_str(sep).join(to_str(v) for lst in lists for v in _seq(lst))


_VERB = re.compile(r"%(?:\[\d+\])?[-+# 0]*\d*(?:\.\d+)?([a-zA-Z%])")


def _format(fmt: Value, *args: Value) -> Value:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        try:
            v = next(values)
        except StopIteration:
            raise EvalError("format: not enough arguments") from None
        if verb in ("s", "v"):
            return to_str(v) if not isinstance(v, list | dict) else json.dumps(v)
        if is_whole_unknown(v):
            raise UnknownResult
        if verb == "d":
            return str(int(to_num(v)))
        if verb == "q":
            return json.dumps(to_str(v))
        if verb == "t":
            return "true" if to_bool(v) else "false"
        if verb in ("f", "g", "e"):
            return str(float(to_num(v)))
        raise EvalError(f"format: verb %{verb} is not supported")

    return _VERB.sub(one, to_str(fmt))


def _tolist(value: Value) -> Value:
    return list(_seq(value))


def _toset(value: Value) -> Value:
    return _distinct(_seq(value))


def _tomap(value: Value) -> Value:
    return dict(_map(value))


def _tostring(value: Value) -> Value:
    return to_str(value)


def _flatten(value: Value) -> Value:
    out: list[Value] = []
    stack = [iter(_seq(value))]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        elif is_whole_unknown(item):
            raise UnknownResult  # a list nobody knows could hold more lists
        else:
            out.append(item)
    return out


_END = object()


def _compact(value: Value) -> Value:
    return [v for v in _seq(value) if v is not None and v != ""]


def _distinct_fn(value: Value) -> Value:
    return _distinct(_seq(value))


def _one(value: Value) -> Value:
    items = _seq(value)
    if len(items) > 1:
        raise EvalError("one: more than one element")
    return items[0] if items else None


# --- functions on known values --------------------------------------------------------------------------------


def _jsondecode(text: Value) -> Value:
    try:
        return loads_json(to_str(text))
    except LoadError as e:
        raise EvalError(f"jsondecode: {e}") from None


def _length(value: Value) -> Value:
    if isinstance(value, str | list | Mapping):
        return len(value)
    raise EvalError(f"length of a {type_name(value)}")


def _element(lst: Value, index: Value) -> Value:
    items = _seq(lst)
    if not items:
        raise EvalError("element of an empty list")
    return items[int(to_num(index)) % len(items)]


def _lookup(m: Value, key: Value, *default: Value) -> Value:
    mapping = _map(m)
    k = to_str(key)
    if k in mapping:
        return mapping[k]
    if default:
        return default[0]
    raise EvalError(f"lookup: no key {k!r}")


def _replace(s: Value, old: Value, new: Value) -> Value:
    old_s = to_str(old)
    if len(old_s) > 1 and old_s.startswith("/") and old_s.endswith("/"):
        raise Unsupported  # a regular expression (RE2 syntax): not evaluated
    return to_str(s).replace(old_s, to_str(new))


def _substr(s: Value, offset: Value, length: Value) -> Value:
    text, start, n = to_str(s), int(to_num(offset)), int(to_num(length))
    start = start if start >= 0 else len(text) + start
    return text[start:] if n < 0 else text[start : start + n]


def _range(*args: Value) -> Value:
    nums = [int(to_num(a)) for a in args]
    if not 1 <= len(nums) <= 3:
        raise EvalError("range: one to three arguments")
    out = range(*nums) if len(nums) < 3 or nums[2] != 0 else range(0)
    if len(out) > MAX_RANGE:
        raise Unsupported
    return list(out)


def _keys(m: Value) -> Value:
    return sorted(_map(m))


def _values(m: Value) -> Value:
    mapping = _map(m)
    return [mapping[k] for k in sorted(mapping)]


def _zipmap(keys: Value, values: Value) -> Value:
    ks, vs = _seq(keys), _seq(values)
    if len(ks) != len(vs):
        raise EvalError("zipmap: lists of different lengths")
    return {to_str(k): v for k, v in zip(ks, vs, strict=True)}


def _slice(lst: Value, start: Value, end: Value) -> Value:
    return _seq(lst)[int(to_num(start)) : int(to_num(end))]


def _minmax(pick: Callable[..., Any]) -> Callable[..., Value]:
    def fn(*nums: Value) -> Value:
        if not nums:
            raise EvalError("needs at least one number")
        return pick(to_num(n) for n in nums)

    return fn


def _tonumber(value: Value) -> Value:
    return None if value is None else to_num(value)


def _tobool(value: Value) -> Value:
    return None if value is None else to_bool(value)


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "jsonencode": _jsonencode,
    "concat": _concat,
    "merge": _merge,
    "coalesce": _coalesce,
    "join": _join,
    "format": _format,
    "tolist": _tolist,
    "toset": _toset,
    "tomap": _tomap,
    "tostring": _tostring,
    "flatten": _flatten,
    "compact": _compact,
    "distinct": _distinct_fn,
    "one": _one,
    "jsondecode": _jsondecode,
    "length": _length,
    "element": _element,
    "lookup": _lookup,
    "lower": lambda s: to_str(s).lower(),
    "upper": lambda s: to_str(s).upper(),
    "title": lambda s: to_str(s).title(),
    "trimspace": lambda s: to_str(s).strip(),
    "trim": lambda s, chars: to_str(s).strip(to_str(chars)),
    "trimprefix": lambda s, p: to_str(s).removeprefix(to_str(p)),
    "trimsuffix": lambda s, p: to_str(s).removesuffix(to_str(p)),
    "startswith": lambda s, p: to_str(s).startswith(to_str(p)),
    "endswith": lambda s, p: to_str(s).endswith(to_str(p)),
    "split": lambda sep, s: to_str(s).split(to_str(sep)),
    "replace": _replace,
    "substr": _substr,
    "contains": lambda lst, v: v in _seq(lst),
    "keys": _keys,
    "values": _values,
    "zipmap": _zipmap,
    "slice": _slice,
    "reverse": lambda lst: list(reversed(_seq(lst))),
    "sort": lambda lst: sorted(to_str(v) for v in _seq(lst)),
    "range": _range,
    "min": _minmax(min),
    "max": _minmax(max),
    "abs": lambda n: abs(to_num(n)),
    "ceil": lambda n: math.ceil(to_num(n)),
    "floor": lambda n: math.floor(to_num(n)),
    "tonumber": _tonumber,
    "tobool": _tobool,
}

# Functions that handle unknowns inside their arguments themselves; the others see only known values.
_STRUCTURAL = frozenset(
    {"jsonencode", "concat", "merge", "coalesce", "join", "format", "tolist", "toset", "tomap", "tostring"}
    | {"flatten", "compact", "distinct", "one"}
)


def call(name: str, args: list[Value]) -> Value:
    """``name(args...)``. Raises Unsupported, UnknownResult or EvalError (a bad call)."""
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise Unsupported
    if name not in _STRUCTURAL and any(first_unknown(a) is not None for a in args):
        raise UnknownResult
    try:
        return fn(*args)
    except TypeError:
        raise EvalError(f"{name}: wrong number of arguments ({len(args)})") from None
    except (ValueError, OverflowError, IndexError) as e:  # int("x"), a huge float, an index out of range
        raise EvalError(f"{name}: {e}") from None
