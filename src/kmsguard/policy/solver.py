"""Whole-policy questions as SMT problems (z3), in the spirit of AWS's Zelkova.

A question ("can a principal of this class perform one of these actions?") and a normalised policy
become one formula over symbolic request parts:

- the principal ARN ``p`` and its account ``acct`` (12 digits), its organisation ``org`` with a
  presence flag, the action (an index into the question's finite action list) and the resource ARN;
- every condition key the policy mentions: a bounded list of string values (``count`` in 0..K,
  absent when 0), plus a numeric / integer view for keys compared with Numeric*, Date* or IpAddress
  operators. Multi-valued keys (those used with ForAnyValue/ForAllValues) get K=2 slots, others K=1:
  sound for the operators AWS defines as long as two distinct values suffice to tell them apart,
  which holds for every operator (any/all quantify over values independently).

Identity keys (aws:PrincipalAccount, kms:CallerAccount, aws:PrincipalArn, aws:PrincipalOrgID,
aws:PrincipalOrgPaths, aws:Source*) are tied to the principal variables; every other key is free:
the caller can put what it likes in the request.

``prove`` returns PROVED (unsatisfiable: no request of the class is allowed) or a COUNTEREXAMPLE, a
concrete ``Request`` that the direct evaluator is then asked about; a model the evaluator does not
allow (only possible where the encoding over-approximates, e.g. policy variables) is UNKNOWN.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

import z3

from kmsguard.arn import partition_in
from kmsguard.policy.actions import NEGATED_OPERATORS, action_pattern
from kmsguard.policy.model import Condition, Decision, Policy, Principal, Request, Statement
from kmsguard.policy.normalize import principal_info
from kmsguard.policy.parse import date_text, parse_date
from kmsguard.policy.principals import (
    ACCOUNT_KEYS,
    ARN_KEYS,
    ORG_KEYS,
    ORG_PATH_KEYS,
    SERVICE_FLAG_KEYS,
    SOURCE_KEYS,
    account_of,
    direct_forms,
    names_directly,
    not_principal_excludes,
    policy_partition,
    session_of,
    session_parts,
)

TIMEOUT_MS = 5000
_POSITIVE_OF = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
_NUMERIC_OPS = {"NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
                "NumericGreaterThanEquals"}  # fmt: skip
_DATE_OPS = {"DateEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"}

OrgMode = Literal["any", "fixed", "absent"]


@dataclass(frozen=True)
class Identity:
    """The class of principals a question ranges over.

    ``principal`` fixes one principal (an IAM ARN or ``service:NAME``); otherwise any IAM principal of
    ``account`` (or of any account not in ``exclude_accounts``) whose ARN is not in
    ``exclude_principals``. ``iam_allows``: the principal's own account's IAM policies allow what a
    root-principal statement delegates to them (the caller's side of cross-account access).
    """

    principal: str | None = None
    account: str | None = None
    exclude_accounts: frozenset[str] = frozenset()
    exclude_principals: frozenset[str] = frozenset()
    org_mode: OrgMode = "any"
    org_id: str | None = None
    exclude_orgs: frozenset[str] = frozenset()
    iam_allows: bool = True


@dataclass(frozen=True)
class Question:
    actions: tuple[str, ...]  # the candidate actions (any case); the request performs one of them
    identity: Identity
    key_account: str
    resource: str | None = None  # the key ARN; None: any key of key_account
    # Keys whose values the question fixes (lower-cased); every other non-identity key is free.
    fixed_context: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    description: str = ""


def question_partition(policy: Policy, q: Question) -> str:
    """The partition the question's principals and keys live in: the key's, the principal's, else that of the
    ARNs the policy quotes (a policy that quotes none cannot tell partitions apart), else ``aws``."""
    for given in (q.resource, q.identity.principal):
        if given and given.startswith("arn:"):
            return partition_in(given)
    return policy_partition(policy)


@dataclass(frozen=True)
class Proof:
    status: Literal["proved", "counterexample", "unknown"]
    request: Request | None = None
    note: str = ""

    @property
    def proved(self) -> bool:
        return self.status == "proved"


@dataclass
class _Key:
    strs: list[z3.SeqRef]
    count: z3.ArithRef
    nums: list[z3.ArithRef] = field(default_factory=list)
    ips: list[z3.ArithRef] = field(default_factory=list)
    dates: list[z3.ArithRef] = field(default_factory=list)

    def active(self, i: int) -> z3.BoolRef:
        return self.count > i

    @property
    def present(self) -> z3.BoolRef:
        return self.count > 0


def _any_char(ctx: z3.Context) -> z3.ReRef:
    return z3.AllChar(z3.ReSort(z3.StringSort(ctx)))


def _org_id_re(ctx: z3.Context) -> z3.ReRef:
    """An organisation id: o-[a-z0-9]{10,32}."""
    alnum = z3.Union(z3.Range("a", "z", ctx), z3.Range("0", "9", ctx))
    return z3.Concat(z3.Re("o-", ctx), z3.Loop(alnum, 10, 32))


def _glob_re(pattern: str, ctx: z3.Context, *, ignore_case: bool = False, stop_at_colon: bool = False) -> z3.ReRef:
    """An IAM wildcard pattern (* and ?) as a z3 regular expression (literal runs kept whole: the string
    solver is much faster on ``str.to_re "abc"`` than on a chain of one-character pieces)."""
    star_char = z3.Diff(_any_char(ctx), z3.Re(":", ctx)) if stop_at_colon else _any_char(ctx)
    parts: list[z3.ReRef] = []
    literal = ""

    def flush() -> None:
        nonlocal literal
        if literal:
            parts.append(z3.Re(literal, ctx))
            literal = ""

    for ch in pattern:
        if ch == "*":
            flush()
            parts.append(z3.Star(star_char))
        elif ch == "?":
            flush()
            parts.append(star_char)
        elif ignore_case and ch.lower() != ch.upper():
            flush()
            parts.append(z3.Union(z3.Re(ch.lower(), ctx), z3.Re(ch.upper(), ctx)))
        else:
            literal += ch
    flush()
    if not parts:
        return z3.Re("", ctx)
    return parts[0] if len(parts) == 1 else z3.Concat(*parts)


def _arn_re(pattern: str, ctx: z3.Context) -> z3.ReRef:
    """ArnLike/ArnEquals: the first five colon-separated parts match separately (a * stays inside its
    part); the resource part may itself contain colons."""
    if pattern == "*":
        return z3.Full(z3.ReSort(z3.StringSort(ctx)))
    comps = pattern.split(":", 5)
    if len(comps) < 6:
        return z3.Empty(z3.ReSort(z3.StringSort(ctx)))  # not an ARN pattern: matches nothing
    pieces: list[z3.ReRef] = []
    for i, comp in enumerate(comps):
        pieces.append(_glob_re(comp, ctx, stop_at_colon=i < 5))
        if i < 5:
            pieces.append(z3.Re(":", ctx))
    return z3.Concat(*pieces)


def _parse_number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _ip_range(text: str) -> tuple[int, int] | None:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if net.version != 4:
        return None
    return int(net.network_address), int(net.broadcast_address)


def _compare(op: str, left: z3.ArithRef, right: float | int | Decimal) -> z3.BoolRef:
    suffix = op.removeprefix("Numeric").removeprefix("Date")
    if isinstance(right, Decimal):
        r = z3.RealVal(format(right, "f"), left.ctx)  # exact: a date's fraction of a second stays exact
    else:
        r = z3.RealVal(right, left.ctx) if isinstance(right, float) else z3.IntVal(right, left.ctx)
    match suffix:
        case "Equals":
            return left == r
        case "LessThan":
            return left < r
        case "LessThanEquals":
            return left <= r
        case "GreaterThan":
            return left > r
        case _:
            return left >= r


class _Encoder:
    """One question about one policy as a z3 problem.

    Every encoder has a z3 context of its own: the models z3 picks depend on every term its context has
    seen, so answers built in the shared main context would change with whatever was asked before (in
    this process, or by another test). A fresh context makes each answer a function of its question."""

    def __init__(self, policy: Policy, q: Question, strict_accounts: bool = False) -> None:
        self.strict_accounts = strict_accounts
        self.policy = policy
        self.q = q
        self.ctx = c = z3.Context()
        self.s = z3.Solver(ctx=c)
        self.s.set("timeout", TIMEOUT_MS)
        self.approximated = False
        self.fixed = dict(q.fixed_context)
        self.p = z3.String("principal", c)
        self.acct = z3.String("account", c)
        self.org = z3.String("org", c)
        self.org_present = z3.Bool("org_present", c)
        self.res = z3.String("resource", c)
        self.act = z3.Int("action", c)
        self.actions = tuple(a.lower() for a in q.actions)
        self.is_service = (q.identity.principal or "").startswith("service:")
        self.partition = question_partition(policy, q)
        self._fresh = 0
        self.is_root_user: z3.BoolRef = self.true(False)
        self.is_role: z3.BoolRef = self.true(False)  # a generic caller that is a role (acting through a session)
        self.principal_arn: z3.SeqRef = self.p
        self.session: z3.SeqRef | None = None
        self.keys: dict[str, _Key] = {}
        self._identity()
        self._request_shape()
        self._declare_keys()

    # --- terms in this encoder's context ----------------------------------------------------------------

    def text(self, value: str) -> z3.SeqRef:
        return z3.StringVal(value, self.ctx)

    def true(self, value: bool) -> z3.BoolRef:
        return z3.BoolVal(value, self.ctx)

    def any_of(self, terms: Iterable[z3.BoolRef]) -> z3.BoolRef:
        items = list(terms)
        return z3.Or(*items) if items else self.true(False)

    def all_of(self, terms: Iterable[z3.BoolRef]) -> z3.BoolRef:
        items = list(terms)
        return z3.And(*items) if items else self.true(True)

    # --- the request's fixed parts ---------------------------------------------------------------------

    def _identity(self) -> None:
        ident, s, c = self.q.identity, self.s, self.ctx
        if ident.principal is not None:
            principal = _request_principal(ident.principal)
            s.add(self.p == self.text(principal))
            # aws:PrincipalArn: a session carries its role's ARN, every other IAM principal its own.
            self.principal_arn = self.text(principal_info(principal, ident.account).arn or principal)
            self.is_root_user = self.true(ident.principal.endswith(":root") and account_of(ident.principal) is not None)
            acct = ident.account or account_of(ident.principal)
            s.add(self.acct == self.text(acct or ""))
        else:
            if ident.account is not None:
                s.add(self.acct == self.text(ident.account))
            else:
                self._any_account()
                for a in sorted(ident.exclude_accounts):
                    s.add(self.acct != self.text(a))
            # Its root user, or a role or user of it named without ":" or "/". A role stands for its
            # sessions (a role never signs a request itself); see ``_excluded`` and ``witness``.
            name_char = z3.Diff(_any_char(c), z3.Union(z3.Re(":", c), z3.Re("/", c)))
            named = z3.Concat(z3.Union(z3.Re("role/", c), z3.Re("user/", c)), z3.Plus(name_char))
            resource = z3.String("principal_resource", c)
            s.add(z3.InRe(resource, z3.Union(z3.Re("root", c), named)))
            # Kept as its own term: z3 is slow on SuffixOf(":root", principal) over the concatenation.
            self.is_root_user = resource == self.text("root")
            self.is_role = z3.PrefixOf(self.text("role/"), resource)
            self.session = z3.String("session", c)  # the name of the session a role acts through
            prefix = f"arn:{self.partition}:iam::"
            s.add(self.p == z3.Concat(self.text(prefix), self.acct, self.text(":"), resource))
            for arn in sorted(ident.exclude_principals):
                s.add(self.p != self.text(arn))
                parts = session_parts(arn)
                if parts is not None:  # that session is not in the class; its role's other sessions are
                    role_arn = self.text(f"arn:{parts[0]}:iam::{parts[1]}:role/{parts[2]}")
                    s.add(z3.Not(z3.And(self.p == role_arn, self.session == self.text(parts[3]))))
        if ident.org_mode == "fixed" and ident.org_id:
            s.add(self.org_present, self.org == self.text(ident.org_id))
        elif ident.org_mode == "absent" or self.is_service:
            s.add(z3.Not(self.org_present))
        else:
            # Any organisation id: o-[a-z0-9]{10,32} (no "/" or ":", so an org-path pattern cannot stretch it).
            s.add(z3.Implies(self.org_present, z3.InRe(self.org, _org_id_re(c))))
            for o in sorted(ident.exclude_orgs):
                s.add(z3.Implies(self.org_present, self.org != self.text(o)))

    def _any_account(self) -> None:
        """A 12-character account id. Requiring digits is slow in z3's string solver, so by default any
        12 characters stand for an account (a larger domain: proofs stay proofs), and a
        counter-example with a non-digit account is re-labelled with digits (``_relabel``) and confirmed by
        the evaluator; ``strict_accounts`` requires digits, for when that confirmation fails."""
        if self.strict_accounts:
            self.s.add(z3.InRe(self.acct, z3.Loop(z3.Range("0", "9", self.ctx), 12, 12)))
        else:
            self.s.add(z3.Length(self.acct) == 12)

    def _request_shape(self) -> None:
        s = self.s
        s.add(self.act >= 0, self.act < len(self.actions))
        if self.q.resource is not None:
            s.add(self.res == self.text(self.q.resource))
        else:
            region, key_id = z3.String("resource_region", self.ctx), z3.String("resource_key_id", self.ctx)
            for part in (region, key_id):
                s.add(z3.Length(part) > 0, z3.Not(z3.Contains(part, self.text(":"))))
            account = self.text(f":{self.q.key_account}:key/")
            s.add(self.res == z3.Concat(self.text(f"arn:{self.partition}:kms:"), region, account, key_id))

    # --- condition keys ---------------------------------------------------------------------------------

    def _declare_keys(self) -> None:
        ops: dict[str, set[str]] = {}
        multi: set[str] = set()
        for st in self.policy.statements:
            for c in st.conditions:
                ops.setdefault(c.key, set()).add(c.operator)
                if c.set_op:
                    multi.add(c.key)
        for key, used in ops.items():
            self.keys[key] = self._key(key, used, 2 if key in multi else 1)

    def _key(self, key: str, used: set[str], slots: int) -> _Key:
        s, c = self.s, self.ctx
        one, zero = z3.IntVal(1, c), z3.IntVal(0, c)
        iam = not self.is_service
        if key in ACCOUNT_KEYS:
            k = _Key([self.acct], one if iam else zero)
        elif key in ARN_KEYS:
            k = _Key([self.principal_arn], one if iam else zero)
        elif key in ORG_KEYS:
            k = _Key([self.org], z3.If(self.org_present, one, zero))
        elif key in ORG_PATH_KEYS:
            path = z3.String(f"ctx:{key}", c)
            s.add(z3.PrefixOf(z3.Concat(self.org, self.text("/")), path))
            if not used & {"StringLike", "StringNotLike"}:
                # Redundant with the organisation id's alphabet (no "/"), but it spares z3 a long search when
                # paths are compared literally: the id ends at the path's first "/". (With wildcard patterns
                # the lemma slows z3 down instead.)
                s.add(z3.Implies(self.org_present, z3.IndexOf(path, self.text("/"), 0) == z3.Length(self.org)))
            k = _Key([path], z3.If(self.org_present, one, zero))
        elif key in SOURCE_KEYS and iam:
            k = _Key([z3.String(f"ctx:{key}", c)], zero)
        elif key in SERVICE_FLAG_KEYS:
            k = _Key([self.text("false" if iam else "true")], one)
        elif key in self.fixed:
            values = self.fixed[key] or ()
            k = _Key([self.text(v) for v in values], z3.IntVal(len(values), c))
        else:
            strs = [z3.String(f"ctx:{key}#{i}", c) for i in range(slots)]
            count = z3.Int(f"ctx:{key}#n", c)
            s.add(count >= 0, count <= slots)
            k = _Key(list(strs), count)
        n = len(k.strs)
        if used & _NUMERIC_OPS | used & {"NumericNotEquals"}:
            k.nums = [self._view(key, "num", i, k, z3.Real) for i in range(n)]
        if used & _DATE_OPS | used & {"DateNotEquals"}:
            k.dates = [self._view(key, "date", i, k, z3.Real) for i in range(n)]  # seconds, with fractions
        if used & {"IpAddress", "NotIpAddress"}:
            k.ips = [self._view(key, "ip", i, k, z3.Int) for i in range(n)]
            for v in k.ips:
                s.add(v >= 0, v < 2**32)
        return k

    def _view(self, key: str, kind: str, i: int, k: _Key, make: Callable[..., z3.ArithRef]) -> z3.ArithRef:
        var = make(f"ctx:{key}#{i}:{kind}", self.ctx)
        if key in self.fixed:  # a fixed value pins its numeric reading too
            text = (self.fixed[key] or ())[i]
            value: float | int | Decimal | None
            if kind == "num":
                value = _parse_number(text)
            elif kind == "date":
                value = parse_date(text)
            else:
                value = (_ip_range(text) or (None, None))[0]
            if value is None:
                self.s.add(self.true(False))
            else:
                self.s.add(_compare("Equals", var, value))
        return var

    def _unknown(self) -> z3.BoolRef:
        """A condition the encoding does not model: a fresh boolean (over-approximates access)."""
        self.approximated = True
        self._fresh += 1
        return z3.Bool(f"approx#{self._fresh}", self.ctx)

    def _match_one(self, base: str, k: _Key, i: int, value: str) -> z3.BoolRef:
        if "${" in value:
            return self._unknown()
        sv = k.strs[i]
        if base == "StringEquals" or base == "BinaryEquals":
            return sv == self.text(value)
        if base == "StringEqualsIgnoreCase":
            return self._ci_literal(sv, value)
        if base == "StringLike":
            return z3.InRe(sv, _glob_re(value, self.ctx))
        if base in ("ArnEquals", "ArnLike"):
            return z3.InRe(sv, _arn_re(value, self.ctx))
        if base == "Bool":
            return self._ci_literal(sv, value)
        if base in _NUMERIC_OPS:
            number = _parse_number(value)
            return self.true(False) if number is None or not k.nums else _compare(base, k.nums[i], number)
        if base in _DATE_OPS:
            date = parse_date(value)
            return self.true(False) if date is None or not k.dates else _compare(base, k.dates[i], date)
        if base == "IpAddress":
            rng = _ip_range(value)
            if rng is None or not k.ips:
                return self._unknown()
            return z3.And(k.ips[i] >= rng[0], k.ips[i] <= rng[1])
        return self._unknown()

    def _ci_literal(self, sv: z3.SeqRef, value: str) -> z3.BoolRef:
        c = self.ctx
        parts = [
            z3.Union(z3.Re(ch.lower(), c), z3.Re(ch.upper(), c)) if ch.lower() != ch.upper() else z3.Re(ch, c)
            for ch in value
        ]
        if not parts:
            return sv == self.text("")
        return z3.InRe(sv, parts[0] if len(parts) == 1 else z3.Concat(*parts))

    def condition(self, c: Condition) -> z3.BoolRef:
        k = self.keys[c.key]
        if c.operator == "Null":
            # Null true: the key is absent; false: present. Several values OR together.
            return self.any_of(z3.Not(k.present) if v.lower() == "true" else k.present for v in c.values)
        negated = c.operator in NEGATED_OPERATORS
        base = _POSITIVE_OF.get(c.operator, c.operator)
        n = len(k.strs)

        def hit(i: int) -> z3.BoolRef:  # slot i matches one of the condition's values (positive form)
            return self.any_of(self._match_one(base, k, i, v) for v in c.values)

        if c.set_op == "ForAllValues":
            out = self.all_of(z3.Implies(k.active(i), z3.Not(hit(i)) if negated else hit(i)) for i in range(n))
        elif c.set_op == "ForAnyValue":
            out = self.any_of(z3.And(k.active(i), z3.Not(hit(i)) if negated else hit(i)) for i in range(n))
        else:
            any_hit = self.any_of(z3.And(k.active(i), hit(i)) for i in range(n))
            out = z3.Not(any_hit) if negated else any_hit
        if c.if_exists and c.set_op is None:  # with a set operator, the operator alone decides absence
            out = z3.Or(z3.Not(k.present), out)
        return z3.simplify(out) if n == 0 else out

    # --- statements -----------------------------------------------------------------------------------

    def _named(self, e: Principal) -> z3.BoolRef:
        """The caller is the principal an element names directly (not through its account): a role ARN
        also names the role's sessions."""
        if e.kind == "AWS":
            fixed_principal = self.q.identity.principal
            if fixed_principal is not None:  # judged as the evaluator does (paths, sessions)
                return self.true(names_directly(e.value, _request_principal(fixed_principal)))
            # A generic caller is an IAM root, role or user ARN (a role's sessions carry its ARN as
            # aws:PrincipalArn and are named by it): equality suffices.
            return self.any_of(self.p == self.text(v) for v in direct_forms(e.value))
        if e.kind == "Service":
            return self.p == self.text(f"service:{e.value.lower()}")
        return self.p == self.text(f"{e.kind.lower()}:{e.value}")

    def _root_of(self, e: Principal) -> str | None:
        if e.kind == "AWS" and e.value.endswith(":root"):
            return account_of(e.value)
        return None

    def _element(self, e: Principal) -> z3.BoolRef:
        """A Principal element applies to the caller: named directly, or the caller's account root (an
        Allow through the account still needs the caller's IAM policies: see ``allowed``)."""
        if e.is_wildcard:
            return self.true(True)
        acct = self._root_of(e)
        if acct is not None:
            return z3.And(self.acct == self.text(acct), self.true(not self.is_service))
        return self._named(e)

    def _direct(self, e: Principal) -> z3.BoolRef:
        """The element names the caller itself: "*", its ARN, or it is that account's root user."""
        if e.is_wildcard:
            return self.true(True)
        if self._root_of(e) is not None:
            return self.p == self.text(e.value)
        return self._named(e)

    def _excluded(self, elements: tuple[Principal, ...]) -> z3.BoolRef:
        """NotPrincipal: the caller is excluded only when each of its identity levels is listed: its
        account, then its user or role, then its session (the root user has only the account level).

        A fixed principal is judged as the evaluator judges it. In a generic class a role acts through a
        session (``self.session`` names it), which is excluded only when the list names that session too:
        listing the role does not exempt its sessions (IAM guide, "AWS JSON policy elements:
        NotPrincipal", whose example lists the session, the role and the account)."""
        if any(e.is_wildcard for e in elements):
            return self.true(True)
        if self.is_service:
            return self.any_of(self._named(e) for e in elements if e.kind == "Service")
        fixed_principal = self.q.identity.principal
        if fixed_principal is not None:
            principal = _request_principal(fixed_principal)
            return self.true(not_principal_excludes(elements, principal, self.q.identity.account))
        roots = [a for a in (self._root_of(e) for e in elements) if a is not None]
        acct_listed = self.any_of(self.acct == self.text(a) for a in roots)
        # Equality with the caller's ARN: a user element names a user, a role element the role.
        listed = self.any_of(self._named(e) for e in elements if self._root_of(e) is None)
        sessions = []
        for e in elements:
            parts = session_parts(e.value) if e.kind == "AWS" else None
            if parts is not None and self.session is not None:
                partition, acct, role, name = parts
                role_arn = self.text(f"arn:{partition}:iam::{acct}:role/{role}")
                sessions.append(z3.And(self.p == role_arn, self.session == self.text(name)))
        session_listed = self.any_of(sessions)
        user_or_role = z3.If(self.is_role, z3.And(listed, session_listed), listed)
        return z3.And(acct_listed, z3.Or(self.is_root_user, user_or_role))

    def applies(self, st: Statement, direct_only: bool = False) -> z3.BoolRef:
        parts: list[z3.BoolRef] = []
        if st.principals is not None:
            match = self._direct if direct_only else self._element
            parts.append(self.any_of(match(e) for e in st.principals))
        elif st.not_principals is not None:
            parts.append(z3.Not(self._excluded(st.not_principals)))
        elif self.policy.kind == "key":
            return self.true(False)  # a key-policy statement without a principal applies to nobody
        parts.append(self._actions(st))
        parts.append(self._resources(st))
        parts.extend(self.condition(c) for c in st.conditions)
        return z3.And(*parts)

    def _actions(self, st: Statement) -> z3.BoolRef:
        patterns = st.actions if st.actions is not None else st.not_actions or ()
        hits = [i for i, a in enumerate(self.actions) if any(action_pattern(p).match(a) for p in patterns)]
        if st.not_actions is not None:
            hits = [i for i in range(len(self.actions)) if i not in hits]
        return self.any_of(self.act == i for i in hits)

    def _resources(self, st: Statement) -> z3.BoolRef:
        if st.resources is None and st.not_resources is None:
            return self.true(True)
        patterns = st.resources if st.resources is not None else st.not_resources or ()
        hit = self.any_of(z3.InRe(self.res, _glob_re(r, self.ctx)) for r in patterns)
        return z3.Not(hit) if st.not_resources is not None else hit

    # --- solving ----------------------------------------------------------------------------------------

    def allowed(self, policy: Policy | None = None) -> z3.BoolRef:
        """The request is allowed by ``policy`` (default: the encoder's), over the shared request variables."""
        if policy is not None and policy is not self.policy:
            saved, self.policy = self.policy, policy
            try:
                return self.allowed()
            finally:
                self.policy = saved
        allow_sts = [st for st in self.policy.statements if st.effect == "Allow"]
        denies = [self.applies(st) for st in self.policy.statements if st.effect == "Deny"]
        not_denied = z3.Not(self.any_of(denies))
        if not allow_sts:
            return self.true(False)
        some_allow = self.any_of(self.applies(st) for st in allow_sts)
        if self.policy.kind == "identity" or self.is_service or self.q.identity.iam_allows:
            return z3.And(some_allow, not_denied)
        # Without the caller's IAM policies, only a statement naming the caller itself, in the key's own
        # account, allows; the root user needs no identity policy.
        same_account = self.acct == self.text(self.q.key_account)
        direct = self.any_of(self.applies(st, direct_only=True) for st in allow_sts)
        return z3.And(z3.Or(z3.And(same_account, direct), z3.And(some_allow, self.is_root_user)), not_denied)

    def session_name(self, m: z3.ModelRef) -> str:
        """The session a generic role acts through in the model ("example" when any name would do)."""
        if self.session is None:
            return "example"
        value = m.eval(self.session, model_completion=True)
        name = value.as_string() if isinstance(value, z3.SeqRef) else ""
        return name if name and _SESSION_NAME.fullmatch(name) else "example"

    def request(self, m: z3.ModelRef) -> Request:
        def text(v: z3.ExprRef) -> str:
            val = m.eval(v, model_completion=True)
            return val.as_string() if isinstance(val, z3.SeqRef) else str(val)

        context: dict[str, tuple[str, ...]] = {}
        for key, k in self.keys.items():
            n = m.eval(k.count, model_completion=True).as_long()  # type: ignore[attr-defined]
            if n <= 0:
                continue
            values = []
            for i in range(n):
                if k.nums:
                    values.append(_number_text(m.eval(k.nums[i], model_completion=True)))
                elif k.dates:
                    values.append(date_text(_decimal(m.eval(k.dates[i], model_completion=True))))
                elif k.ips:
                    ip = m.eval(k.ips[i], model_completion=True).as_long()  # type: ignore[attr-defined]
                    values.append(str(ipaddress.IPv4Address(ip)))
                else:
                    values.append(text(k.strs[i]))
            context[key] = tuple(values)
        for key, fixed in self.fixed.items():
            if fixed and key not in context:
                context[key] = fixed
        idx = m.eval(self.act, model_completion=True).as_long()  # type: ignore[attr-defined]
        acct = text(self.acct)
        return Request(
            principal=text(self.p),
            action=self.actions[idx],
            resource=text(self.res),
            principal_account=acct or None,
            context=context,
        )


def _request_principal(principal: str) -> str:
    return "service:" + principal[8:].lower() if principal.lower().startswith("service:") else principal


def _number_text(v: z3.ExprRef) -> str:
    if z3.is_int_value(v):
        return str(v.as_long())  # type: ignore[attr-defined]
    if z3.is_rational_value(v):
        frac = v.as_fraction()  # type: ignore[attr-defined]
        return str(frac.numerator) if frac.denominator == 1 else repr(float(frac))
    return "0"


def _decimal(v: z3.ExprRef) -> Decimal:
    """A model's real value as a Decimal: exact for the decimal fractions dates are written with, else to
    the nanosecond (the evaluator then confirms the request or not)."""
    if z3.is_int_value(v):
        return Decimal(v.as_long())  # type: ignore[attr-defined]
    if z3.is_rational_value(v):
        frac = v.as_fraction()  # type: ignore[attr-defined]
        exact = Decimal(frac.numerator) / Decimal(frac.denominator)
        return exact if exact * frac.denominator == frac.numerator else exact.quantize(Decimal("1e-9"))
    return Decimal(0)


def prove(policy: Policy, question: Question, *, verify: bool = True) -> Proof:
    """Is there a request of the question's class that the policy allows?

    PROVED means none exists (within the encoding); COUNTEREXAMPLE carries one, confirmed by the direct
    evaluator when ``verify`` (the default).
    """
    if not question.actions:
        return Proof("proved", note="no candidate actions")
    proof = _solve(policy, question, verify, strict_accounts=False)
    if proof.status == "unknown" and proof.request is not None:
        proof = _solve(policy, question, verify, strict_accounts=True)
    return proof


def _solve(policy: Policy, question: Question, verify: bool, *, strict_accounts: bool) -> Proof:
    enc = _Encoder(policy, question, strict_accounts)
    enc.s.add(enc.allowed())
    result = enc.s.check()
    if result == z3.unsat:
        return Proof("proved")
    if result != z3.sat:
        return Proof("unknown", note=f"solver gave up: {enc.s.reason_unknown()}")
    model = enc.s.model()
    req = _relabel(enc.request(model), question)
    if verify:
        req = witness(
            req, question, lambda r: _evaluate(policy, r, question) is Decision.ALLOW, enc.session_name(model)
        )
        decision = _evaluate(policy, req, question)
        if decision is not Decision.ALLOW:
            return Proof("unknown", req, note=f"model not confirmed by the evaluator ({decision.value})")
    return Proof("counterexample", req, note="approximated conditions" if enc.approximated else "")


@dataclass(frozen=True)
class Differences:
    """What ``differences`` found: one confirmed example request per action that differs (in the
    question's action order) and the actions it could not decide, each with why."""

    found: tuple[Request, ...] = ()
    undecided: tuple[tuple[str, str], ...] = ()


def differences(new: Policy, old: Policy, question: Question) -> Differences:
    """Every action of the question for which some request of its class is allowed by ``new`` and not by
    ``old``: the complete set, with one example request each that the direct evaluator confirms.

    Each action found is blocked and the solver asked again, so the search ends after at most one round
    per candidate action. The examples do not depend on what z3 was asked before: every encoder has its
    own context (see ``_Encoder``)."""
    return _DiffSearch(new, old, question).run()


class _DiffSearch:
    def __init__(self, new: Policy, old: Policy, question: Question) -> None:
        self.new, self.old, self.q = new, old, question
        self.found: dict[str, Request] = {}
        self.undecided: dict[str, str] = {}

    def differs(self, r: Request) -> bool:
        return _evaluate(self.new, r, self.q) is Decision.ALLOW and _evaluate(self.old, r, self.q) is not Decision.ALLOW

    def encoder(self, q: Question, strict_accounts: bool = False) -> _Encoder:
        merged = Policy(self.new.kind, self.new.version, self.new.statements + self.old.statements)
        enc = _Encoder(merged, q, strict_accounts)  # the merged policy declares every condition key
        enc.s.add(enc.allowed(self.new), z3.Not(enc.allowed(self.old)))
        return enc

    def run(self) -> Differences:
        enc = self.encoder(self.q)
        remaining = list(enc.actions)
        while remaining:
            result = enc.s.check()
            if result == z3.unsat:
                break
            if result != z3.sat:  # too hard all at once: one action at a time
                for action in remaining:
                    self.one_action(enc, action)
                break
            model = enc.s.model()
            idx = model.eval(enc.act, model_completion=True).as_long()  # type: ignore[attr-defined]
            self.settle(enc, model)
            remaining.remove(enc.actions[idx])
            enc.s.add(enc.act != idx)
        order = {a: i for i, a in enumerate(enc.actions)}
        return Differences(
            tuple(self.found[a] for a in sorted(self.found, key=order.__getitem__)),
            tuple((a, self.undecided[a]) for a in sorted(self.undecided, key=order.__getitem__)),
        )

    def one_action(self, enc: _Encoder, action: str) -> None:
        enc.s.push()
        enc.s.add(enc.act == enc.actions.index(action))
        result = enc.s.check()
        if result == z3.sat:
            self.settle(enc, enc.s.model())
        elif result != z3.unsat:
            self.undecided[action] = f"solver gave up: {enc.s.reason_unknown()}"
        enc.s.pop()

    def settle(self, enc: _Encoder, model: z3.ModelRef, *, retry: bool = True) -> None:
        """Record the model's request if the evaluator confirms it; otherwise ask about its action once
        more with digit-only accounts (see ``_Encoder._any_account``) before calling it undecided."""
        req = witness(_relabel(enc.request(model), enc.q), enc.q, self.differs, enc.session_name(model))
        action = req.action
        if self.differs(req):
            self.found[action] = req
            return
        if not retry:
            self.undecided[action] = "the solver's example is not confirmed by the evaluator"
            return
        strict = self.encoder(replace(self.q, actions=(action,)), strict_accounts=True)
        result = strict.s.check()
        if result == z3.sat:
            self.settle(strict, strict.s.model(), retry=False)
        elif result != z3.unsat:
            self.undecided[action] = f"solver gave up: {strict.s.reason_unknown()}"


_EXAMPLE_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")  # what STS accepts as a RoleSessionName


def witness(req: Request, q: Question, keeps: Callable[[Request], bool], session: str = "example") -> Request:
    """The example request shown for a model: the solver's own names replaced by plain ones, each change
    kept only if the request still has the property ``keeps`` checks.

    In a generic class (no fixed principal) a role acts through its sessions: when the role itself does
    not show the property (a NotPrincipal list names it), its session ``session`` does. The principal is
    renamed ``role/example`` or ``user/example`` (the class is "any principal of ...": the name is an
    example), and, when the question has no key ARN, the key is the documentation's example key."""
    if q.identity.principal is None:
        if not keeps(req):
            session_arn = session_of(req.principal, session)
            if session_arn is not None and keeps(replace(req, principal=session_arn)):
                req = replace(req, principal=session_arn)
        req = _renamed(req, q, keeps)
    if q.resource is None:
        parts = req.resource.split(":", 5)
        if len(parts) == 6 and parts[2] == "kms":
            parts[3], parts[5] = "us-east-1", f"key/{_EXAMPLE_KEY_ID}"
            candidate = replace(req, resource=":".join(parts))
            if keeps(candidate):
                req = candidate
    return req


_GENERIC_NAME = re.compile(
    r"arn:(aws[a-z-]*):(?:iam::(\d{12}):(role|user)/([^/]+)|sts::(\d{12}):assumed-role/([^/]+)/.+)"
)


def _renamed(req: Request, q: Question, keeps: Callable[[Request], bool]) -> Request:
    """A generic class's role, user or session renamed ``example`` (the role ARN in the context too: a
    session's aws:PrincipalArn is its role's ARN)."""
    m = _GENERIC_NAME.fullmatch(req.principal)
    if m is None:
        return req
    partition, acct, kind, name = m[1], m[2] or m[5], m[3] or "role", m[4] or m[6]
    if name == "example":
        return req
    before, after = f"arn:{partition}:iam::{acct}:{kind}/{name}", f"arn:{partition}:iam::{acct}:{kind}/example"
    if after in q.identity.exclude_principals:
        return req
    principal = after if m[3] else f"arn:{partition}:sts::{acct}:assumed-role/example/example"
    context = {k: tuple(after if v == before else v for v in vals) for k, vals in req.context.items()}
    candidate = replace(req, principal=principal, context=context)
    return candidate if keeps(candidate) else req


def _relabel(req: Request, q: Question) -> Request:
    """Give a model's non-digit account id a real-looking one (see ``_Encoder._any_account``)."""
    acct = req.principal_account
    if not acct or acct.isdigit():
        return req
    taken = q.identity.exclude_accounts
    fresh = next(str(n) for n in range(999999999999, 0, -1) if str(n) not in taken and str(n) != acct)

    def swap(text: str) -> str:
        return text.replace(acct, fresh)

    context = {k: tuple(swap(v) for v in vals) for k, vals in req.context.items()}
    return Request(swap(req.principal), req.action, req.resource, fresh, context)


def _evaluate(policy: Policy, req: Request, q: Question) -> Decision:
    from kmsguard.policy.evaluate import evaluate

    return evaluate(policy, req, assume_iam_allows=q.identity.iam_allows, key_account=q.key_account).decision


def fixed(context: Mapping[str, Iterable[str] | None]) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """Question.fixed_context from a mapping (keys lower-cased; None = the key is absent)."""
    return tuple(sorted((k.lower(), None if v is None else tuple(v)) for k, v in context.items()))


# --- effective access: a combination of conditions from several policies -------------------------------

# A boolean combination of residual conditions (those on request context the principal chooses):
# ("cond", Condition) | ("and", (f, ...)) | ("or", (f, ...)) | ("not", f) | ("true",) | ("false",).
Formula = tuple[object, ...]
Reach = Literal["always", "sometimes", "never"]


def reach(formula: Formula, principal: str, key_account: str) -> tuple[Reach, str]:
    """Is ``formula`` true for every request context the caller can send ("always"), for some
    ("sometimes") or for none ("never")? Used by ``policy.access`` when the conditions of statements from
    several policies (key policy, identity policies, boundary, SCPs, RCPs, grants) interact. The second
    value is a note when the solver gave up or approximated: the answer is then the cautious one
    ("sometimes")."""
    conditions: list[Condition] = []
    _collect_conditions(formula, conditions)
    holder = Policy("identity", "2012-10-17", (Statement(0, None, "Allow", conditions=tuple(conditions)),))
    enc = _Encoder(holder, Question(("kms:decrypt",), Identity(principal=principal), key_account))
    expr = _formula(enc, formula)
    base = list(enc.s.assertions())
    enc.s.add(expr)
    some = enc.s.check()
    if some == z3.unsat:
        return "never", ""
    note = "approximated conditions" if enc.approximated else ""
    if some != z3.sat:
        return "sometimes", f"solver gave up: {enc.s.reason_unknown()}"
    enc.s.reset()
    enc.s.set("timeout", TIMEOUT_MS)
    enc.s.add(*base, z3.Not(expr))
    other = enc.s.check()
    if other == z3.unsat and not enc.approximated:
        return "always", ""
    if other != z3.sat and other != z3.unsat:
        note = f"solver gave up: {enc.s.reason_unknown()}"
    return "sometimes", note


def _collect_conditions(f: Formula, out: list[Condition]) -> None:
    tag = f[0]
    if tag == "cond":
        out.append(f[1])  # type: ignore[arg-type]
    elif tag in ("and", "or"):
        for g in f[1]:  # type: ignore[attr-defined]
            _collect_conditions(g, out)
    elif tag == "not":
        _collect_conditions(f[1], out)  # type: ignore[arg-type]


def _formula(enc: _Encoder, f: Formula) -> z3.BoolRef:
    tag = f[0]
    if tag == "cond":
        return enc.condition(f[1])  # type: ignore[arg-type]
    if tag == "and":
        return enc.all_of(_formula(enc, g) for g in f[1])  # type: ignore[attr-defined]
    if tag == "or":
        return enc.any_of(_formula(enc, g) for g in f[1])  # type: ignore[attr-defined]
    if tag == "not":
        return z3.Not(_formula(enc, f[1]))  # type: ignore[arg-type]
    return enc.true(tag == "true")
