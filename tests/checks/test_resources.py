"""Resource checks: AWS managed keys, no KMS encryption, data under a key pending deletion or disabled."""

from __future__ import annotations

import pytest

from kmsguard.model.finding import Severity, Status

from .builders import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    aws_managed_key,
    by_arn,
    key,
    region,
    resource,
    run,
    snapshot,
)

SENSITIVE = {"DataClassification": "CUI"}

# --- resource_uses_aws_managed_key ------------------------------------------------------------------------------


def test_aws_managed_key_fails_medium_and_names_service_and_alias() -> None:
    managed, cmk = aws_managed_key("s3"), key()
    bucket = resource("logs-bucket", uses=managed)
    good = resource("cmk-bucket", uses=cmk)
    found = by_arn(run("resource_uses_aws_managed_key", snapshot(keys=[managed, cmk], resources=[bucket, good])))
    f = found[bucket.arn]
    assert (f.status, f.severity) == (Status.FAIL, Severity.MEDIUM)
    assert "s3" in f.message and "alias/aws/s3" in f.message and "logs-bucket" in f.message
    assert f.evidence["aws_managed_alias"] == "alias/aws/s3"
    assert found[good.arn].status is Status.PASS


def test_aws_managed_key_on_sensitive_data_is_high() -> None:
    managed = aws_managed_key("ebs")
    vol = resource("vol-1", service="ebs", uses=managed, tags=SENSITIVE)
    [f] = run("resource_uses_aws_managed_key", snapshot(keys=[managed], resources=[vol]))
    assert (f.status, f.severity) == (Status.FAIL, Severity.HIGH)
    assert f.evidence["sensitive"] is True


def test_alias_reference_to_aws_key_fails_even_when_the_key_is_not_in_the_snapshot() -> None:
    # Emulators have no AWS managed keys: alias/aws/* resolves to nothing, but it is one by construction.
    by_alias = resource("q", service="sqs", key_ref="alias/aws/sqs")
    by_alias_arn = resource("t", service="sns", key_ref=f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/sns")
    found = by_arn(run("resource_uses_aws_managed_key", snapshot(resources=[by_alias, by_alias_arn])))
    assert found[by_alias.arn].status is Status.FAIL
    assert "alias/aws/sqs" in found[by_alias.arn].message
    assert found[by_alias_arn.arn].evidence["aws_managed_alias"] == "alias/aws/sns"


def test_customer_key_with_an_alias_named_like_aws_is_judged_by_its_manager() -> None:
    # Only KeyManager says who manages a key; a customer key aliased "alias/awsome" is customer managed.
    cmk = key(aliases=["alias/awsome"])
    res = resource("b", uses=cmk, key_ref="alias/awsome")
    [f] = run("resource_uses_aws_managed_key", snapshot(keys=[cmk], resources=[res]))
    assert f.status is Status.PASS


def test_key_in_another_account_is_customer_managed_by_construction() -> None:
    res = resource("b", key_arn=f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/abc", key_ref="abc")
    [f] = run("resource_uses_aws_managed_key", snapshot(resources=[res]))
    assert f.status is Status.PASS


def test_unresolvable_key_is_an_error() -> None:
    res = resource("b", key_ref="1234", key_arn=None)
    [f] = run("resource_uses_aws_managed_key", snapshot(resources=[res]))
    assert f.status is Status.ERROR


def test_non_kms_resources_are_left_to_resource_not_kms_encrypted() -> None:
    plain = resource("p", encryption="none")
    owned = resource("o", service="dynamodb", encryption="aws-owned")
    assert run("resource_uses_aws_managed_key", snapshot(resources=[plain, owned])) == []


def test_ebs_default_key_under_aws_managed_key_fails_for_the_region() -> None:
    managed = aws_managed_key("ebs")
    reg = region(
        REGION, ebs_encryption_by_default=True, ebs_default_key_ref="alias/aws/ebs", ebs_default_key_arn=managed.arn
    )
    [f] = run("resource_uses_aws_managed_key", snapshot(keys=[managed], regions=[reg]))
    assert f.status is Status.FAIL
    assert f.resource_type == "AWS::Account::Region"
    assert "alias/aws/ebs" in f.message


# --- resource_not_kms_encrypted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encryption", "tags", "status", "severity"),
    [
        ("none", {}, Status.FAIL, Severity.MEDIUM),
        ("none", SENSITIVE, Status.FAIL, Severity.HIGH),
        ("aws-owned", {}, Status.FAIL, Severity.LOW),
        ("aws-owned", SENSITIVE, Status.FAIL, Severity.MEDIUM),
        ("kms", SENSITIVE, Status.PASS, Severity.MEDIUM),
        ("unknown", {}, Status.ERROR, Severity.MEDIUM),
    ],
)
def test_not_kms_encrypted(encryption: str, tags: dict[str, str], status: Status, severity: Severity) -> None:
    res = resource("thing", service="dynamodb", encryption=encryption, key_arn=None, tags=tags)
    [f] = run("resource_not_kms_encrypted", snapshot(resources=[res]))
    assert (f.status, f.severity) == (status, severity)


def test_sensitivity_is_case_insensitive_and_trimmed() -> None:
    res = resource("x", encryption="none", tags={"DataClassification": " Confidential "})
    [f] = run("resource_not_kms_encrypted", snapshot(resources=[res]))
    assert f.severity is Severity.HIGH


# --- resource_key_pending_deletion ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["PendingDeletion", "Disabled", "PendingReplicaDeletion"])
def test_data_under_a_dying_key_is_critical(state: str) -> None:
    dying = key(key_state=state)
    res = resource("db", service="rds", uses=dying)
    [f] = run("resource_key_pending_deletion", snapshot(keys=[dying], resources=[res]))
    assert (f.status, f.severity) == (Status.FAIL, Severity.CRITICAL)
    assert state in f.message
    assert f.evidence["key_arn"] == dying.arn


def test_data_under_an_unavailable_key_is_high() -> None:
    k = key(key_state="Unavailable", custom_key_store_id="cks-1")
    res = resource("db", service="rds", uses=k)
    [f] = run("resource_key_pending_deletion", snapshot(keys=[k], resources=[res]))
    assert (f.status, f.severity) == (Status.FAIL, Severity.HIGH)


def test_data_under_an_enabled_key_or_aws_managed_key_passes() -> None:
    live, managed = key(), aws_managed_key("s3")
    a, b = resource("a", uses=live), resource("b", uses=managed)
    c = resource("c", key_ref="alias/aws/s3")  # AWS managed key not in the snapshot: cannot be deleted
    found = by_arn(run("resource_key_pending_deletion", snapshot(keys=[live, managed], resources=[a, b, c])))
    assert {f.status for f in found.values()} == {Status.PASS}
    assert len(found) == 3


def test_key_outside_the_scanned_accounts_is_an_error_naming_the_account() -> None:
    res = resource("b", key_arn=f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/abc", key_ref="abc")
    [f] = run("resource_key_pending_deletion", snapshot(resources=[res]))
    assert f.status is Status.ERROR
    assert f"account {OTHER_ACCOUNT} was not scanned" in f.message


def test_resource_in_one_account_under_a_dying_key_in_another_scanned_account() -> None:
    central = key(account=OTHER_ACCOUNT, key_state="PendingDeletion")
    res = resource("b", uses=central)
    [f] = run("resource_key_pending_deletion", snapshot(keys=[central], resources=[res]))
    assert f.status is Status.FAIL
    assert f.account == ACCOUNT


def test_unencrypted_resources_have_no_key_to_judge() -> None:
    assert run("resource_key_pending_deletion", snapshot(resources=[resource("p", encryption="none")])) == []
