"""Key-policy Deny evaluation for the emulator: does an explicit Deny statement apply to this request?

This stands in for AWS, not for kmsguard: it decides what the *emulator* answers, so it deliberately does
not use kmsguard.policy (the code under test must not grade its own homework). It covers what the
emulator needs and no more:

- Effect Deny statements only. moto has no implicit deny (it never evaluates Allow statements, so any
  caller may do anything a Deny does not forbid); we keep that and only make Deny statements honest.
- Principal / NotPrincipal, Action / NotAction, Resource / NotResource with ``*`` and ``?`` wildcards.
- Condition operators: String*, Arn*, Bool, Null, Numeric*, Date*, IpAddress / NotIpAddress, each with
  the ``...IfExists`` suffix and the ``ForAnyValue:`` / ``ForAllValues:`` set prefixes. A key missing from
  the request makes a condition false, except for ``Null``, ``...IfExists``, ``ForAllValues:`` and the
  negated String/Arn operators, which are true (IAM's documented rules).
- An operator we do not know counts as *holding*, so an unfamiliar Deny errs on the side of denying
  (which is what moto did for every Deny).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

# A request context: condition key (lower-cased) -> its values (multi-valued keys have several).
Context = Mapping[str, Sequence[str]]


@lru_cache(maxsize=1024)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{rx}$", 0 if case_sensitive else re.IGNORECASE)


def _like(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    return bool(_wildcard(pattern, case_sensitive).match(value))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _as_str(value: Any) -> str:
    # JSON true/false in a policy mean the strings "true"/"false" to IAM.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _principal_matches(principal: Any, caller_principals: Iterable[str]) -> bool:
    """Does the statement's Principal cover the caller (one of caller_principals: ARNs or an account id)?"""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    callers = set(caller_principals)
    for entry in _as_list(principal.get("AWS")):
        entry = str(entry)
        if entry == "*" or entry in callers:
            return True
    return False


def _action_matches(patterns: Any, action: str) -> bool:
    return any(_like(str(p), action, case_sensitive=False) for p in _as_list(patterns))


def _resource_matches(patterns: Any, resource: str) -> bool:
    return any(_like(str(p), resource) for p in _as_list(patterns))


def _parse_date(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _ip_in(value: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(op: str, value: str, wanted: str) -> bool | None:
    """One value against one policy value for a positive operator; None when op is unknown."""
    if op == "StringEquals":
        return value == wanted
    if op == "StringEqualsIgnoreCase":
        return value.lower() == wanted.lower()
    if op == "StringLike":
        return _like(wanted, value)
    if op in ("ArnEquals", "ArnLike"):
        return _like(wanted, value)
    if op == "Bool":
        return value.lower() == wanted.lower()
    if op == "IpAddress":
        return _ip_in(value, wanted)
    if op.startswith("Numeric"):
        a, b = _num(value), _num(wanted)
        if a is None or b is None:
            return False
        return {
            "NumericEquals": a == b,
            "NumericLessThan": a < b,
            "NumericLessThanEquals": a <= b,
            "NumericGreaterThan": a > b,
            "NumericGreaterThanEquals": a >= b,
        }.get(op)
    if op.startswith("Date"):
        da, db = _parse_date(value), _parse_date(wanted)
        if da is None or db is None:
            return False
        return {
            "DateEquals": da == db,
            "DateLessThan": da < db,
            "DateLessThanEquals": da <= db,
            "DateGreaterThan": da > db,
            "DateGreaterThanEquals": da >= db,
        }.get(op)
    return None


# Negated operators: the statement holds when no policy value matches. Their positive counterpart is used.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
}
# Negated operators that IAM documents as true when the key is absent from the request.
_TRUE_WHEN_MISSING = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _condition_holds(operator: str, key: str, wanted_raw: Any, context: Context) -> bool:
    op = operator
    set_op = ""
    if ":" in op:
        set_op, op = op.split(":", 1)  # ForAnyValue:StringLike -> ("ForAnyValue", "StringLike")
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    wanted = [_as_str(w) for w in _as_list(wanted_raw)]
    values = list(context.get(key.lower(), ()))

    if op == "Null":
        # Null true <=> the key is absent.
        want_absent = bool(wanted) and wanted[0].lower() == "true"
        return (not values) == want_absent

    if not values:
        if if_exists or set_op == "ForAllValues":
            return True
        return op in _TRUE_WHEN_MISSING

    negated = op in _NEGATED
    base = _NEGATED.get(op, op)

    def one(value: str) -> bool | None:
        results = [_compare(base, value, w) for w in wanted]
        if any(r is None for r in results):
            return None
        hit = any(results)
        return not hit if negated else hit

    outcomes = [one(v) for v in values]
    if any(o is None for o in outcomes):
        return True  # unknown operator: let the Deny stand (see the module docstring)
    if set_op == "ForAllValues":
        return all(bool(o) for o in outcomes)
    # ForAnyValue and single-valued keys: any value satisfying the operator is enough.
    return any(bool(o) for o in outcomes)


def conditions_hold(condition: Any, context: Context) -> bool:
    """All operators and all keys of a Condition block must hold (AND); values within one key are OR."""
    if not condition:
        return True
    if not isinstance(condition, dict):
        return True
    for operator, block in condition.items():
        if not isinstance(block, dict):
            return True
        for key, wanted in block.items():
            if not _condition_holds(str(operator), str(key), wanted, context):
                return False
    return True


def statement_denies(
    statement: Mapping[str, Any], action: str, resource: str, caller_principals: Iterable[str], context: Context
) -> bool:
    """Does this one statement explicitly deny ``action`` on ``resource`` to the caller in this context?"""
    if str(statement.get("Effect", "")).lower() != "deny":
        return False
    callers = list(caller_principals)
    if "Principal" in statement:
        if not _principal_matches(statement["Principal"], callers):
            return False
    elif "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], callers):
        return False
    if "Action" in statement:
        if not _action_matches(statement["Action"], action):
            return False
    elif "NotAction" in statement and _action_matches(statement["NotAction"], action):
        return False
    if "Resource" in statement:
        if not _resource_matches(statement["Resource"], resource):
            return False
    elif "NotResource" in statement and _resource_matches(statement["NotResource"], resource):
        return False
    return conditions_hold(statement.get("Condition"), context)


def denying_statement(
    policy_text: str | None, action: str, resource: str, caller_principals: Iterable[str], context: Context
) -> Mapping[str, Any] | None:
    """The first statement of the key policy that explicitly denies the request, or None."""
    if not policy_text:
        return None
    try:
        policy = json.loads(policy_text)
    except ValueError:
        return None
    if not isinstance(policy, dict):
        return None
    callers = list(caller_principals)
    for statement in _as_list(policy.get("Statement")):
        if isinstance(statement, dict) and statement_denies(statement, action, resource, callers, context):
            return statement
    return None
