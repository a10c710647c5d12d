"""The key-policy checks: each with a failing, a passing and a tricky case, judged through the engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.config import ScanConfig
from kmsguard.model.finding import Status
from kmsguard.model.snapshot import AccountSnapshot, Snapshot
from kmsguard.policy.generate import generate_key_policy

from .builders import ACCOUNT, OTHER_ACCOUNT, aws_managed_key, by_arn, key, run, snapshot

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
APP = f"arn:aws:iam::{ACCOUNT}:role/App"
ORG = "o-a1b2c3d4e5"
POLICY_CHECKS = (
    "key_policy_public",
    "key_policy_external_access",
    "key_policy_wildcard_actions",
    "key_policy_admin_can_use",
    "key_policy_no_secure_transport",
    "key_policy_iam_only",
)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, actions: Any, sid: str | None = None, **condition: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"}
    if sid:
        st["Sid"] = sid
    if condition:
        st["Condition"] = condition
    return st


ROOT_STATEMENT = allow({"AWS": ROOT}, "kms:*", "EnableIAMUserPermissions")
DENY_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "kms:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
GUIDE = json.dumps(generate_key_policy(ACCOUNT, [ADMIN], [APP]))


def judge(check_id: str, policy: str | None, config: ScanConfig | None = None, **key_fields: Any) -> Any:
    k = key(policy=policy, **key_fields)
    findings = by_arn(run(check_id, snapshot([k]), config))
    return findings[k.arn]


# --- key_policy_public ----------------------------------------------------------------------------------


def test_public_principal_star_fails_with_the_statement_as_evidence() -> None:
    f = judge("key_policy_public", doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", "Open")))
    assert f.status is Status.FAIL
    assert f.severity.value == "critical"
    assert [s["sid"] for s in f.evidence["statements"]] == ["Open"]
    assert f.evidence["principals"] == ["*"]


def test_public_bounded_by_a_trusted_org_passes() -> None:
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", **{"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    assert judge("key_policy_public", policy).status is Status.PASS


def test_secure_transport_or_encryption_context_conditions_do_not_bound_public_access() -> None:
    # The caller chooses both; neither narrows who the caller is.
    cond = {"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"kms:EncryptionContext:app": "x"}}
    assert judge("key_policy_public", doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", **cond))).status is Status.FAIL


def test_public_caller_account_condition_passes() -> None:
    policy = doc(allow("*", "kms:*", **{"StringEquals": {"kms:CallerAccount": ACCOUNT}}))
    assert judge("key_policy_public", policy).status is Status.PASS


def test_public_allow_cancelled_by_a_notprincipal_deny_passes() -> None:
    deny_others = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": [ROOT, APP]},
        "Action": "kms:*",
        "Resource": "*",
    }
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt"), deny_others)
    assert judge("key_policy_public", policy).status is Status.PASS


def test_aws_managed_keys_are_not_judged_and_customer_keys_pass() -> None:
    managed = aws_managed_key("s3", policy=doc(allow("*", "kms:*")))
    mine = key(policy=GUIDE)
    findings = by_arn(run("key_policy_public", snapshot([managed, mine])))
    assert managed.arn not in findings
    assert findings[mine.arn].status is Status.PASS


@pytest.mark.parametrize("check_id", POLICY_CHECKS)
def test_unreadable_policy_is_an_error_for_every_policy_check(check_id: str) -> None:
    assert judge(check_id, None).status is Status.ERROR


@pytest.mark.parametrize("check_id", POLICY_CHECKS)
def test_invalid_policy_is_an_error_naming_the_problem(check_id: str) -> None:
    f = judge(check_id, '{"Version": "2012-10-17", "Statement": [')
    assert f.status is Status.ERROR
    assert "not valid" in f.message


@pytest.mark.parametrize("check_id", POLICY_CHECKS)
def test_generated_guide_policy_passes_every_policy_check(check_id: str) -> None:
    assert judge(check_id, GUIDE).status is Status.PASS


# --- key_policy_external_access ---------------------------------------------------------------------------


def test_external_account_shorthand_fails_naming_the_account_root() -> None:
    f = judge("key_policy_external_access", doc(ROOT_STATEMENT, allow({"AWS": OTHER_ACCOUNT}, "kms:Decrypt")))
    assert f.status is Status.FAIL
    assert f.evidence["principals"] == [f"arn:aws:iam::{OTHER_ACCOUNT}:root"]
    assert f.evidence["statements"][0]["index"] == 1


def test_external_role_is_named_exactly() -> None:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/Reader"
    f = judge("key_policy_external_access", doc(ROOT_STATEMENT, allow({"AWS": role}, "kms:Decrypt")))
    assert f.evidence["principals"] == [role]


def test_external_account_trusted_by_config_passes() -> None:
    policy = doc(ROOT_STATEMENT, allow({"AWS": OTHER_ACCOUNT}, "kms:Decrypt"))
    cfg = ScanConfig(trusted_accounts=[OTHER_ACCOUNT])
    assert judge("key_policy_external_access", policy, cfg).status is Status.PASS


def test_account_present_in_the_snapshot_is_trusted() -> None:
    policy = doc(ROOT_STATEMENT, allow({"AWS": OTHER_ACCOUNT}, "kms:Decrypt"))
    k = key(policy=policy)
    snap = snapshot([k])
    snap.accounts.append(AccountSnapshot(account_id=OTHER_ACCOUNT))
    assert by_arn(run("key_policy_external_access", snap))[k.arn].status is Status.PASS


def test_org_bound_access_outside_the_trusted_orgs_fails_as_org() -> None:
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", **{"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    f = judge("key_policy_external_access", policy)
    assert f.status is Status.FAIL
    assert f.evidence["principals"] == [f"org:{ORG}"]
    assert judge("key_policy_external_access", policy, ScanConfig(trusted_org_ids=[ORG])).status is Status.PASS


def test_snapshot_organisation_is_trusted() -> None:
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", **{"StringEquals": {"aws:PrincipalOrgID": ORG}}))
    k = key(policy=policy)
    snap = snapshot([k])
    snap = Snapshot.model_validate(
        snap.model_dump() | {"accounts": [snap.accounts[0].model_dump() | {"organization_id": ORG}]}
    )
    assert by_arn(run("key_policy_external_access", snap))[k.arn].status is Status.PASS


def test_external_account_denied_by_an_explicit_deny_passes() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "kms:*", "Resource": "*"}
    policy = doc(ROOT_STATEMENT, allow({"AWS": OTHER_ACCOUNT}, "kms:Decrypt"), deny)
    assert judge("key_policy_external_access", policy).status is Status.PASS


# --- key_policy_wildcard_actions -----------------------------------------------------------------------


def test_wildcard_to_a_role_fails_and_root_delegation_passes() -> None:
    f = judge("key_policy_wildcard_actions", doc(ROOT_STATEMENT, allow({"AWS": APP}, "kms:*", "AppAll")))
    assert f.status is Status.FAIL
    assert [s["sid"] for s in f.evidence["statements"]] == ["AppAll"]
    assert judge("key_policy_wildcard_actions", doc(ROOT_STATEMENT)).status is Status.PASS


def test_notaction_counts_as_a_wildcard() -> None:
    st = {"Effect": "Allow", "Principal": {"AWS": APP}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}
    assert judge("key_policy_wildcard_actions", doc(ROOT_STATEMENT, st)).status is Status.FAIL


def test_star_action_to_another_account_root_fails() -> None:
    policy = doc(ROOT_STATEMENT, allow({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, "*"))
    assert judge("key_policy_wildcard_actions", policy).status is Status.FAIL


# --- key_policy_admin_can_use ------------------------------------------------------------------------------


def test_admin_with_decrypt_fails() -> None:
    policy = doc(ROOT_STATEMENT, allow({"AWS": ADMIN}, ["kms:PutKeyPolicy", "kms:Decrypt"]))
    f = judge("key_policy_admin_can_use", policy)
    assert f.status is Status.FAIL
    assert f.evidence["cryptographic_use"] == {ADMIN: ["kms:Decrypt"]}


def test_admin_whose_decrypt_is_denied_passes() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": ADMIN}, "Action": "kms:Decrypt", "Resource": "*"}
    policy = doc(ROOT_STATEMENT, allow({"AWS": ADMIN}, ["kms:Put*", "kms:Decrypt"]), deny)
    assert judge("key_policy_admin_can_use", policy).status is Status.PASS


def test_admin_use_granted_by_wildcard_pattern_fails() -> None:
    policy = doc(ROOT_STATEMENT, allow({"AWS": ADMIN}, ["kms:Put*", "kms:GenerateDataKey*"]))
    f = judge("key_policy_admin_can_use", policy)
    assert f.status is Status.FAIL
    assert "kms:GenerateDataKey" in f.evidence["cryptographic_use"][ADMIN]


# --- key_policy_no_secure_transport -------------------------------------------------------------------


def test_no_deny_statement_fails_and_guide_deny_passes() -> None:
    assert judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT)).status is Status.FAIL
    assert judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, DENY_HTTP)).status is Status.PASS


def test_equivalent_deny_with_string_operator_and_crypto_actions_passes() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Sign",
            "kms:Verify",
            "kms:GenerateMac",
            "kms:VerifyMac",
            "kms:DeriveSharedSecret",
            "kms:Encapsulate",
            "kms:Decapsulate",
        ],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SecureTransport": "false"}},
    }
    assert judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, deny)).status is Status.PASS


def test_deny_limited_to_one_role_or_only_decrypt_fails() -> None:
    for_one = dict(DENY_HTTP, Principal={"AWS": APP})
    assert judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, for_one)).status is Status.FAIL
    only_decrypt = dict(DENY_HTTP, Action="kms:Decrypt")
    assert judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, only_decrypt)).status is Status.FAIL


# --- key_policy_iam_only ------------------------------------------------------------------------------


def test_default_key_policy_is_iam_only() -> None:
    f = judge("key_policy_iam_only", doc(ROOT_STATEMENT))
    assert f.status is Status.FAIL
    assert f.severity.value == "low"


def test_named_users_pass_iam_only() -> None:
    f = judge("key_policy_iam_only", doc(ROOT_STATEMENT, allow({"AWS": APP}, "kms:Decrypt")))
    assert f.status is Status.PASS
    assert APP in f.evidence["principals"]


def test_root_plus_a_deny_is_still_iam_only() -> None:
    assert judge("key_policy_iam_only", doc(ROOT_STATEMENT, DENY_HTTP)).status is Status.FAIL


# --- regressions (review findings) ---------------------------------------------------------------------

CRYPTO_NAMES_DENY = dict(DENY_HTTP, Action=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"])


def test_deny_naming_the_symmetric_crypto_actions_passes_for_a_symmetric_key() -> None:
    f = judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, CRYPTO_NAMES_DENY))
    assert f.status is Status.PASS


def test_secure_transport_deny_is_judged_for_the_key_type() -> None:
    sign_deny = dict(DENY_HTTP, Action=["kms:Sign", "kms:Verify"])
    policy = doc(ROOT_STATEMENT, sign_deny)
    signing = judge("key_policy_no_secure_transport", policy, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    assert signing.status is Status.PASS
    symmetric = judge("key_policy_no_secure_transport", policy)
    assert symmetric.status is Status.FAIL
    hmac = judge("key_policy_no_secure_transport", doc(ROOT_STATEMENT, CRYPTO_NAMES_DENY), key_spec="HMAC_256",
                 key_usage="GENERATE_VERIFY_MAC")  # fmt: skip
    assert hmac.status is Status.FAIL


@pytest.mark.parametrize(
    "document",
    [
        {"Version": "2012-10-17", "Statement": [ROOT_STATEMENT, allow("*", ["kms:Decrypt", "kms:NewFutureAction"])]},
        {"Version": "2012-10-17", "Statement": [ROOT_STATEMENT, allow("*", "kms:Decrypt", "EnableIAMUserPermissions")]},
        {"Statement": [ROOT_STATEMENT, allow("*", "kms:Decrypt")]},
    ],
    ids=["future-action", "duplicate-sid", "no-version"],
)
def test_policy_kms_accepted_is_judged_not_an_error(document: dict[str, Any]) -> None:
    f = judge("key_policy_public", json.dumps(document))
    assert f.status is Status.FAIL
    for check_id in POLICY_CHECKS:
        assert judge(check_id, json.dumps(document)).status is not Status.ERROR


def test_policy_without_statement_is_still_an_error() -> None:
    f = judge("key_policy_public", json.dumps({"Version": "2012-10-17"}))
    assert f.status is Status.ERROR


def test_admin_role_with_decrypt_through_its_session_fails() -> None:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/alice"
    policy = doc(ROOT_STATEMENT, allow({"AWS": ADMIN}, "kms:PutKeyPolicy"), allow({"AWS": session}, "kms:Decrypt"))
    f = judge("key_policy_admin_can_use", policy)
    assert f.status is Status.FAIL
    assert "kms:Decrypt" in f.evidence["cryptographic_use"][ADMIN]


def test_org_path_bound_access_is_the_organisation_not_public() -> None:
    cond = {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/r-ab12/ou-ab12-11111111/*"}}
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", **cond))
    assert judge("key_policy_public", policy).status is Status.PASS
    f = judge("key_policy_external_access", policy)
    assert f.status is Status.FAIL and f.evidence["principals"] == [f"org:{ORG}"]
    trusted = judge("key_policy_external_access", policy, ScanConfig(trusted_org_ids=[ORG]))
    assert trusted.status is Status.PASS


def test_principal_star_for_aws_services_only_is_not_public() -> None:
    policy = doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", Bool={"aws:PrincipalIsAWSService": "true"}))
    assert judge("key_policy_public", policy).status is Status.PASS
