"""Whole-policy questions about a key policy: is it public, who outside can use it, who can do what.

Every question is a ``solver.Question`` (a class of principals, a set of actions, fixed context keys).
It is answered by the solver-free fast path (probing.py) when that can decide it, which covers the
policies most keys have, and by the z3 solver otherwise; a solver "yes" carries a concrete request.

Semantics (docs/policy.md says the same for users):
- public: a principal of an *unrelated* account (one the policy does not name, in an organisation the
  policy does not name, or in none) can perform some KMS action with a request it can produce. Caller
  keys (aws:SecureTransport, kms:EncryptionContext:*, kms:ViaService, ...) do not bound access; identity
  keys (aws:PrincipalOrgID, aws:PrincipalAccount, kms:CallerAccount, aws:PrincipalArn, aws:Source*) do.
- external principals: accounts, principals and organisations outside the trusted set (the key's account,
  ``trusted_accounts``, ``trusted_org_ids``) that can perform some KMS action. Another account's principals
  also need their own IAM policies; those are assumed to allow (the key policy is the part we control).
- admins: explicitly named principals other than the key account's root that may call kms:PutKeyPolicy by
  the key policy alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from kmsguard.arn import root_arn
from kmsguard.policy import probing
from kmsguard.policy.actions import CRYPTOGRAPHIC_ACTIONS, KMS_ACTIONS, WHO_CAN_ACTIONS, canonical_action
from kmsguard.policy.model import Condition, Policy, Principal, Request, Statement
from kmsguard.policy.principals import (
    ARN_KEYS,
    account_of,
    is_key_account_root,
    is_root,
    mentioned_accounts,
    mentioned_orgs,
    named_principals,
    names_directly,
    policy_partition,
    principal_label,
)
from kmsguard.policy.solver import Identity, Proof, Question, fixed, prove, question_partition

ALL_ACTIONS: tuple[str, ...] = tuple(a.lower() for a in KMS_ACTIONS)
CRYPTO_ACTIONS: tuple[str, ...] = tuple(sorted(CRYPTOGRAPHIC_ACTIONS))
# The cryptographic actions each kind of key supports (what "every cryptographic request" means for it).
SYMMETRIC_CRYPTO_ACTIONS: tuple[str, ...] = (
    "kms:decrypt",
    "kms:encrypt",
    "kms:generatedatakey",
    "kms:generatedatakeypair",
    "kms:generatedatakeypairwithoutplaintext",
    "kms:generatedatakeywithoutplaintext",
    "kms:reencryptfrom",
    "kms:reencryptto",
)
_ASYMMETRIC_ENCRYPT_ACTIONS = ("kms:decrypt", "kms:encrypt", "kms:reencryptfrom", "kms:reencryptto")
_USAGE_ACTIONS: dict[str, tuple[str, ...]] = {
    "SIGN_VERIFY": ("kms:sign", "kms:verify"),
    "GENERATE_VERIFY_MAC": ("kms:generatemac", "kms:verifymac"),
    "KEY_AGREEMENT": ("kms:derivesharedsecret",),
}


def crypto_actions_for(key_spec: str | None = None, key_usage: str | None = None) -> tuple[str, ...]:
    """The cryptographic actions (lower-case) a key of this spec and usage supports. Unknown (both None):
    a symmetric encryption key, the default and by far the most common; a spec or usage this table does
    not know: every cryptographic action."""
    spec = (key_spec or "").upper()
    usage = (key_usage or "").upper()
    if not usage:
        if not spec or spec == "SYMMETRIC_DEFAULT":
            return SYMMETRIC_CRYPTO_ACTIONS
        if spec.startswith("HMAC_"):
            return _USAGE_ACTIONS["GENERATE_VERIFY_MAC"]
        return CRYPTO_ACTIONS
    if usage == "ENCRYPT_DECRYPT":
        if not spec or spec == "SYMMETRIC_DEFAULT":
            return SYMMETRIC_CRYPTO_ACTIONS
        return _ASYMMETRIC_ENCRYPT_ACTIONS  # RSA_*, SM2
    return _USAGE_ACTIONS.get(usage, CRYPTO_ACTIONS)


@dataclass(frozen=True)
class Answer:
    """The answer to one question: ``allowed`` with an example when one was built; ``certain`` is False
    when the solver could not decide (the answer is then the cautious one: allowed)."""

    allowed: bool
    example: Request | None = None
    certain: bool = True
    by_solver: bool = False


@dataclass(frozen=True)
class WhoCan:
    principal: str  # an ARN, "*", "service:NAME"; a root ARN means "principals of that account via IAM"
    statement: int
    sid: str | None
    conditions: tuple[Condition, ...] = ()
    except_principals: tuple[str, ...] = ()  # for a NotPrincipal statement

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "principal": self.principal,
            "statement": self.statement,
            "sid": self.sid,
            "conditions": [condition_dict(c) for c in self.conditions],
        }
        if self.except_principals:
            out["except"] = list(self.except_principals)
        return out


def condition_dict(c: Condition) -> dict[str, Any]:
    op = (f"{c.set_op}:" if c.set_op else "") + c.operator + ("IfExists" if c.if_exists else "")
    return {"operator": op, "key": c.key, "values": list(c.values)}


@dataclass
class KeyPolicyAnalysis:
    account: str
    public: bool
    external_principals: list[str]
    admins: list[str]
    admins_can_decrypt: bool | None
    # admin -> the cryptographic actions it may perform by the key policy alone
    admin_crypto: dict[str, list[str]]
    who_can: dict[str, list[WhoCan]]
    wildcard_statements: list[int]  # Allow kms:* / * / NotAction to anyone but the key account root
    denies_insecure_transport: bool
    iam_only: bool
    root_delegation: bool  # some statement delegates to the key account's IAM
    # Evidence: which statements grant the public / each external principal, and example requests.
    public_statements: list[int] = field(default_factory=list)
    external_statements: dict[str, list[int]] = field(default_factory=dict)
    examples: dict[str, Request] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    solver_questions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "public": self.public,
            "external_principals": self.external_principals,
            "admins": self.admins,
            "admins_can_decrypt": self.admins_can_decrypt,
            "who_can": {a: [w.to_dict() for w in ws] for a, ws in self.who_can.items()},
            "wildcard_statements": self.wildcard_statements,
            "denies_insecure_transport": self.denies_insecure_transport,
            "iam_only": self.iam_only,
            "examples": {k: request_dict(r) for k, r in sorted(self.examples.items())},
            "uncertain": self.uncertain,
        }


def request_dict(r: Request) -> dict[str, Any]:
    return {
        "principal": r.principal,
        "action": canonical_action(r.action),
        "resource": r.resource,
        "context": {k: list(v) for k, v in sorted(r.context.items())},
    }


# --- answering one question -----------------------------------------------------------------------------


class Asker:
    """Answers questions about one policy, fast path first, counting solver use."""

    def __init__(self, policy: Policy, *, want_examples: bool = False) -> None:
        self.policy = policy
        self.want_examples = want_examples
        self.orgs = mentioned_orgs(policy)
        self.named = named_principals(policy)
        self.solver_questions = 0
        self.uncertain: list[str] = []
        # Keyed by id(): the statements and policies asked about are all held by self.policy or the caller
        # for the Asker's lifetime, so ids are not reused meanwhile.
        self._matches: dict[tuple[int, str], bool] = {}
        self._groups: dict[tuple[int, tuple[str, ...]], list[list[str]]] = {}

    def match(self, st: Statement, action: str) -> bool:
        """``probing.action_match``, memoised: the same statements are asked about many times."""
        key = (id(st), action)
        hit = self._matches.get(key)
        if hit is None:
            hit = self._matches[key] = probing.action_match(st, action)
        return hit

    def ask(self, q: Question, policy: Policy | None = None) -> Answer:
        pol = policy or self.policy
        if not self.want_examples:
            verdict = self._fast(pol, q)
            if verdict is not probing.V.MAYBE:
                return Answer(verdict is probing.V.YES)
        self.solver_questions += 1
        proof = prove(pol, q)
        return _answer(proof, q, self.uncertain)

    def _fast(self, pol: Policy, q: Question) -> probing.V:
        result = probing.V.NO
        gkey = (id(pol), q.actions)
        groups = self._groups.get(gkey)
        if groups is None:
            groups = self._groups[gkey] = self._action_groups(pol, q.actions)
        named = self.named if pol is self.policy else self.named | named_principals(pol)
        with_root = any(st.not_principals is not None for st in pol.statements)
        for group in groups:
            for probe in probing.probes(q, self.orgs, named, with_root, question_partition(pol, q)):
                v = probing.decide(pol, q, probe, group[0], self.match)
                if v is probing.V.YES:
                    return v
                if v is probing.V.MAYBE:
                    result = v
        return result

    def _action_groups(self, policy: Policy, actions: Sequence[str]) -> list[list[str]]:
        """Actions that every statement treats alike; the fast path decides one per group."""
        if len(actions) == 1:
            return [[actions[0].lower()]]
        groups: dict[tuple[bool, ...], list[str]] = defaultdict(list)
        lists = [probing.covered(st.actions, st.not_actions) for st in policy.statements]
        for a in actions:
            low = a.lower()
            groups[tuple(low in c for c in lists)].append(low)
        return [g for sig, g in groups.items() if any(sig)]


def _answer(proof: Proof, q: Question, uncertain: list[str]) -> Answer:
    if proof.status == "proved":
        return Answer(False, by_solver=True)
    if proof.status == "unknown":
        uncertain.append(f"{q.description or 'question'}: {proof.note}")
        return Answer(True, proof.request, certain=False, by_solver=True)
    return Answer(True, proof.request, by_solver=True)


# --- the analysis -----------------------------------------------------------------------------------------


def load(policy: Policy | str) -> Policy:
    """A policy text parsed for analysis: leniently, so that a document KMS accepted (an action newer than
    the catalogue, duplicate Sids, no Version) is judged rather than rejected (see ``parse_and_normalize``)."""
    if isinstance(policy, Policy):
        return policy
    from kmsguard.policy.normalize import parse_and_normalize

    return parse_and_normalize(policy, strict=False)


def analyze_key_policy(
    policy: Policy | str,
    account: str,
    *,
    trusted_accounts: Iterable[str] = (),
    trusted_org_ids: Iterable[str] = (),
    examples: bool = False,
    key_spec: str | None = None,
    key_usage: str | None = None,
) -> KeyPolicyAnalysis:
    """Answer the whole-policy questions for a key in ``account``. ``examples``: build a concrete request
    for each "yes" (uses the solver for every question; slower). ``key_spec`` / ``key_usage`` (KMS's
    KeySpec and KeyUsage) say which cryptographic actions the key supports, which is what the insecure
    transport Deny must cover; unknown means a symmetric encryption key."""
    pol = load(policy)
    trusted = frozenset(trusted_accounts) | {account}
    trusted_orgs = frozenset(trusted_org_ids)
    asker = Asker(pol, want_examples=examples)
    named = frozenset(named_principals(pol) | _condition_arns(pol))
    known_accounts = frozenset(mentioned_accounts(pol)) | trusted
    known_orgs = frozenset(mentioned_orgs(pol)) | trusted_orgs
    out_examples: dict[str, Request] = {}

    def q(identity: Identity, actions: Sequence[str] = ALL_ACTIONS, what: str = "") -> Question:
        return Question(tuple(actions), identity, account, description=what)

    unrelated = Identity(exclude_accounts=known_accounts, exclude_principals=named, exclude_orgs=known_orgs)
    public_answer = asker.ask(q(unrelated, what="public"))
    public = public_answer.allowed
    if public_answer.example:
        out_examples["public"] = public_answer.example

    external: dict[str, list[int]] = {}
    if not public:
        for candidate, identity in _external_candidates(pol, known_accounts, trusted, trusted_orgs, named):
            if candidate in external:
                continue
            ans = asker.ask(q(identity, what=f"external {candidate}"))
            if ans.allowed:
                external[candidate] = _granting(pol, identity)
                if ans.example:
                    out_examples[candidate] = ans.example
    public_statements = _granting(pol, unrelated) if public else []

    admins, admin_crypto, admins_can_decrypt = _admins(pol, account, asker, named)
    analysis = KeyPolicyAnalysis(
        account=account,
        public=public,
        external_principals=["*"] if public else sorted(external),
        admins=admins,
        admins_can_decrypt=admins_can_decrypt,
        admin_crypto=admin_crypto,
        who_can=_who_can(pol, account, asker, named),
        wildcard_statements=_wildcard_statements(pol, account),
        denies_insecure_transport=_denies_insecure_transport(
            pol, account, asker, crypto_actions_for(key_spec, key_usage)
        ),
        iam_only=_iam_only(pol, account),
        root_delegation=any(
            st.effect == "Allow" and any(is_key_account_root(p, account) for p in st.principals or ())
            for st in pol.statements
        ),
        public_statements=public_statements,
        external_statements={} if public else external,
        examples=out_examples,
    )
    analysis.uncertain = asker.uncertain
    analysis.solver_questions = asker.solver_questions
    return analysis


@lru_cache(maxsize=4096)
def analyze_key_policy_cached(
    text: str,
    account: str,
    trusted_accounts: tuple[str, ...],
    trusted_org_ids: tuple[str, ...],
    key_spec: str | None = None,
    key_usage: str | None = None,
) -> KeyPolicyAnalysis:
    """The scan's entry point: several checks ask about the same key; analyse each policy text once. The
    text is parsed leniently (``load``); a document that is not a policy at all still raises."""
    return analyze_key_policy(
        load(text),
        account,
        trusted_accounts=trusted_accounts,
        trusted_org_ids=trusted_org_ids,
        key_spec=key_spec,
        key_usage=key_usage,
    )


def _condition_arns(pol: Policy) -> set[str]:
    return {
        v
        for st in pol.statements
        for c in st.conditions
        if c.key in ARN_KEYS
        for v in c.values
        if "*" not in v and "?" not in v and account_of(v)
    }


def _external_candidates(
    pol: Policy,
    known_accounts: frozenset[str],
    trusted: frozenset[str],
    trusted_orgs: frozenset[str],
    named: frozenset[str],
) -> list[tuple[str, Identity]]:
    out: list[tuple[str, Identity]] = []
    for acct in sorted(known_accounts - trusted):
        # Any principal of that account (not one of the named ones, asked about below), in any
        # organisation we do not trust: we cannot know which organisation an outside account is in.
        root = root_arn(acct, policy_partition(pol))
        out.append((root, Identity(account=acct, exclude_principals=named, exclude_orgs=trusted_orgs)))
    for arn in sorted(named):
        owner = account_of(arn)
        if owner is None or owner in trusted or is_root(arn):
            continue
        out.append((arn, Identity(principal=arn, exclude_orgs=trusted_orgs)))
    for org in sorted(mentioned_orgs(pol) - trusted_orgs):
        ident = Identity(exclude_accounts=known_accounts, exclude_principals=named, org_mode="fixed", org_id=org)
        out.append((f"org:{org}", ident))
    for st in pol.statements:  # service principals with no bound on whose resource they act for
        for p in st.principals or ():
            if st.effect == "Allow" and p.kind == "Service" and not p.is_wildcard:
                out.append((f"service:{p.value}", Identity(principal=f"service:{p.value}")))
    return [(c, i) for c, i in out if not c.startswith("service:")]  # services are reported by who_can only


def _granting(pol: Policy, identity: Identity) -> list[int]:
    """Evidence: the Allow statements whose principal element can apply to the identity class."""
    question = Question((), identity, "")
    probes = probing.probes(question, mentioned_orgs(pol), partition=question_partition(pol, question))
    out = []
    for st in pol.statements:
        if st.effect != "Allow":
            continue
        if any(probing.principal_match(st, pr, pol.kind) is not probing.V.NO for pr in probes):
            out.append(st.index)
    return out


def _admins(
    pol: Policy, account: str, asker: Asker, named: frozenset[str]
) -> tuple[list[str], dict[str, list[str]], bool | None]:
    candidates: set[str] = set()
    for st in pol.statements:
        if st.effect != "Allow":
            continue
        for p in st.principals or ():
            if p.kind == "AWS" and not p.is_wildcard and not is_key_account_root(p, account):
                candidates.add(p.value)
    admins: list[str] = []
    crypto: dict[str, list[str]] = {}
    can_decrypt = False
    for arn in sorted(candidates):
        acct = account_of(arn)
        if is_root(arn) and acct:  # another account's root: its principals, through their IAM
            ident = Identity(account=acct, exclude_principals=named)
        else:
            ident = Identity(principal=arn, iam_allows=acct is not None and acct != account)
        put = Question(("kms:putkeypolicy",), ident, account, description=f"admin {arn}")
        if not asker.ask(put).allowed:
            continue
        admins.append(arn)
        # A role administers through its sessions too: what a named session of it may do counts.
        idents = [ident] + [
            Identity(principal=s, iam_allows=ident.iam_allows) for s in sorted(named) if _is_session_of(s, arn)
        ]
        uses = []
        for who in idents:
            what = f"use by {who.principal or arn}"
            if not asker.ask(Question(CRYPTO_ACTIONS, who, account, description=what)).allowed:
                continue
            uses += [a for a in CRYPTO_ACTIONS if a not in uses and asker.ask(Question((a,), who, account)).allowed]
        uses.sort(key=CRYPTO_ACTIONS.index)
        if uses:
            crypto[arn] = [canonical_action(a) for a in uses]
        if "kms:decrypt" in uses:
            can_decrypt = True
    return admins, crypto, (can_decrypt if admins else None)


def _is_session_of(session: str, role: str) -> bool:
    """``session`` is an assumed-role session ARN of the role ARN ``role`` (whatever the role's path)."""
    return session != role and session.split(":", 3)[2:3] == ["sts"] and names_directly(role, session)


def _who_can(pol: Policy, account: str, asker: Asker, named: frozenset[str]) -> dict[str, list[WhoCan]]:
    denies = tuple(st for st in pol.statements if st.effect == "Deny")
    out: dict[str, list[WhoCan]] = {}
    subs: dict[int, Policy] = {}
    for action in WHO_CAN_ACTIONS:
        entries: list[WhoCan] = []
        for st in pol.statements:
            if st.effect != "Allow" or not asker.match(st, action.lower()):
                continue
            # Ask about this statement alone (with every Deny), so each entry names the statement that grants.
            sub = subs.get(st.index) or subs.setdefault(st.index, replace(pol, statements=(st, *denies)))
            if st.not_principals is not None:
                ident = Identity(exclude_principals=named)
                if asker.ask(Question((action,), ident, account), sub).allowed:
                    excluded = tuple(principal_label(p) for p in st.not_principals)
                    entries.append(WhoCan("*", st.index, st.sid, st.conditions, excluded))
                continue
            for p in st.principals or ():
                if asker.ask(Question((action,), _identity_of(p, named), account), sub).allowed:
                    entries.append(WhoCan(principal_label(p), st.index, st.sid, st.conditions))
        out[action] = sorted(entries, key=lambda w: (w.principal, w.statement))
    return out


def _identity_of(p: Principal, named: frozenset[str]) -> Identity:
    """The class of callers a Principal element stands for (generic classes leave out the principals the
    policy names: the fast path's representatives assume so)."""
    if p.kind != "AWS":
        return Identity(principal=principal_label(p))
    if p.is_wildcard:
        return Identity(exclude_principals=named)
    acct = account_of(p.value)
    if acct and is_root(p.value):
        return Identity(account=acct, exclude_principals=named)
    return Identity(principal=p.value)


def _is_wildcard_grant(st: Statement) -> bool:
    if st.not_actions is not None:
        return True
    return any(a in ("*", "kms:*") for a in st.actions or ())


def _wildcard_statements(pol: Policy, account: str) -> list[int]:
    out = []
    for st in pol.statements:
        if st.effect != "Allow" or not _is_wildcard_grant(st):
            continue
        principals = st.principals or ()
        only_root = bool(principals) and st.not_principals is None and all(
            is_key_account_root(p, account) for p in principals
        )  # fmt: skip
        if not only_root:
            out.append(st.index)
    return out


def _denies_insecure_transport(
    pol: Policy, account: str, asker: Asker, actions: Sequence[str] = SYMMETRIC_CRYPTO_ACTIONS
) -> bool:
    """Is every cryptographic request (``actions``: the ones the key supports) over plain HTTP
    (aws:SecureTransport false) explicitly denied, for every principal? Judged on the Deny statements
    alone: with an allow-everything statement added, can any request with aws:SecureTransport=false still
    get through?"""
    denies = tuple(st for st in pol.statements if st.effect == "Deny")
    if not denies:
        return False
    allow_all = Statement(len(pol.statements), None, "Allow", principals=(Principal("AWS", "*"),), actions=("*",))
    probe_policy = replace(pol, statements=(*denies, allow_all))
    question = Question(
        tuple(actions),
        Identity(),
        account,
        fixed_context=fixed({"aws:securetransport": ["false"]}),
        description="insecure transport",
    )
    return not asker.ask(question, probe_policy).allowed


def _iam_only(pol: Policy, account: str) -> bool:
    allows = [st for st in pol.statements if st.effect == "Allow"]
    if not allows:
        return False
    return all(
        st.principals is not None and all(is_key_account_root(p, account) for p in st.principals) for st in allows
    )


# --- identity policies (for the IAM checks) --------------------------------------------------------------


@dataclass(frozen=True)
class AllKeysGrant:
    actions: tuple[str, ...]  # canonical names of the actions allowed on every key
    statements: tuple[int, ...]
    resource: str  # the Resource pattern that covers every key


def identity_policy_all_keys(policy: Policy | str, actions: Sequence[str]) -> AllKeysGrant | None:
    """Does an IAM identity policy allow ``actions`` on *every* KMS key (Resource "*", "arn:aws:kms:*", all
    keys of an account or region; NotResource, which covers every key it does not exclude)? Judged by
    asking about a key the policy does not name, under each Resource pattern whose key part is a wildcard
    and under each NotResource list (with a key none of its patterns match)."""
    pol = policy if isinstance(policy, Policy) else _load_identity(policy)
    asker = Asker(pol)

    def allowed(resource: str) -> list[str]:
        return [
            a
            for a in actions
            if asker.ask(Question((a.lower(),), Identity(), "", resource=resource, description="all keys")).allowed
        ]

    for st in pol.statements:
        if st.effect != "Allow":
            continue
        if st.not_resources is not None:
            probe = _key_outside(st.not_resources)
            hit = allowed(probe) if probe is not None else []
            if hit:
                label = "NotResource " + ", ".join(st.not_resources)
                return AllKeysGrant(tuple(canonical_action(a) for a in hit), (st.index,), label)
            continue
        if st.resources is None:
            continue
        for pattern in st.resources:
            if not _covers_every_key(pattern):
                continue
            hit = allowed(pattern.replace("*", "kmsguardprobe").replace("?", "x"))
            if hit:
                return AllKeysGrant(tuple(canonical_action(a) for a in hit), (st.index,), pattern)
    return None


_PROBE_REGIONS = (("aws", "us-east-1"), ("aws", "eu-west-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-cn", "cn-north-1"))
_PROBE_KEYS = tuple(
    f"arn:{partition}:kms:{region}:{account}:key/kmsguardprobe-0000-0000-0000-000000000000"
    for partition, region in _PROBE_REGIONS
    for account in ("000000000000", "999999999999")
)


def _key_outside(patterns: Sequence[str]) -> str | None:
    """A KMS key ARN (of an account no policy names) that none of the NotResource ``patterns`` match; None
    when they cover every key we could try."""
    for arn in _PROBE_KEYS:
        if not any(probing.resource_match_pattern(p, arn) for p in patterns):
            return arn
    return None


def _covers_every_key(pattern: str) -> bool:
    if "key/" in pattern:
        return pattern.rsplit("key/", 1)[1] == "*"
    return pattern.endswith("*") and (pattern == "*" or pattern.startswith("arn:"))


def _load_identity(text: str) -> Policy:
    from kmsguard.policy.normalize import parse_and_normalize

    return parse_and_normalize(text, kind="identity", strict=False)
