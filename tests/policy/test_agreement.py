"""Property tests: the z3 solver, the fast path and the direct evaluator agree.

- a counter-example the solver returns is allowed by the evaluator;
- when the solver proves "no request of this class is allowed", random requests of the class are denied;
- the fast path, when it decides, decides as the solver does.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import normalize, principal_info, request
from kmsguard.policy.questions import Asker
from kmsguard.policy.solver import Identity, Question, prove

K = "111122223333"
X = "444455556666"
ORGS = ["o-aaaaaaaaaa", "o-bbbbbbbbbb"]
PRINCIPALS = [
    "*",
    {"AWS": f"arn:aws:iam::{K}:root"},
    {"AWS": X},
    {"AWS": f"arn:aws:iam::{K}:role/App"},
    {"AWS": f"arn:aws:iam::{X}:role/Ext"},
]
NOT_PRINCIPALS = [
    f"arn:aws:iam::{K}:root",
    f"arn:aws:iam::{K}:role/App",
    X,
    f"arn:aws:iam::{X}:role/Ext",
    f"arn:aws:sts::{K}:assumed-role/App/alice",
]
ACTIONS = ["kms:*", "kms:Decrypt", "kms:Encrypt", "kms:Get*", ["kms:Decrypt", "kms:PutKeyPolicy"]]
CALLERS = [f"arn:aws:iam::{K}:role/App", f"arn:aws:iam::{K}:role/Other", f"arn:aws:iam::{X}:role/Ext",
           f"arn:aws:iam::{X}:role/Other", "arn:aws:iam::999999999999:role/Z", f"arn:aws:iam::{K}:root",
           f"arn:aws:sts::{K}:assumed-role/App/alice", f"arn:aws:sts::{K}:assumed-role/App/bob",
           f"arn:aws:sts::{X}:assumed-role/Ext/bob"]  # fmt: skip
REQUEST_ACTIONS = ["kms:decrypt", "kms:encrypt", "kms:getkeypolicy", "kms:putkeypolicy"]

conditions = st.sampled_from(
    [
        {"Bool": {"aws:SecureTransport": "true"}},
        {"Bool": {"aws:SecureTransport": "false"}},
        {"BoolIfExists": {"aws:SecureTransport": "false"}},
        {"StringEquals": {"kms:EncryptionContext:env": "prod"}},
        {"StringNotEquals": {"kms:EncryptionContext:env": "prod"}},
        {"StringLike": {"kms:EncryptionContext:env": "pr*"}},
        {"StringNotLikeIfExists": {"kms:EncryptionContext:env": ["dev*", "test"]}},
        {"StringEquals": {"aws:PrincipalOrgID": ORGS[0]}},
        {"StringNotEquals": {"aws:PrincipalOrgID": ORGS}},
        {"StringEquals": {"kms:CallerAccount": K}},
        {"StringEquals": {"aws:PrincipalAccount": [K, X]}},
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/App"}},
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["env", "app"]}},
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["env"]}},
        {"Null": {"kms:EncryptionContextKeys": "true"}},
        {"Null": {"kms:EncryptionContext:env": "false"}},
        {"NumericLessThan": {"kms:RotationPeriodInDays": "100"}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORGS[0]}/r-ab12/*"}},
        {"Bool": {"aws:PrincipalIsAWSService": "false"}},
    ]
)


@st.composite
def statements(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Principal": draw(st.sampled_from(PRINCIPALS)),
        "Action": draw(st.sampled_from(ACTIONS)),
        "Resource": "*",
    }
    if out["Effect"] == "Deny" and draw(st.booleans()):
        del out["Principal"]  # "deny everyone except ...", with AWS's level-by-level NotPrincipal rule
        out["NotPrincipal"] = {"AWS": draw(st.lists(st.sampled_from(NOT_PRINCIPALS), min_size=1, max_size=3))}
    conds: dict[str, dict[str, Any]] = {}
    for c in draw(st.lists(conditions, max_size=2)):
        for op, body in c.items():
            conds.setdefault(op, {}).update(body)
    if conds:
        out["Condition"] = conds
    return out


policies = st.lists(statements(), min_size=1, max_size=4).map(
    lambda sts: normalize({"Version": "2012-10-17", "Statement": sts}, "key")
)

contexts = st.fixed_dictionaries(
    {},
    optional={
        "aws:securetransport": st.sampled_from([("true",), ("false",)]),
        "kms:encryptioncontext:env": st.sampled_from([("prod",), ("dev",), ("test",), ("pr",)]),
        "kms:encryptioncontextkeys": st.sampled_from([("env",), ("env", "app"), ("x",), ()]),
        "kms:rotationperiodindays": st.sampled_from([("90",), ("365",)]),
    },
)

identities = st.sampled_from(
    [
        Identity(exclude_accounts=frozenset({K, X}), exclude_orgs=frozenset(ORGS)),
        Identity(account=X),
        Identity(account=K),
        Identity(principal=f"arn:aws:iam::{K}:role/App", iam_allows=False),
        Identity(principal=f"arn:aws:iam::{X}:role/Ext"),
        Identity(principal=f"arn:aws:sts::{K}:assumed-role/App/alice", iam_allows=False),
        Identity(exclude_accounts=frozenset({K, X}), org_mode="fixed", org_id=ORGS[0]),
    ]
)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def implicit(principal: str, org: str | None) -> dict[str, tuple[str, ...]]:
    acct = principal.split(":")[4]
    arn = principal_info(principal).arn or principal  # a session's aws:PrincipalArn is its role's ARN
    out = {"aws:principalaccount": (acct,), "kms:calleraccount": (acct,), "aws:principalarn": (arn,)}
    if org:
        out["aws:principalorgid"] = (org,)
        out["aws:principalorgpaths"] = (f"{org}/r-ab12/ou-ab12-11111111/",)
    out["aws:principalisawsservice"] = ("false",)
    return out


@SETTINGS
@given(policies, identities)
def test_counterexamples_are_allowed_by_the_evaluator(policy: Any, ident: Identity) -> None:
    q = Question(tuple(REQUEST_ACTIONS), ident, K)
    proof = prove(policy, q)
    assert proof.status != "unknown", proof.note
    if proof.request is not None:
        got = evaluate(policy, proof.request, assume_iam_allows=ident.iam_allows, key_account=K)
        assert got.decision is Decision.ALLOW


@SETTINGS
@given(policies, st.sampled_from(CALLERS), st.sampled_from(REQUEST_ACTIONS), contexts, st.sampled_from([None, *ORGS]))
def test_proved_no_means_every_request_is_denied(
    policy: Any, caller: str, action: str, ctx: dict[str, tuple[str, ...]], org: str | None
) -> None:
    ident = Identity(principal=caller, org_mode="fixed" if org else "absent", org_id=org)
    proof = prove(policy, Question((action,), ident, K))
    req = request(caller, action, f"arn:aws:kms:us-east-1:{K}:key/k", {**ctx, **implicit(caller, org)})
    decision = evaluate(policy, req, assume_iam_allows=True, key_account=K).decision
    if proof.proved:
        assert decision is not Decision.ALLOW
    if decision is Decision.ALLOW:
        assert not proof.proved


@SETTINGS
@given(policies, identities)
def test_fast_path_agrees_with_the_solver(policy: Any, ident: Identity) -> None:
    q = Question(tuple(REQUEST_ACTIONS), ident, K)
    fast = Asker(policy).ask(q)
    if not fast.by_solver:
        assert fast.allowed is (not prove(policy, q).proved)


def test_fast_path_judges_the_root_user_under_notprincipal() -> None:
    """Regression (found by this file's properties): the root user has only the account level, so a Deny with
    NotPrincipal listing its account alone does not apply to it, while it does apply to the account's roles."""
    policy = normalize(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "NotPrincipal": {"AWS": [X]}, "Action": "kms:*", "Resource": "*"},
            ],
        },
        "key",
    )
    q = Question(tuple(REQUEST_ACTIONS), Identity(account=X), K)
    fast = Asker(policy).ask(q)
    assert fast.allowed is True and not prove(policy, q).proved
