"""`kmsguard monitoring setup`: the audit set-up the scan's audit checks look for, planned then applied.

Per account and region: the guide's two metric filters on the log group of a logging trail that covers the
region (in the log group's own region), an alarm with an SNS action on each metric, the Config rules
CMK_BACKING_KEY_ROTATION_ENABLED and KMS_CMK_NOT_SCHEDULED_FOR_DELETION (and starting a stopped
configuration recorder, without which they evaluate nothing), and the KMS-Security-Dashboard.

Every step compares what exists with what it would write and is planned only when they differ, so applying
twice changes nothing. The filter patterns are the ones the scan's checks evaluate (checks/audit.py parses
and runs them against synthetic CloudTrail events), so what this writes is what makes those checks pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from kmsguard.arn import build as build_arn
from kmsguard.arn import log_group, partition_of
from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.session import AccountSession

NAMESPACE = "Security/KMS"
POLICY_CHANGES_PATTERN = (
    "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = PutKeyPolicy) || "
    "($.eventName = ScheduleKeyDeletion) || ($.eventName = DisableKey)) }"
)
DECRYPT_FAILURES_PATTERN = '{ ($.eventSource = kms.amazonaws.com) && ($.eventName = Decrypt) && ($.errorCode = "*") }'
# (filter name, pattern, metric name, alarm name, threshold, comparison) - the guide's values.
FILTERS: tuple[tuple[str, str, str, str, float, str], ...] = (
    (
        "KMSKeyPolicyChanges",
        POLICY_CHANGES_PATTERN,
        "KMSPolicyChanges",
        "KMS-Key-Policy-Changes",
        1.0,
        "GreaterThanOrEqualToThreshold",
    ),
    (
        "KMSDecryptFailures",
        DECRYPT_FAILURES_PATTERN,
        "KMSDecryptFailures",
        "KMS-Decrypt-Failures",
        5.0,
        "GreaterThanThreshold",
    ),
)
CONFIG_RULES: tuple[tuple[str, str, str], ...] = (
    ("cmk-backing-key-rotation-enabled", "CMK_BACKING_KEY_ROTATION_ENABLED", "TwentyFour_Hours"),
    ("kms-cmk-not-scheduled-for-deletion", "KMS_CMK_NOT_SCHEDULED_FOR_DELETION", "One_Hour"),
)
DASHBOARD = "KMS-Security-Dashboard"


@dataclass
class Step:
    account: str
    region: str
    kind: str  # metric_filter, alarm, config_rule, config_recorder, dashboard
    name: str
    call: str  # the API call, for the plan's text
    params: dict[str, Any]
    run: Callable[[], Any] = field(repr=False, default=lambda: None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "kind": self.kind,
            "name": self.name,
            "call": self.call,
            "params": self.params,
        }


@dataclass
class RegionPlan:
    account: str
    region: str
    steps: list[Step] = field(default_factory=list)
    refused: str | None = None  # why nothing can be set up here
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "steps": [s.to_dict() for s in self.steps],
            "refused": self.refused,
            "notes": self.notes,
        }


def create_trail_commands(region: str, account: str) -> list[str]:
    group = build_arn("logs", region, account, "log-group:CloudTrail/kms-audit:*")
    role = build_arn("iam", "", account, "role/CloudTrailToCloudWatch", partition=partition_of(region))
    return [
        f"aws logs create-log-group --region {region} --log-group-name CloudTrail/kms-audit",
        "aws iam create-role --role-name CloudTrailToCloudWatch --assume-role-policy-document "
        '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":'
        '"cloudtrail.amazonaws.com"},"Action":"sts:AssumeRole"}]}\' (then allow logs:CreateLogStream and '
        "logs:PutLogEvents on the log group)",
        f"aws cloudtrail create-trail --region {region} --name kms-audit --s3-bucket-name <bucket> "
        "--is-multi-region-trail --enable-log-file-validation "
        f"--cloud-watch-logs-log-group-arn {group} --cloud-watch-logs-role-arn {role}",
        f"aws cloudtrail start-logging --region {region} --name kms-audit",
    ]


def _trail_log_group(session: AccountSession, region: str) -> tuple[str, str] | None:
    ct = session.client("cloudtrail", region)
    for t in ct.describe_trails(includeShadowTrails=True)["trailList"]:
        if not (t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region):
            continue
        found = log_group(t.get("CloudWatchLogsLogGroupArn") or "")
        if found is None:
            continue
        group = found[1], found[2]  # (region, name)
        home = session.client("cloudtrail", t.get("HomeRegion") or region)
        if home.get_trail_status(Name=t["TrailARN"]).get("IsLogging"):
            return group
    return None


# The operations the dashboard's "KMS API calls" widget draws: the cryptographic calls most workloads make, and
# the ones an attacker's use shows in.
USAGE_OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey", "ReEncrypt")


def dashboard_body(regions: list[str]) -> str:
    """The dashboard's body. CloudWatch dashboards are global (one per name and account, whatever region writes
    it), so one dashboard draws every planned region: each widget's home is the first, the others are named on
    their metrics."""
    home = regions[0]

    def metrics(namespace: str, name: str, *dimensions: str) -> list[list[Any]]:
        return [[namespace, name, *dimensions] + ([] if r == home else [{"region": r}]) for r in regions]

    def usage(operation: str) -> list[list[Any]]:
        dimensions = ("Service", "KMS", "Type", "API", "Resource", operation, "Class", "None")
        return metrics("AWS/Usage", "CallCount", *dimensions)

    def widget(title: str, rows: list[list[Any]], y: int) -> dict[str, Any]:
        props = {"title": title, "metrics": rows, "stat": "Sum", "period": 300, "region": home, "view": "timeSeries"}
        return {"type": "metric", "x": 0, "y": y, "width": 24, "height": 6, "properties": props}

    return json.dumps(
        {
            "widgets": [
                # The guide's widget draws ["AWS/KMS", "APICallsCount"], a metric AWS does not publish (AWS/KMS
                # holds key-material expiry and custom key store metrics only), so it is always empty. KMS's calls
                # are counted per operation in AWS/Usage (CallCount, Service=KMS, Type=API, Class=None).
                widget("KMS API calls", [row for op in USAGE_OPERATIONS for row in usage(op)], 0),
                widget("Key policy changes, disabling, scheduled deletion", metrics(NAMESPACE, "KMSPolicyChanges"), 6),
                widget("Failed Decrypt calls", metrics(NAMESPACE, "KMSDecryptFailures"), 12),
            ]
        },
        sort_keys=True,
    )


def plan_region(
    session: AccountSession,
    region: str,
    sns_topic: str | None,
    planned: set[tuple[str, str, str]] | None = None,
    dashboard: list[str] | None = None,
) -> RegionPlan:
    """What is missing in one region (reads only). ``planned``: the (account, region, name) of log groups whose
    filters and alarms an earlier region of the same plan already covers (a multi-region trail delivers every
    region's events to one log group: its filters are planned once, not once per region). ``dashboard``: the
    regions the account's one dashboard draws (default: this region; empty: planned with another region)."""
    out = RegionPlan(session.account_id, region)
    group = _trail_log_group(session, region)
    if group is None:
        out.refused = (
            f"no logging CloudTrail trail covering {region} delivers to CloudWatch Logs, so there is no log group "
            "to put metric filters on; create one with: "
            + " && ".join(create_trail_commands(region, session.account_id))
        )
    elif planned is not None and (session.account_id, *group) in planned:
        out.notes.append(
            f"metric filters and alarms: on log group {group[1]} in {group[0]}, planned with the first region "
            "its trail covers"
        )
    else:
        if planned is not None:
            planned.add((session.account_id, *group))
        _plan_filters(out, session, group, sns_topic)
    _plan_config(out, session, region)
    if dashboard == []:
        out.notes.append(f"dashboard {DASHBOARD}: global to the account, planned with the first region")
    else:
        _plan_dashboard(out, session, region, dashboard or [region])
    return out


def plan_regions(session: AccountSession, regions: list[str], sns_topic: str | None) -> list[RegionPlan]:
    """``plan_region`` for each region of one account: each log group's filters and alarms, and the account's
    dashboard, planned once."""
    planned: set[tuple[str, str, str]] = set()
    return [plan_region(session, r, sns_topic, planned, regions if i == 0 else []) for i, r in enumerate(regions)]


def _plan_filters(out: RegionPlan, session: AccountSession, group: tuple[str, str], sns_topic: str | None) -> None:
    gregion, gname = group
    logs, cw = session.client("logs", gregion), session.client("cloudwatch", gregion)
    existing = {
        f["filterName"]: f
        for page in logs.get_paginator("describe_metric_filters").paginate(logGroupName=gname)
        for f in page.get("metricFilters", [])
    }
    alarms = {
        a["AlarmName"]: a
        for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="KMS-")
        for a in page.get("MetricAlarms", [])
    }
    for fname, pattern, metric, alarm, threshold, comparison in FILTERS:
        transform = [{"metricName": metric, "metricNamespace": NAMESPACE, "metricValue": "1"}]
        have = existing.get(fname)
        have_t = [
            {k: t.get(k) for k in ("metricName", "metricNamespace", "metricValue")}
            for t in (have or {}).get("metricTransformations", [])
        ]
        if have is None or have.get("filterPattern") != pattern or have_t != transform:
            params = {
                "logGroupName": gname,
                "filterName": fname,
                "filterPattern": pattern,
                "metricTransformations": transform,
            }
            out.steps.append(
                Step(
                    out.account,
                    gregion,
                    "metric_filter",
                    fname,
                    "logs:PutMetricFilter",
                    params,
                    partial(logs.put_metric_filter, **params),
                )
            )
        if sns_topic is None:
            out.notes.append(
                f"alarm {alarm}: skipped, needs --sns-topic ARN (an alarm without an action alerts nobody)"
            )
            continue
        want = {
            "AlarmName": alarm,
            "Namespace": NAMESPACE,
            "MetricName": metric,
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "AlarmActions": [sns_topic],
            "ActionsEnabled": True,
        }
        cur = alarms.get(alarm)
        if cur is not None:
            # PutMetricAlarm replaces the whole alarm: keep whom else it notifies (on-call, a ticketing topic).
            have_actions = list(cur.get("AlarmActions") or [])
            want["AlarmActions"] = have_actions + ([sns_topic] if sns_topic not in have_actions else [])
            for k in ("OKActions", "InsufficientDataActions", "AlarmDescription"):
                if cur.get(k):
                    want[k] = cur[k]
        if cur is None or any(cur.get(k) != v for k, v in want.items()):
            out.steps.append(
                Step(
                    out.account,
                    gregion,
                    "alarm",
                    alarm,
                    "cloudwatch:PutMetricAlarm",
                    want,
                    partial(cw.put_metric_alarm, **want),
                )
            )


def _plan_config(out: RegionPlan, session: AccountSession, region: str) -> None:
    cfg = session.client("config", region)
    rules = {r["ConfigRuleName"]: r for r in cfg.describe_config_rules().get("ConfigRules", [])}
    for name, identifier, frequency in CONFIG_RULES:
        if any(
            r.get("Source", {}).get("SourceIdentifier") == identifier and r.get("ConfigRuleState") == "ACTIVE"
            for r in rules.values()
        ):
            continue
        rule = {
            "ConfigRuleName": name,
            "Source": {"Owner": "AWS", "SourceIdentifier": identifier},
            "MaximumExecutionFrequency": frequency,
        }
        out.steps.append(
            Step(
                out.account,
                region,
                "config_rule",
                name,
                "config:PutConfigRule",
                {"ConfigRule": rule},
                partial(cfg.put_config_rule, ConfigRule=rule),
            )
        )
    recorders = cfg.describe_configuration_recorders().get("ConfigurationRecorders", [])
    status = {
        s["name"]: s.get("recording", False)
        for s in cfg.describe_configuration_recorder_status().get("ConfigurationRecordersStatus", [])
    }
    if not recorders:
        out.notes.append(
            "no AWS Config configuration recorder: the rules evaluate nothing until one records; create it with "
            f"aws configservice put-configuration-recorder --region {region} ... and put-delivery-channel, then "
            "start-configuration-recorder"
        )
    elif not any(status.get(r["name"]) for r in recorders):
        name = recorders[0]["name"]
        out.steps.append(
            Step(
                out.account,
                region,
                "config_recorder",
                name,
                "config:StartConfigurationRecorder",
                {"ConfigurationRecorderName": name},
                partial(cfg.start_configuration_recorder, ConfigurationRecorderName=name),
            )
        )


def _plan_dashboard(out: RegionPlan, session: AccountSession, region: str, regions: list[str]) -> None:
    cw = session.client("cloudwatch", region)
    body = dashboard_body(regions)
    try:
        current = cw.get_dashboard(DashboardName=DASHBOARD).get("DashboardBody")
    except ClientError as e:
        if error_code(e)[0] not in ("ResourceNotFound", "ResourceNotFoundException"):
            raise
        current = None
    if current is None or json.loads(current) != json.loads(body):
        params = {"DashboardName": DASHBOARD, "DashboardBody": body}
        out.steps.append(
            Step(
                out.account,
                region,
                "dashboard",
                DASHBOARD,
                "cloudwatch:PutDashboard",
                params,
                partial(cw.put_dashboard, **params),
            )
        )


@dataclass
class StepResult:
    step: Step
    ok: bool
    message: str


def apply_steps(plans: list[RegionPlan]) -> list[StepResult]:
    """Run every step; one failing does not stop the others."""
    out: list[StepResult] = []
    for plan in plans:
        for step in plan.steps:
            try:
                step.run()
            except AWS_CALL_ERRORS as e:
                code, message = error_code(e)
                out.append(StepResult(step, False, f"{code}: {message}"))
                continue
            out.append(StepResult(step, True, "done"))
    return out
