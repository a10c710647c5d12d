"""The audit set-up and the resources that use KMS, collected from moto over HTTP, keys resolved."""

from __future__ import annotations

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.model.snapshot import RegionSnapshot, Snapshot

from .estate import ACCOUNT, EAST, WEST, build_audit, build_iam, build_keys, build_resources


def regions(snap: Snapshot) -> dict[str, RegionSnapshot]:
    return {r.region: r for r in snap.accounts[0].regions}


def test_audit_setup(client, aws) -> None:  # type: ignore[no-untyped-def]
    est = build_keys(client)
    build_audit(client, est)
    snap = collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST, WEST]))
    east, west = regions(snap)[EAST], regions(snap)[WEST]
    assert east.errors == [] and west.errors == []

    [trail] = east.trails
    assert (trail.name, trail.arn, trail.home_region) == ("main", est.trail_arn, EAST)
    assert trail.is_multi_region and trail.log_file_validation_enabled and not trail.is_organization_trail
    assert trail.cloudwatch_logs_log_group_arn == est.log_group_arn
    assert trail.is_logging is True
    assert (trail.logs_management_events, trail.management_read_write_type) == (True, "WriteOnly")
    assert trail.kms_events_excluded is False
    assert (trail.kms_writes_recorded, trail.kms_reads_recorded) == (True, False)
    # The shadow copy in the other region carries the home copy's status, read once.
    assert west.trails == [trail]

    [mf] = east.metric_filters
    assert (mf.log_group_name, mf.name) == ("trail-logs", "KMSKeyPolicyChanges")
    assert "PutKeyPolicy" in mf.pattern and mf.metrics == [("Security/KMS", "KMSPolicyChanges")]
    assert west.metric_filters == []

    [alarm] = east.alarms
    assert (alarm.name, alarm.namespace, alarm.metric_name, alarm.statistic) == (
        "KMS-Key-Policy-Changes",
        "Security/KMS",
        "KMSPolicyChanges",
        "Sum",
    )
    assert (alarm.period, alarm.evaluation_periods, alarm.threshold) == (300, 1, 1.0)
    assert alarm.comparison_operator == "GreaterThanOrEqualToThreshold"
    assert alarm.actions_enabled and alarm.alarm_actions == [est.arns["security-alerts"]]

    [rule] = east.config_rules
    assert (rule.name, rule.source_owner, rule.source_identifier) == (
        "cmk-backing-key-rotation-enabled",
        "AWS",
        "CMK_BACKING_KEY_ROTATION_ENABLED",
    )
    assert rule.state == "ACTIVE"
    [rec] = east.config_recorders
    assert (rec.name, rec.recording, rec.all_supported) == ("default", True, True)
    assert west.config_rules == [] and west.config_recorders == []


def test_resources_and_their_keys(client, aws) -> None:  # type: ignore[no-untyped-def]
    est = build_keys(client)
    build_resources(client, est)
    build_iam(client)
    snap = collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST, WEST]))
    east, west = regions(snap)[EAST], regions(snap)[WEST]
    assert east.errors == [] and west.errors == []
    rot = est.keys["rotating"]["Arn"]
    aws_key = {a: k.arn for r in (east, west) for k in r.keys for a in k.aliases if a.startswith("alias/aws/")}

    got = {(r.resource_type, r.name): r for r in east.resources + west.resources}
    for r in got.values():
        assert r.errors == [] and r.account == ACCOUNT
    vol_cmk, vol_plain = est.arns["vol-cmk"], est.arns["vol-plain"]
    expected = {
        ("AWS::S3::Bucket", "data-cmk-0001"): ("kms", "alias/app-prod", rot),
        ("AWS::S3::Bucket", "data-sse-s3-0001"): ("aws-owned", None, None),
        ("AWS::S3::Bucket", "data-eu-0001"): ("kms", "alias/aws/s3", aws_key.get("alias/aws/s3")),
        ("AWS::EC2::Volume", vol_cmk): ("kms", rot, rot),
        ("AWS::EC2::Volume", vol_plain): ("none", None, None),
        ("AWS::RDS::DBInstance", "db-cmk"): ("kms", rot, rot),
        ("AWS::SecretsManager::Secret", "secret-default"): (
            "kms",
            "alias/aws/secretsmanager",
            aws_key.get("alias/aws/secretsmanager"),
        ),
        ("AWS::SecretsManager::Secret", "secret-cmk"): ("kms", "alias/app-prod", rot),
        ("AWS::DynamoDB::Table", "table-default"): ("aws-owned", None, None),
        ("AWS::DynamoDB::Table", "table-cmk"): ("kms", rot, rot),
        ("AWS::SNS::Topic", "topic-cmk"): ("kms", "alias/app-prod", rot),
        ("AWS::SNS::Topic", "topic-aws"): ("kms", "alias/aws/sns", aws_key.get("alias/aws/sns")),
        ("AWS::SQS::Queue", "queue-cmk"): ("kms", est.keys["rotating"]["KeyId"], rot),
        ("AWS::SQS::Queue", "queue-sqs"): ("aws-owned", None, None),
        ("AWS::Logs::LogGroup", "app-logs"): ("kms", rot, rot),
        ("AWS::SSM::Parameter", "/app/default"): ("kms", "alias/aws/ssm", aws_key.get("alias/aws/ssm")),
        ("AWS::SSM::Parameter", "/app/cmk"): ("kms", "alias/app-prod", rot),
    }
    assert set(got) == set(expected)  # the plain String parameter is not a SecureString: left out
    for ident, (encryption, key_ref, key_arn) in expected.items():
        assert (got[ident].encryption, got[ident].key_ref, got[ident].key_arn) == (encryption, key_ref, key_arn), ident

    assert got[("AWS::S3::Bucket", "data-eu-0001")].region == WEST
    assert got[("AWS::S3::Bucket", "data-cmk-0001")].tags == {"DataClassification": "CUI"}
    assert got[("AWS::EC2::Volume", vol_plain)].tags == {"Environment": "dev"}
    assert got[("AWS::EC2::Volume", vol_plain)].arn == f"arn:aws:ec2:{EAST}:{ACCOUNT}:volume/{vol_plain}"
    for ident in [
        ("AWS::RDS::DBInstance", "db-cmk"),
        ("AWS::DynamoDB::Table", "table-cmk"),
        ("AWS::SQS::Queue", "queue-cmk"),
    ]:
        assert got[ident].tags == {"Environment": "prod"}, ident
    assert got[("AWS::DynamoDB::Table", "table-cmk")].arn == est.arns["table-cmk"]
    assert got[("AWS::SecretsManager::Secret", "secret-cmk")].arn == est.arns["secret-cmk"]
    assert got[("AWS::SNS::Topic", "topic-cmk")].arn == est.arns["topic-cmk"]
    assert got[("AWS::SQS::Queue", "queue-cmk")].arn == f"arn:aws:sqs:{EAST}:{ACCOUNT}:queue-cmk"

    assert east.ebs_encryption_by_default is False
    assert east.ebs_default_key_ref == "alias/aws/ebs"
    assert east.ebs_default_key_arn == aws_key.get("alias/aws/ebs")

    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    iam = {p.name: p for p in snap.accounts[0].iam_policies}
    assert set(iam) == {"decrypt", "kms-admin"}  # s3-only and logs-only do not mention KMS
    assert (iam["decrypt"].kind, iam["decrypt"].arn, iam["decrypt"].attached_to) == (
        "inline",
        f"{role}/inline/decrypt",
        [role],
    )
    assert (iam["kms-admin"].kind, iam["kms-admin"].arn, iam["kms-admin"].attached_to) == (
        "managed",
        f"arn:aws:iam::{ACCOUNT}:policy/kms-admin",
        [role],
    )
    assert '"kms:*"' in iam["kms-admin"].document
