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
from dataclasses import dataclass, field
from typing import Any, Literal

from kmsguard.model.snapshot import Grant, Key
from kmsguard.policy.analyze import condition_dict
from kmsguard.policy.estate import Estate, Labelled, Subject, parsed
from kmsguard.policy.evaluate import DIRECT, NO_MATCH, VIA_ACCOUNT, compile_condition, compile_policy
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


@dataclass(frozen=True)
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
    key: str
    results: dict[str, list[PrincipalAccess]]  # canonical action -> principals, sorted
    assumptions: list[str] = field(default_factory=list)

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
class _Target:
    """The resource side of a request: a key (with its policy and grants) or a role (its trust policy)."""

    arn: str
    account: str
    policy: Policy | None
    grants: tuple[Grant, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    rcp_exempt: bool = False


@dataclass(frozen=True)
class _Outcome:
    formula: Formula
    paths: tuple[tuple[AccessPath, Formula], ...]


class AccessEvaluator:
    """Answers effective-access questions over one Estate; parsing and repeated questions are cached."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self._reach_cache: dict[tuple[Formula, str], tuple[str, str]] = {}
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
        results: dict[str, list[PrincipalAccess]] = {}
        for action in actions:
            found: dict[str, PrincipalAccess] = {}
            for subject in self.estate.subjects.values():
                pa = self._answer(subject, action, target)
                if pa is not None:
                    found[subject.arn] = pa
            for subject in self._aggregates(key, target):
                pa = self._answer(subject, action, target, iam_known=False)
                if pa is not None:
                    found[subject.arn] = pa
            self._chains(action, target, found)
            results[canonical(action)] = sorted(found.values(), key=lambda p: p.principal)
        return KeyAccess(key.arn, results, assumptions)

    def _answer(
        self, subject: Subject, action: str, target: _Target, *, iam_known: bool = True
    ) -> PrincipalAccess | None:
        out = self.outcome(subject, action, target, iam_known=iam_known)
        decision, note = self.decide(
            out.formula, subject.arn if subject.kind != "aggregate" else _probe(subject), target.account
        )
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
            for subject in self.estate.subjects.values():
                # The root user cannot call AssumeRole (STS API reference: AssumeRole).
                if subject.arn == role.arn or subject.kind == "root":
                    continue
                o = self.outcome(subject, ASSUME_ROLE, target)
                if o.formula != FALSE:
                    out.append((subject.arn, o))
            for agg in self._trust_aggregates(role):
                o = self.outcome(agg, ASSUME_ROLE, target, iam_known=False)
                if o.formula != FALSE:
                    out.append((agg.label, o))
        self._assume_cache[role.arn] = out
        return out

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


def _probe(subject: Subject) -> str:
    return subject.arn


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
