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
from typing import Any, Literal, cast

from kmsguard.arn import parse as parse_arn
from kmsguard.arn import partition_in, root_arn
from kmsguard.model.snapshot import Grant, Key
from kmsguard.policy.access_classes import (
    Matches,
    PrincipalGroup,
    SpecificIndex,
    principal_groups,
    reads_principal,
    resource_specific,
)
from kmsguard.policy.actions import WHO_CAN_ACTIONS
from kmsguard.policy.estate import Estate, Labelled, Subject, parsed
from kmsguard.policy.evaluate import (
    DIRECT,
    NO_MATCH,
    VIA_ACCOUNT,
    PrincipalMatch,
    compile_condition,
    compile_policy,
    principal_token,
)
from kmsguard.policy.grants import CONTEXT_OPERATIONS
from kmsguard.policy.model import Condition, Policy, Principal
from kmsguard.policy.normalize import PrincipalInfo, principal_info
from kmsguard.policy.principals import account_of, mentioned_accounts, mentioned_orgs, session_of
from kmsguard.policy.questions import condition_dict
from kmsguard.policy.solver import Formula, reach

MAX_CHAIN = 5
_SESSION = "kmsguard-session"  # the name of the session a role is judged as: one no policy names
ANYONE = "000000000000"  # the account an aggregate ("*", org:ID) is judged as: one no policy names
_KEY_CACHE_MAX = 512  # whole answers kept for keys of a shared class
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
    how: PrincipalMatch  # DIRECT or VIA_ACCOUNT (key/resource policies); DIRECT for identity-type policies
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
        if how == NO_MATCH and info.kind == "session" and st.principals:
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
class _Target:
    """The resource side of a request: a key (with its policy and grants) or a role (its trust policy)."""

    arn: str
    account: str
    policy: Policy | None
    grants: tuple[Grant, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    rcp_exempt: bool = False
    arn_matters: bool = False  # the key policy or an RCP names particular keys: the key is a class of its own

    @cached_property
    def on_key(self) -> bool:
        """A KMS key (else a role, asked about its trust policy)."""
        parsed = parse_arn(self.arn)
        return parsed is not None and parsed.service == "kms"

    @cached_property
    def group_cls(self) -> tuple[object, ...]:
        """What the answer to a principal the key does not name depends on, besides the statements of the
        principal's own policies that name the key (``SpecificIndex``). Grants matter only when granted to
        an account's root: any other grantee is named, and judged on its own."""
        to_accounts = tuple(
            (g.grant_id, g.name, g.grantee_principal, tuple(g.operations), repr(g.constraints))
            for g in self.grants
            if g.grantee_principal.endswith(":root")
        )
        specific = self.arn if self.arn_matters else None
        return (
            id(self.policy),
            self.account,
            self.tags,
            self.rcp_exempt,
            to_accounts,
            specific,
            self.on_key,
        )

    @cached_property
    def for_groups(self) -> _Target:
        """The key as a principal it does not name sees it: only grants to accounts can apply. The group's
        answer is judged on this, so that a member some grant names cannot pass its grant to the group."""
        return replace(self, grants=tuple(g for g in self.grants if g.grantee_principal.endswith(":root")))

    @cached_property
    def cls(self) -> tuple[object, ...]:
        """What every answer for the key depends on (with ``SpecificIndex.matches``): keys equal in this
        share one whole answer. Grant ids are part of it because the answer cites them."""
        grants = tuple((g.grant_id, g.name, g.grantee_principal, tuple(g.operations), repr(g.constraints))
                       for g in self.grants)  # fmt: skip
        return (*self.group_cls, grants)


# (the principals that share an answer, the answer)
Entry = tuple[tuple[str, ...], "PrincipalAccess"]


@dataclass(frozen=True)
class _Split:
    """How the principals are judged for keys of one key policy: per group, the members judged as the group
    (those the policy does not name); the named ones one by one, as (group index, ARN)."""

    members: tuple[tuple[str, ...], ...]
    individuals: tuple[tuple[int, str], ...]
    named: frozenset[str]
    key: int  # the policy's id: what the split depends on


@dataclass(frozen=True)
class _Part:
    """The groups' answers for one key class and action, the roles among them and the chains they start."""

    found: tuple[Entry, ...]
    positions: dict[int, int]  # group index -> its entry in ``found``
    principals: frozenset[str]  # every member in ``found``: found directly, so never through a chain
    holders: frozenset[str]  # the roles among them that others may assume
    chains: tuple[Entry, ...]


def _merge(base: tuple[Entry, ...], more: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """Chains from two sets of starting roles: per principal the shorter (the first set's on a tie)."""
    out = {e[0][0]: e for e in base}
    for e in more:
        have = out.get(e[0][0])
        if have is None or len(e[1].paths[0].chain) < len(have[1].paths[0].chain):
            out[e[0][0]] = e
    return tuple(out[who] for who in sorted(out))


def _without(part: _Part, gone: frozenset[str], group_of: dict[str, int]) -> list[Entry]:
    """The part's entries with the ``gone`` principals taken out of their groups."""
    found: list[Entry | None] = list(part.found)
    for gi in {group_of[arn] for arn in gone}:
        pos = part.positions.get(gi)
        entry = found[pos] if pos is not None else None
        if pos is not None and entry is not None:
            members = tuple(m for m in entry[0] if m not in gone)
            found[pos] = (members, entry[1]) if members else None
    return [e for e in found if e is not None]


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
        self._chain_cache: dict[tuple[object, ...], tuple[Entry, ...]] = {}
        self._assume_cache: dict[str, list[tuple[str, _Outcome]]] = {}
        self._individual_cache: dict[tuple[object, ...], PrincipalAccess | None] = {}
        self._aggregate_cache: dict[tuple[object, ...], PrincipalAccess | None] = {}
        self._key_cache: dict[tuple[object, ...], dict[str, list[Entry]]] = {}
        self._part_cache: dict[tuple[object, ...], _Part] = {}
        self._policy_split: dict[int, _Split] = {}
        self._policies: dict[str, Policy] = {}
        self._infos: dict[str, PrincipalInfo] = {}

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
        info = self._info(self._caller(subject))
        known = self._known(subject, info, target, self._principal_org(subject))
        same = subject.account == target.account
        is_root = subject.kind == "root"
        on_key = target.on_key
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
            grantee = self._info(g.grantee_principal)
            # Constraints bind only operations that take an encryption context (API_GrantConstraints).
            constraints = _grant_conditions(g) if op in CONTEXT_OPERATIONS else ()
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
        canonical_formula = _canonical(formula)
        key = (canonical_formula, account)
        hit = self._reach_cache.get(key)
        if hit is None:
            hit = self._reach_cache[key] = reach(canonical_formula, principal, account)
        verdict, note = hit
        return ({"always": "allowed", "sometimes": "conditional"}.get(verdict), note)  # type: ignore[return-value]

    # -- keys -------------------------------------------------------------------------------------

    def target(self, key: Key) -> _Target:
        policy = self._policy(key.policy) if key.policy else None
        rcps = self.estate.rcp_levels(key.account) or ()
        arn_matters = (policy is not None and resource_specific(policy)) or any(
            resource_specific(p) for level in rcps for _, p in level
        )
        return _Target(
            key.arn,
            key.account,
            policy,
            tuple(key.grants),
            tuple(sorted(key.tags.items())),
            rcp_exempt=key.is_aws_managed or self._management(key.account),
            arn_matters=arn_matters,
        )

    def _policy(self, text: str) -> Policy:
        """One Policy object per distinct key policy for the evaluator's life: caches key on its id."""
        hit = self._policies.get(text)
        if hit is None:
            hit = self._policies[text] = parsed(text, "key")
        return hit

    def _caller(self, subject: Subject) -> str:
        """Who sends the request: a role only ever acts through a session of it, and AWS judges a session at
        three levels (account, role, session), so a Deny with a NotPrincipal that lists the role but not the
        session applies (IAM User Guide, "AWS JSON policy elements: NotPrincipal")."""
        if subject.kind == "role":
            return session_of(subject.arn, _SESSION) or subject.arn
        return subject.arn

    def _info(self, arn: str) -> PrincipalInfo:
        hit = self._infos.get(arn)
        if hit is None:
            hit = self._infos[arn] = principal_info(arn)
        return hit

    def _management(self, account: str) -> bool:
        org = self.estate.organization
        return org is not None and org.management_account == account

    def who_can(self, key: Key, actions: Sequence[str] = WHO_CAN_ACTIONS) -> KeyAccess:
        """Every principal's answer for ``key``. Keys of one class (same policy, grants, tags, account, and
        the same statements naming them) share one answer, computed once."""
        target = self.target(key)
        assumptions = list(NOT_MODELLED) + self.estate.assumptions
        if key.policy is None:
            assumptions.append(f"{key.arn}: the key policy could not be read; only grants are considered")
        matches = self._specific.matches(key.arn)
        cache_key = (target.cls, tuple(actions), tuple(sorted(matches.items())))
        entries = self._key_cache.get(cache_key)
        if entries is None:
            entries = self._judge_key(key, target, actions, matches)
            if len(self._key_cache) >= _KEY_CACHE_MAX:  # keys of a class of their own are not seen again
                self._key_cache.pop(next(iter(self._key_cache)))
            self._key_cache[cache_key] = entries
        return KeyAccess(key.arn, entries, assumptions)

    def _judge_key(self, key: Key, target: _Target, actions: Sequence[str], matches: Matches) -> dict[str, list[Entry]]:
        split = self._split(target)
        by_grant = self._named_by_grants(target.grants)
        # Principals only a grant names leave their group (the rest of it keeps the class's answer) and are
        # judged on their own, with the grant.
        extra = by_grant - split.named
        individuals = split.individuals + tuple(sorted((self._group_of[arn], arn) for arn in extra))
        matches_key = tuple(sorted(matches.items()))
        aggregates = self._aggregates(key, target)
        entries: dict[str, list[Entry]] = {}
        for action in actions:
            part = self._group_part(target, action, matches, matches_key, split)
            found = _without(part, extra, self._group_of) if extra else list(part.found)
            direct: set[str] = set()
            extra_roles: list[tuple[str, PrincipalAccess]] = []
            for gi, arn in individuals:
                pa = self._individual_answer(arn, action, target, matches.get(gi, ()), arn in by_grant)
                if pa is not None:
                    found.append(((arn,), pa))
                    direct.add(arn)
                    if arn in self.groups[gi].roles:
                        extra_roles.append((arn, pa))
            for subject in aggregates:
                pa = self._aggregate_answer(subject, action, target)
                if pa is not None:
                    found.append(((pa.principal,), pa))
                    direct.add(pa.principal)
            # The class's chains, and those the roles judged on their own start (shorter ones win).
            starts = {arn: pa for arn, pa in extra_roles if self.assumers(self._assumable[arn])}
            chains = _merge(part.chains, self._chains(starts, part.holders)) if starts else part.chains
            found += [c for c in chains if c[0][0] not in direct and c[0][0] not in part.principals]
            entries[canonical(action)] = found
        return entries

    def _group_part(
        self, target: _Target, action: str, matches: Matches, matches_key: tuple[object, ...], split: _Split
    ) -> _Part:
        """The answers of every group (the members the key does not name) and the role chains they start:
        the same for every key of the class, so computed once per class."""
        cache_key = (target.group_cls, action, matches_key, split.key)
        hit = self._part_cache.get(cache_key)
        if hit is not None:
            return hit
        found: list[Entry] = []
        positions: dict[int, int] = {}
        roles: list[tuple[object, ...]] = []  # what the role chains depend on
        for group, members in zip(self.groups, split.members, strict=True):
            if not members:
                continue
            # Judged as one of the members it stands for (not one the key names).
            answer = self._group_answer(group, members[0], action, target, matches.get(group.index, ()))
            if answer is not None:
                positions[group.index] = len(found)
                found.append((members, answer))
                if group.roles:
                    roles.append((group.index, id(answer)))
        holders = {who: pa for members, pa in found for who in members if who in self._assumable}
        chains = self._chains_cached(action, target.account, holders, tuple(roles))
        principals = frozenset(who for members, _ in found for who in members)
        hit = self._part_cache[cache_key] = _Part(tuple(found), positions, principals, frozenset(holders), chains)
        return hit

    # -- classes: principals the key does not single out, with the same inputs, get one answer ------

    @cached_property
    def groups(self) -> list[PrincipalGroup]:
        return principal_groups(self.estate)

    @cached_property
    def _specific(self) -> SpecificIndex:
        return SpecificIndex(self.estate, self.groups)

    @cached_property
    def _by_token(self) -> dict[str, list[str]]:
        """Principal ARNs by the tokens that name them (their ARN, role:ACCT/NAME, acct:ID for the root)."""
        out: dict[str, list[str]] = {}
        for arn in self.estate.subjects:
            for tok in self._info(arn).direct_tokens:
                out.setdefault(tok, []).append(arn)
        return out

    @cached_property
    def _assumable(self) -> dict[str, Subject]:
        """The roles a principal may assume (those with a trust policy)."""
        return {a: s for a, s in self.estate.subjects.items() if s.kind == "role" and s.trust is not None}

    @cached_property
    def _position(self) -> dict[Subject, int]:
        return {s: n for n, s in enumerate(self.estate.subjects.values())}

    @cached_property
    def _by_account(self) -> dict[str, list[Subject]]:
        out: dict[str, list[Subject]] = {}
        for subject in self.estate.subjects.values():
            out.setdefault(subject.account, []).append(subject)
        return out

    def _split(self, target: _Target) -> _Split:
        """Which principals are judged as their group and which one by one (those the key policy names)."""
        pol = target.policy
        hit = self._policy_split.get(id(pol))
        if hit is None:
            named = self._named_by_policy(pol)
            if named is None:  # the policy reads who asks: everyone on their own
                hit = _Split(tuple(() for _ in self.groups), self._everyone, frozenset(self._group_of), id(pol))
            else:
                hit = _Split(
                    tuple(tuple(m for m in g.members if m not in named) for g in self.groups),
                    tuple((g.index, m) for g in self.groups for m in g.members if m in named),
                    named,
                    id(pol),
                )
            self._policy_split[id(pol)] = hit
        return hit

    @cached_property
    def _everyone(self) -> tuple[tuple[int, str], ...]:
        return tuple((g.index, m) for g in self.groups for m in g.members)

    @cached_property
    def _group_of(self) -> dict[str, int]:
        return {m: g.index for g in self.groups for m in g.members}

    def _named_by_policy(self, pol: Policy | None) -> frozenset[str] | None:
        """The principals the key policy names (judged one by one); None when its conditions read who the
        principal is (every principal is then judged on its own). Every root user is named: what it may do
        does not follow from its account's identity policies."""
        if pol is not None and reads_principal(pol):
            return None
        tokens: set[str] = set()
        for st in pol.statements if pol else ():
            for p in (*(st.principals or ()), *(st.not_principals or ())):
                tok = principal_token(p)
                if tok is not None:
                    tokens.add(tok)
                if p.kind == "AWS" and ":assumed-role/" in p.value:
                    tokens |= self._info(p.value).direct_tokens  # a session names its role (role:ACCT/NAME)
        return self._holders(tokens) | self._roots

    def _named_by_grants(self, grants: Sequence[Grant]) -> frozenset[str]:
        """The principals the key's grants name: their answers cite the key's own grants."""
        tokens: set[str] = set()
        for g in grants:
            tokens |= self._info(g.grantee_principal).direct_tokens
        return self._holders(tokens)

    def _holders(self, tokens: Iterable[str]) -> frozenset[str]:
        return frozenset(arn for tok in tokens for arn in self._by_token.get(tok, ()))

    @cached_property
    def _roots(self) -> frozenset[str]:
        return frozenset(arn for arn, s in self.estate.subjects.items() if s.kind == "root")

    def _group_answer(
        self, group: PrincipalGroup, rep: str, action: str, target: _Target, specific: tuple[object, ...]
    ) -> PrincipalAccess | None:
        cache_key = (group.index, action, target.group_cls, specific)
        if cache_key in self._group_cache:
            return self._group_cache[cache_key]
        answer = self._group_cache[cache_key] = self._answer(self.estate.subjects[rep], action, target.for_groups)
        return answer

    def _individual_answer(
        self, arn: str, action: str, target: _Target, specific: tuple[object, ...], by_grant: bool
    ) -> PrincipalAccess | None:
        # A principal no grant names gets the same answer from every key of the group class.
        cache_key = (arn, action, target.cls if by_grant else target.group_cls, specific)
        if cache_key in self._individual_cache:
            return self._individual_cache[cache_key]
        answer = self._individual_cache[cache_key] = self._answer(self.estate.subjects[arn], action, target)
        return answer

    def _aggregate_answer(self, subject: Subject, action: str, target: _Target) -> PrincipalAccess | None:
        info = self._info(subject.arn)
        grants = tuple(
            g.grant_id
            for g in target.grants
            if self._info(g.grantee_principal).direct_tokens & (info.direct_tokens | {f"acct:{subject.account}"})
        )
        cache_key = (subject.label, subject.arn, action, target.group_cls, grants)
        if cache_key in self._aggregate_cache:
            return self._aggregate_cache[cache_key]
        answer = self._aggregate_cache[cache_key] = self._answer(subject, action, target, iam_known=False)
        return answer

    def _chains_cached(
        self, action: str, account: str, holders: dict[str, PrincipalAccess], roles: tuple[object, ...]
    ) -> tuple[Entry, ...]:
        """Role chains depend only on which roles have access, and how (``roles`` names the answers by
        identity: each is held by a cache, so ids stay unique): computed once per such set. The caller
        drops the principals it found directly (one that is not a role never extends a chain)."""
        cache_key = (action, account, roles)
        hit = self._chain_cache.get(cache_key)
        if hit is None:
            hit = self._chain_cache[cache_key] = self._chains(holders)
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
        partition = partition_in(key.arn)  # principals outside the scan are in the key's partition
        for acct in sorted(accounts - self.estate.scanned_accounts):
            out.append(Aggregate(root_arn(acct, partition), acct, f"account:{acct}"))
        for arn in sorted(named):
            acct = account_of(arn)
            if acct and acct not in self.estate.scanned_accounts and arn not in self.estate.subjects:
                kind = "role" if ":role/" in arn else "user" if ":user/" in arn else "aggregate"
                out.append(Subject(arn, kind, acct))
        for org in sorted(mentioned_orgs(pol) if pol else ()):
            out.append(Aggregate(root_arn(ANYONE, partition), ANYONE, f"org:{org}", org_id=org))
        for svc in sorted(services):
            out.append(Aggregate(f"service:{svc}", "", f"service:{svc}"))
        out.append(Aggregate(root_arn(ANYONE, partition), ANYONE, "*"))
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
        if everyone:
            pool: Iterable[Subject] = self.estate.subjects.values()
        else:
            by_arn = {a: self.estate.subjects[a] for tok in tokens for a in self._by_token.get(tok, ())}
            for tok in tokens:
                if tok.startswith("acct:"):
                    by_arn.update((s.arn, s) for s in self._by_account.get(tok[5:], ()) if self._may_assume(s))
            pool = by_arn.values()
        # In the estate's order, so that of two chains of one length the same one is shown on every run.
        return sorted((s for s in pool if s.arn != role.arn and s.kind != "root"), key=self._position.__getitem__)

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

    def _probe_of(self, who: str, role: str) -> str:
        """The principal an answer about ``who`` is judged as: itself, or for an aggregate a stranger in the
        role's partition."""
        return who if who in self.estate.subjects else root_arn(ANYONE, partition_in(role))

    def _trust_aggregates(self, role: Subject) -> list[Subject]:
        out: list[Subject] = []
        partition = partition_in(role.arn)
        for st in role.trust.statements if role.trust else ():
            if st.effect != "Allow":
                continue
            for p in st.principals or ():
                if p.kind == "Service":
                    out.append(Aggregate(f"service:{p.value.lower()}", "", f"service:{p.value.lower()}"))
                elif p.kind == "Federated":
                    out.append(Aggregate(f"federated:{p.value}", "", f"federated:{p.value}"))
                elif p.kind == "AWS" and p.is_wildcard:
                    out.append(Aggregate(root_arn(ANYONE, partition), ANYONE, "*"))
                elif p.kind == "AWS":
                    acct = account_of(p.value)
                    if acct and acct not in self.estate.scanned_accounts:
                        out.append(Aggregate(root_arn(acct, partition), acct, f"account:{acct}"))
        return out

    def _chains(self, holders: dict[str, PrincipalAccess], others: frozenset[str] = frozenset()) -> tuple[Entry, ...]:
        """The principals that reach a role in ``holders`` by assuming roles (breadth first: the shortest
        chain), with their paths; ``others`` are roles with access of their own, never a step of a chain."""
        roles = self._assumable
        frontier: deque[tuple[str, tuple[str, ...], Decision]] = deque(
            (arn, (arn,), holders[arn].decision) for arn in sorted(holders)
        )
        reached: dict[str, tuple[tuple[str, ...], Decision]] = {}
        while frontier:
            role_arn, chain, decision = frontier.popleft()
            if len(chain) > MAX_CHAIN:
                continue
            for who, o in self.assumers(roles[role_arn]):
                if who in holders or who in others or who in reached or who in chain:
                    continue
                edge, _ = self.decide(o.formula, self._probe_of(who, role_arn), roles[role_arn].account)
                if edge is None:
                    continue
                d: Decision = "allowed" if edge == decision == "allowed" else "conditional"
                reached[who] = (chain, d)
                if who in roles:
                    frontier.append((who, (who, *chain), d))
        out: list[Entry] = []
        for who, (chain, d) in sorted(reached.items()):
            first = holders[chain[-1]].paths[0]
            stmts = tuple(f"trust: {c.split(':', 5)[5]}" for c in chain) + first.statements
            path = AccessPath(
                "assume_role", stmts, chain=chain, grants=first.grants, require=first.require, unless=first.unless
            )
            out.append(((who,), PrincipalAccess(who, d, (path,))))
        return tuple(out)


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


def _weakest(hits: Sequence[_Hit]) -> tuple[Condition, ...]:
    """The request conditions of the identity allow with the fewest (one Allow suffices)."""
    allows = [h for h in hits if not h.deny]
    return min((h.residual for h in allows), key=len) if allows else ()


_RENAMABLE = frozenset({"StringEquals", "StringNotEquals"})


def _canonical(formula: Formula) -> Formula:
    """The formula with encryption-context values renamed v0, v1, ... per key, where every condition on that
    key only compares values for equality (StringEquals, StringNotEquals, Null). Renaming values one-to-one
    keeps which requests satisfy the formula, so the solver's answer for one key's grant constraints serves
    every key whose grants differ only in their values (each EBS volume's grant names its own volume)."""
    conditions: list[Condition] = []
    _collect(formula, conditions)
    by_key: dict[str, list[Condition]] = {}
    for c in conditions:
        if c.key.startswith("kms:encryptioncontext:"):
            by_key.setdefault(c.key, []).append(c)
    names: dict[tuple[str, str], str] = {}
    for key, conds in by_key.items():
        if all(
            (c.operator in _RENAMABLE or c.operator == "Null")
            and c.set_op is None
            and not any("${" in v for v in c.values)
            for c in conds
        ):
            for c in conds:
                if c.operator in _RENAMABLE:
                    for v in c.values:
                        names.setdefault((key, v), f"v{sum(1 for k, _ in names if k == key)}")
    if not names:
        return formula
    return _rename(formula, names)


def _collect(f: Formula, out: list[Condition]) -> None:
    if f[0] == "cond":
        out.append(cast(Condition, f[1]))
    elif f[0] in ("and", "or"):
        for g in cast("tuple[Formula, ...]", f[1]):
            _collect(g, out)
    elif f[0] == "not":
        _collect(cast(Formula, f[1]), out)


def _rename(f: Formula, names: dict[tuple[str, str], str]) -> Formula:
    if f[0] == "cond":
        c = cast(Condition, f[1])
        if c.operator in _RENAMABLE and (c.key, c.values[0] if c.values else "") in names:
            return ("cond", replace(c, values=tuple(names[(c.key, v)] for v in c.values)))
        return f
    if f[0] in ("and", "or"):
        return (f[0], tuple(_rename(g, names) for g in cast("tuple[Formula, ...]", f[1])))
    if f[0] == "not":
        return ("not", _rename(cast(Formula, f[1]), names))
    return f


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
