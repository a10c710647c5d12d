"""generate_key_policy: the guide's structure, analysing clean, and clear errors for bad arguments."""

from __future__ import annotations

import json

import pytest

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.generate import generate_key_policy
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import parse_and_normalize, request
from kmsguard.policy.questions import analyze_key_policy

K = "111122223333"
ADMIN = f"arn:aws:iam::{K}:role/Admin"
APP = f"arn:aws:iam::{K}:role/App"
KEY = f"arn:aws:kms:us-east-1:{K}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "options",
    [{}, {"via_services": ["s3.us-east-1.amazonaws.com"]}, {"encryption_context": {"Environment": "Production"}}],
)
def test_generated_policy_analyses_clean(options: dict[str, object]) -> None:
    doc = generate_key_policy(K, [ADMIN], [APP], **options)  # type: ignore[arg-type]
    assert [s["Sid"] for s in doc["Statement"]][:2] == ["EnableIAMUserPermissions", "KeyAdministration"]
    a = analyze_key_policy(json.dumps(doc), K)
    assert (a.public, a.external_principals, a.wildcard_statements) == (False, [], [])
    assert (a.admins, a.admins_can_decrypt, a.admin_crypto) == ([ADMIN], False, {})
    assert a.denies_insecure_transport and not a.iam_only


def test_encryption_context_and_tls_are_required_for_use() -> None:
    doc = generate_key_policy(K, [ADMIN], [APP], encryption_context={"Environment": "Production"})
    p = parse_and_normalize(json.dumps(doc))
    ok = {"aws:SecureTransport": "true", "kms:EncryptionContext:Environment": "Production"}
    assert evaluate(p, request(APP, "kms:Decrypt", KEY, ok)).decision is Decision.ALLOW
    missing = {"aws:SecureTransport": "true"}
    assert evaluate(p, request(APP, "kms:Decrypt", KEY, missing)).decision is Decision.IMPLICIT_DENY
    http = dict(ok, **{"aws:SecureTransport": "false"})
    assert evaluate(p, request(APP, "kms:Decrypt", KEY, http)).decision is Decision.EXPLICIT_DENY
    assert evaluate(p, request(APP, "kms:DescribeKey", KEY, missing)).decision is Decision.ALLOW


def test_grants_limited_to_aws_resources() -> None:
    p = parse_and_normalize(json.dumps(generate_key_policy(K, [ADMIN], [APP])))
    base = {"aws:SecureTransport": "true"}
    assert evaluate(p, request(APP, "kms:CreateGrant", KEY, base)).decision is Decision.IMPLICIT_DENY
    aws = dict(base, **{"kms:GrantIsForAWSResource": "true"})
    assert evaluate(p, request(APP, "kms:CreateGrant", KEY, aws)).decision is Decision.ALLOW


@pytest.mark.parametrize(
    ("account", "admins", "users", "message"),
    [
        ("1234", [ADMIN], [], "12-digit"),
        (K, [], [APP], "at least one administrator"),
        (K, [f"arn:aws:iam::{K}:root"], [], "never root"),
        (K, ["not-an-arn"], [], "not an IAM role"),
        (K, [ADMIN], [ADMIN], "separation of duties"),
        (K, [ADMIN], [f"arn:aws:iam::{K}:role/*"], "wildcard"),
    ],
)
def test_bad_arguments_are_named(account: str, admins: list[str], users: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_key_policy(account, admins, users)


@pytest.mark.parametrize(
    ("admins", "users"),
    [
        (["arn:aws:iam::999988887777:role/KeyAdmin"], [APP]),
        ([ADMIN], ["arn:aws:iam::999988887777:role/app"]),
    ],
)
def test_principals_of_another_account_are_refused_since_they_would_be_external(
    admins: list[str], users: list[str]
) -> None:
    # Otherwise the "least-privilege" policy would grant an outside account and not analyse clean.
    with pytest.raises(ValueError, match=f"not in account {K}"):
        generate_key_policy(K, admins, users)
