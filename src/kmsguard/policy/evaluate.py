"""The direct evaluator: one Request against a key policy (and, optionally, the caller's IAM policies).

AWS's documented logic, as it applies to a KMS key:

1. An explicit Deny in any applicable policy (the key policy or the caller's identity policies) wins.
2. Otherwise the key policy must allow the request. A statement allows *directly* when it names the caller
   (its user ARN, its role ARN or one of its sessions, a service principal, ``"*"``) and the caller is in
   the key's account. It allows *by delegation* when it names the caller's account root
   (``arn:aws:iam::ACCT:root`` or the account-id shorthand): "let this account's IAM policies decide".
3. A delegated allow counts only when the caller's identity policies allow the request too (given as
   ``iam_policies`` or asserted with ``assume_iam_allows``); the root user needs no identity policy.
4. A caller in another account than the key's always needs both: a key-policy statement naming it or its
   account, and its own account's identity policies.

Speed: each Policy is compiled once (cached by identity) into matchers with precompiled patterns; action
matches are memoised per statement; principals are parsed once per distinct string. No regular expression
is compiled per request except for ``*Like`` values that contain policy variables.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from functools import lru_cache
from typing import Any

from kmsguard.policy.actions import POSITIVE_OF_NEGATED, VARIABLE_OPERATORS
from kmsguard.policy.model import Condition, Decision, EvaluationResult, Policy, Principal, Request, Statement
from kmsguard.policy.normalize import PrincipalInfo, principal_info
from kmsguard.policy.parse import parse_date

Context = Mapping[str, tuple[str, ...]]
ValueTest = Callable[[str, Context], bool]  # does one request value match any of the policy's values?
CondTest = Callable[[Context], bool]


class PrincipalMatch(IntEnum):
    """How a statement's Principal (or NotPrincipal) element covers the caller; falsy when it does not."""

    NO_MATCH = 0
    DIRECT = 1  # names the caller itself ("*", its ARN, its role, its service) or NotPrincipal leaves it in
    VIA_ACCOUNT = 2  # names the caller's account root: that account's identity policies must allow too


# Bound once as module globals: the evaluator reads them per statement, and an attribute of an enum class costs
# several times a global's lookup there.
NO_MATCH, DIRECT, VIA_ACCOUNT = PrincipalMatch.NO_MATCH, PrincipalMatch.DIRECT, PrincipalMatch.VIA_ACCOUNT

# The 2008-10-17 policy language has no policy variables (${aws:username} is literal text there).
_NO_VARIABLES_VERSION = "2008-10-17"
# Actions remembered per compiled statement (a bound on memory: requests name only a few dozen KMS actions).
_ACTION_MEMO_MAX = 4096

_POSITIVE = POSITIVE_OF_NEGATED  # policy.actions: one table for the evaluator and the solver

# ------------------------------------------------------------------------------------- policy variables

_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_DEFAULT = re.compile(r"\s*([^,]+?)\s*(?:,\s*'([^']*)'\s*)?")
_LITERAL_VARS = {"*": "*", "?": "?", "$": "$"}

# A template is a tuple of parts: ("lit", text) for policy text, ("var", key, default) for a variable.
Template = tuple[tuple[str, ...], ...]


@lru_cache(maxsize=2048)
def _template(text: str) -> Template | None:
    """Split a value with ``${...}`` variables into parts; None when it has no variables."""
    if "${" not in text:
        return None
    parts: list[tuple[str, ...]] = []
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            parts.append(("lit", text[pos : m.start()]))
        inner = m.group(1)
        if inner in _LITERAL_VARS:
            parts.append(("esc", _LITERAL_VARS[inner]))  # ${*} etc.: the character itself, never a wildcard
        else:
            dm = _VAR_DEFAULT.fullmatch(inner)
            if dm is not None and dm.group(2) is not None:
                parts.append(("var", dm.group(1).lower(), dm.group(2)))  # ${key, 'default'}
            else:
                parts.append(("var", (dm.group(1) if dm else inner).lower()))
        pos = m.end()
    if pos < len(text):
        parts.append(("lit", text[pos:]))
    return tuple(parts)


def _resolve(template: Template, ctx: Context, like: bool) -> str | None:
    """Substitute variables from the request context. A variable whose key is absent (and has no default)
    or is multi-valued cannot be resolved: the value then matches nothing (None). For ``*Like`` values the
    result is a regular expression in which substituted text is literal."""
    out: list[str] = []
    for part in template:
        tag = part[0]
        if tag == "lit":
            out.append(_glob_rx(part[1]) if like else part[1])
            continue
        if tag == "esc":
            out.append(re.escape(part[1]) if like else part[1])
            continue
        vals = ctx.get(part[1])
        if vals is not None and len(vals) == 1:
            text = vals[0]
        elif len(part) == 3:
            text = part[2]
        else:
            return None
        out.append(re.escape(text) if like else text)
    return "".join(out)


def _glob_rx(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@lru_cache(maxsize=4096)
def _rx(source: str) -> re.Pattern[str]:
    return re.compile(source + r"\Z", re.DOTALL)


# ---------------------------------------------------------------------------------- value matchers


def _split_vars(values: Sequence[str], variables: bool) -> tuple[list[str], list[Template]]:
    plain: list[str] = []
    templated: list[Template] = []
    for v in values:
        t = _template(v) if variables else None
        if t is None:
            plain.append(v)
        else:
            templated.append(t)
    return plain, templated


def _string_test(base: str, values: Sequence[str], variables: bool) -> ValueTest:
    plain, templated = _split_vars(values, variables)
    if base == "StringEqualsIgnoreCase":
        folded = frozenset(v.casefold() for v in plain)

        def eq_ic(v: str, ctx: Context) -> bool:
            f = v.casefold()
            if f in folded:
                return True
            return any((r := _resolve(t, ctx, False)) is not None and r.casefold() == f for t in templated)

        return eq_ic
    if base == "StringLike":
        exact = frozenset(v for v in plain if "*" not in v and "?" not in v)
        globs = [v for v in plain if v not in exact]
        combined = _rx("(?:" + "|".join(_glob_rx(g) for g in globs) + ")") if globs else None

        def like(v: str, ctx: Context) -> bool:
            if v in exact or (combined is not None and combined.match(v)):
                return True
            return any((r := _resolve(t, ctx, True)) is not None and _rx(r).match(v) for t in templated)

        return like
    exact_set = frozenset(plain)  # StringEquals: exact and case-sensitive

    def eq(v: str, ctx: Context) -> bool:
        if v in exact_set:
            return True
        return any(_resolve(t, ctx, False) == v for t in templated)

    return eq


def _bool_test(values: Sequence[str], variables: bool) -> ValueTest:
    plain, templated = _split_vars(values, variables)
    wanted = frozenset(v.lower() for v in plain)

    def test(v: str, ctx: Context) -> bool:
        lv = v.lower()
        return lv in wanted or any((r := _resolve(t, ctx, False)) is not None and r.lower() == lv for t in templated)

    return test


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _ordered_test(base: str, values: Sequence[str]) -> ValueTest:
    """Numeric* and Date*: the request value compared with each policy value (request OP policy)."""
    numeric = base.startswith("Numeric")
    cmp = _COMPARE[base[len("Numeric") :] if numeric else base[len("Date") :]]
    convert: Callable[[str], Any] = _decimal if numeric else _cached_date
    policy_vals = [p for p in (convert(v) for v in values) if p is not None]

    def test(v: str, ctx: Context) -> bool:
        rv = convert(v)
        return rv is not None and any(cmp(rv, p) for p in policy_vals)

    return test


@lru_cache(maxsize=4096)
def _cached_date(text: str) -> Decimal | None:
    return parse_date(text)


def _binary(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


def _binary_test(values: Sequence[str]) -> ValueTest:
    wanted = frozenset(_binary(v) for v in values)
    return lambda v, ctx: _binary(v) in wanted


@lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        try:  # a request value given in CIDR form (e.g. "203.0.113.7/32") still names one address
            return ipaddress.ip_network(text.strip(), strict=False).network_address
        except ValueError:
            return None


def _ip_test(values: Sequence[str]) -> ValueTest:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            continue

    def test(v: str, ctx: Context) -> bool:
        ip = _ip(v)
        return ip is not None and any(ip.version == n.version and ip in n for n in nets)

    return test


def _arn_parts(pattern: str) -> tuple[re.Pattern[str] | str, ...] | None:
    parts = pattern.split(":", 5)
    if len(parts) != 6:
        return None
    return tuple(_rx(_glob_rx(p)) if ("*" in p or "?" in p) else p for p in parts)


def _arn_test(values: Sequence[str], variables: bool) -> ValueTest:
    """ArnEquals/ArnLike (documented as the same): each of the six colon-separated parts is compared on its
    own, case-sensitively, with * and ? wildcards inside a part. A bare "*" matches any value."""
    plain, templated = _split_vars(values, variables)
    match_all = "*" in plain
    compiled = [c for c in (_arn_parts(v) for v in plain) if c is not None]

    def parts_match(req_parts: list[str], pat: tuple[re.Pattern[str] | str, ...]) -> bool:
        for rp, pp in zip(req_parts, pat, strict=True):
            if isinstance(pp, str):
                if rp != pp:
                    return False
            elif not pp.match(rp):
                return False
        return True

    def test(v: str, ctx: Context) -> bool:
        if match_all:
            return True
        req_parts = v.split(":", 5)
        if len(req_parts) != 6:
            return False
        if any(parts_match(req_parts, pat) for pat in compiled):
            return True
        for t in templated:
            r = _resolve(t, ctx, False)
            pat = _arn_parts(r) if r is not None else None
            if pat is not None and parts_match(req_parts, pat):
                return True
        return False

    return test


def _value_test(base: str, values: Sequence[str], variables: bool) -> ValueTest:
    if base.startswith("String"):
        return _string_test(base, values, variables)
    if base.startswith(("Numeric", "Date")):
        return _ordered_test(base, values)
    if base == "Bool":
        return _bool_test(values, variables)
    if base == "BinaryEquals":
        return _binary_test(values)
    if base == "IpAddress":
        return _ip_test(values)
    if base.startswith("Arn"):
        return _arn_test(values, variables)
    raise ValueError(f"unknown condition operator {base!r}")


def compile_condition(cond: Condition, *, variables: bool = True) -> CondTest:
    """A condition -> a test of a (normalised) request context, with the documented absent-key rules:

    - ``Null``: "true" matches when the key is absent, "false" when it is present (values OR'ed).
    - absent key with ``ForAllValues:`` -> true; with ``ForAnyValue:`` -> false (the set operator decides,
      also with IfExists); otherwise with ``...IfExists`` -> true; otherwise a negated operator
      (StringNotEquals, ArnNotLike, NotIpAddress, ...) -> true and any other -> false.
    - present key: several policy values are OR'ed; a negated operator is the NOR of its positive form.
      Without a set operator a multi-valued key matches when any of its values matches.
      ``ForAnyValue``: some request value satisfies the operator; ``ForAllValues``: every one does.
    """
    key = cond.key
    base = cond.operator
    if base == "Null":
        wants_absent = any(v.lower() == "true" for v in cond.values)
        wants_present = any(v.lower() == "false" for v in cond.values)
        return lambda ctx: wants_absent if not ctx.get(key) else wants_present
    negated = base in _POSITIVE
    test = _value_test(_POSITIVE.get(base, base), cond.values, variables and base in VARIABLE_OPERATORS)
    set_op = cond.set_op
    # absent key: the set operator decides when there is one, else IfExists, else negation
    absent_result = (cond.if_exists or negated) if set_op is None else set_op == "ForAllValues"

    if set_op is None:

        def plain(ctx: Context) -> bool:
            vals = ctx.get(key)
            if not vals:
                return absent_result
            for v in vals:
                if test(v, ctx):
                    return not negated
            return negated

        return plain

    want = not negated  # what test() must say for one request value to satisfy the operator
    if set_op == "ForAnyValue":
        return lambda ctx: any(test(v, ctx) == want for v in vals) if (vals := ctx.get(key)) else absent_result
    return lambda ctx: all(test(v, ctx) == want for v in vals) if (vals := ctx.get(key)) else absent_result


def condition_matches(cond: Condition, context: Context, *, variables: bool = True) -> bool:
    """Convenience for tests and the solver's cross-checks: does one condition hold for this context?"""
    return _compiled_condition(cond, variables)(context)


@lru_cache(maxsize=4096)
def _compiled_condition(cond: Condition, variables: bool) -> CondTest:
    return compile_condition(cond, variables=variables)


# ------------------------------------------------------------------------------------ compiled policy


def principal_token(p: Principal) -> str | None:
    """The token a Principal entry contributes; None for the wildcard."""
    v = p.value
    if p.kind == "AWS":
        if v == "*":
            return None
        if v.startswith("arn:"):
            parts = v.split(":", 5)
            if len(parts) == 6 and parts[2] == "iam":
                if parts[5] == "root":
                    return f"acct:{parts[4]}"
                res = parts[5].split("/")
                if res[0] == "role" and len(res) >= 2:
                    return f"role:{parts[4]}/{res[-1]}"  # role names are unique in an account, paths aside
        return v
    if p.kind == "Service":
        return None if v == "*" else f"svc:{v.lower()}"
    if p.kind == "Federated":
        return None if v == "*" else f"fed:{v}"
    return None if v == "*" else f"canon:{v}"


class CompiledStatement:
    """One statement prepared for fast matching: principal tokens in sets, action and resource patterns as one
    compiled regular expression each, conditions as closures (``compile_condition``)."""

    __slots__ = (
        "action_hits",
        "action_patterns",
        "any_principal",
        "any_resource",
        "conditions",
        "deny",
        "index",
        "match_without_principal",
        "not_action",
        "not_resource",
        "principal_tokens",
        "principals_excluded",
        "principals_named",
        "resource_exact",
        "resource_rx",
        "resource_templates",
    )

    def __init__(self, st: Statement, kind: str, variables: bool) -> None:
        self.index = st.index
        self.deny = st.effect == "Deny"
        self.principals_named = st.principals is not None  # a Principal element
        self.principals_excluded = st.principals is None and st.not_principals is not None  # a NotPrincipal element
        # Neither: an identity policy's statement applies to the identity holding the policy; a key-policy
        # statement without one applies to nobody.
        self.match_without_principal = DIRECT if kind == "identity" else NO_MATCH
        listed = (st.principals if st.principals is not None else st.not_principals) or ()
        tokens = [principal_token(p) for p in listed]
        self.any_principal = any(t is None for t in tokens)  # the list holds a wildcard
        self.principal_tokens = frozenset(t for t in tokens if t is not None)

        acts = st.actions if st.actions is not None else st.not_actions
        self.not_action = st.actions is None
        acts = acts or ()
        globs = [a for a in acts if "*" in a or "?" in a]
        exact = frozenset(a for a in acts if a not in globs)
        rx = _rx("(?:" + "|".join(_glob_rx(g) for g in globs) + ")") if globs else None
        self.action_patterns = (exact, rx)
        self.action_hits: dict[str, bool] = {}  # memo: action (lower-case) -> does the statement cover it

        res = st.resources if st.resources is not None else st.not_resources
        self.not_resource = st.resources is None and st.not_resources is not None
        self.any_resource = res is None or (not self.not_resource and "*" in res)
        res = res or ()
        plain, templated = _split_vars(res, variables)
        self.resource_exact = frozenset(r for r in plain if "*" not in r and "?" not in r)
        rglobs = [r for r in plain if r not in self.resource_exact]
        self.resource_rx = _rx("(?:" + "|".join(_glob_rx(g) for g in rglobs) + ")") if rglobs else None
        self.resource_templates = tuple(templated)  # resources with policy variables, resolved per request
        self.conditions = tuple(compile_condition(c, variables=variables) for c in st.conditions)

    def principal(self, info: PrincipalInfo) -> PrincipalMatch:
        """How the statement's Principal or NotPrincipal element covers the caller."""
        if self.principals_named:
            # The caller itself is listed (or "*"), else its account root is.
            if self.any_principal or not self.principal_tokens.isdisjoint(info.direct_tokens):
                return DIRECT
            acct = info.account_token
            return VIA_ACCOUNT if acct is not None and acct in self.principal_tokens else NO_MATCH
        if self.principals_excluded:
            # AWS checks the caller's identities level by level (account, role/user, session); the statement
            # applies unless every level is listed.
            if self.any_principal:
                return NO_MATCH
            for level in info.levels:
                if self.principal_tokens.isdisjoint(level):
                    return DIRECT
            return NO_MATCH
        return self.match_without_principal

    def action(self, action: str) -> bool:
        hit = self.action_hits.get(action)
        if hit is None:
            exact, rx = self.action_patterns
            hit = action in exact or (rx is not None and rx.match(action) is not None)
            hit = hit != self.not_action
            if len(self.action_hits) < _ACTION_MEMO_MAX:
                self.action_hits[action] = hit
        return hit

    def resource(self, resource: str, ctx: Context) -> bool:
        if self.any_resource:
            return True
        hit = resource in self.resource_exact or (
            self.resource_rx is not None and self.resource_rx.match(resource) is not None
        )
        if not hit:
            for t in self.resource_templates:
                r = _resolve(t, ctx, True)
                if r is not None and _rx(r).match(resource):
                    hit = True
                    break
        return hit != self.not_resource


class CompiledPolicy:
    """A Policy prepared for fast repeated evaluation."""

    __slots__ = ("kind", "policy", "statements")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.kind = policy.kind
        variables = policy.version != _NO_VARIABLES_VERSION
        self.statements = tuple(CompiledStatement(st, policy.kind, variables) for st in policy.statements)

    def scan(
        self, info: PrincipalInfo, action: str, resource: str, ctx: Context
    ) -> tuple[list[int], list[tuple[int, PrincipalMatch]]]:
        """(indexes of applicable Deny statements, [(index, DIRECT|VIA_ACCOUNT)] of applicable Allows)."""
        denies: list[int] = []
        allows: list[tuple[int, PrincipalMatch]] = []
        for st in self.statements:
            how = st.principal(info)
            if not how or not st.action(action) or not st.resource(resource, ctx):
                continue
            ok = True
            for cond in st.conditions:
                if not cond(ctx):
                    ok = False
                    break
            if not ok:
                continue
            if st.deny:
                denies.append(st.index)
            else:
                allows.append((st.index, how))
        return denies, allows


_CACHE: dict[int, tuple[Policy, CompiledPolicy]] = {}
_CACHE_MAX = 1024


def compile_policy(policy: Policy) -> CompiledPolicy:
    """The compiled form of ``policy``, cached by object identity (Policy is immutable)."""
    hit = _CACHE.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    compiled = CompiledPolicy(policy)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()  # crude, but bounded; real workloads re-use a handful of policies at a time
    _CACHE[id(policy)] = (policy, compiled)
    return compiled


# ----------------------------------------------------------------------------------------- evaluation


def _context(req: Request) -> Context:
    """The request context in model form; tolerates a Request built by hand with mixed-case keys or bare
    string values (cheap check, rebuilt only when needed)."""
    ctx = req.context
    for k, v in ctx.items():
        if type(v) is not tuple or not k.islower():
            fixed: dict[str, tuple[str, ...]] = {}
            for key, val in ctx.items():
                vals = (val,) if isinstance(val, str) else tuple(val)
                fixed[key.lower()] = fixed.get(key.lower(), ()) + vals
            return fixed
    return ctx


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) == 6 and len(parts[4]) == 12 and parts[4].isdigit():
        return parts[4]
    return None


_NON_IAM_KINDS = frozenset({"service", "anonymous", "federated", "canonical"})


def evaluate(
    policy: Policy,
    request: Request,
    *,
    iam_policies: Sequence[Policy] | None = None,
    assume_iam_allows: bool = False,
    key_account: str | None = None,
) -> EvaluationResult:
    """Decide one request against a key policy (see the module docstring for the rules).

    ``key_account`` defaults to the account in the request's resource ARN. ``iam_policies`` are the
    caller's identity policies (their Deny statements count even when ``assume_iam_allows`` is set).
    When ``policy`` is itself an identity policy the answer is plain identity-policy evaluation.
    """
    info = principal_info(request.principal, request.principal_account)
    ctx = _context(request)
    action = request.action.lower()
    resource = request.resource
    denies, allows = compile_policy(policy).scan(info, action, resource, ctx)

    iam_denies: list[str] = []
    iam_allowed = False
    applies_iam = info.kind not in _NON_IAM_KINDS
    if iam_policies and applies_iam:
        for number, identity_policy in enumerate(iam_policies):
            its_denies, its_allows = compile_policy(identity_policy).scan(info, action, resource, ctx)
            iam_denies.extend(f"iam_policy[{number}].Statement[{i}] denies" for i in its_denies)
            iam_allowed = iam_allowed or bool(its_allows)

    allow_idx = tuple(i for i, _ in allows)
    if denies or iam_denies:
        notes = tuple(iam_denies) + (("key_policy_denies",) if denies else ())
        return EvaluationResult(Decision.EXPLICIT_DENY, tuple(denies) + allow_idx, notes)

    if policy.kind == "identity":
        if allows or iam_allowed:
            return EvaluationResult(Decision.ALLOW, allow_idx)
        return EvaluationResult(Decision.IMPLICIT_DENY, ())

    if not allows:
        return EvaluationResult(Decision.IMPLICIT_DENY, (), ("no_statement_allows",))

    key_acct = key_account or _account_of(resource)
    cross = applies_iam and info.account is not None and key_acct is not None and info.account != key_acct
    direct = [i for i, how in allows if not cross and (how == DIRECT or not applies_iam)]
    if direct:
        rest = tuple(i for i in allow_idx if i not in direct)
        return EvaluationResult(Decision.ALLOW, tuple(direct) + rest, ("key_policy_allows",))

    # Every applicable Allow needs the caller's identity policies too (delegation or cross-account).
    why = "cross_account" if cross else "delegated_to_iam"
    if info.is_root:
        return EvaluationResult(Decision.ALLOW, allow_idx, (why, "root_user"))
    if iam_allowed:
        return EvaluationResult(Decision.ALLOW, allow_idx, (why, "iam_allows"))
    if assume_iam_allows:
        return EvaluationResult(Decision.ALLOW, allow_idx, (why, "assume_iam_allows"))
    missing = "iam_does_not_allow" if iam_policies else "iam_not_given"
    return EvaluationResult(Decision.IMPLICIT_DENY, allow_idx, (why, missing))
