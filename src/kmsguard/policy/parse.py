"""Parse and validate policy documents (key policies and IAM identity policies).

``validate_policy`` returns every problem it finds, each with a JSON path and, where the text allows, a
line and column; ``parse_policy`` raises ``PolicyParseError`` naming the first error as
``source:line:col`` and returns a ``RawPolicy`` (the decoded document plus its warnings) otherwise.

Positions: the standard ``json`` module reports positions only for syntax errors, so once ``json.loads``
has accepted the text we read it once more with a tiny position-recording reader (``_Reader``) that
remembers where every key and value starts, by JSON path, and notices duplicate keys (``json`` silently
keeps the last one, which is also what AWS's parser does, so a duplicate is worth a warning).
"""

from __future__ import annotations

import bisect
import calendar
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, Literal

from kmsguard.fileio import NOT_JSON, LoadError, loads_json
from kmsguard.policy import actions as cat
from kmsguard.policy.errors import PolicyParseError, Problem, Severity

PolicyKind = Literal["key", "identity"]
PathKey = tuple[str | int, ...]

KEY_POLICY_MAX_BYTES = 32768  # KMS: "the maximum length of a key policy is 32 kilobytes (32768 bytes)"
VERSIONS = ("2012-10-17", "2008-10-17")
TOP_LEVEL = ("Version", "Id", "Statement")
STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")


# --------------------------------------------------------------------------------------------- positions

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass
class PositionMap:
    """Offsets of JSON elements by path, convertible to 1-based line/column."""

    text: str
    value_at: dict[PathKey, int] = field(default_factory=dict)
    key_at: dict[PathKey, int] = field(default_factory=dict)
    duplicates: list[PathKey] = field(default_factory=list)  # paths of repeated object keys
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line_col(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def locate(self, path: PathKey) -> tuple[int, int] | None:
        """Line/column of the element at ``path`` (of its key when it is an object member), else of the
        nearest recorded ancestor."""
        p = path
        while True:
            off = self.key_at.get(p)
            if off is None:
                off = self.value_at.get(p)
            if off is not None:
                return self.line_col(off)
            if not p:
                return None
            p = p[:-1]


def _skip(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


class _Reader:
    """Walks text that ``json.loads`` already accepted, recording where each element starts."""

    def __init__(self, text: str, pm: PositionMap) -> None:
        self.text = text
        self.pm = pm

    def value(self, i: int, path: PathKey) -> int:
        self.pm.value_at[path] = i
        ch = self.text[i]
        if ch == "{":
            return self._object(i + 1, path)
        if ch == "[":
            return self._array(i + 1, path)
        if ch == '"':
            return int(scanstring(self.text, i + 1)[1])
        for literal in ("true", "false", "null"):
            if self.text.startswith(literal, i):
                return i + len(literal)
        m = _NUMBER.match(self.text, i)
        if m is None:  # not reachable for text json.loads accepted (NaN/Infinity are rejected earlier)
            raise ValueError(f"unexpected character at offset {i}")
        return m.end()

    def _object(self, i: int, path: PathKey) -> int:
        i = _skip(self.text, i)
        if self.text[i] == "}":
            return i + 1
        seen: set[str] = set()
        while True:
            key_start = i
            key, i = scanstring(self.text, i + 1)
            child: PathKey = (*path, str(key))
            if key in seen:
                self.pm.duplicates.append(child)
            seen.add(key)
            self.pm.key_at[child] = key_start
            i = _skip(self.text, _skip(self.text, i) + 1)  # past ':'
            i = _skip(self.text, self.value(i, child))
            if self.text[i] == "}":
                return i + 1
            i = _skip(self.text, i + 1)  # past ','

    def _array(self, i: int, path: PathKey) -> int:
        i = _skip(self.text, i)
        if self.text[i] == "]":
            return i + 1
        n = 0
        while True:
            i = _skip(self.text, self.value(i, (*path, n)))
            n += 1
            if self.text[i] == "]":
                return i + 1
            i = _skip(self.text, i + 1)


def format_path(path: PathKey) -> str:
    """("Statement", 2, "Condition") -> "Statement[2].Condition"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


# ------------------------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class RawPolicy:
    """A decoded, validated policy document, before normalisation."""

    data: dict[str, Any]
    kind: PolicyKind
    source: str = "<policy>"
    text: str = ""
    warnings: tuple[Problem, ...] = ()
    positions: PositionMap | None = field(default=None, repr=False, compare=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _LazyPositions:
    """The PositionMap of a document, built on first use.

    Walking the text for positions costs several times more than ``json.loads`` itself, and a valid
    policy (the common case: every key of a large estate) never needs a position, so the walk happens
    only when a problem is reported or a duplicate key was seen.
    """

    def __init__(self, body: str) -> None:
        self._body = body
        self._pm: PositionMap | None = None

    @property
    def built(self) -> PositionMap | None:
        return self._pm

    def get(self) -> PositionMap:
        if self._pm is None:
            pm = PositionMap(self._body)
            _Reader(self._body, pm).value(_skip(self._body, 0), ())
            self._pm = pm
        return self._pm


def _decode(text: str) -> tuple[Any, _LazyPositions | None, bool, Problem | None]:
    """(data, positions, has_duplicate_keys, json_problem)."""
    body = text[1:] if text.startswith("\ufeff") else text
    duplicates = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        obj = dict(items)
        if len(obj) != len(items):
            duplicates = True
        return obj

    try:
        data = loads_json(body, parse_constant=_reject_constant, object_pairs_hook=pairs)
    except LoadError as exc:  # not JSON, nested too deeply, a lone surrogate: fileio's limits, with the position
        what = f"invalid JSON: {exc.detail}" if exc.reason == NOT_JSON else exc.reason
        return None, None, False, Problem("error", "json", what, exc.field, exc.line, exc.column)
    except ValueError as exc:  # NaN / Infinity
        return None, None, False, Problem("error", "json", f"invalid JSON: {exc}", "", None, None)
    return data, _LazyPositions(body), duplicates, None


def validate_policy(text: str, *, source: str = "<policy>", kind: PolicyKind = "key") -> list[Problem]:
    """Every problem in ``text``, errors and warnings, in document order (errors that stop further
    checking, such as a JSON syntax error, come alone)."""
    return list(_validate(text, kind)[1])


# Errors that AWS itself does not make (it accepted the policy), tolerated by a lenient parse.
LENIENT_CODES = frozenset({"unknown-action", "duplicate-sid", "missing-version"})


def parse_policy(text: str, *, source: str = "<policy>", kind: PolicyKind = "key", strict: bool = True) -> RawPolicy:
    """Decode and validate; raise ``PolicyParseError`` (message ``source:line:col: ...``) on any error.

    ``strict=False``: the errors in ``LENIENT_CODES`` (a KMS action not in the catalogue, duplicate Sids, a
    missing Version) become warnings, for analysing a policy AWS accepted."""
    data, problems, positions = _validate(text, kind)
    if not strict:
        problems = [replace(p, severity="warning") if p.code in LENIENT_CODES else p for p in problems]
    errors = tuple(p for p in problems if p.severity == "error")
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise PolicyParseError(first.format(source) + more, errors, source)
    assert isinstance(data, dict)
    warnings = tuple(p for p in problems if p.severity == "warning")
    pm = positions.built if positions is not None else None
    return RawPolicy(data=data, kind=kind, source=source, text=text, warnings=warnings, positions=pm)


def _validate(text: str, kind: PolicyKind) -> tuple[Any, list[Problem], _LazyPositions | None]:
    if kind not in ("key", "identity"):
        raise ValueError(f"kind must be 'key' or 'identity', not {kind!r}")
    data, positions, has_duplicates, json_problem = _decode(text)
    if json_problem is not None:
        return None, [json_problem], None
    assert positions is not None
    v = _Validator(kind, positions)
    if kind == "key" and len(text.encode("utf-8")) > KEY_POLICY_MAX_BYTES:
        v.add(
            "error",
            "too-large",
            f"key policy is {len(text.encode('utf-8'))} bytes; KMS allows at most {KEY_POLICY_MAX_BYTES}",
            (),
        )
    v.document(data)
    for dup in positions.get().duplicates if has_duplicates else ():
        v.add("warning", "duplicate-key", f"duplicate key {dup[-1]!r}: only the last one takes effect", dup)
    v.problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return data, v.problems, positions


# ----------------------------------------------------------------------------------------- the validator

_ACCOUNT = re.compile(r"\d{12}")
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_PRINCIPAL_ARN = re.compile(r"arn:(aws[a-z-]*):(iam|sts)::([^:]*):(.*)", re.DOTALL)
_UNIQUE_ID = re.compile(r"(AIDA|AROA|AIPA|ANPA|ANVA|ASIA|AKIA)[A-Z0-9]{12,}")
_NAME = re.compile(r"[\w+=,.@-]+")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?|[a-z0-9][a-z0-9.-]*\.amazon\.com")
_CANONICAL_USER = re.compile(r"[0-9a-f]{64}")
_CONDITION_KEY = re.compile(r"[A-Za-z0-9-]+:\S+")


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, str | int | float | bool) and value is not None:
        return [value]
    return None


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Validator:
    def __init__(self, kind: PolicyKind, positions: _LazyPositions) -> None:
        self.kind = kind
        self.positions = positions
        self.problems: list[Problem] = []
        self.version: str | None = None

    def add(self, severity: Severity, code: str, message: str, path: PathKey) -> None:
        pos = self.positions.get().locate(path)
        line, col = pos if pos else (None, None)
        self.problems.append(Problem(severity, code, message, format_path(path), line, col))

    # -- document and statements

    def document(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.add("error", "not-an-object", "a policy must be a JSON object", ())
            return
        for key in data:
            if key not in TOP_LEVEL:
                self.add(
                    "error", "unknown-element", f"unknown top-level element {key!r}{_suggest(key, TOP_LEVEL)}", (key,)
                )
        version = data.get("Version")
        if "Version" not in data:
            self.add("error", "missing-version", 'missing "Version" (use "2012-10-17")', ())
        elif version not in VERSIONS:
            self.add(
                "error", "bad-version", f'Version must be "2012-10-17" (or "2008-10-17"), not {version!r}', ("Version",)
            )
        elif version == "2008-10-17":
            self.add(
                "warning",
                "old-version",
                'Version "2008-10-17" does not support policy variables; use "2012-10-17"',
                ("Version",),
            )
        self.version = version if isinstance(version, str) else None
        if "Id" in data and not isinstance(data["Id"], str):
            self.add("error", "bad-id", "Id must be a string", ("Id",))
        if "Statement" not in data:
            self.add("error", "missing-statement", 'missing "Statement"', ())
            return
        stmts = data["Statement"]
        if isinstance(stmts, dict):
            self.statement(stmts, ("Statement",))
            return
        if not isinstance(stmts, list):
            self.add("error", "bad-statement", "Statement must be an object or a list of objects", ("Statement",))
            return
        if not stmts:
            self.add("error", "empty-statement", "Statement is an empty list", ("Statement",))
        sids: dict[str, int] = {}
        for i, st in enumerate(stmts):
            self.statement(st, ("Statement", i))
            if isinstance(st, dict) and isinstance(st.get("Sid"), str):
                sid = st["Sid"]
                if sid in sids:
                    self.add(
                        "error",
                        "duplicate-sid",
                        f"duplicate Sid {sid!r} (also Statement[{sids[sid]}]); Sids must be unique in a policy",
                        ("Statement", i, "Sid"),
                    )
                else:
                    sids[sid] = i

    def statement(self, st: Any, path: PathKey) -> None:
        if not isinstance(st, dict):
            self.add("error", "bad-statement", "each statement must be a JSON object", path)
            return
        for key in st:
            if key not in STATEMENT_ELEMENTS:
                self.add(
                    "error",
                    "unknown-element",
                    f"unknown statement element {key!r}{_suggest(key, STATEMENT_ELEMENTS)}",
                    (*path, key),
                )
        if "Sid" in st and not isinstance(st["Sid"], str):
            self.add("error", "bad-sid", "Sid must be a string", (*path, "Sid"))
        effect = st.get("Effect")
        if "Effect" not in st:
            self.add("error", "missing-effect", 'missing "Effect" ("Allow" or "Deny")', path)
        elif effect not in ("Allow", "Deny"):
            self.add("error", "bad-effect", f'Effect must be "Allow" or "Deny", not {effect!r}', (*path, "Effect"))
        self._principals(st, path, effect)
        self._actions(st, path, effect)
        self._resources(st, path)
        if "Condition" in st:
            self.condition(st["Condition"], (*path, "Condition"))

    def _pair(self, st: dict[str, Any], path: PathKey, name: str, required: bool) -> str | None:
        """Check that exactly one of ``name`` / ``Not<name>`` is present; return the one that is."""
        has, has_not = name in st, f"Not{name}" in st
        if has and has_not:
            self.add("error", f"both-{name.lower()}", f"a statement cannot have both {name} and Not{name}", path)
            return None
        if not has and not has_not:
            if required:
                self.add("error", f"missing-{name.lower()}", f"statement has neither {name} nor Not{name}", path)
            return None
        return name if has else f"Not{name}"

    def _principals(self, st: dict[str, Any], path: PathKey, effect: Any) -> None:
        if self.kind == "identity":
            for name in ("Principal", "NotPrincipal"):
                if name in st:
                    self.add(
                        "error",
                        "principal-in-identity-policy",
                        f"{name} is not allowed in an identity policy (it applies to whoever it is attached to)",
                        (*path, name),
                    )
            return
        elem = self._pair(st, path, "Principal", required=True)
        if elem is None:
            return
        if elem == "NotPrincipal" and effect == "Allow":
            self.add(
                "warning",
                "notprincipal-allow",
                "NotPrincipal with Allow grants access to every principal not listed (AWS supports NotPrincipal "
                "only with Deny)",
                (*path, elem),
            )
        self.principal(st[elem], (*path, elem))

    def principal(self, value: Any, path: PathKey) -> None:
        if value == "*":
            return
        if isinstance(value, str):
            self.add(
                "error", "bad-principal", f'a Principal string must be "*", not {value!r}; use {{"AWS": ...}}', path
            )
            return
        if not isinstance(value, dict) or not value:
            self.add("error", "bad-principal", 'Principal must be "*" or an object such as {"AWS": [...]}', path)
            return
        for ptype, pvalues in value.items():
            ppath = (*path, ptype)
            if ptype not in PRINCIPAL_TYPES:
                self.add(
                    "error",
                    "unknown-principal-type",
                    f"unknown principal type {ptype!r}{_suggest(ptype, PRINCIPAL_TYPES)}",
                    ppath,
                )
                continue
            items = _as_list(pvalues)
            if items is None or not items:
                self.add("error", "bad-principal", f"{ptype} principal must be a string or a non-empty list", ppath)
                continue
            single = not isinstance(pvalues, list)
            for j, item in enumerate(items):
                ipath = ppath if single else (*ppath, j)
                if not isinstance(item, str):
                    self.add("error", "bad-principal", f"{ptype} principal values must be strings, not {item!r}", ipath)
                    continue
                if ptype == "AWS":
                    self._aws_principal(item, ipath)
                elif ptype == "Service":
                    self._service_principal(item, ipath)
                elif ptype == "CanonicalUser":
                    if not _CANONICAL_USER.fullmatch(item):
                        self.add("error", "bad-principal", f"malformed canonical user id {item!r}", ipath)
                    elif self.kind == "key":
                        self.add("warning", "canonical-user", "KMS does not use CanonicalUser principals", ipath)
                elif not item:
                    self.add("error", "bad-principal", "empty Federated principal", ipath)

    def _aws_principal(self, item: str, path: PathKey) -> None:
        if item == "*":
            return
        if _ACCOUNT.fullmatch(item):
            return
        if item.isdigit():
            self.add("error", "bad-account-id", f"account id {item!r} must be 12 digits", path)
            return
        if _UNIQUE_ID.fullmatch(item):
            self.add(
                "warning",
                "unique-id-principal",
                f"principal {item!r} is an IAM unique id: the user or role it named was deleted, so it matches no one",
                path,
            )
            return
        m = _PRINCIPAL_ARN.fullmatch(item)
        if m is None:
            self.add(
                "error",
                "bad-principal",
                f'{item!r} is not a valid AWS principal (an account id, an IAM/STS ARN, or "*")',
                path,
            )
            return
        _partition, service, account, resource = m.groups()
        if "*" in item or "?" in item:
            self.add(
                "error",
                "wildcard-principal-arn",
                f'wildcards are not allowed inside a principal ARN ({item!r}); use "*" with an aws:PrincipalArn '
                "condition",
                path,
            )
            return
        if not _ACCOUNT.fullmatch(account):
            self.add("error", "bad-account-id", f"account id {account!r} in {item!r} must be 12 digits", path)
            return
        kind_ok = False
        if service == "iam":
            if resource == "root":
                kind_ok = True
            elif resource.startswith(("user/", "role/")):
                parts = resource.split("/")
                kind_ok = len(parts) >= 2 and all(_NAME.fullmatch(p) for p in parts[1:])
            elif resource.startswith("group/"):
                self.add("error", "group-principal", f"IAM groups cannot be principals ({item!r})", path)
                return
        else:  # sts
            parts = resource.split("/")
            if parts[0] == "assumed-role":
                kind_ok = len(parts) == 3 and all(_NAME.fullmatch(p) for p in parts[1:])
            elif parts[0] == "federated-user":
                kind_ok = len(parts) == 2 and bool(_NAME.fullmatch(parts[1]))
        if not kind_ok:
            self.add("error", "bad-principal", f"unrecognised principal ARN {item!r}", path)

    def _service_principal(self, item: str, path: PathKey) -> None:
        if "*" in item or "?" in item:
            self.add(
                "error",
                "wildcard-service-principal",
                f"wildcards are not allowed in a service principal ({item!r})",
                path,
            )
        elif not _SERVICE.fullmatch(item):
            self.add(
                "warning", "unusual-service-principal", f"{item!r} does not look like an AWS service principal", path
            )

    def _actions(self, st: dict[str, Any], path: PathKey, effect: Any) -> None:
        elem = self._pair(st, path, "Action", required=True)
        if elem is None:
            return
        apath = (*path, elem)
        raw = st[elem]
        items = _as_list(raw)
        if items is None or not items:
            self.add("error", "bad-action", f"{elem} must be a string or a non-empty list of strings", apath)
            return
        if elem == "NotAction" and effect == "Allow":
            self.add("warning", "notaction-allow", "NotAction with Allow grants every action not listed", apath)
        single = not isinstance(raw, list)
        for j, item in enumerate(items):
            ipath = apath if single else (*apath, j)
            if not isinstance(item, str):
                self.add("error", "bad-action", f"actions must be strings, not {item!r}", ipath)
                continue
            self.action(item, ipath)

    def action(self, item: str, path: PathKey) -> None:
        if item == "*":
            return
        if not _ACTION.fullmatch(item):
            self.add("error", "bad-action", f'malformed action {item!r} (expected "service:Name")', path)
            return
        service = item.split(":", 1)[0].lower()
        if service != "kms":
            if self.kind == "key":
                self.add(
                    "warning", "non-kms-action", f"{item!r} is not a KMS action and has no effect in a key policy", path
                )
            return
        if "*" in item or "?" in item:
            if not cat.expand_kms_actions(item):
                self.add("error", "unknown-action", f"{item!r} matches no KMS action", path)
        elif item.lower() not in cat.KMS_ACTIONS_LOWER:
            self.add("error", "unknown-action", f"unknown KMS action {item!r}{_suggest(item, cat.KMS_ACTIONS)}", path)

    def _resources(self, st: dict[str, Any], path: PathKey) -> None:
        elem = self._pair(st, path, "Resource", required=True)
        if elem is None:
            return
        rpath = (*path, elem)
        raw = st[elem]
        items = _as_list(raw)
        if items is None or not items:
            self.add("error", "bad-resource", f"{elem} must be a string or a non-empty list of strings", rpath)
            return
        single = not isinstance(raw, list)
        for j, item in enumerate(items):
            ipath = rpath if single else (*rpath, j)
            if not isinstance(item, str) or not item:
                self.add("error", "bad-resource", f"resources must be non-empty strings, not {item!r}", ipath)
            elif item != "*" and not item.startswith("arn:"):
                self.add("error", "bad-resource", f'resource {item!r} must be "*" or an ARN', ipath)
        if self.kind == "key" and elem == "NotResource":
            self.add(
                "warning",
                "notresource-key-policy",
                "NotResource in a key policy: the key itself is the only resource",
                rpath,
            )

    # -- conditions

    def condition(self, cond: Any, path: PathKey) -> None:
        if not isinstance(cond, dict):
            self.add("error", "bad-condition", "Condition must be an object of operator -> {key: values}", path)
            return
        for op_text, block in cond.items():
            opath = (*path, op_text)
            spec = cat.parse_operator(op_text)
            if spec is None:
                names = list(cat.BASE_OPERATORS) + [b + "IfExists" for b in cat.BASE_OPERATORS if b != "Null"]
                self.add(
                    "error",
                    "unknown-operator",
                    f"unknown condition operator {op_text!r}{_suggest(op_text.split(':')[-1], names)}",
                    opath,
                )
                continue
            if not spec.exact_case:
                self.add("warning", "operator-case", f"condition operator {op_text!r} is not in AWS's spelling", opath)
            if not isinstance(block, dict) or not block:
                self.add("error", "bad-condition", f"{op_text} must map condition keys to values", opath)
                continue
            for key, values in block.items():
                self._condition_values(spec, key, values, (*opath, key))

    def _condition_values(self, spec: cat.OperatorSpec, key: str, values: Any, path: PathKey) -> None:
        if not _CONDITION_KEY.fullmatch(key):
            self.add("error", "bad-condition-key", f"malformed condition key {key!r}", path)
            return
        known = cat.is_known_condition_key(key)
        if known is False:
            self.add("warning", "unknown-condition-key", f"unknown condition key {key!r}", path)
        items = _as_list(values)
        if items is None:
            self.add(
                "error",
                "bad-condition-value",
                f"condition values must be strings, numbers or booleans, not {values!r}",
                path,
            )
            return
        if not items:
            self.add("warning", "empty-condition-value", f"{key} has no values: the condition can never match", path)
            return
        single = not isinstance(values, list)
        for j, item in enumerate(items):
            ipath = path if single else (*path, j)
            if isinstance(item, dict | list) or item is None:
                self.add("error", "bad-condition-value", f"condition values must be scalars, not {item!r}", ipath)
                continue
            text = json.dumps(item) if isinstance(item, bool) else str(item)
            self._typed_value(spec.base, key, text, ipath)

    def _typed_value(self, base: str, key: str, text: str, path: PathKey) -> None:
        if base == "Null" or base == "Bool":
            if "${" in text and base == "Bool":
                return
            if text.lower() not in ("true", "false"):
                self.add("error", "bad-condition-value", f"{base} takes true or false, not {text!r}", path)
        elif base.startswith("Numeric"):
            try:
                Decimal(text)
            except InvalidOperation:
                self.add("error", "bad-condition-value", f"{base} needs a number, not {text!r}", path)
        elif base.startswith("Date"):
            if parse_date(text) is None:
                self.add(
                    "error",
                    "bad-condition-value",
                    f"{base} needs an ISO 8601 date (as 2024-01-31T12:00:00Z) or whole epoch seconds, not {text!r}",
                    path,
                )
        elif base in ("IpAddress", "NotIpAddress"):
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                self.add("error", "bad-condition-value", f"{base} needs an IP address or CIDR, not {text!r}", path)
        elif base.startswith("Arn") and text != "*" and "${" not in text and text.count(":") < 5:
            self.add("warning", "bad-condition-value", f"{text!r} is not an ARN: {base} will not match it", path)


# Date condition values (and request dates): "one of the W3C implementations of the ISO 8601 date formats or
# epoch (UNIX) time" (IAM guide, "Condition operators", Date condition operators). The W3C profile
# (www.w3.org/TR/NOTE-datetime): YYYY-MM, YYYY-MM-DD, then THH:MM, :SS and .fraction, with a zone designator Z
# or +HH:MM/-HH:MM. "T" and "Z" may be written in lower case (RFC 3339, section 5.6, which profiles ISO 8601
# the same way); a time without a zone is read as UTC. Epoch time is whole seconds: "1700000000.5" and
# "1.7e9" are neither form. A bare year is not accepted as a date: "2024" reads as epoch seconds.
_EPOCH_SECONDS = re.compile(r"-?[0-9]+")
_W3C_DATE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?)?"
)


def parse_date(text: str) -> Decimal | None:
    """Epoch seconds (exact, fractions kept) for an IAM date value, or None when it is no form AWS documents.

    The one date parser: the validator, the evaluator and the solver all read dates through it."""
    t = text.strip()
    if _EPOCH_SECONDS.fullmatch(t):
        return Decimal(int(t))
    m = _W3C_DATE.fullmatch(t)
    if m is None:
        return None
    part = m.groupdict()
    try:
        dt = datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"] or 1),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            tzinfo=UTC,
        )
    except ValueError:  # month 13, 31 February, hour 25 ...
        return None
    seconds = Decimal(calendar.timegm(dt.timetuple())) + Decimal(f"0.{part['fraction'] or 0}")
    zone = part["zone"] or "Z"
    if zone.upper() != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = hours * 3600 + minutes * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds


def date_text(seconds: Decimal) -> str:
    """Epoch seconds as the ISO 8601 UTC text ``parse_date`` reads back to the same value."""
    whole = int(seconds.to_integral_value(rounding=ROUND_FLOOR))
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = seconds - whole
    if fraction:
        text += format(fraction, "f")[1:].rstrip("0")  # "0.5" -> ".5"
    return text + "Z"
