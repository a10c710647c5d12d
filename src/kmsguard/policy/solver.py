"""Whole-policy questions as SMT problems (z3), in the spirit of AWS's Zelkova.

A question ("can a principal of this class perform one of these actions?") and a normalised policy
become one formula over symbolic request parts:

- the principal ARN (``_Encoder.principal``) and its account (``account``, 12 digits), its organisation
  (``org_id``, with the flag ``org_present``), the action (``action_index``, an index into the question's finite
  action list) and the key ARN (``resource``);
- every condition key the policy mentions (``_KeySlots``): a bounded list of string values (``count`` in 0..K,
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
from kmsguard.policy.actions import NEGATED_OPERATORS, POSITIVE_OF_NEGATED, action_pattern
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
_POSITIVE_OF = POSITIVE_OF_NEGATED  # policy.actions: one table for the evaluator and the solver
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


def question_partition(policy: Policy, question: Question) -> str:
    """The partition the question's principals and keys live in: the key's, the principal's, else that of the
    ARNs the policy quotes (a policy that quotes none cannot tell partitions apart), else ``aws``."""
    for given in (question.resource, question.identity.principal):
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
class _KeySlots:
    """The symbolic values of one condition key in the request: ``texts[i]`` is its i-th value as a string,
    and only the first ``count`` slots hold a value (count 0: the key is absent). A key compared with
    Numeric*, Date* or IpAddress operators also gets a reading of each slot as a number, a date (seconds,
    with fractions) or an IPv4 address (as an integer); those lists are empty otherwise."""

    texts: list[z3.SeqRef]
    count: z3.ArithRef
    numbers: list[z3.ArithRef] = field(default_factory=list)
    ipv4s: list[z3.ArithRef] = field(default_factory=list)
    dates: list[z3.ArithRef] = field(default_factory=list)

    def active(self, i: int) -> z3.BoolRef:
        """Slot ``i`` holds one of the key's values."""
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

    def __init__(self, policy: Policy, question: Question, strict_accounts: bool = False) -> None:
        self.strict_accounts = strict_accounts
        self.policy = policy
        self.question = question
        self.ctx = ctx = z3.Context()
        self.solver = z3.Solver(ctx=ctx)  # holds the request's shape; callers add what they ask about it
        self.solver.set("timeout", TIMEOUT_MS)
        self.approximated = False  # some condition was not modelled exactly (see ``_unknown``)
        self.fixed_context = dict(question.fixed_context)  # condition keys whose values the question fixes
        # The request, symbolically: who calls (its ARN, account and organisation), which action, on which key.
        self.principal = z3.String("principal", ctx)
        self.account = z3.String("account", ctx)
        self.org_id = z3.String("org", ctx)
        self.org_present = z3.Bool("org_present", ctx)
        self.resource = z3.String("resource", ctx)
        self.action_index = z3.Int("action", ctx)  # an index into ``actions``
        self.actions = tuple(a.lower() for a in question.actions)
        self.is_service = (question.identity.principal or "").startswith("service:")
        self.partition = question_partition(policy, question)
        self._approximations = 0  # how many fresh booleans ``_unknown`` has made (each needs its own name)
        self.is_root_user: z3.BoolRef = self.true(False)
        self.is_role: z3.BoolRef = self.true(False)  # a generic caller that is a role (acting through a session)
        # aws:PrincipalArn's value: the principal's ARN, except for a session, whose role's ARN it is.
        self.principal_arn: z3.SeqRef = self.principal
        self.session: z3.SeqRef | None = None
        self.keys: dict[str, _KeySlots] = {}  # every condition key the policy mentions (lower-cased)
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
        ident, solver, ctx = self.question.identity, self.solver, self.ctx
        if ident.principal is not None:
            principal = _request_principal(ident.principal)
            solver.add(self.principal == self.text(principal))
            # aws:PrincipalArn: a session carries its role's ARN, every other IAM principal its own.
            self.principal_arn = self.text(principal_info(principal, ident.account).arn or principal)
            self.is_root_user = self.true(ident.principal.endswith(":root") and account_of(ident.principal) is not None)
            acct = ident.account or account_of(ident.principal)
            solver.add(self.account == self.text(acct or ""))
        else:
            if ident.account is not None:
                solver.add(self.account == self.text(ident.account))
            else:
                self._any_account()
                for a in sorted(ident.exclude_accounts):
                    solver.add(self.account != self.text(a))
            # Its root user, or a role or user of it named without ":" or "/". A role stands for its
            # sessions (a role never signs a request itself); see ``_excluded`` and ``witness``.
            name_char = z3.Diff(_any_char(ctx), z3.Union(z3.Re(":", ctx), z3.Re("/", ctx)))
            named = z3.Concat(z3.Union(z3.Re("role/", ctx), z3.Re("user/", ctx)), z3.Plus(name_char))
            principal_resource = z3.String("principal_resource", ctx)
            solver.add(z3.InRe(principal_resource, z3.Union(z3.Re("root", ctx), named)))
            # Kept as its own term: z3 is slow on SuffixOf(":root", principal) over the concatenation.
            self.is_root_user = principal_resource == self.text("root")
            self.is_role = z3.PrefixOf(self.text("role/"), principal_resource)
            self.session = z3.String("session", ctx)  # the name of the session a role acts through
            prefix = f"arn:{self.partition}:iam::"
            solver.add(self.principal == z3.Concat(self.text(prefix), self.account, self.text(":"), principal_resource))
            for arn in sorted(ident.exclude_principals):
                solver.add(self.principal != self.text(arn))
                parts = session_parts(arn)
                if parts is not None:  # that session is not in the class; its role's other sessions are
                    role_arn = self.text(f"arn:{parts[0]}:iam::{parts[1]}:role/{parts[2]}")
                    solver.add(z3.Not(z3.And(self.principal == role_arn, self.session == self.text(parts[3]))))
        if ident.org_mode == "fixed" and ident.org_id:
            solver.add(self.org_present, self.org_id == self.text(ident.org_id))
        elif ident.org_mode == "absent" or self.is_service:
            solver.add(z3.Not(self.org_present))
        else:
            # Any organisation id: o-[a-z0-9]{10,32} (no "/" or ":", so an org-path pattern cannot stretch it).
            solver.add(z3.Implies(self.org_present, z3.InRe(self.org_id, _org_id_re(ctx))))
            for o in sorted(ident.exclude_orgs):
                solver.add(z3.Implies(self.org_present, self.org_id != self.text(o)))

    def _any_account(self) -> None:
        """A 12-character account id. Requiring digits is slow in z3's string solver, so by default any
        12 characters stand for an account (a larger domain: proofs stay proofs), and a
        counter-example with a non-digit account is re-labelled with digits (``_relabel``) and confirmed by
        the evaluator; ``strict_accounts`` requires digits, for when that confirmation fails."""
        if self.strict_accounts:
            self.solver.add(z3.InRe(self.account, z3.Loop(z3.Range("0", "9", self.ctx), 12, 12)))
        else:
            self.solver.add(z3.Length(self.account) == 12)

    def _request_shape(self) -> None:
        solver = self.solver
        solver.add(self.action_index >= 0, self.action_index < len(self.actions))
        if self.question.resource is not None:
            solver.add(self.resource == self.text(self.question.resource))
        else:
            region, key_id = z3.String("resource_region", self.ctx), z3.String("resource_key_id", self.ctx)
            for part in (region, key_id):
                solver.add(z3.Length(part) > 0, z3.Not(z3.Contains(part, self.text(":"))))
            account = self.text(f":{self.question.key_account}:key/")
            solver.add(self.resource == z3.Concat(self.text(f"arn:{self.partition}:kms:"), region, account, key_id))

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
            self.keys[key] = self._slots_for(key, used, 2 if key in multi else 1)

    def _slots_for(self, key: str, used: set[str], n_slots: int) -> _KeySlots:
        """The variables of condition key ``key`` (compared with the operators ``used``): tied to the principal
        variables for identity keys, constants for keys the question fixes, else ``n_slots`` free values."""
        solver, ctx = self.solver, self.ctx
        one, zero = z3.IntVal(1, ctx), z3.IntVal(0, ctx)
        iam = not self.is_service
        if key in ACCOUNT_KEYS:
            slots = _KeySlots([self.account], one if iam else zero)
        elif key in ARN_KEYS:
            slots = _KeySlots([self.principal_arn], one if iam else zero)
        elif key in ORG_KEYS:
            slots = _KeySlots([self.org_id], z3.If(self.org_present, one, zero))
        elif key in ORG_PATH_KEYS:
            path = z3.String(f"ctx:{key}", ctx)
            solver.add(z3.PrefixOf(z3.Concat(self.org_id, self.text("/")), path))
            if not used & {"StringLike", "StringNotLike"}:
                # Redundant with the organisation id's alphabet (no "/"), but it spares z3 a long search when
                # paths are compared literally: the id ends at the path's first "/". (With wildcard patterns
                # the lemma slows z3 down instead.)
                solver.add(z3.Implies(self.org_present, z3.IndexOf(path, self.text("/"), 0) == z3.Length(self.org_id)))
            slots = _KeySlots([path], z3.If(self.org_present, one, zero))
        elif key in SOURCE_KEYS and iam:
            slots = _KeySlots([z3.String(f"ctx:{key}", ctx)], zero)
        elif key in SERVICE_FLAG_KEYS:
            slots = _KeySlots([self.text("false" if iam else "true")], one)
        elif key in self.fixed_context:
            values = self.fixed_context[key] or ()
            slots = _KeySlots([self.text(v) for v in values], z3.IntVal(len(values), ctx))
        else:
            strs = [z3.String(f"ctx:{key}#{i}", ctx) for i in range(n_slots)]
            count = z3.Int(f"ctx:{key}#n", ctx)
            solver.add(count >= 0, count <= n_slots)
            slots = _KeySlots(list(strs), count)
        n = len(slots.texts)
        if used & _NUMERIC_OPS | used & {"NumericNotEquals"}:
            slots.numbers = [self._view(key, "num", i, slots, z3.Real) for i in range(n)]
        if used & _DATE_OPS | used & {"DateNotEquals"}:
            slots.dates = [self._view(key, "date", i, slots, z3.Real) for i in range(n)]  # seconds, with fractions
        if used & {"IpAddress", "NotIpAddress"}:
            slots.ipv4s = [self._view(key, "ip", i, slots, z3.Int) for i in range(n)]
            for v in slots.ipv4s:
                solver.add(v >= 0, v < 2**32)
        return slots

    def _view(self, key: str, kind: str, i: int, slots: _KeySlots, make: Callable[..., z3.ArithRef]) -> z3.ArithRef:
        """Slot ``i`` of ``key`` read as a number, a date or an IPv4 address (``kind``): a variable of its own,
        pinned to the fixed value's reading when the question fixes the key."""
        var = make(f"ctx:{key}#{i}:{kind}", self.ctx)
        if key in self.fixed_context:  # a fixed value pins its numeric reading too
            text = (self.fixed_context[key] or ())[i]
            value: float | int | Decimal | None
            if kind == "num":
                value = _parse_number(text)
            elif kind == "date":
                value = parse_date(text)
            else:
                value = (_ip_range(text) or (None, None))[0]
            if value is None:
                self.solver.add(self.true(False))
            else:
                self.solver.add(_compare("Equals", var, value))
        return var

    def _unknown(self) -> z3.BoolRef:
        """A condition the encoding does not model: a fresh boolean (over-approximates access)."""
        self.approximated = True
        self._approximations += 1
        return z3.Bool(f"approx#{self._approximations}", self.ctx)

    def _match_one(self, base: str, slots: _KeySlots, i: int, value: str) -> z3.BoolRef:
        if "${" in value:
            return self._unknown()
        slot = slots.texts[i]
        if base == "StringEquals" or base == "BinaryEquals":
            return slot == self.text(value)
        if base == "StringEqualsIgnoreCase":
            return self._ci_literal(slot, value)
        if base == "StringLike":
            return z3.InRe(slot, _glob_re(value, self.ctx))
        if base in ("ArnEquals", "ArnLike"):
            return z3.InRe(slot, _arn_re(value, self.ctx))
        if base == "Bool":
            return self._ci_literal(slot, value)
        if base in _NUMERIC_OPS:
            number = _parse_number(value)
            return self.true(False) if number is None or not slots.numbers else _compare(base, slots.numbers[i], number)
        if base in _DATE_OPS:
            date = parse_date(value)
            return self.true(False) if date is None or not slots.dates else _compare(base, slots.dates[i], date)
        if base == "IpAddress":
            rng = _ip_range(value)
            if rng is None or not slots.ipv4s:
                return self._unknown()
            return z3.And(slots.ipv4s[i] >= rng[0], slots.ipv4s[i] <= rng[1])
        return self._unknown()

    def _ci_literal(self, slot: z3.SeqRef, value: str) -> z3.BoolRef:
        ctx = self.ctx
        parts = [
            z3.Union(z3.Re(ch.lower(), ctx), z3.Re(ch.upper(), ctx)) if ch.lower() != ch.upper() else z3.Re(ch, ctx)
            for ch in value
        ]
        if not parts:
            return slot == self.text("")
        return z3.InRe(slot, parts[0] if len(parts) == 1 else z3.Concat(*parts))

    def condition(self, c: Condition) -> z3.BoolRef:
        slots = self.keys[c.key]
        if c.operator == "Null":
            # Null true: the key is absent; false: present. Several values OR together.
            return self.any_of(z3.Not(slots.present) if v.lower() == "true" else slots.present for v in c.values)
        negated = c.operator in NEGATED_OPERATORS
        base = _POSITIVE_OF.get(c.operator, c.operator)
        n = len(slots.texts)

        def hit(i: int) -> z3.BoolRef:  # slot i matches one of the condition's values (positive form)
            return self.any_of(self._match_one(base, slots, i, v) for v in c.values)

        if c.set_op == "ForAllValues":
            out = self.all_of(z3.Implies(slots.active(i), z3.Not(hit(i)) if negated else hit(i)) for i in range(n))
        elif c.set_op == "ForAnyValue":
            out = self.any_of(z3.And(slots.active(i), z3.Not(hit(i)) if negated else hit(i)) for i in range(n))
        else:
            any_hit = self.any_of(z3.And(slots.active(i), hit(i)) for i in range(n))
            out = z3.Not(any_hit) if negated else any_hit
        if c.if_exists and c.set_op is None:  # with a set operator, the operator alone decides absence
            out = z3.Or(z3.Not(slots.present), out)
        return z3.simplify(out) if n == 0 else out

    # --- statements -----------------------------------------------------------------------------------

    def _named(self, e: Principal) -> z3.BoolRef:
        """The caller is the principal an element names directly (not through its account): a role ARN
        also names the role's sessions."""
        if e.kind == "AWS":
            fixed_principal = self.question.identity.principal
            if fixed_principal is not None:  # judged as the evaluator does (paths, sessions)
                return self.true(names_directly(e.value, _request_principal(fixed_principal)))
            # A generic caller is an IAM root, role or user ARN (a role's sessions carry its ARN as
            # aws:PrincipalArn and are named by it): equality suffices.
            return self.any_of(self.principal == self.text(v) for v in direct_forms(e.value))
        if e.kind == "Service":
            return self.principal == self.text(f"service:{e.value.lower()}")
        return self.principal == self.text(f"{e.kind.lower()}:{e.value}")

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
            return z3.And(self.account == self.text(acct), self.true(not self.is_service))
        return self._named(e)

    def _direct(self, e: Principal) -> z3.BoolRef:
        """The element names the caller itself: "*", its ARN, or it is that account's root user."""
        if e.is_wildcard:
            return self.true(True)
        if self._root_of(e) is not None:
            return self.principal == self.text(e.value)
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
        fixed_principal = self.question.identity.principal
        if fixed_principal is not None:
            principal = _request_principal(fixed_principal)
            return self.true(not_principal_excludes(elements, principal, self.question.identity.account))
        roots = [a for a in (self._root_of(e) for e in elements) if a is not None]
        acct_listed = self.any_of(self.account == self.text(a) for a in roots)
        # Equality with the caller's ARN: a user element names a user, a role element the role.
        listed = self.any_of(self._named(e) for e in elements if self._root_of(e) is None)
        sessions = []
        for e in elements:
            parts = session_parts(e.value) if e.kind == "AWS" else None
            if parts is not None and self.session is not None:
                partition, acct, role, name = parts
                role_arn = self.text(f"arn:{partition}:iam::{acct}:role/{role}")
                sessions.append(z3.And(self.principal == role_arn, self.session == self.text(name)))
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
        return self.any_of(self.action_index == i for i in hits)

    def _resources(self, st: Statement) -> z3.BoolRef:
        if st.resources is None and st.not_resources is None:
            return self.true(True)
        patterns = st.resources if st.resources is not None else st.not_resources or ()
        hit = self.any_of(z3.InRe(self.resource, _glob_re(r, self.ctx)) for r in patterns)
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
        if self.policy.kind == "identity" or self.is_service or self.question.identity.iam_allows:
            return z3.And(some_allow, not_denied)
        # Without the caller's IAM policies, only a statement naming the caller itself, in the key's own
        # account, allows; the root user needs no identity policy.
        same_account = self.account == self.text(self.question.key_account)
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
        for key, slots in self.keys.items():
            n = m.eval(slots.count, model_completion=True).as_long()  # type: ignore[attr-defined]
            if n <= 0:
                continue
            values = []
            for i in range(n):
                if slots.numbers:
                    values.append(_number_text(m.eval(slots.numbers[i], model_completion=True)))
                elif slots.dates:
                    values.append(date_text(_decimal(m.eval(slots.dates[i], model_completion=True))))
                elif slots.ipv4s:
                    ip = m.eval(slots.ipv4s[i], model_completion=True).as_long()  # type: ignore[attr-defined]
                    values.append(str(ipaddress.IPv4Address(ip)))
                else:
                    values.append(text(slots.texts[i]))
            context[key] = tuple(values)
        for key, fixed in self.fixed_context.items():
            if fixed and key not in context:
                context[key] = fixed
        idx = m.eval(self.action_index, model_completion=True).as_long()  # type: ignore[attr-defined]
        acct = text(self.account)
        return Request(
            principal=text(self.principal),
            action=self.actions[idx],
            resource=text(self.resource),
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
    enc.solver.add(enc.allowed())
    result = enc.solver.check()
    if result == z3.unsat:
        return Proof("proved")
    if result != z3.sat:
        return Proof("unknown", note=f"solver gave up: {enc.solver.reason_unknown()}")
    model = enc.solver.model()
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
        self.new, self.old, self.question = new, old, question
        self.found: dict[str, Request] = {}
        self.undecided: dict[str, str] = {}

    def differs(self, r: Request) -> bool:
        return (
            _evaluate(self.new, r, self.question) is Decision.ALLOW
            and _evaluate(self.old, r, self.question) is not Decision.ALLOW
        )

    def encoder(self, question: Question, strict_accounts: bool = False) -> _Encoder:
        merged = Policy(self.new.kind, self.new.version, self.new.statements + self.old.statements)
        enc = _Encoder(merged, question, strict_accounts)  # the merged policy declares every condition key
        enc.solver.add(enc.allowed(self.new), z3.Not(enc.allowed(self.old)))
        return enc

    def run(self) -> Differences:
        enc = self.encoder(self.question)
        remaining = list(enc.actions)
        while remaining:
            result = enc.solver.check()
            if result == z3.unsat:
                break
            if result != z3.sat:  # too hard all at once: one action at a time
                for action in remaining:
                    self.one_action(enc, action)
                break
            model = enc.solver.model()
            idx = model.eval(enc.action_index, model_completion=True).as_long()  # type: ignore[attr-defined]
            self.settle(enc, model)
            remaining.remove(enc.actions[idx])
            enc.solver.add(enc.action_index != idx)
        order = {a: i for i, a in enumerate(enc.actions)}
        return Differences(
            tuple(self.found[a] for a in sorted(self.found, key=order.__getitem__)),
            tuple((a, self.undecided[a]) for a in sorted(self.undecided, key=order.__getitem__)),
        )

    def one_action(self, enc: _Encoder, action: str) -> None:
        enc.solver.push()
        enc.solver.add(enc.action_index == enc.actions.index(action))
        result = enc.solver.check()
        if result == z3.sat:
            self.settle(enc, enc.solver.model())
        elif result != z3.unsat:
            self.undecided[action] = f"solver gave up: {enc.solver.reason_unknown()}"
        enc.solver.pop()

    def settle(self, enc: _Encoder, model: z3.ModelRef, *, retry: bool = True) -> None:
        """Record the model's request if the evaluator confirms it; otherwise ask about its action once
        more with digit-only accounts (see ``_Encoder._any_account``) before calling it undecided."""
        req = witness(_relabel(enc.request(model), enc.question), enc.question, self.differs, enc.session_name(model))
        action = req.action
        if self.differs(req):
            self.found[action] = req
            return
        if not retry:
            self.undecided[action] = "the solver's example is not confirmed by the evaluator"
            return
        strict = self.encoder(replace(self.question, actions=(action,)), strict_accounts=True)
        result = strict.solver.check()
        if result == z3.sat:
            self.settle(strict, strict.solver.model(), retry=False)
        elif result != z3.unsat:
            self.undecided[action] = f"solver gave up: {strict.solver.reason_unknown()}"


_EXAMPLE_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")  # what STS accepts as a RoleSessionName


def witness(req: Request, question: Question, keeps: Callable[[Request], bool], session: str = "example") -> Request:
    """The example request shown for a model: the solver's own names replaced by plain ones, each change
    kept only if the request still has the property ``keeps`` checks.

    In a generic class (no fixed principal) a role acts through its sessions: when the role itself does
    not show the property (a NotPrincipal list names it), its session ``session`` does. The principal is
    renamed ``role/example`` or ``user/example`` (the class is "any principal of ...": the name is an
    example), and, when the question has no key ARN, the key is the documentation's example key."""
    if question.identity.principal is None:
        if not keeps(req):
            session_arn = session_of(req.principal, session)
            if session_arn is not None and keeps(replace(req, principal=session_arn)):
                req = replace(req, principal=session_arn)
        req = _renamed(req, question, keeps)
    if question.resource is None:
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


def _renamed(req: Request, question: Question, keeps: Callable[[Request], bool]) -> Request:
    """A generic class's role, user or session renamed ``example`` (the role ARN in the context too: a
    session's aws:PrincipalArn is its role's ARN)."""
    m = _GENERIC_NAME.fullmatch(req.principal)
    if m is None:
        return req
    partition, acct, kind, name = m[1], m[2] or m[5], m[3] or "role", m[4] or m[6]
    if name == "example":
        return req
    before, after = f"arn:{partition}:iam::{acct}:{kind}/{name}", f"arn:{partition}:iam::{acct}:{kind}/example"
    if after in question.identity.exclude_principals:
        return req
    principal = after if m[3] else f"arn:{partition}:sts::{acct}:assumed-role/example/example"
    context = {k: tuple(after if v == before else v for v in vals) for k, vals in req.context.items()}
    candidate = replace(req, principal=principal, context=context)
    return candidate if keeps(candidate) else req


def _relabel(req: Request, question: Question) -> Request:
    """Give a model's non-digit account id a real-looking one (see ``_Encoder._any_account``)."""
    acct = req.principal_account
    if not acct or acct.isdigit():
        return req
    taken = question.identity.exclude_accounts
    fresh = next(str(n) for n in range(999999999999, 0, -1) if str(n) not in taken and str(n) != acct)

    def swap(text: str) -> str:
        return text.replace(acct, fresh)

    context = {k: tuple(swap(v) for v in vals) for k, vals in req.context.items()}
    return Request(swap(req.principal), req.action, req.resource, fresh, context)


def _evaluate(policy: Policy, req: Request, question: Question) -> Decision:
    from kmsguard.policy.evaluate import evaluate

    return evaluate(
        policy, req, assume_iam_allows=question.identity.iam_allows, key_account=question.key_account
    ).decision


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
    base = list(enc.solver.assertions())
    enc.solver.add(expr)
    some = enc.solver.check()
    if some == z3.unsat:
        return "never", ""
    note = "approximated conditions" if enc.approximated else ""
    if some != z3.sat:
        return "sometimes", f"solver gave up: {enc.solver.reason_unknown()}"
    enc.solver.reset()
    enc.solver.set("timeout", TIMEOUT_MS)
    enc.solver.add(*base, z3.Not(expr))
    other = enc.solver.check()
    if other == z3.unsat and not enc.approximated:
        return "always", ""
    if other != z3.sat and other != z3.unsat:
        note = f"solver gave up: {enc.solver.reason_unknown()}"
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
