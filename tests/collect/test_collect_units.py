"""Pure parts of collection, and the AWS answers moto cannot give (covered with botocore's Stubber)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from kmsguard.aws.regions import resolve_regions
from kmsguard.collect.cloudtrail import apply_selectors
from kmsguard.collect.iam import mentions_kms
from kmsguard.collect.kms import read_key
from kmsguard.model.keyrefs import KeyResolver
from kmsguard.model.snapshot import Key, Trail

ACCT, REGION = "111122223333", "eu-west-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCT}:key/{KEY_ID}"


def _key(key_id: str = KEY_ID) -> Key:
    return Key(arn=f"arn:aws:kms:{REGION}:{ACCT}:key/{key_id}", key_id=key_id, account=ACCT, region=REGION)


class _Ctx:
    """The one thing read_key needs from a RegionContext: the region's KMS client."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms

    def client(self, service: str) -> Any:
        assert service == "kms"
        return self._kms


def _stubbed(service: str) -> tuple[Any, Stubber]:
    c = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return c, Stubber(c)


def test_key_references_resolve_to_key_arns() -> None:
    other = "arn:aws:kms:us-east-1:999999999999:key/other"
    r = KeyResolver("aws", ACCT, REGION, [_key()], {"alias/app": KEY_ID, "alias/aws/s3": KEY_ID})
    assert r.resolve(KEY_ID) == KEY_ARN
    assert r.resolve("alias/app") == KEY_ARN
    assert r.resolve(f"arn:aws:kms:{REGION}:{ACCT}:alias/app") == KEY_ARN
    assert r.resolve(KEY_ARN) == KEY_ARN
    assert r.resolve(other) == other  # another account's key ARN is still that key
    assert r.resolve("arn:aws:kms:us-east-1:999999999999:alias/app") is None  # not our alias to read
    assert r.resolve("alias/aws/ebs") is None  # the AWS managed key does not exist yet
    assert r.resolve("feedface-0000") == f"arn:aws:kms:{REGION}:{ACCT}:key/feedface-0000"
    assert r.resolve(None) is None


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("kms:Decrypt", True),
        (["s3:GetObject", "KMS:Encrypt"], True),
        ("*", True),
        ("k*", True),
        ("*:*", True),
        ("s3:*", False),
        (["logs:*", "sts:AssumeRole"], False),
        # A wildcard service covers KMS's actions too: IAM matches "*:CreateGrant" against kms:CreateGrant.
        ("*:CreateGrant", True),
        ("*:Encrypt", True),
        ("?ms:PutKeyPolicy", True),
        ("*:GetObject", False),
        # "[" is a character in IAM, not a class: "k[m]s:*" matches no KMS action.
        ("k[m]s:*", False),
    ],
)
def test_iam_policy_mentions_kms(actions: Any, expected: bool) -> None:
    assert mentions_kms({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}) is expected


def test_not_action_counts_as_mentioning_kms() -> None:
    assert mentions_kms({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}})


def _trail() -> Trail:
    return Trail(name="t", arn="arn:aws:cloudtrail:eu-west-1:1:trail/t", home_region=REGION)


def test_advanced_selectors_that_exclude_kms_events_are_seen() -> None:
    trail = _trail()
    apply_selectors(
        trail,
        {
            "AdvancedEventSelectors": [
                {
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Management"]},
                        {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                    ]
                }
            ]
        },
    )
    assert (trail.logs_management_events, trail.management_read_write_type, trail.kms_events_excluded) == (
        True,
        "All",
        True,
    )


def test_selectors_without_management_events_and_read_only_ones() -> None:
    data_only = _trail()
    apply_selectors(data_only, {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]})
    assert (data_only.logs_management_events, data_only.management_read_write_type) == (False, "None")
    ro = _trail()
    apply_selectors(
        ro,
        {
            "AdvancedEventSelectors": [
                {
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Management"]},
                        {"Field": "readOnly", "Equals": ["true"]},
                    ]
                }
            ]
        },
    )
    assert (ro.logs_management_events, ro.management_read_write_type, ro.kms_events_excluded) == (
        True,
        "ReadOnly",
        False,
    )
    excl = _trail()
    apply_selectors(
        excl,
        {
            "EventSelectors": [
                {
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": True,
                    "ExcludeManagementEventSources": ["kms.amazonaws.com"],
                }
            ]
        },
    )
    assert excl.kms_events_excluded is True


def test_rotation_period_and_next_date_are_read() -> None:
    """moto ignores RotationPeriodInDays on EnableKeyRotation; AWS returns it, so the Stubber plays AWS."""
    kms, stub = _stubbed("kms")
    nxt = datetime(2027, 1, 1, tzinfo=UTC)
    md = {"KeyId": KEY_ID, "Arn": KEY_ARN, "KeyManager": "CUSTOMER", "KeyState": "Enabled"}
    md |= {"KeySpec": "SYMMETRIC_DEFAULT", "Origin": "AWS_KMS", "KeyUsage": "ENCRYPT_DECRYPT"}
    stub.add_response("describe_key", {"KeyMetadata": md}, {"KeyId": KEY_ID})
    stub.add_response("get_key_policy", {"Policy": "{}"}, {"KeyId": KEY_ID, "PolicyName": "default"})
    stub.add_response(
        "get_key_rotation_status",
        {"KeyRotationEnabled": True, "RotationPeriodInDays": 180, "NextRotationDate": nxt},
        {"KeyId": KEY_ID},
    )
    stub.add_response("list_resource_tags", {"Tags": [{"TagKey": "Owner", "TagValue": "sec"}]}, {"KeyId": KEY_ID})
    stub.add_response("list_grants", {"Grants": []}, {"KeyId": KEY_ID})
    key = _key()
    with stub:
        read_key(_Ctx(kms), key)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert (key.rotation_enabled, key.rotation_period_days, key.next_rotation_date) == (True, 180, nxt)
    assert key.tags == {"Owner": "sec"} and key.errors == []


def test_aws_managed_key_costs_three_calls() -> None:
    """moto has no AWS managed keys (the demo emulator adds them); AWS's answers via the Stubber."""
    kms, stub = _stubbed("kms")
    md = {"KeyId": KEY_ID, "Arn": KEY_ARN, "KeyManager": "AWS", "KeyState": "Enabled"}
    md |= {"KeySpec": "SYMMETRIC_DEFAULT", "Origin": "AWS_KMS", "KeyUsage": "ENCRYPT_DECRYPT"}
    policy = json.dumps({"Statement": []})
    stub.add_response("describe_key", {"KeyMetadata": md}, {"KeyId": KEY_ID})
    stub.add_response("get_key_policy", {"Policy": policy}, {"KeyId": KEY_ID, "PolicyName": "default"})
    stub.add_response("list_grants", {"Grants": []}, {"KeyId": KEY_ID})
    key = _key()
    with stub:  # any call beyond these three fails the test (the Stubber refuses unexpected calls)
        read_key(_Ctx(kms), key)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert key.is_aws_managed and key.policy == policy and key.rotation_enabled is None and key.errors == []


def test_default_regions_leave_out_regions_not_opted_in() -> None:
    """moto reports every region as opt-in-not-required; AWS's answer via the Stubber."""
    ec2, stub = _stubbed("ec2")
    regions = [
        {"RegionName": "us-east-1", "OptInStatus": "opt-in-not-required"},
        {"RegionName": "af-south-1", "OptInStatus": "opted-in"},
        {"RegionName": "me-south-1", "OptInStatus": "not-opted-in"},
    ]
    stub.add_response("describe_regions", {"Regions": regions}, {"AllRegions": False})
    with stub:
        plan = resolve_regions(ec2, None, "us-east-1")
    assert plan.regions == ["af-south-1", "us-east-1"] and plan.refused == {} and plan.lookup_error is None


def test_region_lookup_denied_scans_the_home_region_and_says_so() -> None:
    ec2, stub = _stubbed("ec2")
    stub.add_client_error("describe_regions", "UnauthorizedOperation", "no", expected_params={"AllRegions": False})
    with stub:
        plan = resolve_regions(ec2, None, "eu-west-1")
    assert plan.regions == ["eu-west-1"] and plan.lookup_error == ("UnauthorizedOperation", "no")
