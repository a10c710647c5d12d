"""How `iac scan` judges a unit: worlds merged worst-first and labelled, the audit family only where a unit
declares audit set-up, live-only checks refused, mutes on iac:// resources, locations on every finding."""

from __future__ import annotations

import pytest

from kmsguard.config import ScanConfig
from kmsguard.iac.declared import Declared, IacContext, Location, Unit, unknown
from kmsguard.iac.judge import iac_checks, judge_unit, judge_units
from kmsguard.model.finding import Status
from kmsguard.model.snapshot import Key, Resource, Trail
from kmsguard.mutes import Mute
from kmsguard.policy.defaults import default_key_policy

CTX = IacContext(account="111122223333", region="us-east-1")


def _key(name: str = "Key", rotation: bool = True) -> Key:
    return Key(
        arn=CTX.key_arn(name),
        key_id=name,
        account=CTX.account,
        region=CTX.region,
        key_manager="CUSTOMER",
        key_state="Enabled",
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        policy=default_key_policy(CTX.account),
        rotation_enabled=rotation,
        rotation_period_days=365 if rotation else None,
        aliases=[f"alias/{name.lower()}"],
    )


def _world(label: str, *keys: Key) -> Declared:
    return Declared(label=label, keys=list(keys), locations={k.arn: Location("t.yaml", 3, k.key_id) for k in keys})


def _by(findings: list, check: str, resource: str = "iac://t.yaml#Key") -> list:  # type: ignore[type-arg]
    return [f for f in findings if f.check_id == check and f.resource_arn == resource]


def test_the_worst_world_wins_and_says_when() -> None:
    worlds = [_world("IsProd=true", _key()), _world("IsProd=false", _key(rotation=False))]
    unit = Unit("t.yaml", "cloudformation", worlds)
    (rotation,) = _by(judge_unit(unit, CTX, ScanConfig(), iac_checks()), "key_rotation_disabled")
    assert rotation.status is Status.FAIL
    assert rotation.evidence["iac_condition"] == "IsProd=false"
    assert rotation.message.endswith("(when IsProd=false)")


def test_worlds_that_agree_give_one_unlabelled_finding() -> None:
    unit = Unit("t.yaml", "cloudformation", [_world("C=true", _key()), _world("C=false", _key())])
    (rotation,) = _by(judge_unit(unit, CTX, ScanConfig(), iac_checks()), "key_rotation_disabled")
    assert rotation.status is Status.PASS and "iac_condition" not in rotation.evidence


def test_an_object_absent_from_some_world_is_labelled_with_the_world_it_is_in() -> None:
    unit = Unit("t.yaml", "cloudformation", [_world("MakeKey=true", _key(rotation=False)), _world("MakeKey=false")])
    (rotation,) = _by(judge_unit(unit, CTX, ScanConfig(), iac_checks()), "key_rotation_disabled")
    assert rotation.evidence["iac_condition"] == "MakeKey=true"


def test_audit_checks_run_only_where_the_unit_declares_audit_set_up() -> None:
    plain = judge_unit(Unit("t.yaml", "cloudformation", [_world("", _key())]), CTX, ScanConfig(), iac_checks())
    assert not [f for f in plain if f.check_id.startswith(("cloudtrail_", "alarm_", "config_rule_"))]
    trail = Trail(name="org", arn=CTX.arn("cloudtrail", "trail/org"), home_region=CTX.region, is_multi_region=True)
    world = _world("", _key())
    world.trails.append(trail)
    world.locations[trail.arn] = Location("audit.yaml", 12, "OrgTrail")
    audited = judge_unit(Unit("t.yaml", "cloudformation", [world]), CTX, ScanConfig(), iac_checks())
    validation = [f for f in audited if f.check_id == "cloudtrail_log_validation_disabled"]
    assert validation and all(f.status is Status.FAIL for f in validation)
    # Account-level findings of the unit point at its first trail.
    alarms = [f for f in audited if f.check_id == "alarm_missing_key_policy_changes"]
    assert alarms and alarms[0].location is not None and alarms[0].location.file == "audit.yaml"


def test_live_only_checks_are_not_run_and_naming_one_is_an_error() -> None:
    assert not any(s.live_only for s in iac_checks())
    assert "key_policy_public" in {s.id for s in iac_checks()}
    with pytest.raises(ValueError, match=r"key_pending_deletion.*live state"):
        iac_checks(["key_pending_deletion"])


def test_mutes_name_iac_resources() -> None:
    unit = Unit("t.yaml", "cloudformation", [_world("", _key(rotation=False))])
    mute = Mute(check="key_rotation_disabled", resource="iac://t.yaml#*", reason="rotated by the app")
    result = judge_units([unit], CTX, ScanConfig(mutes=[mute]), warn=lambda _m: None)
    (rotation,) = _by(result.findings, "key_rotation_disabled")
    assert rotation.status is Status.MUTED and rotation.mute_reason == "rotated by the app"
    assert all(f.location is not None for f in result.findings)


def _bucket(name: str, key_ref: str) -> Resource:
    return Resource(
        service="s3",
        resource_type="AWS::S3::Bucket",
        arn=CTX.arn("s3", name, regional=False, account=False),
        name=name,
        account=CTX.account,
        region=CTX.region,
        encryption="kms",
        key_ref=key_ref,
    )


def test_a_key_declared_elsewhere_is_named_not_an_error() -> None:
    # Found by bench/checkov-compare.py: 182 ERROR findings on stores whose key is imported or a parameter.
    imported = _bucket("imported", unknown("Fn::ImportValue SharedKeyArn"))
    foreign = _bucket("foreign", "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    managed = _bucket("managed", "alias/aws/s3")
    world = Declared(resources=[imported, foreign, managed])
    world.locations.update({r.arn: Location("s.yaml", i + 2, r.name) for i, r in enumerate(world.resources)})
    findings = judge_unit(Unit("s.yaml", "cloudformation", [world]), CTX, ScanConfig(), iac_checks())
    assert not [f for f in findings if f.status is Status.ERROR]
    assert {f.resource_arn for f in findings} == {
        "iac://s.yaml#imported",
        "iac://s.yaml#foreign",
        "iac://s.yaml#managed",
    }
    by = {(f.check_id, f.location.resource): f for f in findings if f.location is not None}
    outside = by["resource_uses_aws_managed_key", "imported"]
    assert outside.status is Status.PASS and outside.evidence["key_outside_templates"] == "Fn::ImportValue SharedKeyArn"
    assert by["resource_key_pending_deletion", "foreign"].evidence["key_outside_templates"] == foreign.key_ref
    assert by["resource_uses_aws_managed_key", "managed"].status is Status.FAIL
