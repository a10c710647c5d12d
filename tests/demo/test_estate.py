"""The sample estate: seeding builds what EstateInfo says, in the states the demo relies on."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from kmsguard.demo.emulator import Emulator
from kmsguard.demo.estate import EAST, MAIN_ACCOUNT, SANDBOX_ACCOUNT, SHOWCASED_CHECKS, WEST, EstateInfo, seed_estate


@pytest.fixture(scope="module")
def seeded(moto_server: Emulator) -> Any:
    """The worker's emulator, emptied and seeded once for this module's read-only assertions.

    moto's state is per process, so this reuses the session server rather than starting a second one.
    """
    moto_server.reset()
    yield moto_server, seed_estate(moto_server.endpoint_url)
    moto_server.reset()


def _client(emu: Emulator, service: str, region: str = EAST, account: str = MAIN_ACCOUNT) -> Any:
    cli = boto3.client(
        service,
        region_name=region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if account != MAIN_ACCOUNT:
        cli.meta.events.register(
            "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account)
        )
    return cli


def _keys(kms: Any) -> list[dict[str, Any]]:
    ids = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]]
    return [kms.describe_key(KeyId=i)["KeyMetadata"] for i in ids]


def test_estate_counts(seeded: tuple[Emulator, EstateInfo]) -> None:
    _, info = seeded
    assert info.accounts == [MAIN_ACCOUNT, SANDBOX_ACCOUNT]
    assert info.regions == [EAST, WEST]
    counts = info.counts()
    assert 25 <= counts["customer_managed_keys"] <= 35  # "about 30 keys"
    assert counts["aws_managed_keys"] >= 8
    assert counts["trails"] == 4
    kinds = {name.split(":", 1)[0] for name in info.resources}
    assert kinds >= {"s3", "ebs", "rds", "secretsmanager", "dynamodb", "sns", "sqs", "logs", "ssm", "iam"}


def test_every_check_is_expected_to_fail_and_to_pass(seeded: tuple[Emulator, EstateInfo]) -> None:
    _, info = seeded
    assert set(info.expect) == SHOWCASED_CHECKS
    for check_id, by_status in info.expect.items():
        assert by_status["FAIL"], f"{check_id}: nothing in the estate should fail it"
        assert by_status["PASS"], f"{check_id}: nothing in the estate should pass it"


def test_keys_as_the_scanner_will_see_them(seeded: tuple[Emulator, EstateInfo]) -> None:
    emu, info = seeded
    by_region = {EAST: _keys(_client(emu, "kms", EAST)), WEST: _keys(_client(emu, "kms", WEST))}
    listed = {m["Arn"]: m for metas in by_region.values() for m in metas}
    main_cmks = {p: a for p, a in info.keys.items() if f":{MAIN_ACCOUNT}:" in a}
    assert set(main_cmks.values()) <= set(listed)
    assert all(listed[a]["KeyManager"] == "CUSTOMER" for a in main_cmks.values())
    aws_managed = [a for k, a in info.aws_managed_keys.items() if k.startswith(MAIN_ACCOUNT)]
    assert aws_managed and all(listed[a]["KeyManager"] == "AWS" for a in aws_managed)

    k = info.keys
    assert listed[k["pending_deletion"]]["KeyState"] == "PendingDeletion"
    assert listed[k["eu_pending_deletion"]]["KeyState"] == "PendingDeletion"
    assert listed[k["disabled"]]["KeyState"] == "Disabled"
    assert listed[k["standard"]]["KeyState"] == "Enabled"
    assert listed[k["asymmetric_rsa"]]["KeySpec"] == "RSA_3072"
    assert listed[k["hmac"]]["KeySpec"] == "HMAC_256"
    assert listed[k["imported"]]["Origin"] == "EXTERNAL"

    kms = _client(emu, "kms", EAST)
    assert kms.get_key_rotation_status(KeyId=k["standard"])["RotationPeriodInDays"] == 365
    assert kms.get_key_rotation_status(KeyId=k["standard_180"])["RotationPeriodInDays"] == 180
    assert kms.get_key_rotation_status(KeyId=k["rotation_too_long"])["RotationPeriodInDays"] == 730
    assert kms.get_key_rotation_status(KeyId=k["rotation_disabled"])["KeyRotationEnabled"] is False
    with pytest.raises(ClientError) as exc:
        kms.get_key_rotation_status(KeyId=k["asymmetric_rsa"])
    assert exc.value.response["Error"]["Code"] == "UnsupportedOperationException"

    aliases = {
        a["AliasName"]: a.get("TargetKeyId") for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]
    }
    assert aliases["alias/production-encryption-2026"] == listed[k["standard"]]["KeyId"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=k["standard"])["Tags"]}
    assert tags == {
        "Environment": "Production",
        "DataClassification": "CUI",
        "Owner": "security-team",
        "CostCenter": "CC-1042",
    }
    policy = json.loads(kms.get_key_policy(KeyId=k["standard"], PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == [
        "EnableIAMUserPermissions",
        "KeyAdministration",
        "KeyUsageForEncryption",
        "DenyInsecureTransport",
    ]


def test_sandbox_account_is_separate(seeded: tuple[Emulator, EstateInfo]) -> None:
    emu, info = seeded
    kms = _client(emu, "kms", EAST, SANDBOX_ACCOUNT)
    arns = {m["Arn"] for m in _keys(kms)}
    assert info.keys["sandbox_app"] in arns and info.keys["standard"] not in arns
    trails = _client(emu, "cloudtrail", EAST, SANDBOX_ACCOUNT).describe_trails()["trailList"]
    assert [(t["Name"], t["IsMultiRegionTrail"]) for t in trails] == [("sandbox-local", False)]


def test_audit_setup_differs_by_region(seeded: tuple[Emulator, EstateInfo]) -> None:
    emu, _ = seeded
    east_trails = {t["Name"]: t for t in _client(emu, "cloudtrail", EAST).describe_trails()["trailList"]}
    assert east_trails["organization-audit"]["IsMultiRegionTrail"] is True
    assert east_trails["organization-audit"]["LogFileValidationEnabled"] is True
    assert east_trails["app-data-events"]["LogFileValidationEnabled"] is False

    east_rules = {
        r["Source"]["SourceIdentifier"] for r in _client(emu, "config", EAST).describe_config_rules()["ConfigRules"]
    }
    west_rules = {
        r["Source"]["SourceIdentifier"] for r in _client(emu, "config", WEST).describe_config_rules()["ConfigRules"]
    }
    assert east_rules == {"CMK_BACKING_KEY_ROTATION_ENABLED"}
    assert west_rules == {"KMS_CMK_NOT_SCHEDULED_FOR_DELETION"}

    east_filters = _client(emu, "logs", EAST).describe_metric_filters()["metricFilters"]
    assert [f["filterName"] for f in east_filters] == ["KMSKeyPolicyChanges"]
    alarms = {a["AlarmName"]: a for a in _client(emu, "cloudwatch", WEST).describe_alarms()["MetricAlarms"]}
    assert alarms["KMS-Decrypt-Failures"]["AlarmActions"][0].endswith(":security-alerts-eu")
    assert _client(emu, "ec2", WEST).get_ebs_default_kms_key_id()["KmsKeyId"] == info_key(seeded, "eu_standard")


def info_key(seeded: tuple[Emulator, EstateInfo], purpose: str) -> str:
    return seeded[1].keys[purpose]
