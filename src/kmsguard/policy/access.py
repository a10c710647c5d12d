"""Effective access: who can perform an action on a KMS key, through every path AWS allows.

For key K (in account KA), action A and principal P (in account PA), AWS's documented logic, as this
module applies it (docs/access.md cites the pages; tests/access/corpus holds a case for each rule):

- An explicit Deny that applies, in the key policy, P's identity policies, P's permissions boundary, an
  SCP on PA's path or an RCP on KA's path, wins.
- Otherwise P needs one of:
  - ``key_policy``: a key-policy Allow naming P itself, with P in KA (no identity policy needed);
  - ``key_policy+iam``: a key-policy Allow naming P or PA's root, and an Allow in P's identity policies
    (always, across accounts); the root user of KA needs no identity policy;
  - ``grant``: a grant on K whose grantee is P (or PA's root, with P's identity policies allowing) for A;
    its encryption-context constraints become conditions.
- and, besides, an Allow at every level of PA's SCPs (the management account and service-linked roles are
  exempt), at every level of KA's RCPs (the management account's keys and AWS managed keys are exempt),
  and in P's permissions boundary when it has one (except when a key policy or grant names an IAM user
  directly: an implicit deny in the boundary does not limit what a resource policy gives a user ARN).
- ``assume_role``: P can reach a role R that has access (R's trust policy lets P in, directly or through
  PA's root and P's identity policies allowing sts:AssumeRole, under the same SCP/RCP/boundary rules),
  transitively up to ``MAX_CHAIN`` roles, cycles ignored.

Conditions on who P is (aws:PrincipalArn, aws:PrincipalAccount, kms:CallerAccount, aws:PrincipalOrgID,
aws:PrincipalOrgPaths, aws:PrincipalType, aws:PrincipalTag/*, aws:username) and on the key
(aws:ResourceAccount, aws:ResourceOrgID, aws:ResourceTag/*) are decided from the estate; aws:SecureTransport
is true (KMS endpoints accept only HTTPS). Every other condition is on the request P sends: an answer
that depends on one is ``conditional``, with the conditions. Where conditions from several policies
meet, z3 decides (``solver.reach``) whether some request, every request or none is allowed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from kmsguard.model.snapshot import Grant, Key
from kmsguard.policy.analyze import condition_dict
from kmsguard.policy.estate import Estate, Labelled, Subject, parsed
from kmsguard.policy.evaluate import (
    DIRECT,
    NO_MATCH,
    VIA_ACCOUNT,
    compile_condition,
    compile_policy,
    principal_token,
)
from kmsguard.policy.model import Condition, Policy, Principal
from kmsguard.policy.normalize import PrincipalInfo, principal_info
from kmsguard.policy.principals import account_of, mentioned_accounts, mentioned_orgs
from kmsguard.policy.solver import Formula, reach

DEFAULT_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
)
MAX_CHAIN = 5
ASSUME_ROLE = "sts:assumerole"

NOT_MODELLED: tuple[str, ...] = (
    "session policies passed when a role is assumed can only narrow access and are not modelled",
    "VPC endpoint policies can only narrow access and are not modelled",
    "session tags set at request time can change aws:PrincipalTag; the principals' own tags are used",
    "aws:SecureTransport is true: AWS KMS endpoints accept only HTTPS",
    "principals of accounts that were not scanned are assumed to be allowed by their own IAM policies",
)

Decision = Literal["allowed", "conditional"]

# Keys decided from what the estate knows about the principal and the key (lower-case), or by prefix.
_IDENTITY_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "kms:calleraccount",
        "aws:principaltype",
        "aws:username",
        "aws:principalisawsservice",
        "aws:principalservicename",
        "aws:securetransport",
        "aws:resourceaccount",
    }
)
_ORG_KEYS = frozenset({"aws:principalorgid", "aws:principalorgpaths", "aws:resourceorgid", "aws:resourceorgpaths"})
_TAG_PREFIXES = ("aws:principaltag/", "aws:resourcetag/")

# Operations that take an encryption context: the ones a grant's constraints bind.
_CONTEXT_OPERATIONS = frozenset(
    {
        "decrypt",
        "encrypt",
        "generatedatakey",
        "generatedatakeywithoutplaintext",
        "generatedatakeypair",
        "generatedatakeypairwithoutplaintext",
        "reencryptfrom",
        "reencryptto",
    }
)

TRUE: Formula = ("true",)
FALSE: Formula = ("false",)


# --- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessPath:
    via: str  # key_policy | key_policy+iam | grant | assume_role
    statements: tuple[str, ...]
    chain: tuple[str, ...] = ()
    grants: tuple[str, ...] = ()
    require: tuple[Condition, ...] = ()  # request conditions the allowing statements need
    unless: tuple[Condition, ...] = ()  # request conditions under which a Deny applies

    def to_dict(self) -> dict[str, Any]:
        conditions: dict[str, Any] = {}
        if self.require:
            conditions["all_of"] = [condition_dict(c) for c in self.require]
        if self.unless:
            conditions["none_of"] = [condition_dict(c) for c in self.unless]
        return {
            "via": self.via,
            "chain": list(self.chain),
            "grants": list(self.grants),
            "statements": list(self.statements),
            "conditions": conditions,
        }


@dataclass(frozen=True, order=True)
class PrincipalAccess:
    principal: str  # an ARN, or an aggregate: account:ID, org:o-..., service:NAME, "*"
    decision: Decision
    paths: tuple[AccessPath, ...]
    notes: tuple[str, ...] = ()  # why the answer may be incomplete (unreadable documents, solver limits)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "principal": self.principal,
            "decision": self.decision,
            "paths": [p.to_dict() for p in self.paths],
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class KeyAccess:
    """Who can do what with one key. Principals that share every input of the decision share one answer:
    ``entries`` holds (principals, answer) per canonical action, expanded into ``results`` on first use."""

    key: str
    entries: dict[str, list[tuple[tuple[str, ...], PrincipalAccess]]]
    assumptions: list[str] = field(default_factory=list)

    @cached_property
    def results(self) -> dict[str, list[PrincipalAccess]]:
        """Canonical action -> every principal's answer, sorted by principal."""
        return {
            action: sorted(
                (answer if answer.principal == who else replace(answer, principal=who))
                for members, answer in entries
                for who in members
            )
            for action, entries in self.entries.items()
        }

    def count(self, action: str) -> int:
        return sum(len(members) for members, _ in self.entries.get(canonical(action), []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "assumptions": self.assumptions,
            "results": [{"action": a, "principals": [p.to_dict() for p in ps]} for a, ps in self.results.items()],
        }

    def principals(self, action: str) -> dict[str, PrincipalAccess]:
        return {p.principal: p for p in self.results.get(canonical(action), [])}


def canonical(action: str) -> str:
    from kmsguard.policy.actions import canonical_action

    return canonical_action(action)


# --- statements that apply, with the conditions left to the request ------------------------------------


@dataclass(frozen=True)
class _Hit:
    label: str
    deny: bool
    how: int  # DIRECT or VIA_ACCOUNT (key/resource policies); DIRECT for identity-type policies
    residual: tuple[Condition, ...]
    session: bool = False  # names a session of the role, not the role: the boundary does not limit it


def _label(prefix: str, policy: Policy, index: int) -> str:
    sid = policy.statements[index].sid
    return f"{prefix}: Sid {sid}" if sid else f"{prefix}: Statement[{index}]"


class _Known:
    """What the estate knows of one request's context: values by key, None for a key known to be absent."""

    def __init__(self, values: dict[str, tuple[str, ...] | None], decided_prefixes: tuple[str, ...]) -> None:
        self.values = values
        self.ctx = {k: v for k, v in values.items() if v is not None}
        self.prefixes = decided_prefixes

    def decides(self, c: Condition) -> bool:
        if any("${" in v for v in c.values):
            return False  # a policy variable may name a request key: leave it to the request
        return c.key in self.values or c.key.startswith(self.prefixes)

    def split(self, conditions: Iterable[Condition]) -> tuple[bool, tuple[Condition, ...]]:
        """(can the statement apply, the conditions left to the request)."""
        residual = []
        for c in conditions:
            if self.decides(c):
                if not compile_condition(c)(self.ctx):
                    return False, ()
            else:
                residual.append(c)
        return True, tuple(residual)


def _hits(prefix: str, policy: Policy, info: PrincipalInfo, action: str, resource: str, known: _Known) -> list[_Hit]:
    out: list[_Hit] = []
    compiled = compile_policy(policy)
    for st, cst in zip(policy.statements, compiled.statements, strict=True):
        how = cst.principal(info)
        sessions: tuple[str, ...] = ()
        if how == NO_MATCH and info.kind == "role" and st.principals:
            # A statement naming sessions of this role applies to the sessions with those names only.
            sessions = _session_names(st.principals, info)
            how = DIRECT if sessions else NO_MATCH
        if how == NO_MATCH or not cst.action(action) or not cst.resource(resource, known.ctx):
            continue
        ok, residual = known.split(st.conditions)
        if ok:
            if sessions:
                residual = (Condition("StringEquals", "sts:rolesessionname", sessions), *residual)
            out.append(_Hit(_label(prefix, policy, st.index), st.effect == "Deny", how, residual, bool(sessions)))
    return out


def _session_names(principals: Iterable[Principal], role: PrincipalInfo) -> tuple[str, ...]:
    prefix = f"arn:{role.partition}:sts::{role.account}:assumed-role/{role.name}/"
    return tuple(sorted(p.value[len(prefix) :] for p in principals if p.kind == "AWS" and p.value.startswith(prefix)))


# --- formulas --------------------------------------------------------------------------------------------


def _conj(conds: Sequence[Condition]) -> Formula:
    return _and([("cond", c) for c in conds])


def _and(parts: Sequence[Formula]) -> Formula:
    if any(p == FALSE for p in parts):
        return FALSE
    rest = tuple(p for p in parts if p != TRUE)
    return TRUE if not rest else rest[0] if len(rest) == 1 else ("and", rest)


def _or(parts: Sequence[Formula]) -> Formula:
    if any(p == TRUE for p in parts):
        return TRUE
    rest = tuple(p for p in parts if p != FALSE)
    return FALSE if not rest else rest[0] if len(rest) == 1 else ("or", rest)


def _not(f: Formula) -> Formula:
    return FALSE if f == TRUE else TRUE if f == FALSE else ("not", f)


def _allows(hits: Iterable[_Hit]) -> Formula:
    return _or([_conj(h.residual) for h in hits if not h.deny])


def _levels(
    levels: tuple[tuple[Labelled, ...], ...] | None, info: PrincipalInfo, action: str, resource: str, known: _Known
) -> tuple[Formula, list[_Hit]]:
    """Every level must allow; every Deny counts. (formula of the allows, the deny hits)."""
    if levels is None:
        return TRUE, []
    parts: list[Formula] = []
    denies: list[_Hit] = []
    for level in levels:
        hits = [h for label, pol in level for h in _hits(label, pol, info, action, resource, known)]
        denies += [h for h in hits if h.deny]
        parts.append(_allows(hits))
    return _and(parts), denies


# --- the evaluator ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    sig: tuple[object, ...]
    members: tuple[str, ...]
    roles: frozenset[str]  # members that are roles others may assume
    # Statements in the members' policies whose Resource names particular keys: (index, compiled statement).
    specific: tuple[tuple[int, Any], ...]


_PRINCIPAL_KEYS = frozenset({"aws:principalarn", "aws:username", "aws:userid", "aws:sourceidentity"})


def _reads_principal(policy: Policy) -> bool:
    """Does the policy decide on which principal asks (beyond account, organisation and tags)?"""
    for st in policy.statements:
        if any("${" in r for r in (*(st.resources or ()), *(st.not_resources or ()))):
            return True
        for c in st.conditions:
            if c.key in _PRINCIPAL_KEYS or any("${" in v for v in c.values):
                return True
    return False


def _resource_specific(policy: Policy) -> bool:
    return any(not cst.res_all for cst in compile_policy(policy).statements)


def _layers(subject: Subject, estate: Estate) -> list[Policy]:
    pols = [p for _, p in subject.policies]
    if subject.boundary is not None:
        pols.append(subject.boundary[1])
    for level in estate.scp_levels(subject.account) or ():
        pols += [p for _, p in level]
    return pols


def _signature(subject: Subject, estate: Estate) -> tuple[object, ...]:
    """Everything a principal's answer depends on when the key does not name it."""
    reads_arn = subject.kind == "root" or any(_reads_principal(p) for p in _layers(subject, estate))
    return (
        subject.arn if reads_arn else None,
        subject.kind,
        subject.account,
        tuple((label, id(p)) for label, p in subject.policies),
        (subject.boundary[0], id(subject.boundary[1])) if subject.boundary else None,
        subject.tags,
        subject.service_linked,
        subject.unreadable,
    )


def _specific_statements(subject: Subject, estate: Estate) -> tuple[tuple[int, Any], ...]:
    out = []
    for n, pol in enumerate(_layers(subject, estate)):
        for cst in compile_policy(pol).statements:
            if not cst.res_all:
                out.append((n * 10000 + cst.index, cst))
    return tuple(out)


@dataclass(frozen=True)
class _Target:
    """The resource side of a request: a key (with its policy and grants) or a role (its trust policy)."""

    arn: str
    account: str
    policy: Policy | None
    grants: tuple[Grant, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    rcp_exempt: bool = False

    @cached_property
    def cls(self) -> tuple[object, ...]:
        """What a principal's answer depends on besides the key's ARN (which ``_Group.specific`` covers): keys
        of one class give the same answer to every principal the key does not name."""
        specific = self.arn if self.policy is not None and _resource_specific(self.policy) else None
        grants = tuple((g.grantee_principal, tuple(g.operations), repr(g.constraints)) for g in self.grants)
        return (id(self.policy), self.account, self.tags, self.rcp_exempt, grants, specific, self.arn.split(":")[2])


@dataclass(frozen=True)
class _Outcome:
    formula: Formula
    paths: tuple[tuple[AccessPath, Formula], ...]


class AccessEvaluator:
    """Answers effective-access questions over one Estate; parsing and repeated questions are cached."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self._reach_cache: dict[tuple[Formula, str], tuple[str, str]] = {}
        self._group_cache: dict[tuple[object, ...], PrincipalAccess | None] = {}
        self._assume_capable: dict[tuple[int, ...], bool] = {}
        self._chain_cache: dict[tuple[object, ...], list[tuple[tuple[str, ...], PrincipalAccess]]] = {}
        self._assume_cache: dict[str, list[tuple[str, _Outcome]]] = {}

    # -- one principal, one target ---------------------------------------------------------------

    def _known(
        self, subject: Subject | None, info: PrincipalInfo, target: _Target, org_id: str | Literal["unknown"] | None
    ) -> _Known:
        values: dict[str, tuple[str, ...] | None] = {
            "aws:securetransport": ("true",),
            "aws:resourceaccount": (target.account,),
        }
        prefixes: list[str] = ["aws:resourcetag/"]
        values.update({f"aws:resourcetag/{k.lower()}": (v,) for k, v in target.tags})
        if info.kind == "service":
            values.update({"aws:principalisawsservice": ("true",), "aws:principalservicename": (info.name or "",)})
        else:
            values["aws:principalisawsservice"] = ("false",)
        if subject is not None and subject.account:
            values["aws:principalaccount"] = values["kms:calleraccount"] = (subject.account,)
            if subject.kind != "aggregate":
                values["aws:principalarn"] = (subject.arn,)
                ptype = {"user": "User", "role": "AssumedRole", "root": "Account"}.get(subject.kind)
                if ptype:
                    values["aws:principaltype"] = (ptype,)
                values["aws:username"] = (subject.arn.rsplit("/", 1)[-1],) if subject.kind == "user" else None
                prefixes.append("aws:principaltag/")
                values.update({f"aws:principaltag/{k.lower()}": (v,) for k, v in subject.tags})
        if self.estate.org_known or org_id is None:
            resource_org = self.estate.org_of(target.account) if self.estate.org_known else None
            values["aws:resourceorgid"] = (resource_org,) if resource_org else None
            rpath = self.estate.org_path(target.account) if self.estate.org_known else None
            values["aws:resourceorgpaths"] = (rpath,) if rpath else None
        if org_id != "unknown":
            values["aws:principalorgid"] = (org_id,) if org_id else None
            if subject is not None and org_id:
                ppath = self.estate.org_path(subject.account)
                values["aws:principalorgpaths"] = (ppath,) if ppath else None
            elif org_id is None:
                values["aws:principalorgpaths"] = None
        return _Known(values, tuple(prefixes))

    def _principal_org(self, subject: Subject) -> str | Literal["unknown"] | None:
        # org:ID stands for that organisation's other accounts; "*" and services for principals in none.
        if isinstance(subject, Aggregate) and (subject.org_id or subject.label == "*" or not subject.account):
            return subject.org_id
        if self.estate.org_known:
            # Outside our Organization is taken as in none: the two differ only for a Null condition.
            return self.estate.org_of(subject.account)
        if subject.account in self.estate.scanned_accounts or subject.kind == "root":
            if self.estate.organization is None:
                return None
            return self.estate.org_of(subject.account) if self.estate.org_known else "unknown"
        return "unknown"

    def outcome(self, subject: Subject, action: str, target: _Target, *, iam_known: bool = True) -> _Outcome:
        """The formula under which ``subject`` may perform ``action`` on ``target``, and the paths."""
        action = action.lower()
        info = principal_info(subject.arn)
        known = self._known(subject, info, target, self._principal_org(subject))
        same = subject.account == target.account
        is_root = subject.kind == "root"
        on_key = target.arn.split(":")[2] == "kms"
        # An implicit deny in a permissions boundary does not limit what a key policy or grant gives a user ARN
        # or a role session ARN directly; a trust policy naming a user still needs the boundary to allow.
        user_exempt = subject.kind == "user" and on_key

        rp_hits = (
            _hits("key policy" if on_key else "trust policy", target.policy, info, action, target.arn, known)
            if target.policy
            else []
        )
        id_hits: list[_Hit] = []
        if iam_known and not is_root:
            for label, pol in subject.policies:
                id_hits += _hits(f"iam: {label}", pol, info, action, target.arn, known)
        b_hits: list[_Hit] = []
        boundary = TRUE
        if subject.boundary is not None and not is_root:
            label, pol = subject.boundary
            b_hits = _hits(f"boundary: {label}", pol, info, action, target.arn, known)
            boundary = _allows(b_hits)
        scp_levels = None if subject.service_linked else self.estate.scp_levels(subject.account)
        scp, scp_denies = _levels(scp_levels, info, action, target.arn, known)
        # RCPs do not restrict service-linked roles, nor kms:RetireGrant (KMS's RCP page).
        rcp_exempt = target.rcp_exempt or subject.service_linked or action == "kms:retiregrant"
        rcp_levels = None if rcp_exempt else self.estate.rcp_levels(target.account)
        rcp, rcp_denies = _levels(rcp_levels, info, action, target.arn, known)

        deny_hits = [h for h in (*rp_hits, *id_hits, *b_hits) if h.deny] + scp_denies + rcp_denies
        denied = _or([_conj(h.residual) for h in deny_hits])
        unless = tuple(c for h in deny_hits for c in h.residual)
        guard = _and([scp, rcp, _not(denied)])
        iam_allow = TRUE if (is_root or not iam_known) else _allows(id_hits)
        iam_labels = tuple(h.label for h in id_hits if not h.deny)
        iam_require = () if iam_allow == TRUE or not id_hits else _weakest(id_hits)

        paths: list[tuple[AccessPath, Formula]] = []
        for h in rp_hits:
            if h.deny:
                continue
            if (same and (h.how == DIRECT or is_root)) or info.kind == "service":
                # Named directly in the key's account (or the root user): no identity policy needed.
                need = _and([_conj(h.residual), TRUE if (user_exempt or is_root or h.session) else boundary, guard])
                paths.append((AccessPath("key_policy", (h.label,), require=h.residual, unless=unless), need))
            elif h.how in (DIRECT, VIA_ACCOUNT):
                need = _and([_conj(h.residual), iam_allow, boundary, guard])
                stmts = (h.label, *(iam_labels or (("iam: not scanned (assumed to allow)",) if not iam_known else ())))
                paths.append(
                    (AccessPath("key_policy+iam", stmts, require=h.residual + iam_require, unless=unless), need)
                )
        if on_key:
            direct_boundary = TRUE if (user_exempt or is_root) else boundary
            paths += self._grant_paths(
                subject, info, action, target, iam_allow, iam_labels, boundary, direct_boundary, guard, unless
            )
        formula = _or([f for _, f in paths])
        return _Outcome(formula, tuple((p, f) for p, f in paths if f != FALSE))

    def _grant_paths(
        self,
        subject: Subject,
        info: PrincipalInfo,
        action: str,
        target: _Target,
        iam_allow: Formula,
        iam_labels: tuple[str, ...],
        boundary: Formula,
        direct_boundary: Formula,
        guard: Formula,
        unless: tuple[Condition, ...],
    ) -> list[tuple[AccessPath, Formula]]:
        out: list[tuple[AccessPath, Formula]] = []
        op = action.split(":", 1)[1]
        for g in target.grants:
            if op not in {o.lower() for o in g.operations}:
                continue
            grantee = principal_info(g.grantee_principal)
            # Constraints bind only operations that take an encryption context (API_GrantConstraints).
            constraints = _grant_conditions(g) if op in _CONTEXT_OPERATIONS else ()
            label = f"grant {g.grant_id[:12]}" + (f" ({g.name})" if g.name else "")
            if grantee.kind == "root" and grantee.account == subject.account and subject.kind != "root":
                # A grant to an account: its principals use it when their identity policies allow.
                need = _and([_conj(constraints), iam_allow, boundary, guard])
                path = AccessPath(
                    "grant", (label, *iam_labels), grants=(g.grant_id,), require=constraints, unless=unless
                )
            elif (
                grantee.direct_tokens & info.direct_tokens and grantee.kind != "root"
            ) or g.grantee_principal == subject.arn:
                need = _and([_conj(constraints), direct_boundary, guard])
                path = AccessPath("grant", (label,), grants=(g.grant_id,), require=constraints, unless=unless)
            else:
                continue
            out.append((path, need))
        return out

    def decide(self, formula: Formula, principal: str, account: str) -> tuple[Decision | None, str]:
        if formula == TRUE:
            return "allowed", ""
        if formula == FALSE:
            return None, ""
        # The formula holds only request conditions (who the principal is was decided before), so one
        # answer serves every principal with the same formula.
        key = (formula, account)
        hit = self._reach_cache.get(key)
        if hit is None:
            hit = self._reach_cache[key] = reach(formula, principal, account)
        verdict, note = hit
        return ({"always": "allowed", "sometimes": "conditional"}.get(verdict), note)  # type: ignore[return-value]

    # -- keys -------------------------------------------------------------------------------------

    def target(self, key: Key) -> _Target:
        policy = parsed(key.policy, "key") if key.policy else None
        return _Target(
            key.arn,
            key.account,
            policy,
            tuple(key.grants),
            tuple(sorted(key.tags.items())),
            rcp_exempt=key.is_aws_managed or self._management(key.account),
        )

    def _management(self, account: str) -> bool:
        org = self.estate.organization
        return org is not None and org.management_account == account

    def who_can(self, key: Key, actions: Sequence[str] = DEFAULT_ACTIONS) -> KeyAccess:
        target = self.target(key)
        assumptions = list(NOT_MODELLED) + self.estate.assumptions
        if key.policy is None:
            assumptions.append(f"{key.arn}: the key policy could not be read; only grants are considered")
        named = self._named(target)
        aggregates = self._aggregates(key, target)
        entries: dict[str, list[tuple[tuple[str, ...], PrincipalAccess]]] = {}
        for action in actions:
            found: list[tuple[tuple[str, ...], PrincipalAccess]] = []
            roles: list[tuple[object, ...]] = []  # what the role chains depend on
            for group in self.groups:
                members = group.members if named is not None else ()
                if named:
                    members = tuple(m for m in members if m not in named)
                individuals = [m for m in group.members if m not in members]
                if members:
                    # Judged as one of the members it stands for (not one the key names).
                    answer = self._group_answer(group, self.estate.subjects[members[0]], action, target)
                    if answer is not None:
                        found.append((members, answer))
                        if group.roles:
                            roles.append((group.sig, answer.decision, answer.paths))
                for arn in individuals:
                    pa = self._answer(self.estate.subjects[arn], action, target)
                    if pa is not None:
                        found.append(((arn,), pa))
                        if arn in group.roles:
                            roles.append((arn, pa.decision, pa.paths))
            for subject in aggregates:
                pa = self._answer(subject, action, target, iam_known=False)
                if pa is not None:
                    found.append(((pa.principal,), pa))
            found += self._chains_cached(action, target, found, tuple(roles))
            entries[canonical(action)] = found
        return KeyAccess(key.arn, entries, assumptions)

    # -- grouping: principals the key does not single out, with the same inputs, get one answer -------

    @cached_property
    def groups(self) -> list[_Group]:
        by_sig: dict[tuple[object, ...], list[Subject]] = {}
        for subject in self.estate.subjects.values():
            by_sig.setdefault(_signature(subject, self.estate), []).append(subject)
        return [_Group(sig, tuple(s.arn for s in members),
                       frozenset(s.arn for s in members if s.kind == "role" and s.trust is not None),
                       _specific_statements(members[0], self.estate))
                for sig, members in by_sig.items()]  # fmt: skip

    def _named(self, target: _Target) -> frozenset[str] | None:
        """The principals the key policy or a grant names (judged one by one); None when its conditions read
        who the principal is (every principal is then judged on its own)."""
        pol = target.policy
        if pol is not None and _reads_principal(pol):
            return None
        tokens: set[str] = set()
        values: set[str] = set()
        for st in pol.statements if pol else ():
            for p in (*(st.principals or ()), *(st.not_principals or ())):
                values.add(p.value)
                tok = principal_token(p)
                if tok is not None:
                    tokens.add(tok)
        for g in target.grants:
            values.add(g.grantee_principal)
            tokens |= principal_info(g.grantee_principal).direct_tokens
        out = set()
        for arn, subject in self.estate.subjects.items():
            info = principal_info(arn)
            if subject.kind == "root" or not info.direct_tokens.isdisjoint(tokens):
                out.add(arn)
            elif subject.kind == "role":
                prefix = f"arn:{info.partition}:sts::{info.account}:assumed-role/{info.name}/"
                if any(v.startswith(prefix) for v in values):
                    out.add(arn)
        return frozenset(out)

    def _group_answer(self, group: _Group, rep: Subject, action: str, target: _Target) -> PrincipalAccess | None:
        specific = tuple(i for i, cst in group.specific if cst.resource(target.arn, {})) if group.specific else ()
        cache_key = (group.sig, action, target.cls, specific)
        if cache_key in self._group_cache:
            return self._group_cache[cache_key]
        answer = self._answer(rep, action, target)
        self._group_cache[cache_key] = answer
        return answer

    def _chains_cached(self, action: str, target: _Target, found: list[tuple[tuple[str, ...], PrincipalAccess]],
                       roles: tuple[object, ...]) -> list[tuple[tuple[str, ...], PrincipalAccess]]:  # fmt: skip
        """Role chains depend only on which roles have access, and how: computed once per such set."""
        cache_key = (action, target.account, roles)
        hit = self._chain_cache.get(cache_key)
        if hit is None:
            everyone = {who: pa for members, pa in found for who in members}
            before = set(everyone)
            self._chains(action, target, everyone)
            hit = self._chain_cache[cache_key] = [((w,), everyone[w]) for w in sorted(set(everyone) - before)]
        return hit

    def _answer(
        self, subject: Subject, action: str, target: _Target, *, iam_known: bool = True
    ) -> PrincipalAccess | None:
        out = self.outcome(subject, action, target, iam_known=iam_known)
        # An aggregate is judged as the one principal that represents it (its arn).
        decision, note = self.decide(out.formula, subject.arn, target.account)
        if decision is None:
            return None
        paths = tuple(p for p, f in out.paths if f != FALSE)
        notes = tuple(subject.unreadable) + ((note,) if note else ())
        return PrincipalAccess(subject.label if subject.kind == "aggregate" else subject.arn, decision, paths, notes)

    def _aggregates(self, key: Key, target: _Target) -> list[Subject]:
        """Principals outside the scanned IAM that the key policy or grants name: other accounts, their
        named principals, organisations, services, and anyone else ("*")."""
        out: list[Subject] = []
        pol = target.policy
        accounts: set[str] = set(mentioned_accounts(pol)) if pol else set()
        named: set[str] = set()
        services: set[str] = set()
        for st in pol.statements if pol else ():
            for p in st.principals or ():
                if p.kind == "AWS" and not p.is_wildcard and not p.value.endswith(":root"):
                    named.add(p.value)
                elif p.kind == "Service" and not p.is_wildcard:
                    services.add(p.value.lower())
        for g in key.grants:
            acct = account_of(g.grantee_principal)
            if acct:
                (accounts if g.grantee_principal.endswith(":root") else named).add(
                    acct if g.grantee_principal.endswith(":root") else g.grantee_principal
                )
            elif g.grantee_principal.endswith(".amazonaws.com"):
                services.add(g.grantee_principal.lower())
        for acct in sorted(accounts - self.estate.scanned_accounts):
            out.append(Aggregate(f"arn:aws:iam::{acct}:root", acct, f"account:{acct}"))
        for arn in sorted(named):
            acct = account_of(arn)
            if acct and acct not in self.estate.scanned_accounts and arn not in self.estate.subjects:
                kind = "role" if ":role/" in arn else "user" if ":user/" in arn else "aggregate"
                out.append(Subject(arn, kind, acct))
        for org in sorted(mentioned_orgs(pol) if pol else ()):
            out.append(Aggregate("arn:aws:iam::000000000000:root", "000000000000", f"org:{org}", org_id=org))
        for svc in sorted(services):
            out.append(Aggregate(f"service:{svc}", "", f"service:{svc}"))
        out.append(Aggregate("arn:aws:iam::000000000000:root", "000000000000", "*"))
        return out

    # -- role chains ------------------------------------------------------------------------------

    def assumers(self, role: Subject) -> list[tuple[str, _Outcome]]:
        """Who may assume ``role`` (scanned principals, and aggregates its trust policy names)."""
        hit = self._assume_cache.get(role.arn)
        if hit is not None:
            return hit
        out: list[tuple[str, _Outcome]] = []
        if role.trust is not None:
            target = _Target(role.arn, role.account, role.trust, rcp_exempt=self._management(role.account))
            for subject in self._assume_candidates(role):
                o = self.outcome(subject, ASSUME_ROLE, target)
                if o.formula != FALSE:
                    out.append((subject.arn, o))
            for agg in self._trust_aggregates(role):
                o = self.outcome(agg, ASSUME_ROLE, target, iam_known=False)
                if o.formula != FALSE:
                    out.append((agg.label, o))
        self._assume_cache[role.arn] = out
        return out

    def _assume_candidates(self, role: Subject) -> list[Subject]:
        """The principals the trust policy can let in: those it names, and, where it names an account's
        root, that account's principals with some identity Allow for sts:AssumeRole (others cannot pass);
        everyone when it names "*" or uses NotPrincipal. The root user cannot call AssumeRole (STS API
        reference: AssumeRole)."""
        trust = role.trust
        if trust is None:
            return []
        everyone = False
        tokens: set[str] = set()
        for st in trust.statements:
            if st.not_principals is not None or any(p.is_wildcard for p in st.principals or ()):
                everyone = True
            for p in st.principals or ():
                tok = principal_token(p)
                if tok is not None:
                    tokens.add(tok)
        out = []
        for subject in self.estate.subjects.values():
            if subject.arn == role.arn or subject.kind == "root":
                continue
            info = principal_info(subject.arn)
            if (
                everyone
                or not info.direct_tokens.isdisjoint(tokens)
                or (f"acct:{subject.account}" in tokens and self._may_assume(subject))
            ):
                out.append(subject)
        return out

    def _may_assume(self, subject: Subject) -> bool:
        """Does any identity policy of the subject have an Allow whose actions cover sts:AssumeRole?"""
        key = tuple(id(p) for _, p in subject.policies)
        hit = self._assume_capable.get(key)
        if hit is None:
            hit = self._assume_capable[key] = any(
                not cst.deny and cst.action(ASSUME_ROLE)
                for _, pol in subject.policies
                for cst in compile_policy(pol).statements
            )
        return hit

    def _trust_aggregates(self, role: Subject) -> list[Subject]:
        out: list[Subject] = []
        for st in role.trust.statements if role.trust else ():
            if st.effect != "Allow":
                continue
            for p in st.principals or ():
                if p.kind == "Service":
                    out.append(Aggregate(f"service:{p.value.lower()}", "", f"service:{p.value.lower()}"))
                elif p.kind == "Federated":
                    out.append(Aggregate(f"federated:{p.value}", "", f"federated:{p.value}"))
                elif p.kind == "AWS" and p.is_wildcard:
                    out.append(Aggregate("arn:aws:iam::000000000000:root", "000000000000", "*"))
                elif p.kind == "AWS":
                    acct = account_of(p.value)
                    if acct and acct not in self.estate.scanned_accounts:
                        out.append(Aggregate(f"arn:aws:iam::{acct}:root", acct, f"account:{acct}"))
        return out

    def _chains(self, action: str, target: _Target, found: dict[str, PrincipalAccess]) -> None:
        """Add principals that reach a role in ``found`` by assuming roles (breadth first: shortest chain)."""
        roles = {a: s for a, s in self.estate.subjects.items() if s.kind == "role" and s.trust is not None}
        frontier: deque[tuple[str, tuple[str, ...], Decision]] = deque(
            (arn, (arn,), found[arn].decision) for arn in sorted(found) if arn in roles
        )
        reached: dict[str, tuple[tuple[str, ...], Decision]] = {}
        while frontier:
            role_arn, chain, decision = frontier.popleft()
            if len(chain) > MAX_CHAIN:
                continue
            for who, o in self.assumers(roles[role_arn]):
                if who in found or who in reached or who in chain:
                    continue
                edge, _ = self.decide(o.formula, _probe_of(self.estate, who), roles[role_arn].account)
                if edge is None:
                    continue
                d: Decision = "allowed" if edge == decision == "allowed" else "conditional"
                reached[who] = (chain, d)
                if who in roles:
                    frontier.append((who, (who, *chain), d))
        for who, (chain, d) in reached.items():
            holder = found[chain[-1]]
            stmts = tuple(f"trust: {c.split(':', 5)[5]}" for c in chain) + holder.paths[0].statements
            first = holder.paths[0]
            path = AccessPath(
                "assume_role", stmts, chain=chain, grants=first.grants, require=first.require, unless=first.unless
            )
            found[who] = PrincipalAccess(who, d, (path,))


@dataclass(frozen=True)
class Aggregate(Subject):
    """A class of principals outside the scanned IAM (``account:ID``, ``org:ID``, ``service:NAME``, ``*``),
    represented by one principal of it; its identity policies are assumed to allow."""

    org_id: str | None = None

    def __init__(self, arn: str, account: str, label: str, org_id: str | None = None) -> None:
        object.__setattr__(self, "arn", arn)
        object.__setattr__(self, "kind", "aggregate")
        object.__setattr__(self, "account", account)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "org_id", org_id)
        for name, default in (
            ("policies", ()),
            ("boundary", None),
            ("tags", ()),
            ("service_linked", False),
            ("trust", None),
            ("unreadable", ()),
        ):
            object.__setattr__(self, name, default)


def _probe_of(estate: Estate, who: str) -> str:
    return who if who in estate.subjects else "arn:aws:iam::000000000000:root"


def _weakest(hits: Sequence[_Hit]) -> tuple[Condition, ...]:
    """The request conditions of the identity allow with the fewest (one Allow suffices)."""
    allows = [h for h in hits if not h.deny]
    return min((h.residual for h in allows), key=len) if allows else ()


def _grant_conditions(g: Grant) -> tuple[Condition, ...]:
    """A grant's constraints as the conditions a request must meet (KMS grant constraints)."""
    out: list[Condition] = []
    for kind, pairs in (g.constraints or {}).items():
        for k, v in sorted(pairs.items()):
            out.append(Condition("StringEquals", f"kms:encryptioncontext:{k.lower()}", (v,)))
        if kind == "EncryptionContextEquals":
            out.append(
                Condition("StringEquals", "kms:encryptioncontextkeys", tuple(sorted(pairs)), set_op="ForAllValues")
            )
    return tuple(out)
