"""Key checks: rotation, rotation period, pending deletion, disabled, tags, aliases, shared environments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kmsguard.compliance.mapping import for_topics
from kmsguard.config import LocalityRule, ScanConfig
from kmsguard.model.finding import Severity, Status

from .builders import (
    ACCOUNT,
    COLLECTED_AT,
    REGION,
    aws_managed_key,
    by_arn,
    error,
    key,
    region,
    resource,
    run,
    snapshot,
)

# --- key_rotation_disabled -----------------------------------------------------------------------------------


def test_rotation_off_on_an_eligible_key_fails_and_on_passes() -> None:
    off, on = key(rotation_enabled=False), key(rotation_enabled=True)
    found = by_arn(run("key_rotation_disabled", snapshot(keys=[off, on])))
    assert found[off.arn].status is Status.FAIL
    assert found[off.arn].severity is Severity.MEDIUM
    assert found[off.arn].remediation.startswith("aws kms enable-key-rotation")
    assert found[off.arn].compliance and found[off.arn].compliance == for_topics(("rotation_enabled",))
    assert found[on.arn].status is Status.PASS
    assert found[on.arn].remediation == ""  # PASS findings carry no remediation


@pytest.mark.parametrize(
    "fields",
    [
        {"key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY"},
        {"key_spec": "ECC_NIST_P256", "key_usage": "SIGN_VERIFY"},
        {"key_spec": "HMAC_256", "key_usage": "GENERATE_VERIFY_MAC"},
        {"origin": "EXTERNAL"},
        {"origin": "AWS_CLOUDHSM", "custom_key_store_id": "cks-1234567890abcdef0"},
        {"custom_key_store_id": "cks-1234567890abcdef0"},
        {"key_state": "Disabled"},
        {"key_state": "PendingDeletion"},
    ],
)
def test_rotation_is_not_judged_where_aws_cannot_rotate(fields: dict[str, Any]) -> None:
    # The guide's validation script flagged disabled and pending-deletion keys; rotation cannot apply there.
    k = key(rotation_enabled=False, **fields)
    assert run("key_rotation_disabled", snapshot(keys=[k])) == []


def test_rotation_is_not_judged_on_aws_managed_keys() -> None:
    assert run("key_rotation_disabled", snapshot(keys=[aws_managed_key("s3", rotation_enabled=False)])) == []


def test_rotation_status_unreadable_is_an_error_naming_the_failed_call() -> None:
    k = key(rotation_enabled=None, errors=[error("GetKeyRotationStatus", resource="x")])
    [f] = run("key_rotation_disabled", snapshot(keys=[k]))
    assert f.status is Status.ERROR
    assert "GetKeyRotationStatus" in f.message


def test_key_whose_metadata_could_not_be_read_is_an_error_not_a_guess() -> None:
    k = key(key_manager=None, key_state=None, key_spec=None, rotation_enabled=None, errors=[error("DescribeKey")])
    for check_id in ("key_rotation_disabled", "key_pending_deletion", "key_missing_tags", "key_no_alias"):
        [f] = run(check_id, snapshot(keys=[k]))
        assert f.status is Status.ERROR, check_id


# --- key_rotation_period_too_long ----------------------------------------------------------------------------


def test_rotation_period_longer_than_the_limit_fails() -> None:
    long_, ok, edge = key(rotation_period_days=730), key(rotation_period_days=180), key(rotation_period_days=365)
    found = by_arn(run("key_rotation_period_too_long", snapshot(keys=[long_, ok, edge])))
    assert found[long_.arn].status is Status.FAIL
    assert found[long_.arn].evidence == {"rotation_period_days": 730, "max_rotation_days": 365}
    assert found[ok.arn].status is Status.PASS
    assert found[edge.arn].status is Status.PASS  # exactly the limit is allowed


def test_rotation_period_limit_is_configurable() -> None:
    k = key(rotation_period_days=365)
    [f] = run("key_rotation_period_too_long", snapshot(keys=[k]), ScanConfig(max_rotation_days=180))
    assert f.status is Status.FAIL
    assert "180" in f.message


def test_rotation_period_not_judged_when_rotation_is_off_or_not_applicable() -> None:
    off = key(rotation_enabled=False, rotation_period_days=None)
    asym = key(key_spec="RSA_4096", key_usage="ENCRYPT_DECRYPT", rotation_enabled=None, rotation_period_days=None)
    assert run("key_rotation_period_too_long", snapshot(keys=[off, asym])) == []


def test_rotation_on_without_a_period_is_an_error() -> None:
    [f] = run("key_rotation_period_too_long", snapshot(keys=[key(rotation_period_days=None)]))
    assert f.status is Status.ERROR


# --- key_pending_deletion / key_disabled ---------------------------------------------------------------------


def test_pending_deletion_fails_with_the_deletion_date() -> None:
    when = COLLECTED_AT + timedelta(days=6, hours=1)
    doomed, fine = key(key_state="PendingDeletion", deletion_date=when), key()
    found = by_arn(run("key_pending_deletion", snapshot(keys=[doomed, fine])))
    f = found[doomed.arn]
    assert f.status is Status.FAIL
    assert f.evidence["deletion_date"] == when.isoformat()
    assert f.evidence["days_left"] == 6
    assert when.isoformat() in f.message
    assert found[fine.arn].status is Status.PASS


def test_pending_deletion_ignores_aws_managed_keys() -> None:
    assert run("key_pending_deletion", snapshot(keys=[aws_managed_key("ebs")])) == []


def test_disabled_key_fails_and_pending_deletion_is_left_to_its_own_check() -> None:
    off, doomed, on = key(key_state="Disabled"), key(key_state="PendingDeletion"), key()
    found = by_arn(run("key_disabled", snapshot(keys=[off, doomed, on])))
    assert found[off.arn].status is Status.FAIL
    assert doomed.arn not in found
    assert found[on.arn].status is Status.PASS


# --- key_missing_tags ----------------------------------------------------------------------------------------


def test_missing_and_empty_tags_fail_listing_the_missing_names() -> None:
    partial = key(tags={"Environment": "prod", "Owner": "  "})  # empty (blank) value counts as missing
    complete = key()
    found = by_arn(run("key_missing_tags", snapshot(keys=[partial, complete])))
    assert found[partial.arn].status is Status.FAIL
    assert found[partial.arn].evidence["missing_tags"] == ["DataClassification", "Owner", "CostCenter"]
    assert found[complete.arn].status is Status.PASS


def test_tag_with_other_case_is_missing_but_named_in_evidence() -> None:
    k = key(tags={"environment": "prod", "DataClassification": "CUI", "Owner": "sec"})
    [f] = run("key_missing_tags", snapshot(keys=[k]))
    assert f.status is Status.FAIL
    assert f.evidence["present_with_other_case"] == {"Environment": "environment"}


def test_required_tags_are_configurable() -> None:
    k = key(tags={"CostCenter": "42"})
    [f] = run("key_missing_tags", snapshot(keys=[k]), ScanConfig(required_tags=["CostCenter"]))
    assert f.status is Status.PASS


def test_the_default_standard_is_the_guides_four_tags() -> None:
    # The guide tags every key Environment, DataClassification, Owner and CostCenter.
    k = key(tags={"Environment": "Production", "DataClassification": "CUI", "Owner": "security"})
    [f] = run("key_missing_tags", snapshot(keys=[k]))
    assert f.status is Status.FAIL and f.evidence["missing_tags"] == ["CostCenter"]


STANDARD = ScanConfig(
    tag_values={"Environment": ["Production", "Staging", "Development"], "DataClassification": ["CUI"]}
)


def test_a_tag_value_outside_the_standard_fails_naming_the_allowed_ones() -> None:
    k = key(tags={"Environment": "prod", "DataClassification": "CUI", "Owner": "x", "CostCenter": "1"})
    [f] = run("key_tag_value_not_allowed", snapshot(keys=[k]), STANDARD)
    assert f.status is Status.FAIL
    assert f.evidence["tags"] == [
        {"tag": "Environment", "value": "prod", "allowed": ["Production", "Staging", "Development"]}
    ]


def test_allowed_values_pass_and_other_case_is_still_outside_with_a_hint() -> None:
    good = key(tags={"Environment": "Staging", "DataClassification": "CUI"})
    cased = key(tags={"Environment": "production", "DataClassification": "CUI"})
    found = by_arn(run("key_tag_value_not_allowed", snapshot(keys=[good, cased]), STANDARD))
    assert found[good.arn].status is Status.PASS
    # AWS compares tag values case-sensitively: "production" is not "Production", but the fix is one word.
    assert found[cased.arn].status is Status.FAIL
    assert found[cased.arn].evidence["tags"][0]["did_you_mean"] == "Production"


def test_tag_values_judge_only_what_is_there_and_only_when_a_standard_is_set() -> None:
    untagged = key(tags={})  # a missing tag is key_missing_tags' finding, not this one's
    assert [f.status for f in run("key_tag_value_not_allowed", snapshot(keys=[untagged]), STANDARD)] == [Status.PASS]
    odd = key(tags={"Environment": "whatever"})
    assert run("key_tag_value_not_allowed", snapshot(keys=[odd])) == []  # no tag_values configured
    unreadable = key(tags={}, errors=[error("ListResourceTags")])
    [f] = run("key_tag_value_not_allowed", snapshot(keys=[unreadable]), STANDARD)
    assert f.status is Status.ERROR
    managed = aws_managed_key("s3", tags={"Environment": "whatever"})
    assert run("key_tag_value_not_allowed", snapshot(keys=[managed]), STANDARD) == []


LOCAL_CUI = ScanConfig(data_locality={"CUI": LocalityRule(single_region=True, regions=["us-east-1", "us-west-2"])})


def _multi(region: str, kind: str, key_id: str, tags: dict[str, str] | None = None) -> Any:
    return key(
        key_id,
        region=region,
        tags=tags,
        multi_region=True,
        multi_region_key_type=kind,
        primary_region="us-east-1",
        replica_regions=["eu-west-1"],
    )


def test_a_multi_region_key_of_single_region_data_fails_with_its_regions() -> None:
    primary = _multi("us-east-1", "PRIMARY", "mrk-1")
    [f] = run("key_data_locality", snapshot(keys=[primary]), LOCAL_CUI)
    assert f.status is Status.FAIL
    assert f.evidence["regions"] == ["eu-west-1", "us-east-1"] and f.evidence["replica_regions"] == ["eu-west-1"]
    assert "must stay in one Region" in f.message and "outside us-east-1, us-west-2" in f.message


def test_an_untagged_replica_is_judged_by_its_primarys_classification() -> None:
    # ReplicateKey copies no tags: the replica in eu-west-1 holds the CUI key's material all the same.
    primary = _multi("us-east-1", "PRIMARY", "mrk-2")
    replica = _multi("eu-west-1", "REPLICA", "mrk-2", tags={})
    found = by_arn(run("key_data_locality", snapshot(keys=[primary, replica]), LOCAL_CUI))
    assert found[replica.arn].status is Status.FAIL


def test_single_region_keys_pass_in_allowed_regions_and_fail_outside() -> None:
    inside = key(region="us-west-2", tags={"DataClassification": "cui"})  # values compare case-insensitively
    outside = key(region="eu-central-1")
    other = key(region="eu-central-1", tags={"DataClassification": "Internal"})  # no rule for Internal: not judged
    found = by_arn(run("key_data_locality", snapshot(keys=[inside, outside, other]), LOCAL_CUI))
    assert found[inside.arn].status is Status.PASS
    assert found[outside.arn].status is Status.FAIL and "eu-central-1" in found[outside.arn].message
    assert other.arn not in found


def test_without_rules_every_multi_region_key_is_still_reported_with_its_regions() -> None:
    primary = _multi("us-east-1", "PRIMARY", "mrk-3")
    [f] = run("key_data_locality", snapshot(keys=[primary, key()]))
    assert f.status is Status.PASS and f.evidence["primary_region"] == "us-east-1"


def test_a_locality_rule_names_real_regions() -> None:
    with pytest.raises(ValueError, match="'moon-1' is not an AWS Region name"):
        LocalityRule(regions=["moon-1"])


def test_tags_that_could_not_be_read_are_an_error_not_missing() -> None:
    k = key(tags={}, errors=[error("ListResourceTags")])
    [f] = run("key_missing_tags", snapshot(keys=[k]))
    assert f.status is Status.ERROR


def test_tags_not_judged_on_aws_managed_or_departing_keys() -> None:
    keys = [aws_managed_key("s3"), key(tags={}, key_state="PendingDeletion")]
    assert run("key_missing_tags", snapshot(keys=keys)) == []


# --- key_no_alias --------------------------------------------------------------------------------------------


def test_key_without_alias_fails_and_with_alias_passes() -> None:
    bare, named = key(aliases=[]), key(aliases=["alias/production-encryption-2026"])
    found = by_arn(run("key_no_alias", snapshot(keys=[bare, named, aws_managed_key("s3", aliases=[])])))
    assert found[bare.arn].status is Status.FAIL
    assert found[named.arn].status is Status.PASS
    assert len(found) == 2  # the AWS managed key is not judged


def test_no_alias_when_aliases_could_not_be_listed_is_an_error() -> None:
    bare = key(aliases=[])
    snap = snapshot(keys=[bare], regions=[region(REGION, errors=[error("ListAliases")])])
    [f] = run("key_no_alias", snap)
    assert f.status is Status.ERROR


# --- key_shared_across_environments ---------------------------------------------------------------------------


def test_key_used_by_two_environments_fails_with_environments_to_resources() -> None:
    shared = key(tags={"Environment": "prod", "DataClassification": "CUI", "Owner": "x"})
    prod = resource("prod-bucket", uses=shared, tags={"Environment": "Prod"})  # case-insensitive: same env
    dev = resource("dev-bucket", uses=shared, tags={"Environment": "dev"})
    untagged = resource("mystery-bucket", uses=shared)
    [f] = run("key_shared_across_environments", snapshot(keys=[shared], resources=[prod, dev, untagged]))
    assert f.status is Status.FAIL
    assert f.evidence["environments"] == {"prod": [shared.arn, prod.arn], "dev": [dev.arn]}
    assert f.evidence["untagged_resources"] == [untagged.arn]


def test_resources_agreeing_with_each_other_but_not_with_the_key_fail() -> None:
    k = key(tags={"Environment": "staging", "DataClassification": "x", "Owner": "y"})
    a = resource("a", uses=k, tags={"Environment": "prod"})
    b = resource("b", uses=k, tags={"Environment": "prod"})
    [f] = run("key_shared_across_environments", snapshot(keys=[k], resources=[a, b]))
    assert f.status is Status.FAIL
    assert set(f.evidence["environments"]) == {"staging", "prod"}


def test_single_environment_and_unused_keys_pass() -> None:
    k, unused = key(), key()
    a = resource("a", uses=k, tags={"Environment": "prod"})
    b = resource("b", uses=k, tags={"Environment": "prod"})
    found = by_arn(run("key_shared_across_environments", snapshot(keys=[k, unused], resources=[a, b])))
    assert found[k.arn].status is Status.PASS
    assert found[unused.arn].status is Status.PASS
    assert found[unused.arn].evidence["resources"] == 0


def test_environment_tag_name_is_configurable() -> None:
    k = key(tags={"Stage": "prod"})
    a = resource("a", uses=k, tags={"Stage": "dev", "Environment": "prod"})
    cfg = ScanConfig(environment_tag="Stage")
    [f] = run("key_shared_across_environments", snapshot(keys=[k], resources=[a]), cfg)
    assert f.status is Status.FAIL


def test_aws_managed_keys_are_not_judged_for_sharing() -> None:
    managed = aws_managed_key("s3")
    a = resource("a", uses=managed, tags={"Environment": "prod"})
    b = resource("b", uses=managed, tags={"Environment": "dev"})
    assert run("key_shared_across_environments", snapshot(keys=[managed], resources=[a, b])) == []


def test_resource_in_another_account_counts_toward_sharing() -> None:
    k = key(tags={"Environment": "prod", "DataClassification": "x", "Owner": "y"})
    foreign = resource("x", uses=k, account="444455556666", tags={"Environment": "dev"})
    [f] = run("key_shared_across_environments", snapshot(keys=[k], resources=[foreign]))
    assert f.status is Status.FAIL
    assert f.account == ACCOUNT
