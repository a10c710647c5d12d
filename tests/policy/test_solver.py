"""The z3 encoding: proofs for "no", confirmed concrete requests for "yes"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.policy.actions import KMS_ACTIONS
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision, Policy
from kmsguard.policy.normalize import parse_and_normalize
from kmsguard.policy.solver import Identity, Question, fixed, prove

K = "111122223333"
X = "444455556666"
ORG = "o-a1b2c3d4e5"


def pol(*statements: dict[str, Any]) -> Policy:
    return parse_and_normalize(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def st(effect: str = "Allow", principal: Any = "*", action: Any = "kms:*", **condition: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": action, "Resource": "*"}
    if condition:
        out["Condition"] = condition
    return out


OUTSIDE = Identity(exclude_accounts=frozenset({K}), exclude_orgs=frozenset({ORG}))


def outside(actions: tuple[str, ...] = KMS_ACTIONS, **kw: Any) -> Question:
    return Question(actions, OUTSIDE, K, **kw)


def confirmed(policy: Policy, q: Question) -> None:
    proof = prove(policy, q)
    assert proof.status == "counterexample"
    assert proof.request is not None
    assert evaluate(policy, proof.request, assume_iam_allows=True, key_account=K).decision is Decision.ALLOW


def test_org_bound_principal_star_is_proved_closed_to_outsiders() -> None:
    assert prove(pol(st(StringEquals={"aws:PrincipalOrgID": ORG})), outside()).proved


def test_unbounded_principal_star_gives_a_confirmed_outsider_request() -> None:
    confirmed(pol(st(action="kms:Decrypt")), outside())


def test_foranyvalue_on_multivalued_key_needs_a_matching_member() -> None:
    p = pol(st(**{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["tenant"]}}))
    proof = prove(p, outside())
    assert proof.request is not None
    assert "tenant" in proof.request.context["kms:encryptioncontextkeys"]


def test_forallvalues_with_null_guard_and_deny_interaction() -> None:
    # Allow only when every context key is "a"; deny when "a" is missing: a request must carry exactly "a".
    p = pol(
        st(**{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a"]}}),
        st("Deny", **{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": ["a"]}}),
    )
    proof = prove(p, outside())
    # The model may repeat the value (z3's choice depends on the context's history): as a set it is {"a"}.
    assert proof.request is not None and set(proof.request.context["kms:encryptioncontextkeys"]) == {"a"}


def test_contradicting_allow_and_deny_on_a_caller_key_is_proved() -> None:
    p = pol(st(Bool={"aws:SecureTransport": "true"}), st("Deny", Bool={"aws:SecureTransport": "true"}))
    assert prove(p, outside()).proved


@pytest.mark.parametrize(
    ("condition", "proved"),
    [
        ({"NumericLessThan": {"kms:RotationPeriodInDays": "90"}}, False),
        ({"NumericLessThan": {"kms:RotationPeriodInDays": "90"}, "NumericGreaterThan": {"kms:RotationPeriodInDays": "9"}
          }, False),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
        ({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, False),
        ({"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}, False),
        ({"ArnLike": {"kms:GranteePrincipal": "arn:aws:iam::*:role/app-*"}}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket-*"}}, True),  # an IAM caller's request has no SourceArn
        ({"Null": {"kms:EncryptionContextKeys": "true"}, "ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "a"}},
         True),
    ],
)  # fmt: skip
def test_operator_encodings(condition: dict[str, Any], proved: bool) -> None:
    p = pol(st(**condition))
    if proved:
        assert prove(p, outside()).proved
    else:
        confirmed(p, outside())


def test_fixed_context_is_respected() -> None:
    p = pol(st(), st("Deny", Bool={"aws:SecureTransport": "false"}))
    q = Question(KMS_ACTIONS, Identity(), K, fixed_context=fixed({"aws:SecureTransport": ["false"]}))
    assert prove(p, q).proved


def test_key_account_principal_needs_iam_unless_named() -> None:
    p = pol(st(principal={"AWS": f"arn:aws:iam::{K}:root"}))
    app = f"arn:aws:iam::{K}:role/App"
    assert prove(p, Question(("kms:decrypt",), Identity(principal=app, iam_allows=False), K)).proved
    assert not prove(p, Question(("kms:decrypt",), Identity(principal=app, iam_allows=True), K)).proved
    named = pol(st(principal={"AWS": app}, action="kms:Decrypt"))
    assert not prove(named, Question(("kms:decrypt",), Identity(principal=app, iam_allows=False), K)).proved


def test_notprincipal_deny_excludes_only_fully_listed_callers() -> None:
    app = f"arn:aws:iam::{K}:role/App"
    deny = {"Effect": "Deny", "NotPrincipal": {"AWS": [f"arn:aws:iam::{K}:root", app]}, "Action": "kms:*",
            "Resource": "*"}  # fmt: skip
    p = pol(st(), deny)
    q = Question(("kms:decrypt",), Identity(account=K), K)
    proof = prove(p, q)
    assert proof.request is not None
    assert proof.request.principal in (app, f"arn:aws:iam::{K}:root")
    assert prove(p, Question(("kms:decrypt",), Identity(account=X), K)).proved


# --- regressions (review findings) ---------------------------------------------------------------------

SESSION = f"arn:aws:sts::{K}:assumed-role/App/alice"


def test_role_principal_applies_to_its_sessions() -> None:
    p = pol(st(principal={"AWS": f"arn:aws:iam::{K}:role/App"}, action="kms:Decrypt"))
    q = Question(("kms:decrypt",), Identity(principal=SESSION, iam_allows=False), K)
    confirmed(p, q)
    other = Identity(principal=f"arn:aws:sts::{K}:assumed-role/Other/a", iam_allows=False)
    assert prove(p, Question(("kms:decrypt",), other, K)).proved


def test_session_principal_does_not_apply_to_its_role() -> None:
    p = pol(st(principal={"AWS": SESSION}, action="kms:Decrypt"))
    role = Identity(principal=f"arn:aws:iam::{K}:role/App", iam_allows=False)
    assert prove(p, Question(("kms:decrypt",), role, K)).proved


def test_organisation_id_cannot_hold_a_path() -> None:
    cond = {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abcdefghij/r-ab12/ou-ab12-11111111/*"}}
    p = pol(st(action="kms:Decrypt", **cond))
    unrelated = Identity(exclude_accounts=frozenset({K}), exclude_orgs=frozenset({"o-abcdefghij"}))
    assert prove(p, Question(("kms:decrypt",), unrelated, K)).proved
    that_org = Identity(exclude_accounts=frozenset({K}), org_mode="fixed", org_id="o-abcdefghij")
    confirmed(p, Question(("kms:decrypt",), that_org, K))


def test_principal_is_aws_service_is_fixed_by_the_caller() -> None:
    p = pol(st(action="kms:Decrypt", Bool={"aws:PrincipalIsAWSService": "true"}))
    assert prove(p, outside(("kms:decrypt",))).proved
    confirmed(p, Question(("kms:decrypt",), Identity(principal="service:logs.amazonaws.com"), K))
