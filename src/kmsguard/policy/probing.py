"""The solver-free answer to a solver Question, for the policies most keys have.

A question ranges over a class of principals and a set of actions. Here each class is replaced by a few
concrete *probes* (a representative account, role and organisation per equivalence class: a fresh
account id is as good as any other for ``StringEquals aws:PrincipalAccount``), and every statement is
judged three-valued per probe:

- principal / action / resource: YES or NO (MAYBE when a pattern could tell class members apart);
- conditions: TRUE or FALSE when fixed by the probe (identity keys, the question's fixed keys), judged by
  the direct evaluator; CALLER when the condition is on a key the caller controls and can be made true or
  false at will; MAYBE for anything subtler (several conditions on one key, "*"-only patterns, policy
  variables).

An Allow that applies (YES, conditions TRUE/CALLER) while every Deny that might apply can be switched off
through caller keys no other involved statement uses gives YES; no Allow that might apply gives NO;
everything else is MAYBE, and the caller asks the solver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from kmsguard.arn import DEFAULT_PARTITION, root_arn
from kmsguard.policy.actions import KMS_ACTIONS_LOWER, action_pattern, glob_to_regex
from kmsguard.policy.model import Condition, Decision, Policy, Principal, Request, Statement
from kmsguard.policy.normalize import principal_info
from kmsguard.policy.principals import (
    ACCOUNT_KEYS,
    ARN_KEYS,
    ORG_KEYS,
    ORG_PATH_KEYS,
    SERVICE_FLAG_KEYS,
    SOURCE_KEYS,
    account_of,
    names_directly,
    not_principal_excludes,
)
from kmsguard.policy.solver import Question


class V(Enum):
    NO = 0
    YES = 1
    MAYBE = 2


@dataclass(frozen=True)
class Probe:
    principal: str
    account: str | None
    org: str | None
    exact_principal: bool  # the class holds exactly this principal (not a representative)
    exact_account: bool
    iam_allows: bool
    service: bool = False
    # A role of a generic class: it stands for its sessions, whatever their names (see ``_excluded``).
    sessions: bool = False


_LIKE_OPS = {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"}
_FRESH_ORG = "o-kmsguardprobe0"


def probes(
    q: Question,
    mentioned_orgs: Iterable[str],
    named: Iterable[str] = (),
    with_root: bool = False,
    partition: str = DEFAULT_PARTITION,
) -> list[Probe]:
    """Representatives of the question's principal class, one per equivalence class of its organisation.

    A generic class (no fixed principal) is represented by a fresh role, which no Principal element names;
    the principals the policy does name (``named``) that belong to the class get probes of their own (a
    named role's probe stands for its sessions, as every role of a class does).
    The class's root user is judged apart from its roles where it differs: under NotPrincipal (it has only
    the account level) and without the caller's IAM policies (it needs none); ``with_root`` asks for it
    (it is added anyway when the question does not assume IAM allows)."""
    ident = q.identity
    if ident.org_mode == "fixed":
        orgs: list[str | None] = [ident.org_id]
    elif ident.org_mode == "absent":
        orgs = [None]
    else:
        orgs = [None, _FRESH_ORG, *sorted(set(mentioned_orgs) - ident.exclude_orgs)]
    if ident.principal is not None:
        service = ident.principal.startswith("service:")
        acct = ident.account or account_of(ident.principal)
        return [
            Probe(ident.principal, acct, None if service else o, True, True, ident.iam_allows, service)
            for o in (orgs if not service else [None])
        ]
    if ident.account is not None:
        acct, exact_acct = ident.account, True
    else:
        acct, exact_acct = _fresh_account(ident.exclude_accounts), False
    role = f"arn:{partition}:iam::{acct}:role/kmsguard-probe"
    out = [Probe(role, acct, o, False, exact_acct, ident.iam_allows) for o in orgs]
    root = root_arn(acct, partition)
    if (with_root or not ident.iam_allows) and root not in ident.exclude_principals:
        out += [Probe(root, acct, o, exact_acct, exact_acct, ident.iam_allows) for o in orgs]
    for arn in sorted(set(named) - ident.exclude_principals):
        owner = account_of(arn)
        in_class = owner == ident.account if ident.account else owner not in ident.exclude_accounts
        if owner and in_class:
            is_role = ":role/" in arn
            out += [Probe(arn, owner, o, True, True, ident.iam_allows, sessions=is_role) for o in orgs]
    return out


def _fresh_account(excluded: frozenset[str]) -> str:
    n = 999999999999
    while str(n) in excluded:
        n -= 1
    return str(n)


# --- one statement, one probe ---------------------------------------------------------------------------


def _element(e: Principal, probe: Probe, allow_side: bool) -> V:
    if e.kind == "AWS":
        if e.is_wildcard:
            return V.YES
        acct = account_of(e.value)
        if acct is not None and e.value.endswith(":root"):
            if probe.service or acct != probe.account:
                return V.NO
            if not allow_side or probe.iam_allows or e.value == probe.principal:
                return V.YES
            return V.NO
        if probe.exact_principal:
            return V.YES if names_directly(e.value, probe.principal) else V.NO
        # A representative principal stands for the class, which excludes every named principal.
        return V.NO
    label = f"service:{e.value}" if e.kind == "Service" else f"{e.kind.lower()}:{e.value}"
    return V.YES if probe.exact_principal and label == probe.principal else V.NO


def _any(values: Iterable[V]) -> V:
    out = V.NO
    for v in values:
        if v is V.YES:
            return V.YES
        if v is V.MAYBE:
            out = V.MAYBE
    return out


def _excluded(elements: tuple[Principal, ...], probe: Probe) -> bool:
    """NotPrincipal: the caller is excluded only when each of its identity levels is listed (its account,
    then its user or role, then its session; the root user has only the account level). A representative
    principal's own level is never listed (its class leaves out the named principals), nor is a role's that
    stands for its sessions (a session is excluded only by its own session ARN)."""
    if any(e.is_wildcard for e in elements):
        return True
    if probe.service:
        return any(e.kind == "Service" and f"service:{e.value.lower()}" == probe.principal for e in elements)
    roots = {account_of(e.value) for e in elements if e.kind == "AWS" and e.value.endswith(":root")}
    if probe.account not in roots:
        return False
    if probe.principal.endswith(":root"):
        return True
    if not probe.exact_principal or probe.sessions:
        return False
    return not_principal_excludes(elements, probe.principal, probe.account)


def principal_match(st: Statement, probe: Probe, kind: str = "key") -> V:
    if st.principals is not None:
        return _any(_element(e, probe, st.effect == "Allow") for e in st.principals)
    if st.not_principals is not None:
        return V.NO if _excluded(st.not_principals, probe) else V.YES
    # Identity policy: the statement applies to the identity it is attached to; a key-policy statement
    # without a principal applies to nobody.
    return V.YES if kind == "identity" else V.NO


def action_match(st: Statement, action: str) -> bool:
    if action in KMS_ACTIONS_LOWER:
        return action in covered(st.actions, st.not_actions)
    patterns = st.actions if st.actions is not None else st.not_actions or ()
    hit = any(action_pattern(p).match(action) for p in patterns)
    return not hit if st.not_actions is not None else hit


@lru_cache(maxsize=4096)
def covered(actions: tuple[str, ...] | None, not_actions: tuple[str, ...] | None) -> frozenset[str]:
    """The KMS actions (lower-case) an Action / NotAction list covers; real policies share a handful of
    lists (kms:*, the guide's), so this is computed once per distinct list."""
    patterns = actions if actions is not None else not_actions or ()
    hits = frozenset(a for a in KMS_ACTIONS_LOWER if any(action_pattern(p).match(a) for p in patterns))
    return KMS_ACTIONS_LOWER - hits if not_actions is not None else hits


@lru_cache(maxsize=4096)
def _resource_rx(pattern: str) -> re.Pattern[str]:
    return re.compile(glob_to_regex(pattern), re.DOTALL)


def resource_match_pattern(pattern: str, resource: str) -> bool:
    """Does one Resource / NotResource pattern (with * and ?) match a resource ARN?"""
    return _resource_rx(pattern).match(resource) is not None


def resource_match(st: Statement, resource: str | None) -> V:
    if st.resources is None and st.not_resources is None:
        return V.YES
    patterns = st.resources if st.resources is not None else st.not_resources or ()
    if resource is None:
        if st.resources is not None and "*" in patterns:
            return V.YES
        return V.MAYBE
    hit = any(_resource_rx(p).match(resource) for p in patterns)
    return V.YES if hit != (st.not_resources is not None) else V.NO


# --- conditions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CondVerdict:
    value: V | None  # None: CALLER (depends on caller-controlled keys only)
    caller_keys: frozenset[str] = frozenset()


def _identity_values(key: str, probe: Probe) -> tuple[tuple[str, ...] | None, bool] | None:
    """(values or None when absent, exact?) for identity keys; None when the key is not an identity key."""
    if key in ACCOUNT_KEYS:
        return (None if probe.service or probe.account is None else (probe.account,)), probe.exact_account
    if key in ARN_KEYS:
        if probe.service:
            return None, probe.exact_principal
        return (principal_info(probe.principal).arn or probe.principal,), probe.exact_principal  # a session: its role
    if key in ORG_KEYS:
        return ((probe.org,) if probe.org else None), True
    if key in ORG_PATH_KEYS:
        return ((f"{probe.org}/r-probe/",) if probe.org else None), probe.org is None
    if key in SOURCE_KEYS:
        return (None, True) if not probe.service else None
    if key in SERVICE_FLAG_KEYS:
        return ("true" if probe.service else "false",), True
    return None


def condition(c: Condition, probe: Probe, fixed: dict[str, tuple[str, ...] | None]) -> CondVerdict:
    ident = _identity_values(c.key, probe)
    if ident is not None or c.key in fixed:
        values, exact = ident if ident is not None else (fixed[c.key], True)
        if any("${" in v for v in c.values):
            return CondVerdict(V.MAYBE)
        if (
            not exact
            and values is not None
            and (c.operator in _LIKE_OPS and any("*" in v or "?" in v for v in c.values))
        ):
            return CondVerdict(V.MAYBE)  # a pattern may match some class members and not others
        if not exact and values is not None and c.key in ORG_PATH_KEYS and c.operator != "Null":
            return CondVerdict(V.MAYBE)  # the path below the organisation differs between class members
        if (
            not exact
            and values is not None
            and c.operator
            not in _LIKE_OPS
            | {
                "StringEquals",
                "StringNotEquals",
                "StringEqualsIgnoreCase",
                "StringNotEqualsIgnoreCase",
                "Null",
            }
        ):
            return CondVerdict(V.MAYBE)
        return CondVerdict(V.YES if holds(c, values) else V.NO)
    if _caller_degenerate(c):
        return CondVerdict(V.MAYBE)
    return CondVerdict(None, frozenset({c.key}))


def _caller_degenerate(c: Condition) -> bool:
    """Conditions on a caller key that cannot be freely made both true and false."""
    if not c.values or any("${" in v for v in c.values):
        return True
    if c.operator == "Null":
        return len({v.lower() for v in c.values}) != 1 or c.values[0].lower() not in ("true", "false")
    if c.operator in _LIKE_OPS and any(set(v) <= {"*"} or (v.endswith(":*") and c.operator.startswith("Arn"))
                                       for v in c.values):  # fmt: skip
        return True
    if c.operator == "Bool":
        return any(v.lower() not in ("true", "false") for v in c.values)
    # Numeric, date, IP and binary conditions are rare in key policies; let the solver reason about ranges.
    return c.operator.startswith(("Numeric", "Date", "IpAddress", "NotIpAddress", "Binary"))


@lru_cache(maxsize=8192)
def holds(c: Condition, values: tuple[str, ...] | None) -> bool:
    """Whether one condition holds for a concrete value of its key, as the direct evaluator judges it."""
    from kmsguard.policy.evaluate import evaluate

    probe_policy = Policy(
        "key",
        "2012-10-17",
        (Statement(0, None, "Allow", principals=(Principal("AWS", "*"),), actions=("*",), conditions=(c,)),),
    )
    ctx = {} if values is None else {c.key: values}
    req = Request("arn:aws:iam::000000000000:role/probe", "kms:describekey", "*", "000000000000", ctx)
    return evaluate(probe_policy, req, key_account="000000000000").decision is Decision.ALLOW


# --- the decision -----------------------------------------------------------------------------------------


def statement_conditions(st: Statement, probe: Probe, fixed: dict[str, tuple[str, ...] | None]) -> CondVerdict:
    keys: set[str] = set()
    out: V | None = V.YES
    for c in st.conditions:
        v = condition(c, probe, fixed)
        if v.value is V.NO:
            return CondVerdict(V.NO)
        if v.value is V.MAYBE:
            out = V.MAYBE
        elif v.value is None:
            if c.key in keys:
                out = V.MAYBE  # two conditions on one caller key may contradict each other
            keys.update(v.caller_keys)
            if out is V.YES:
                out = None
    return CondVerdict(out, frozenset(keys))


ActionMatch = Callable[[Statement, str], bool]


def decide(policy: Policy, q: Question, probe: Probe, action: str, match: ActionMatch = action_match) -> V:
    """Can the probe perform ``action`` under ``policy`` with some request it can produce? (``match``: a
    memoised ``action_match``, when the caller has one.)"""
    fixed = dict(q.fixed_context)
    if (
        policy.kind == "key"
        and not probe.iam_allows
        and not probe.service
        and probe.account != q.key_account
        and not probe.principal.endswith(":root")
    ):
        return V.NO  # another account's principal always needs its own IAM policies too
    allows: list[tuple[Statement, V, V, CondVerdict]] = []
    denies: list[tuple[V, V, CondVerdict]] = []
    for st in policy.statements:
        if not match(st, action):
            continue
        pm = principal_match(st, probe, policy.kind)
        if pm is V.NO:
            continue
        rm = resource_match(st, q.resource)
        if rm is V.NO:
            continue
        cv = statement_conditions(st, probe, fixed)
        if cv.value is V.NO:
            continue
        if st.effect == "Allow":
            allows.append((st, pm, rm, cv))
        else:
            if pm is V.YES and rm is V.YES and cv.value is V.YES:
                return V.NO  # an unconditional explicit deny
            denies.append((pm, rm, cv))
    if not allows:
        return V.NO
    deny_keys: list[frozenset[str]] = []
    for _, _, cv in denies:
        if cv.value is not None:  # a deny the caller cannot switch off (or we cannot tell)
            return V.MAYBE
        deny_keys.append(cv.caller_keys)
    seen: set[str] = set()
    for keys in deny_keys:
        if seen & keys:
            return V.MAYBE
        seen |= keys
    for _, pm, rm, cv in allows:
        if pm is V.YES and rm is V.YES and cv.value is not V.MAYBE and not (cv.caller_keys & seen):
            return V.YES
    return V.MAYBE


__all__ = ["Probe", "V", "decide", "probes"]
