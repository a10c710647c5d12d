"""IAM-side checks: identity policies that decrypt with every key, and grants that reach too far."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.config import ScanConfig
from kmsguard.model.finding import Status
from kmsguard.model.snapshot import Grant, IamPolicy

from .builders import ACCOUNT, OTHER_ACCOUNT, aws_managed_key, by_arn, key, run, snapshot


def iam_policy(*statements: dict[str, Any], name: str = "app-kms") -> IamPolicy:
    doc = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return IamPolicy(
        arn=f"arn:aws:iam::{ACCOUNT}:policy/{name}",
        name=name,
        kind="managed",
        document=doc,
        attached_to=[f"arn:aws:iam::{ACCOUNT}:role/App"],
    )


def judge_iam(pol: IamPolicy) -> Any:
    snap = snapshot([key()])
    snap.accounts[0].iam_policies.append(pol)
    findings = by_arn(run("iam_policy_allows_decrypt_all_keys", snap))
    return findings[pol.arn]


def allow(actions: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


# --- iam_policy_allows_decrypt_all_keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "resource"),
    [
        ("kms:Decrypt", "*"),
        ("kms:*", "*"),
        ("kms:ReEncrypt*", "*"),
        ("kms:Decrypt", f"arn:aws:kms:*:{ACCOUNT}:key/*"),
        ("kms:Decrypt", "arn:aws:kms:*"),
    ],
)
def test_decrypt_on_every_key_fails(actions: str, resource: str) -> None:
    f = judge_iam(iam_policy(allow(actions, resource)))
    assert f.status is Status.FAIL
    assert f.evidence["resource"] == resource
    assert f.evidence["attached_to"] == [f"arn:aws:iam::{ACCOUNT}:role/App"]


def test_decrypt_on_named_keys_passes() -> None:
    arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert judge_iam(iam_policy(allow("kms:Decrypt", arn))).status is Status.PASS


def test_encrypt_only_on_every_key_passes() -> None:
    assert judge_iam(iam_policy(allow(["kms:Encrypt", "kms:GenerateDataKey"], "*"))).status is Status.PASS


def test_decrypt_star_denied_by_a_deny_statement_passes() -> None:
    deny = {"Effect": "Deny", "Action": "kms:*", "Resource": "*"}
    assert judge_iam(iam_policy(allow("kms:Decrypt", "*"), deny)).status is Status.PASS


def test_notaction_allows_decrypt_everywhere() -> None:
    st = {"Effect": "Allow", "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}
    assert judge_iam(iam_policy(st)).status is Status.FAIL


def test_invalid_iam_policy_is_an_error() -> None:
    pol = IamPolicy(arn=f"arn:aws:iam::{ACCOUNT}:policy/bad", name="bad", kind="managed", document="{nope")
    assert judge_iam(pol).status is Status.ERROR


# --- key_grant_external_or_broad ---------------------------------------------------------------------------


def grant(grantee: str, ops: list[str], constraints: dict[str, dict[str, str]] | None = None) -> Grant:
    return Grant(grant_id="g-1", grantee_principal=grantee, operations=ops, constraints=constraints)


def judge_grants(*grants: Grant, config: ScanConfig | None = None) -> Any:
    k = key(grants=list(grants))
    return by_arn(run("key_grant_external_or_broad", snapshot([k]), config))[k.arn]


def test_grant_to_another_account_fails() -> None:
    f = judge_grants(
        grant(f"arn:aws:iam::{OTHER_ACCOUNT}:role/R", ["Encrypt"], {"EncryptionContextSubset": {"a": "b"}})
    )
    assert f.status is Status.FAIL
    assert f.evidence["grants"][0]["external_account"] == OTHER_ACCOUNT


def test_grant_to_a_trusted_account_passes() -> None:
    g = grant(f"arn:aws:iam::{OTHER_ACCOUNT}:role/R", ["Encrypt"], {"EncryptionContextSubset": {"a": "b"}})
    assert judge_grants(g, config=ScanConfig(trusted_accounts=[OTHER_ACCOUNT])).status is Status.PASS


def test_unconstrained_decrypt_grant_fails_and_constrained_passes() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/App"
    f = judge_grants(grant(role, ["Decrypt", "Encrypt"]))
    assert f.status is Status.FAIL
    assert f.evidence["grants"][0]["unconstrained"] == ["Decrypt"]
    ok = grant(role, ["Decrypt"], {"EncryptionContextEquals": {"aws:ebs:id": "vol-1"}})
    assert judge_grants(ok).status is Status.PASS


def test_unconstrained_encrypt_only_grant_to_a_service_passes() -> None:
    assert judge_grants(grant("dynamodb.amazonaws.com", ["Encrypt", "GenerateDataKey"])).status is Status.PASS


def test_empty_constraint_counts_as_none() -> None:
    f = judge_grants(grant(f"arn:aws:iam::{ACCOUNT}:role/App", ["CreateGrant"], {"EncryptionContextSubset": {}}))
    assert f.status is Status.FAIL


def test_aws_managed_key_grants_are_not_judged() -> None:
    k = aws_managed_key("ebs", grants=[grant(f"arn:aws:iam::{OTHER_ACCOUNT}:role/R", ["Decrypt"])])
    assert k.arn not in by_arn(run("key_grant_external_or_broad", snapshot([k])))


def test_decrypt_with_notresource_is_every_other_key() -> None:
    excluded = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/abc"
    st = {"Effect": "Allow", "Action": "kms:Decrypt", "NotResource": excluded}
    f = judge_iam(iam_policy(st))
    assert f.status is Status.FAIL
    assert f.evidence["resource"] == f"NotResource {excluded}"
    assert f.evidence["actions"] == ["kms:Decrypt"]


def test_iam_policy_with_an_action_newer_than_the_catalogue_is_judged() -> None:
    f = judge_iam(iam_policy(allow(["kms:Decrypt", "kms:NewFutureAction"], "*")))
    assert f.status is Status.FAIL
