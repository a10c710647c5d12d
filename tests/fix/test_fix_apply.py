"""Apply's safety: concurrent policy changes are skipped, one failing action does not stop the others,
the journal is complete; resources move to a CMK and back."""

from __future__ import annotations

import json
from pathlib import Path

from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.fix.apply import Sessions, apply_plan
from kmsguard.fix.journal import Journal, read_journal
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.pipeline import judge

from .conftest import APP, make_key, messy_policy, root_statement


def _plan(endpoint: str, **opts):  # type: ignore[no-untyped-def]
    options = AwsOptions(regions=["us-east-1"], endpoint_url=endpoint)
    snap = collect_snapshot(options)
    return options, build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions(**opts))


def test_a_key_whose_policy_changed_between_plan_and_apply_is_skipped_not_overwritten(
    aws, client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    wide = messy_policy(
        root_statement(),
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": APP}, "Action": "kms:*", "Resource": "*"},
    )
    changed = make_key(kms, policy=wide, rotation_days=365)
    untouched = make_key(kms, policy=wide, rotation_days=365)
    options, plan = _plan(aws.endpoint_url)
    assert {a.resource_arn for a in plan.actions} == {changed, untouched}

    concurrent = messy_policy(root_statement())  # someone else edits the key meanwhile
    kms.put_key_policy(KeyId=changed, PolicyName="default", Policy=concurrent)
    with Journal(tmp_path / "j.json") as jr:
        outcomes = apply_plan(plan, Sessions(SessionFactory(options), options.role_name), jr)
    by_key = {o.action.resource_arn: o for o in outcomes}
    assert by_key[changed].status == "skipped" and "changed since the plan" in by_key[changed].message
    assert kms.get_key_policy(KeyId=changed, PolicyName="default")["Policy"] == concurrent
    assert by_key[untouched].status == "applied"
    assert [e.action["resource_arn"] for e in read_journal(tmp_path / "j.json")] == [untouched]


def test_from_a_stale_snapshot_the_changed_key_is_skipped_with_a_message(aws, client, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kmsguard.snapshot_io import save_snapshot

    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    snap_path = tmp_path / "snap.json"
    save_snapshot(collect_snapshot(AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url)), snap_path)
    concurrent = messy_policy(root_statement())
    kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=concurrent)
    result = run("--from-snapshot", str(snap_path), "--apply", "--yes", "--journal", str(tmp_path / "j.json"))
    assert "changed since the plan" in result.stdout
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == concurrent


def test_one_failing_action_leaves_the_journal_complete_and_the_others_applied(
    aws, client, proxy, run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    keys = [make_key(kms) for _ in range(3)]
    victim = keys[1].rsplit("/", 1)[-1]
    proxy.fail("EnableKeyRotation", "KMSInternalException", contains=victim)
    journal = tmp_path / "j.json"
    result = run(
        "--apply", "--yes", "--checks", "key_rotation_disabled", "--journal", str(journal), endpoint=proxy.endpoint_url
    )
    assert result.exit_code == 1, result.output
    assert "2 applied, 0 skipped, 1 failed" in result.stdout
    entries = read_journal(journal)
    assert len(entries) == 3 and all(e.status is not None for e in entries)  # every change has its outcome
    assert {e.action["resource_arn"]: e.status for e in entries} == {
        keys[0]: "applied",
        keys[1]: "failed",
        keys[2]: "applied",
    }
    assert all(e.prior == {"rotation_enabled": False, "rotation_period_days": None} for e in entries)
    assert [kms.get_key_rotation_status(KeyId=k)["KeyRotationEnabled"] for k in keys] == [True, False, True]
    # rollback restores the two that changed and leaves the failed one alone
    back = run("--rollback", str(journal), "--yes", endpoint=aws.endpoint_url)
    assert back.exit_code == 0, back.output
    assert [kms.get_key_rotation_status(KeyId=k)["KeyRotationEnabled"] for k in keys] == [False, False, False]


def test_resources_move_from_aws_managed_keys_to_a_cmk_and_rollback_moves_them_back(
    aws, client, run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    kms, s3, sm, ec2 = client("kms"), client("s3"), client("secretsmanager"), client("ec2")
    cmk = make_key(kms, rotation_days=365, alias="alias/data")
    s3.create_bucket(Bucket="records")
    managed = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    s3.put_bucket_encryption(Bucket="records", ServerSideEncryptionConfiguration=managed)
    secret = sm.create_secret(Name="db-password", SecretString="hunter2")["ARN"]
    ec2.enable_ebs_encryption_by_default()
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True)
    before_bucket = s3.get_bucket_encryption(Bucket="records")["ServerSideEncryptionConfiguration"]
    before_ebs = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    before_secret = sm.describe_secret(SecretId=secret).get("KmsKeyId")

    plan = json.loads(run("--format", "json", "--checks", "resource_uses_aws_managed_key").stdout)
    assert plan["actions"] == [] and all("--target-key" in r["reason"] for r in plan["refused"])
    [manual] = plan["manual"]  # the EBS volume: steps, not an action
    assert any("copy-snapshot" in s and "alias/data" not in s for s in manual["steps"])

    journal = tmp_path / "j.json"
    result = run(
        "--apply",
        "--yes",
        "--target-key",
        "alias/data",
        "--checks",
        "resource_uses_aws_managed_key",
        "--journal",
        str(journal),
    )
    assert result.exit_code == 0, result.output
    assert "3 applied" in result.stdout
    rule = s3.get_bucket_encryption(Bucket="records")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == cmk
    assert sm.describe_secret(SecretId=secret)["KmsKeyId"] == cmk
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == cmk
    again = json.loads(
        run("--format", "json", "--target-key", "alias/data", "--checks", "resource_uses_aws_managed_key").stdout
    )
    assert again["actions"] == []

    assert run("--rollback", str(journal), "--yes").exit_code == 0
    assert s3.get_bucket_encryption(Bucket="records")["ServerSideEncryptionConfiguration"] == before_bucket
    assert sm.describe_secret(SecretId=secret).get("KmsKeyId") == before_secret
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == before_ebs


def test_cancelling_a_scheduled_deletion_needs_the_flag(aws, client, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    plan = json.loads(run("--format", "json", "--checks", "key_pending_deletion").stdout)
    assert plan["actions"] == [] and "--cancel-deletion" in plan["refused"][0]["reason"]
    result = run(
        "--apply",
        "--yes",
        "--cancel-deletion",
        "--checks",
        "key_pending_deletion",
        "--journal",
        str(tmp_path / "j.json"),
    )
    assert result.exit_code == 0, result.output
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"
