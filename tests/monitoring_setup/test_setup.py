"""kmsguard monitoring setup against the real moto server: refuse without a trail, apply, rescan, idempotent."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner, Result

from kmsguard.aws.options import AwsOptions
from kmsguard.cli import monitoring
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.pipeline import judge

ACCOUNT = "123456789012"
AUDIT_CHECKS = [
    "alarm_missing_key_policy_changes",
    "alarm_missing_decrypt_failures",
    "config_rule_rotation_missing",
    "config_rule_deletion_missing",
]


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """A group, as in kmsguard."""

    app.add_typer(monitoring.app, name="monitoring")
    return app


def _run(endpoint: str, *args: str) -> Result:
    base = ["monitoring", "setup", "--endpoint-url", endpoint, "--regions", "us-east-1"]
    return CliRunner().invoke(_app(), base + list(args))


def _audit(endpoint: str) -> dict[str, str]:
    snap = collect_snapshot(AwsOptions(regions=["us-east-1"], endpoint_url=endpoint))
    return {f.check_id: f.status.value for f in judge(snap, only=AUDIT_CHECKS, warn=lambda _m: None).findings}


def _trail_to_logs(client) -> None:  # type: ignore[no-untyped-def]
    client("s3").create_bucket(Bucket="trail-bucket")
    client("logs").create_log_group(logGroupName="CloudTrail/audit")
    group_arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:CloudTrail/audit:*"
    ct = client("cloudtrail")
    ct.create_trail(
        Name="audit",
        S3BucketName="trail-bucket",
        IsMultiRegionTrail=True,
        CloudWatchLogsLogGroupArn=group_arn,
        CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/ct",
    )
    ct.start_logging(Name="audit")
    cfg = client("config")
    cfg.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
            "recordingGroup": {"allSupported": True},
        }
    )
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "trail-bucket"})


def test_without_a_trail_to_cloudwatch_logs_the_filters_are_refused_with_the_commands(aws, client) -> None:  # type: ignore[no-untyped-def]
    result = _run(aws.endpoint_url, "--format", "json")
    assert result.exit_code == 0, result.output
    [region] = json.loads(result.stdout)["regions"]
    assert "no logging CloudTrail trail" in region["refused"]
    assert "aws cloudtrail create-trail" in region["refused"]
    assert {s["kind"] for s in region["steps"]} == {"config_rule", "dashboard"}


def test_apply_makes_the_audit_checks_pass_and_a_second_run_changes_nothing(aws, client) -> None:  # type: ignore[no-untyped-def]
    _trail_to_logs(client)
    topic = client("sns").create_topic(Name="security-alerts")["TopicArn"]
    assert set(_audit(aws.endpoint_url).values()) == {"FAIL"}

    plan = json.loads(_run(aws.endpoint_url, "--sns-topic", topic, "--format", "json").stdout)
    kinds = sorted(s["kind"] for r in plan["regions"] for s in r["steps"])
    assert kinds == [
        "alarm",
        "alarm",
        "config_recorder",
        "config_rule",
        "config_rule",
        "dashboard",
        "metric_filter",
        "metric_filter",
    ]
    assert _audit(aws.endpoint_url)["alarm_missing_key_policy_changes"] == "FAIL"  # planning changed nothing

    result = _run(aws.endpoint_url, "--sns-topic", topic, "--apply", "--yes")
    assert result.exit_code == 0, result.output
    assert "8 done, 0 failed" in result.stdout
    assert _audit(aws.endpoint_url) == {c: "PASS" for c in AUDIT_CHECKS}
    board = client("cloudwatch").get_dashboard(DashboardName="KMS-Security-Dashboard")["DashboardBody"]
    # Real metrics only: the guide's ["AWS/KMS", "APICallsCount"] does not exist, so its widget is always empty.
    calls = json.loads(board)["widgets"][0]["properties"]
    assert "APICallsCount" not in board and calls["title"] == "KMS API calls"
    for row in calls["metrics"]:
        assert row[:6] == ["AWS/Usage", "CallCount", "Service", "KMS", "Type", "API"] and row[8:10] == ["Class", "None"]
    assert {row[7] for row in calls["metrics"]} >= {"Decrypt", "GenerateDataKey"}

    again = json.loads(_run(aws.endpoint_url, "--sns-topic", topic, "--format", "json").stdout)
    assert [s for r in again["regions"] for s in r["steps"]] == []


def test_bad_input_exit_2(aws) -> None:  # type: ignore[no-untyped-def]
    for args, text in (
        (["--sns-topic", "security"], "--sns-topic"),
        (["--apply"], "--yes"),
        (["--format", "x"], "--format"),
    ):
        result = _run(aws.endpoint_url, *args)
        assert result.exit_code == 2 and text in result.output, (args, result.output)


def test_an_existing_alarm_keeps_the_other_actions_it_notifies(aws, client) -> None:  # type: ignore[no-untyped-def]
    _trail_to_logs(client)
    sns = client("sns")
    topic = sns.create_topic(Name="security-alerts")["TopicArn"]
    pager = sns.create_topic(Name="pager")["TopicArn"]
    cw = client("cloudwatch")
    # The team already alarms on policy changes, paging on-call; the guide's threshold is off (2, not 1).
    cw.put_metric_alarm(
        AlarmName="KMS-Key-Policy-Changes",
        Namespace="Security/KMS",
        MetricName="KMSPolicyChanges",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=2.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[pager],
    )
    result = _run(aws.endpoint_url, "--sns-topic", topic, "--apply", "--yes")
    assert result.exit_code == 0, result.output
    [alarm] = cw.describe_alarms(AlarmNames=["KMS-Key-Policy-Changes"])["MetricAlarms"]
    assert alarm["Threshold"] == 1.0
    assert set(alarm["AlarmActions"]) == {pager, topic}  # on-call is still paged
    again = json.loads(_run(aws.endpoint_url, "--sns-topic", topic, "--format", "json").stdout)
    assert [s for r in again["regions"] for s in r["steps"]] == []


def test_a_multi_region_trail_gets_its_filters_and_alarms_planned_once(aws, client) -> None:  # type: ignore[no-untyped-def]
    _trail_to_logs(client)  # one multi-region trail delivering every region to one log group in us-east-1
    topic = client("sns").create_topic(Name="security-alerts")["TopicArn"]
    args = ["monitoring", "setup", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1,eu-west-1"]
    result = CliRunner().invoke(_app(), [*args, "--sns-topic", topic, "--format", "json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["regions"]
    assert [r["region"] for r in plan] == ["us-east-1", "eu-west-1"]
    filters = [(s["region"], s["name"]) for r in plan for s in r["steps"] if s["kind"] in ("metric_filter", "alarm")]
    assert sorted(filters) == sorted(
        [
            ("us-east-1", "KMSKeyPolicyChanges"),
            ("us-east-1", "KMSDecryptFailures"),
            ("us-east-1", "KMS-Key-Policy-Changes"),
            ("us-east-1", "KMS-Decrypt-Failures"),
        ]
    )
    assert any("CloudTrail/audit in us-east-1" in n for n in plan[1]["notes"])  # eu-west-1 says where they are
    # CloudWatch dashboards are global to the account: one dashboard, drawing both regions, not one per region
    # that the next region overwrites (which would never converge).
    [board] = [s for r in plan for s in r["steps"] if s["kind"] == "dashboard"]
    drawn = {
        (m[-1]["region"] if isinstance(m[-1], dict) else w["properties"]["region"])  # options close a metric row
        for w in json.loads(board["params"]["DashboardBody"])["widgets"]
        for m in w["properties"]["metrics"]
    }
    assert drawn == {"us-east-1", "eu-west-1"}

    applied = CliRunner().invoke(_app(), [*args, "--sns-topic", topic, "--apply", "--yes"])
    assert applied.exit_code == 0, applied.output
    assert "0 failed" in applied.stdout
    logs = client("logs").describe_metric_filters(logGroupName="CloudTrail/audit")["metricFilters"]
    assert sorted(f["filterName"] for f in logs) == ["KMSDecryptFailures", "KMSKeyPolicyChanges"]
    again = json.loads(CliRunner().invoke(_app(), [*args, "--sns-topic", topic, "--format", "json"]).stdout)
    assert [s for r in again["regions"] for s in r["steps"]] == []  # applied: a second run changes nothing
