"""Whole-policy questions: public, external principals, admins, who_can, secure transport, IAM-only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision
from kmsguard.policy.questions import analyze_key_policy, identity_policy_all_keys

K = "111122223333"
X = "444455556666"
ROOT = f"arn:aws:iam::{K}:root"
ADMIN = f"arn:aws:iam::{K}:role/Admin"
APP = f"arn:aws:iam::{K}:role/App"
ORG = "o-a1b2c3d4e5"


def pol(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, actions: Any, **condition: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"}
    if condition:
        st["Condition"] = condition
    return st


ROOT_ALL = allow({"AWS": ROOT}, "kms:*")


@pytest.mark.parametrize("examples", [False, True], ids=["fast-path", "solver"])
@pytest.mark.parametrize(
    ("statement", "public", "external"),
    [
        (allow("*", "kms:Decrypt"), True, ["*"]),
        (allow({"AWS": "*"}, "kms:Encrypt"), True, ["*"]),
        (allow("*", "kms:Decrypt", StringEquals={"aws:PrincipalOrgID": ORG}), False, [f"org:{ORG}"]),
        (allow("*", "kms:Decrypt", StringEquals={"kms:CallerAccount": K}), False, []),
        (allow("*", "kms:Decrypt", StringEquals={"aws:PrincipalAccount": X}), False, [f"arn:aws:iam::{X}:root"]),
        (allow("*", "kms:Decrypt", Bool={"aws:SecureTransport": "true"}), True, ["*"]),
        (allow("*", "kms:Decrypt", StringEquals={"kms:EncryptionContext:app": "a"}), True, ["*"]),
        (allow("*", "kms:Decrypt", StringEquals={"kms:ViaService": "s3.us-east-1.amazonaws.com"}), True, ["*"]),
        (allow({"AWS": X}, "kms:Decrypt"), False, [f"arn:aws:iam::{X}:root"]),
        (allow({"AWS": f"arn:aws:iam::{X}:role/R"}, "kms:Decrypt"), False, [f"arn:aws:iam::{X}:role/R"]),
        (allow({"Service": "logs.amazonaws.com"}, "kms:Encrypt"), False, []),
        (allow("*", "kms:Decrypt", StringEqualsIfExists={"aws:PrincipalOrgID": ORG}), True, ["*"]),
        (allow("*", "kms:Decrypt", StringLike={"aws:PrincipalArn": "arn:aws:iam::*:role/Admin"}), True, ["*"]),
    ],
)
def test_public_and_external(statement: dict[str, Any], public: bool, external: list[str], examples: bool) -> None:
    a = analyze_key_policy(pol(ROOT_ALL, statement), K, examples=examples)
    assert a.public is public
    assert a.external_principals == external
    if examples and public:
        req = a.examples["public"]  # a concrete request from an unrelated account, confirmed by the evaluator
        assert req.principal_account not in (K, X)
        got = evaluate(load(pol(ROOT_ALL, statement)), req, assume_iam_allows=True, key_account=K)
        assert got.decision is Decision.ALLOW


def load(text: str) -> Any:
    from kmsguard.policy.normalize import parse_and_normalize

    return parse_and_normalize(text)


def test_trusted_org_and_account_are_not_external() -> None:
    text = pol(ROOT_ALL, allow("*", "kms:Decrypt", StringEquals={"aws:PrincipalOrgID": ORG}), allow({"AWS": X}, "*"))
    a = analyze_key_policy(text, K, trusted_accounts=[X], trusted_org_ids=[ORG])
    assert (a.public, a.external_principals) == (False, [])


def test_explicit_deny_removes_public_access() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": ORG}}}  # fmt: skip
    a = analyze_key_policy(pol(ROOT_ALL, allow("*", "kms:Decrypt"), deny), K)
    assert a.public is False
    assert a.external_principals == [f"org:{ORG}"]


def test_deny_and_allow_on_the_same_caller_key_are_solved() -> None:
    both = {"Bool": {"aws:SecureTransport": "true"}}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*", "Condition": both}
    a = analyze_key_policy(pol(ROOT_ALL, allow("*", "kms:Decrypt", **both), deny), K)
    assert a.public is False
    assert a.solver_questions > 0  # the fast path cannot decide this one


def test_admins_and_their_cryptographic_use() -> None:
    admin = allow({"AWS": ADMIN}, ["kms:Put*", "kms:Describe*"])
    use = allow({"AWS": APP}, ["kms:Decrypt", "kms:PutKeyPolicy"])
    a = analyze_key_policy(pol(ROOT_ALL, admin, use), K)
    assert a.admins == [ADMIN, APP]
    assert a.admins_can_decrypt is True
    assert a.admin_crypto == {APP: ["kms:Decrypt"]}
    b = analyze_key_policy(pol(ROOT_ALL, admin), K)
    assert (b.admins, b.admins_can_decrypt) == ([ADMIN], False)
    assert analyze_key_policy(pol(ROOT_ALL), K).admins_can_decrypt is None  # root alone: no named admin


def test_who_can_lists_patterns_with_their_conditions() -> None:
    cond = {"StringEquals": {"kms:EncryptionContext:env": "prod"}}
    a = analyze_key_policy(pol(ROOT_ALL, allow({"AWS": APP}, "kms:Decrypt", **cond)), K)
    decrypt = {w.principal: w for w in a.who_can["kms:Decrypt"]}
    assert set(decrypt) == {ROOT, APP}
    assert [c.key for c in decrypt[APP].conditions] == ["kms:encryptioncontext:env"]
    assert [w.principal for w in a.who_can["kms:PutKeyPolicy"]] == [ROOT]


def test_who_can_leaves_out_a_principal_denied_everything() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": APP}, "Action": "kms:*", "Resource": "*"}
    a = analyze_key_policy(pol(ROOT_ALL, allow({"AWS": APP}, "kms:Decrypt"), deny), K)
    assert APP not in [w.principal for w in a.who_can["kms:Decrypt"]]


@pytest.mark.parametrize(
    ("deny", "expected"),
    [
        ({"Principal": "*", "Action": "kms:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}, True),
        ({"Principal": "*", "Action": "*", "Condition": {"BoolIfExists": {"aws:SecureTransport": "false"}}}, True),
        ({"Principal": "*", "Action": "kms:Decrypt", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}, False),
        ({"Principal": {"AWS": APP}, "Action": "kms:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
         False),
        ({"Principal": "*", "Action": "kms:*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
    ],
)  # fmt: skip
def test_secure_transport_judged_semantically(deny: dict[str, Any], expected: bool) -> None:
    st = {"Effect": "Deny", "Resource": "*", **deny}
    assert analyze_key_policy(pol(ROOT_ALL, st), K).denies_insecure_transport is expected


def test_wildcards_and_iam_only() -> None:
    a = analyze_key_policy(pol(ROOT_ALL), K)
    assert (a.iam_only, a.wildcard_statements) == (True, [])
    b = analyze_key_policy(pol(ROOT_ALL, allow({"AWS": APP}, "*")), K)
    assert (b.iam_only, b.wildcard_statements) == (False, [1])


def test_identity_policy_all_keys() -> None:
    every = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    )
    grant = identity_policy_all_keys(every, ["kms:Decrypt"])
    assert grant is not None and grant.actions == ("kms:Decrypt",)
    one = f"arn:aws:kms:us-east-1:{K}:key/abc"
    named = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": one}]}
    )
    assert identity_policy_all_keys(named, ["kms:Decrypt"]) is None


# --- regressions (review findings) ---------------------------------------------------------------------


def _identity(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_identity_policy_notresource_counts_as_every_key() -> None:
    excluded = f"arn:aws:kms:us-east-1:{K}:key/abc"
    text = _identity({"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": excluded})
    grant = identity_policy_all_keys(text, ["kms:Decrypt", "kms:ReEncryptFrom"])
    assert grant is not None
    assert grant.actions == ("kms:Decrypt",)
    assert grant.statements == (0,)
    assert grant.resource == f"NotResource {excluded}"


def test_identity_policy_notresource_excluding_every_key_or_denied_is_not_a_grant() -> None:
    everything = _identity({"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": "*"})
    assert identity_policy_all_keys(everything, ["kms:Decrypt"]) is None
    all_kms = _identity({"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": "arn:*:kms:*"})
    assert identity_policy_all_keys(all_kms, ["kms:Decrypt"]) is None
    denied = _identity(
        {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": f"arn:aws:kms:us-east-1:{K}:key/abc"},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*"},
    )
    assert identity_policy_all_keys(denied, ["kms:Decrypt"]) is None


SESSION = f"arn:aws:sts::{K}:assumed-role/Admin/alice"


@pytest.mark.parametrize("examples", [False, True], ids=["fast-path", "solver"])
def test_admin_role_whose_session_may_decrypt_can_decrypt(examples: bool) -> None:
    a = analyze_key_policy(
        pol(ROOT_ALL, allow({"AWS": ADMIN}, "kms:PutKeyPolicy"), allow({"AWS": SESSION}, "kms:Decrypt")),
        K,
        examples=examples,
    )
    assert ADMIN in a.admins
    assert a.admins_can_decrypt is True
    assert "kms:Decrypt" in a.admin_crypto[ADMIN]


@pytest.mark.parametrize("examples", [False, True], ids=["fast-path", "solver"])
def test_admin_session_whose_role_may_decrypt_can_decrypt(examples: bool) -> None:
    a = analyze_key_policy(
        pol(ROOT_ALL, allow({"AWS": SESSION}, "kms:PutKeyPolicy"), allow({"AWS": ADMIN}, "kms:Decrypt")),
        K,
        examples=examples,
    )
    assert a.admins == [SESSION]
    assert a.admins_can_decrypt is True


def test_session_of_another_role_is_not_the_admin() -> None:
    other = f"arn:aws:sts::{K}:assumed-role/Other/alice"
    a = analyze_key_policy(
        pol(ROOT_ALL, allow({"AWS": ADMIN}, "kms:PutKeyPolicy"), allow({"AWS": other}, "kms:Decrypt")), K
    )
    assert a.admins == [ADMIN]
    assert a.admins_can_decrypt is False


@pytest.mark.parametrize("examples", [False, True], ids=["fast-path", "solver"])
@pytest.mark.parametrize(
    "condition",
    [
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abcdefghij/*"}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abcdefghij/r-ab12/ou-ab12-11111111/*"}},
        {"ForAnyValue:StringEquals": {"aws:PrincipalOrgPaths": "o-abcdefghij/r-ab12/ou-ab12-11111111/"}},
    ],
)
def test_org_path_bound_is_the_organisation_not_public(condition: dict[str, Any], examples: bool) -> None:
    text = pol(ROOT_ALL, allow("*", "kms:Decrypt", **condition))
    a = analyze_key_policy(text, K, examples=examples)
    assert (a.public, a.external_principals) == (False, ["org:o-abcdefghij"])
    trusted = analyze_key_policy(text, K, trusted_org_ids=["o-abcdefghij"], examples=examples)
    assert (trusted.public, trusted.external_principals) == (False, [])


def test_mentioned_orgs_takes_a_path_prefix_only_when_it_is_an_org_id() -> None:
    from kmsguard.policy.principals import mentioned_orgs

    paths = ["o-abcdefghij/r-ab12/*", "o-*/r-ab12/*", "o-short/*"]
    p = load(pol(allow("*", "kms:Decrypt", **{"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": paths}})))
    assert mentioned_orgs(p) == {"o-abcdefghij"}


CRYPTO_NAMES_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


@pytest.mark.parametrize(
    ("spec", "usage", "deny_actions", "expected"),
    [
        (None, None, CRYPTO_NAMES_DENY["Action"], True),  # unknown: a symmetric encryption key
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", CRYPTO_NAMES_DENY["Action"], True),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*"], False),
        ("RSA_2048", "ENCRYPT_DECRYPT", ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*"], True),
        ("RSA_2048", "SIGN_VERIFY", CRYPTO_NAMES_DENY["Action"], False),
        ("ECC_NIST_P256", "SIGN_VERIFY", ["kms:Sign", "kms:Verify"], True),
        ("HMAC_256", "GENERATE_VERIFY_MAC", ["kms:GenerateMac", "kms:VerifyMac"], True),
        ("HMAC_256", "GENERATE_VERIFY_MAC", ["kms:GenerateMac"], False),
        ("ECC_NIST_P256", "KEY_AGREEMENT", ["kms:DeriveSharedSecret"], True),
        ("ECC_NIST_P256", "KEY_AGREEMENT", ["kms:Sign", "kms:Verify"], False),
    ],
)
def test_secure_transport_asks_only_about_what_the_key_type_supports(
    spec: str | None, usage: str | None, deny_actions: list[str], expected: bool
) -> None:
    text = pol(ROOT_ALL, dict(CRYPTO_NAMES_DENY, Action=deny_actions))
    a = analyze_key_policy(text, K, key_spec=spec, key_usage=usage)
    assert a.denies_insecure_transport is expected


@pytest.mark.parametrize("examples", [False, True], ids=["fast-path", "solver"])
def test_principal_is_aws_service_bounds_access_to_services(examples: bool) -> None:
    service_only = allow("*", "kms:Decrypt", Bool={"aws:PrincipalIsAWSService": "true"})
    a = analyze_key_policy(pol(ROOT_ALL, service_only), K, examples=examples)
    assert (a.public, a.external_principals) == (False, [])
    iam_only = allow("*", "kms:Decrypt", Bool={"aws:PrincipalIsAWSService": "false"})
    assert analyze_key_policy(pol(ROOT_ALL, iam_only), K, examples=examples).public is True


@pytest.mark.parametrize(
    "document",
    [
        {"Version": "2012-10-17", "Statement": [ROOT_ALL, allow("*", ["kms:Decrypt", "kms:NewFutureAction"])]},
        {"Version": "2012-10-17", "Statement": [dict(ROOT_ALL, Sid="a"), dict(allow("*", "kms:Decrypt"), Sid="a")]},
        {"Statement": [ROOT_ALL, allow("*", "kms:Decrypt")]},
    ],
    ids=["future-action", "duplicate-sid", "no-version"],
)
def test_analysis_accepts_what_kms_accepted(document: dict[str, Any]) -> None:
    from kmsguard.policy.questions import analyze_key_policy_cached

    text = json.dumps(document)
    assert analyze_key_policy(text, K).public is True
    assert analyze_key_policy_cached(text, K, (), ()).public is True


def test_unknown_action_matches_only_itself() -> None:
    text = pol(ROOT_ALL, allow("*", "kms:NewFutureAction"))
    assert analyze_key_policy(text, K).public is False
