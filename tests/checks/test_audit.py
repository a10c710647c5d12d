"""Audit checks: trails, metric filters + alarms (patterns evaluated, not names), Config rules + recorders."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from kmsguard.checks.audit import decrypt_failure_events, key_policy_change_events
from kmsguard.checks.metric_pattern import parse
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.snapshot import RegionSnapshot, Trail

from .builders import (
    ACCOUNT,
    GUIDE_DECRYPT_PATTERN,
    GUIDE_POLICY_PATTERN,
    OTHER_ACCOUNT,
    OTHER_REGION,
    REGION,
    advanced_selectors,
    alarm,
    config_rule,
    error,
    metric_filter,
    recorder,
    region,
    run,
    selector_trail,
    snapshot,
    trail,
)

ROTATION = "CMK_BACKING_KEY_ROTATION_ENABLED"
DELETION = "KMS_CMK_NOT_SCHEDULED_FOR_DELETION"


def two_regions(
    home: dict[str, Any] | None = None, other: dict[str, Any] | None = None, t: Trail | None = None
) -> list[RegionSnapshot | tuple[str, RegionSnapshot]]:
    """us-east-1 (the trail's home, with its filters and alarms) and eu-west-1 (a shadow copy of the trail)."""
    t = t if t is not None else trail()
    return [region(REGION, trails=[t], **(home or {})), region(OTHER_REGION, trails=[t], **(other or {}))]


def by_region(findings: list[Finding]) -> dict[str, Finding]:
    out = {f.region: f for f in findings}
    assert len(out) == len(findings), "one finding per region expected"
    return out


# --- cloudtrail_no_multi_region_trail ----------------------------------------------------------------------------


def test_logging_multi_region_trail_passes_once_per_account() -> None:
    [f] = run("cloudtrail_no_multi_region_trail", snapshot(regions=two_regions()))
    assert f.status is Status.PASS
    assert (f.region, f.resource_type, f.resource_arn) == ("global", "AWS::Account", f"arn:aws:::{ACCOUNT}:global")


@pytest.mark.parametrize(
    ("fields", "gap"),
    [
        ({"is_logging": False}, "not logging"),
        ({"is_multi_region": False}, "single-region"),
        ({"management_read_write_type": "ReadOnly"}, "management write events"),
        ({"logs_management_events": False, "management_read_write_type": "None"}, "management write events"),
        ({"kms_events_excluded": True}, "excludes KMS events"),
    ],
)
def test_trail_that_would_not_record_key_changes_fails(fields: dict[str, Any], gap: str) -> None:
    t = trail(**fields)
    [f] = run("cloudtrail_no_multi_region_trail", snapshot(regions=two_regions(t=t)))
    assert (f.status, f.severity) == (Status.FAIL, Severity.HIGH)
    assert any(gap in g for g in f.evidence["trails"][t.arn])


def test_no_trail_at_all_fails() -> None:
    [f] = run("cloudtrail_no_multi_region_trail", snapshot(regions=[region(REGION), region(OTHER_REGION)]))
    assert f.status is Status.FAIL
    assert "no CloudTrail trail" in f.message


def test_one_good_trail_among_bad_ones_passes() -> None:
    bad, good = trail("regional", is_multi_region=False), trail("all-regions")
    snap = snapshot(regions=[region(REGION, trails=[bad, good]), region(OTHER_REGION, trails=[good])])
    [f] = run("cloudtrail_no_multi_region_trail", snap)
    assert f.status is Status.PASS
    assert "all-regions" in f.message


def test_trails_unreadable_everywhere_is_an_error() -> None:
    errs = [error("DescribeTrails", service="cloudtrail")]
    snap = snapshot(regions=[region(REGION, errors=errs), region(OTHER_REGION, errors=errs)])
    [f] = run("cloudtrail_no_multi_region_trail", snap)
    assert f.status is Status.ERROR


def test_unknown_logging_status_of_the_only_candidate_is_an_error() -> None:
    t = trail(is_logging=None)
    [f] = run("cloudtrail_no_multi_region_trail", snapshot(regions=two_regions(t=t)))
    assert f.status is Status.ERROR


def test_status_read_from_a_shadow_copy_completes_the_home_copy() -> None:
    home, shadow = trail(is_logging=None), trail(is_logging=True)
    snap = snapshot(regions=[region(REGION, trails=[home]), region(OTHER_REGION, trails=[shadow])])
    [f] = run("cloudtrail_no_multi_region_trail", snap)
    assert f.status is Status.PASS


# --- cloudtrail_log_validation_disabled / cloudtrail_no_cloudwatch_logs ------------------------------------------


def test_log_validation_judged_once_per_trail_in_its_home_region() -> None:
    off = trail("no-validation", log_file_validation_enabled=False)
    on = trail("validated")
    snap = snapshot(regions=[region(REGION, trails=[off, on]), region(OTHER_REGION, trails=[off, on])])
    found = {f.resource_arn: f for f in run("cloudtrail_log_validation_disabled", snap)}
    assert len(found) == 2
    assert found[off.arn].status is Status.FAIL
    assert found[off.arn].region == REGION
    assert found[off.arn].resource_type == "AWS::CloudTrail::Trail"
    assert found[on.arn].status is Status.PASS


def test_trail_whose_home_region_was_not_scanned_is_still_judged_once() -> None:
    t = trail(home_region="ap-south-1", log_file_validation_enabled=False)
    [f] = run("cloudtrail_log_validation_disabled", snapshot(regions=[region(REGION, trails=[t])]))
    assert (f.status, f.region) == (Status.FAIL, "ap-south-1")


def test_organization_trail_seen_in_member_accounts_is_judged_once_for_its_owner() -> None:
    org = trail("org", account=OTHER_ACCOUNT, is_organization_trail=True, log_file_validation_enabled=False)
    snap = snapshot(regions=[region(REGION, trails=[org]), (OTHER_ACCOUNT, region(REGION, trails=[org]))])
    [f] = run("cloudtrail_log_validation_disabled", snap)
    assert f.account == OTHER_ACCOUNT


def test_trail_without_cloudwatch_logs_fails() -> None:
    s3_only, delivered = trail("s3-only", log_group=None), trail("delivered")
    snap = snapshot(regions=[region(REGION, trails=[s3_only, delivered]), region(OTHER_REGION, trails=[delivered])])
    found = {f.resource_arn: f for f in run("cloudtrail_no_cloudwatch_logs", snap)}
    assert len(found) == 2
    assert found[s3_only.arn].status is Status.FAIL
    assert found[delivered.arn].status is Status.PASS
    assert found[delivered.arn].evidence["log_group_arn"].startswith(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:")


# --- alarm_missing_key_policy_changes -----------------------------------------------------------------------------


def watched(pattern: str = GUIDE_POLICY_PATTERN, alarms: list[Any] | None = None, **filter_kw: Any) -> dict[str, Any]:
    """Home-region contents: one metric filter on the trail's log group and the alarm on its metric."""
    return {"metric_filters": [metric_filter(pattern, **filter_kw)], "alarms": [alarm()] if alarms is None else alarms}


def policy_findings(regions: list[RegionSnapshot | tuple[str, RegionSnapshot]]) -> dict[str, Finding]:
    return by_region(run("alarm_missing_key_policy_changes", snapshot(regions=regions)))


def test_guide_filter_and_alarm_on_a_multi_region_trail_cover_every_region() -> None:
    found = policy_findings(two_regions(home=watched()))
    assert {r: f.status for r, f in found.items()} == {REGION: Status.PASS, OTHER_REGION: Status.PASS}
    assert "KMS-Key-Policy-Changes" in found[OTHER_REGION].message
    assert found[REGION].resource_arn == f"arn:aws:::{ACCOUNT}:{REGION}"


def test_filter_named_right_but_matching_only_put_key_policy_fails() -> None:
    narrow = "{ ($.eventSource = kms.amazonaws.com) && ($.eventName = PutKeyPolicy) }"
    f = policy_findings(two_regions(home=watched(narrow, name="KMSKeyPolicyChanges")))[REGION]
    assert f.status is Status.FAIL
    assert f.evidence["not_covered"] == ["ScheduleKeyDeletion", "DisableKey"]
    [info] = f.evidence["filters"]
    assert (info["filter"], info["matches"]) == ("KMSKeyPolicyChanges", ["PutKeyPolicy"])


def test_cis_style_filter_without_put_key_policy_fails() -> None:
    cis = "{($.eventSource=kms.amazonaws.com)&&(($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion))}"
    f = policy_findings(two_regions(home=watched(cis)))[REGION]
    assert f.status is Status.FAIL
    assert f.evidence["not_covered"] == ["PutKeyPolicy"]


@pytest.mark.parametrize(
    "pattern",
    [
        "{$.eventSource=kms.amazonaws.com&&($.eventName=PutKeyPolicy||$.eventName=ScheduleKeyDeletion||"
        "$.eventName=DisableKey)}",
        '{ $.eventSource = "kms.*" && ($.eventName = "*KeyPolicy" || $.eventName = Schedule* || '
        "$.eventName = Disable*) }",
        "{ $.eventSource = kms.amazonaws.com && $.readOnly IS FALSE && $.eventName != CancelKeyDeletion }",
        '{ $.resources[0].type = "AWS::KMS::Key" && $.eventName = %^[PSD][a-z]+Key% }',  # regex value
        '"kms.amazonaws.com"',  # a text pattern: every KMS event, so these three too
    ],
)
def test_equivalent_or_broader_patterns_written_differently_pass(pattern: str) -> None:
    parse(pattern)  # the pattern itself must be valid syntax
    f = policy_findings(two_regions(home=watched(pattern)))[REGION]
    assert f.status is Status.PASS, f.evidence


def test_two_filters_each_with_an_alarm_together_cover_the_events() -> None:
    put = metric_filter("{ $.eventName = PutKeyPolicy }", name="put", metric="Put")
    rest = metric_filter(
        "{ $.eventName = ScheduleKeyDeletion || $.eventName = DisableKey }", name="rest", metric="Rest"
    )
    home = {"metric_filters": [put, rest], "alarms": [alarm("a1", metric="Put"), alarm("a2", metric="Rest")]}
    f = policy_findings(two_regions(home=home))[REGION]
    assert f.status is Status.PASS
    assert "a1" in f.message and "a2" in f.message


def test_pattern_matching_only_iam_users_misses_roles_and_root() -> None:
    users_only = "{ $.userIdentity.type = IAMUser && $.eventSource = kms.amazonaws.com }"
    f = policy_findings(two_regions(home=watched(users_only)))[REGION]
    assert f.status is Status.FAIL
    assert f.evidence["filters"][0]["matches"] == []


@pytest.mark.parametrize(
    ("alarms", "why"),
    [
        ([alarm(actions=[])], "no alarm with an action"),
        ([alarm(actions_enabled=False)], "no alarm with an action"),
        ([alarm(metric="SomethingElse")], "no alarm with an action"),
        ([alarm(namespace="Other/NS")], "no alarm with an action"),
        ([], "no alarm with an action"),
    ],
)
def test_filter_without_an_actionable_alarm_on_its_metric_fails(alarms: list[Any], why: str) -> None:
    f = policy_findings(two_regions(home=watched(alarms=alarms)))[REGION]
    assert f.status is Status.FAIL
    assert why in f.message


def test_alarm_in_another_region_than_the_metric_does_not_count() -> None:
    # The filter's metric lives in the log group's region (us-east-1); an alarm in eu-west-1 cannot see it.
    regions = two_regions(home={"metric_filters": [metric_filter(GUIDE_POLICY_PATTERN)]}, other={"alarms": [alarm()]})
    assert {f.status for f in policy_findings(regions).values()} == {Status.FAIL}


def test_multi_region_trail_that_is_not_logging_fails() -> None:
    found = policy_findings(two_regions(home=watched(), t=trail(is_logging=False)))
    assert {f.status for f in found.values()} == {Status.FAIL}
    assert "no logging trail" in found[REGION].message


def test_trail_not_delivering_to_cloudwatch_logs_fails() -> None:
    found = policy_findings(two_regions(home=watched(), t=trail(log_group=None)))
    assert found[REGION].status is Status.FAIL


def test_single_region_trail_covers_only_its_own_region() -> None:
    found = policy_findings(two_regions(home=watched(), t=trail(is_multi_region=False)))
    assert found[REGION].status is Status.PASS
    assert found[OTHER_REGION].status is Status.FAIL


def test_pattern_restricted_to_one_region_covers_only_that_region() -> None:
    pinned = GUIDE_POLICY_PATTERN[:-1] + f"&& $.awsRegion = {REGION} }}"
    found = policy_findings(two_regions(home=watched(pinned)))
    assert (found[REGION].status, found[OTHER_REGION].status) == (Status.PASS, Status.FAIL)


def test_filter_on_another_log_group_does_not_count() -> None:
    found = policy_findings(two_regions(home=watched(log_group="some/other/group")))
    assert found[REGION].status is Status.FAIL
    assert "no metric filter" in found[REGION].message


def test_unparseable_pattern_matches_nothing_and_says_so() -> None:
    f = policy_findings(two_regions(home=watched("{ $.eventName = PutKeyPolicy ")))[REGION]
    assert f.status is Status.FAIL
    assert "unparseable" in f.evidence["filters"][0]["error"]
    assert "could not be parsed" in f.message


def test_log_group_in_an_account_that_was_not_scanned_is_an_error() -> None:
    org = trail("org", account=OTHER_ACCOUNT, is_organization_trail=True)
    f = policy_findings([region(REGION, trails=[org])])[REGION]
    assert f.status is Status.ERROR
    assert f.evidence["log_groups_not_scanned"] == [org.cloudwatch_logs_log_group_arn]


def test_org_trail_filter_and_alarm_in_the_scanned_management_account_cover_the_member() -> None:
    org = trail("org", account=OTHER_ACCOUNT, is_organization_trail=True)
    member = region(REGION, trails=[org])
    management = (OTHER_ACCOUNT, region(REGION, trails=[org], **watched()))
    findings = run("alarm_missing_key_policy_changes", snapshot(regions=[member, management]))
    assert {(f.account, f.status) for f in findings} == {(ACCOUNT, Status.PASS), (OTHER_ACCOUNT, Status.PASS)}


def test_unreadable_metric_filters_turn_a_failure_into_an_error() -> None:
    home = {"errors": [error("DescribeMetricFilters", service="logs")]}
    assert policy_findings(two_regions(home=home))[REGION].status is Status.ERROR


# --- alarm_missing_decrypt_failures -----------------------------------------------------------------------------------


def decrypt_findings(regions: list[RegionSnapshot | tuple[str, RegionSnapshot]]) -> dict[str, Finding]:
    return by_region(run("alarm_missing_decrypt_failures", snapshot(regions=regions)))


def decrypt_watch(pattern: str = GUIDE_DECRYPT_PATTERN) -> dict[str, Any]:
    return {
        "metric_filters": [metric_filter(pattern, name="KMSDecryptFailures", metric="KMSDecryptFailures")],
        "alarms": [alarm("KMS-Decrypt-Failures", metric="KMSDecryptFailures")],
    }


def test_guide_decrypt_filter_with_alarm_passes() -> None:
    found = decrypt_findings(two_regions(home=decrypt_watch()))
    assert {f.status for f in found.values()} == {Status.PASS}


def test_decrypt_filter_that_misses_access_denied_fails() -> None:
    f = decrypt_findings(two_regions(home=decrypt_watch('{ $.eventName = Decrypt && $.errorCode = "*Exception" }')))
    assert f[REGION].status is Status.FAIL


def test_decrypt_filter_counting_successes_too_still_passes() -> None:
    broad = "{ $.eventSource = kms.amazonaws.com && $.eventName = Decrypt }"
    assert decrypt_findings(two_regions(home=decrypt_watch(broad)))[REGION].status is Status.PASS


def test_decrypt_failures_need_a_trail_recording_read_events() -> None:
    # Decrypt is a read-only event: a WriteOnly trail never delivers it, however good the filter.
    found = decrypt_findings(two_regions(home=decrypt_watch(), t=trail(management_read_write_type="WriteOnly")))
    assert found[REGION].status is Status.FAIL
    assert "management read events" in found[REGION].message


def test_key_policy_filter_does_not_satisfy_the_decrypt_check() -> None:
    assert decrypt_findings(two_regions(home=watched()))[REGION].status is Status.FAIL


def test_synthetic_events_look_like_cloudtrail_records() -> None:
    for label, event in key_policy_change_events(ACCOUNT, REGION) + decrypt_failure_events(ACCOUNT, REGION):
        assert event["eventSource"] == "kms.amazonaws.com"
        assert event["awsRegion"] == REGION and event["recipientAccountId"] == ACCOUNT
        assert label.startswith(event["eventName"])
    assert all(e["readOnly"] is True and e["errorCode"] for _, e in decrypt_failure_events(ACCOUNT, REGION))
    kinds = {e["userIdentity"]["type"] for _, e in key_policy_change_events(ACCOUNT, REGION)}
    assert kinds == {"IAMUser", "AssumedRole", "Root", "AWSService"}


# --- config_rule_rotation_missing / config_rule_deletion_missing ----------------------------------------------------


@pytest.mark.parametrize(
    ("check_id", "identifier"), [("config_rule_rotation_missing", ROTATION), ("config_rule_deletion_missing", DELETION)]
)
def test_active_rule_with_recording_recorder_passes(check_id: str, identifier: str) -> None:
    reg = region(REGION, config_rules=[config_rule(identifier)], config_recorders=[recorder(True)])
    [f] = run(check_id, snapshot(regions=[reg]))
    assert f.status is Status.PASS


@pytest.mark.parametrize(
    ("check_id", "identifier"), [("config_rule_rotation_missing", ROTATION), ("config_rule_deletion_missing", DELETION)]
)
def test_active_rule_with_stopped_recorder_fails_saying_it_evaluates_nothing(check_id: str, identifier: str) -> None:
    reg = region(REGION, config_rules=[config_rule(identifier)], config_recorders=[recorder(False)])
    [f] = run(check_id, snapshot(regions=[reg]))
    assert f.status is Status.FAIL
    assert "evaluates nothing" in f.message


def test_rule_that_is_not_active_fails_naming_its_state() -> None:
    reg = region(REGION, config_rules=[config_rule(ROTATION, state="DELETING")], config_recorders=[recorder()])
    [f] = run("config_rule_rotation_missing", snapshot(regions=[reg]))
    assert f.status is Status.FAIL
    assert "DELETING" in f.message


def test_the_other_rule_does_not_count() -> None:
    reg = region(REGION, config_rules=[config_rule(DELETION)], config_recorders=[recorder()])
    [f] = run("config_rule_rotation_missing", snapshot(regions=[reg]))
    assert f.status is Status.FAIL


def test_config_rules_are_judged_per_region() -> None:
    home = region(REGION, config_rules=[config_rule(ROTATION)], config_recorders=[recorder()])
    found = by_region(run("config_rule_rotation_missing", snapshot(regions=[home, region(OTHER_REGION)])))
    assert (found[REGION].status, found[OTHER_REGION].status) == (Status.PASS, Status.FAIL)
    assert "no configuration recorder is recording either" in found[OTHER_REGION].message


def test_unreadable_config_is_an_error() -> None:
    reg = region(REGION, errors=[error("DescribeConfigRules", service="config")])
    [f] = run("config_rule_deletion_missing", snapshot(regions=[reg]))
    assert f.status is Status.ERROR


# --- which KMS events the trail's selectors record ----------------------------------------------------------------

MGMT = {"Field": "eventCategory", "Equals": ["Management"]}
READS = {"Field": "readOnly", "Equals": ["true"]}
WRITES = {"Field": "readOnly", "Equals": ["false"]}
NOT_KMS = {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}


def audit_findings(t: Trail) -> dict[str, Status]:
    """Status of the multi-region check and of both alarm checks (home region), with the guide's filters set up."""
    home = watched()
    decrypt = decrypt_watch()
    home["metric_filters"] += decrypt["metric_filters"]
    home["alarms"] += decrypt["alarms"]
    snap = snapshot(regions=two_regions(home=home, t=t))
    out = {}
    for check_id in (
        "cloudtrail_no_multi_region_trail",
        "alarm_missing_key_policy_changes",
        "alarm_missing_decrypt_failures",
    ):
        found = run(check_id, snap)
        out[check_id] = next(f.status for f in found if f.region in ("global", REGION))
    return out


def expect(multi: Status, policy: Status, decrypt: Status) -> dict[str, Status]:
    return {
        "cloudtrail_no_multi_region_trail": multi,
        "alarm_missing_key_policy_changes": policy,
        "alarm_missing_decrypt_failures": decrypt,
    }


def test_reviewer_case_reads_of_everything_but_kms_do_not_feed_the_decrypt_alarm() -> None:
    # {Management, readOnly=false} + {Management, readOnly=true, eventSource != kms}: no KMS read is ever logged.
    t = selector_trail(advanced_selectors([MGMT, WRITES], [MGMT, READS, NOT_KMS]))
    assert (t.kms_writes_recorded, t.kms_reads_recorded) == (True, False)
    assert audit_findings(t) == expect(Status.PASS, Status.PASS, Status.FAIL)
    f = decrypt_findings(two_regions(home=decrypt_watch(), t=t))[REGION]
    assert "management read events" in f.message


def test_mirror_case_writes_of_everything_but_kms_fail_the_write_checks() -> None:
    t = selector_trail(advanced_selectors([MGMT, WRITES, NOT_KMS], [MGMT, READS]))
    assert audit_findings(t) == expect(Status.FAIL, Status.FAIL, Status.PASS)
    [f] = run("cloudtrail_no_multi_region_trail", snapshot(regions=two_regions(t=t)))
    assert any("KMS" in g for g in f.evidence["trails"][t.arn])


@pytest.mark.parametrize(
    ("selectors", "statuses"),
    [
        ([{"ExcludeManagementEventSources": ["kms.amazonaws.com"]}], (Status.FAIL, Status.FAIL, Status.FAIL)),
        (
            [
                {"ReadWriteType": "WriteOnly"},
                {"ReadWriteType": "ReadOnly", "ExcludeManagementEventSources": ["kms.amazonaws.com"]},
            ],
            (Status.PASS, Status.PASS, Status.FAIL),
        ),
        (
            [
                {"ReadWriteType": "WriteOnly", "ExcludeManagementEventSources": ["kms.amazonaws.com"]},
                {"ReadWriteType": "ReadOnly"},
            ],
            (Status.FAIL, Status.FAIL, Status.PASS),
        ),
        (
            [{"ExcludeManagementEventSources": ["kms.amazonaws.com"]}, {"ReadWriteType": "All"}],
            (Status.PASS, Status.PASS, Status.PASS),
        ),
        ([{"ExcludeManagementEventSources": ["rdsdata.amazonaws.com"]}], (Status.PASS, Status.PASS, Status.PASS)),
    ],
    ids=[
        "kms-excluded",
        "kms-excluded-from-reads",
        "kms-excluded-from-writes",
        "second-selector-records-all",
        "rds-only",
    ],
)
def test_basic_selectors_with_excluded_sources(selectors: list[dict[str, Any]], statuses: tuple[Status, ...]) -> None:
    resp = {"EventSelectors": [{"IncludeManagementEvents": True, "ReadWriteType": "All", **s} for s in selectors]}
    assert audit_findings(selector_trail(resp)) == expect(*statuses)


def test_write_only_trail_passes_the_write_checks_and_fails_decrypt() -> None:
    t = selector_trail({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]})
    assert audit_findings(t) == expect(Status.PASS, Status.PASS, Status.FAIL)


def test_explicit_facts_win_over_the_summary_fields() -> None:
    # A snapshot carrying the collector's facts is judged on them even if the summary fields say "All".
    assert audit_findings(trail(kms_reads_recorded=False)) == expect(Status.PASS, Status.PASS, Status.FAIL)
    assert audit_findings(trail(kms_writes_recorded=False)) == expect(Status.FAIL, Status.FAIL, Status.PASS)


def test_older_snapshot_without_the_facts_falls_back_to_the_summary_fields() -> None:
    assert audit_findings(trail()) == expect(Status.PASS, Status.PASS, Status.PASS)
    ro = trail(management_read_write_type="ReadOnly")
    assert audit_findings(ro) == expect(Status.FAIL, Status.FAIL, Status.PASS)


# --- filters must match every variant of an event, not the one caller the synthetic events happen to use -----------


@pytest.mark.parametrize(
    "condition",
    [
        '$.userAgent = "aws-cli*"',
        '$.sourceIPAddress = "192.0.2.*"',
        '$.sourceIPAddress != "AWS Internal"',
        '$.userAgent != "AWS Internal"',
        '$.userIdentity.accessKeyId = "A*"',
        "$.userIdentity.sessionContext.attributes.mfaAuthenticated = false",
        '$.userIdentity.arn = "arn:aws:*"',
        "$.userIdentity.invokedBy NOT EXISTS",
        '$.requestParameters.keyId = "*"',
        '$.userIdentity.type != "AWSService"',
    ],
)
def test_filter_narrowed_on_fields_the_alarm_does_not_care_about_fails(condition: str) -> None:
    policy = GUIDE_POLICY_PATTERN[:-1] + f"&& ({condition}) }}"
    f = policy_findings(two_regions(home=watched(policy)))[REGION]
    assert f.status is Status.FAIL, condition
    assert f.evidence["not_covered"] == ["PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey"]
    decrypt = GUIDE_DECRYPT_PATTERN[:-1] + f"&& ({condition}) }}"
    assert decrypt_findings(two_regions(home=decrypt_watch(decrypt)))[REGION].status is Status.FAIL, condition


def test_guide_patterns_match_every_variant_of_every_event() -> None:
    policy, decrypt = parse(GUIDE_POLICY_PATTERN), parse(GUIDE_DECRYPT_PATTERN)
    assert all(policy.matches(e) for _, e in key_policy_change_events(ACCOUNT, REGION))
    assert all(decrypt.matches(e) for _, e in decrypt_failure_events(ACCOUNT, REGION))


def test_synthetic_events_vary_the_fields_a_filter_should_ignore() -> None:
    events = [e for _, e in key_policy_change_events(ACCOUNT, REGION) + decrypt_failure_events(ACCOUNT, REGION)]
    agents = {e["userAgent"] for e in events}
    assert {"AWS Internal", "console.amazonaws.com"} <= agents
    assert any(a.startswith("aws-cli/") for a in agents) and any(a.startswith("Boto3/") for a in agents)
    ips = {e["sourceIPAddress"] for e in events}
    assert "AWS Internal" in ips and any(":" in ip for ip in ips)
    ids = [e["userIdentity"] for e in events]
    assert {i["type"] for i in ids} >= {"IAMUser", "AssumedRole", "Root", "AWSService"}
    mfa = {i.get("sessionContext", {}).get("attributes", {}).get("mfaAuthenticated") for i in ids}
    assert {"true", "false"} <= mfa
    assert any(e["requestParameters"] is None for e in events) and any(e["requestParameters"] for e in events)
    # Every label is sent by every variant.
    labels = Counter(label for label, _ in key_policy_change_events(ACCOUNT, REGION))
    assert len(set(labels.values())) == 1 and min(labels.values()) >= 8
