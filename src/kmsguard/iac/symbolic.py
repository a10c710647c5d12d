"""Unknown values in a key policy, judged as "any value": the worst case the deployer could choose.

A template may leave a value to deploy time (a parameter without a default, an imported value, a Terraform
variable, an attribute known only after apply). ``declared.unknown()`` keeps such a value recognisable; this
module rewrites a policy that holds one into the policy the engine judges:

- a statement, or a whole policy, that is unknown (or text that is JSON only once an unknown is filled in) is
  the worst one: Allow everything to everyone;
- an unknown **Effect** may be Allow: the statement is judged as an Allow;
- in an **Allow** statement the unknown may be anything, so it is read as the widest value it could take:
  a principal that is unknown (or whose account is) becomes ``"*"``; an unknown action or resource becomes
  ``"*"`` (or, inside a pattern, a ``*`` in its place); a condition key whose value is unknown is dropped,
  since some value satisfies it; a ``NotPrincipal``/``NotAction``/``NotResource`` holding an unknown
  becomes ``Principal``/``Action``/``Resource`` ``"*"`` (it might exempt nothing that matters);
- a **Deny** statement holding an unknown anywhere is dropped: nothing proves it applies to any request.

So an unknown can only make a finding worse, never hide one; each finding on the object says which values were
unknown (``Worst.unknowns``). A policy without unknowns is returned unchanged, for the checks to judge (or report
as unreadable) as they would a live key's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from kmsguard.arn import parse as parse_arn
from kmsguard.iac.declared import UNKNOWN_PREFIX, UNKNOWN_RE, is_unknown, unknowns_in

PolicyKind = Literal["key", "identity"]

_PRINCIPAL_FIELDS = ("Principal", "NotPrincipal")
# The worst an unknown statement can be, in a key policy and in an identity policy (which has no Principal).
_ANY_STATEMENT: dict[str, dict[str, Any]] = {
    "key": {"Sid": "AnyStatement", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
    "identity": {"Sid": "AnyStatement", "Effect": "Allow", "Action": "*", "Resource": "*"},
}


def _any_policy(kind: PolicyKind) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [_ANY_STATEMENT[kind]]}, indent=2)


@dataclass(frozen=True)
class Worst:
    """A policy with its unknowns replaced by their worst case, and the reasons of those unknowns."""

    text: str
    unknowns: list[str]


def worst_case_policy(text: str | None, kind: PolicyKind = "key") -> Worst | None:
    """``text`` judged with every unknown at its worst (see the module docstring); None for None. ``kind``: a key
    policy, or an identity policy (whose worst statement has no Principal)."""
    if text is None:
        return None
    reasons = unknowns_in(text)
    if not reasons:
        return Worst(text, [])
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Wholly unknown (`KeyPolicy: !Ref P`, `policy = var.policy`), or text that is JSON only once the unknown
        # is filled in (`${jsonencode(var.x)}` in a heredoc): any policy.
        return Worst(_any_policy(kind), reasons)
    statements = doc.get("Statement")
    listed = statements if isinstance(statements, list) else [statements]
    kept = [_worst_statement(st, kind) for st in listed]
    doc["Statement"] = [st for st in kept if st is not None]
    return Worst(json.dumps(doc, indent=2), reasons)


def _worst_statement(st: Any, kind: PolicyKind) -> Any:
    if not isinstance(st, dict):
        # A statement left to deploy time (`- !ImportValue Stmt`, `concat([...], var.extra)`): any statement.
        return dict(_ANY_STATEMENT[kind]) if is_unknown(st) else st
    effect = st.get("Effect")
    if is_unknown(effect):
        st = {**st, "Effect": "Allow"}  # it may be Allow: judged as one, at its worst
    elif effect != "Allow":
        # Deny (or a malformed effect, which the checks report): an unknown anywhere means it may not apply.
        return None if UNKNOWN_PREFIX in json.dumps(st) else st
    out = dict(st)
    for field in _PRINCIPAL_FIELDS:
        if field in out and UNKNOWN_PREFIX in json.dumps(out[field]):
            if field == "NotPrincipal":
                del out[field]
                out["Principal"] = "*"
            else:
                out[field] = _worst_principal(out[field])
    for field, negated in (("Action", "NotAction"), ("Resource", "NotResource")):
        if negated in out and UNKNOWN_PREFIX in json.dumps(out[negated]):
            del out[negated]
            out[field] = "*"
        elif field in out:
            out[field] = _widen(out[field])
    if isinstance(out.get("Condition"), dict):
        out["Condition"] = _worst_conditions(out["Condition"])
        if not out["Condition"]:
            del out["Condition"]
    elif is_unknown(out.get("Condition")):
        del out["Condition"]  # some value of it is satisfied
    return out


def _worst_principal(value: Any) -> Any:
    if isinstance(value, str):
        return "*" if _open_principal(value) else _fill(value)
    if isinstance(value, list):
        return ["*" if _open_principal(v) else _fill(v) for v in value if isinstance(v, str)]
    if isinstance(value, dict):
        if any(is_unknown(kind) for kind in value):
            return "*"  # a principal type left to deploy time: any principal
        return {kind: _worst_principal(v) for kind, v in value.items()}
    return value


def _open_principal(value: str) -> bool:
    """An unknown principal that could be anyone: the whole value, or the account part of its ARN."""
    if not is_unknown(value):
        return False
    if UNKNOWN_RE.fullmatch(value):
        return True
    parsed = parse_arn(UNKNOWN_RE.sub("UNKNOWN", value))
    return parsed is None or not parsed.account.isdigit()


def _fill(value: str) -> str:
    # A principal of a known account with an unknown name: which name does not change who is outside the
    # account, so the name stays readable rather than becoming a wildcard AWS would not accept there.
    return UNKNOWN_RE.sub("unknown", value)


def _widen(value: Any) -> Any:
    if isinstance(value, str):
        return "*" if UNKNOWN_RE.fullmatch(value) else UNKNOWN_RE.sub("*", value)
    if isinstance(value, list):
        return [_widen(v) for v in value]
    return value


def _worst_conditions(block: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for operator, tests in block.items():
        if UNKNOWN_PREFIX in operator or not isinstance(tests, dict):
            continue  # an unknown operator: some value of it is satisfied
        kept = {k: v for k, v in tests.items() if UNKNOWN_PREFIX not in k and UNKNOWN_PREFIX not in json.dumps(v)}
        if kept:
            out[operator] = kept
    return out
