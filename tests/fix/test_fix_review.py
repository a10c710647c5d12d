"""Regressions from the safety review: concurrent rotation changes, partial failures rolled back, verification."""

from __future__ import annotations

from pathlib import Path

from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.config import ScanConfig
from kmsguard.fix.apply import Sessions, apply_plan
from kmsguard.fix.journal import Journal, load_journal, read_journal
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.fix.rollback import rollback
from kmsguard.fix.verify import Verification
from kmsguard.pipeline import judge

from .conftest import make_key


def _plan(endpoint: str, **opts):  # type: ignore[no-untyped-def]
    options = AwsOptions(regions=["us-east-1"], endpoint_url=endpoint)
    snap = collect_snapshot(options)
    return options, build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions(**opts))


def test_rotation_changed_between_plan_and_apply_is_skipped_not_overwritten(aws, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = make_key(kms)  # rotation off
    options, plan = _plan(aws.endpoint_url, checks=frozenset({"key_rotation_disabled"}))
    assert [a.action for a in plan.actions] == ["enable_rotation"]
    # Meanwhile someone turns rotation on with a shorter period than the plan's 365 days.
    kms.enable_key_rotation(KeyId=arn, RotationPeriodInDays=90)
    with Journal(tmp_path / "j.json") as jr:
        [outcome] = apply_plan(plan, Sessions(SessionFactory(options), options.role_name), jr)
    assert outcome.status == "skipped" and "changed since the plan" in outcome.message
    assert kms.get_key_rotation_status(KeyId=arn)["RotationPeriodInDays"] == 90
    assert read_journal(tmp_path / "j.json") == []


def test_a_cancelled_deletion_whose_enable_failed_is_rescheduled_by_rollback(
    aws, client, proxy, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=30)
    proxy.fail("EnableKey", "KMSInternalException")
    options, plan = _plan(proxy.endpoint_url, cancel_deletion=True, checks=frozenset({"key_pending_deletion"}))
    sessions = Sessions(SessionFactory(options), options.role_name)
    with Journal(tmp_path / "j.json") as jr:
        [outcome] = apply_plan(plan, sessions, jr)
    # CancelKeyDeletion went through, EnableKey failed: the key is no longer pending deletion.
    assert outcome.status == "failed"
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"
    # The journal says the failed action did change the key ("partial"), so rollback restores it.
    assert [e.status for e in read_journal(tmp_path / "j.json")] == ["partial"]
    [result] = rollback(load_journal(tmp_path / "j.json"), sessions, options, ScanConfig())
    assert result.status == "restored", result.message
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_an_unintended_access_loss_makes_verification_fail() -> None:
    loss = {"resource_arn": "arn:aws:kms:us-east-1:123456789012:key/k", "principal": "p", "action": "kms:Decrypt"}
    assert Verification().ok
    assert not Verification(unintended_loss=[loss]).ok
