"""CloudWatch metric alarms of one region (DescribeAlarms, paginated; one call per 100 alarms)."""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.model.snapshot import Alarm

SERVICE = "cloudwatch"


def collect(ctx: RegionContext) -> None:
    cw = ctx.client(SERVICE)
    for a in paginate(cw, "describe_alarms", "MetricAlarms", AlarmTypes=["MetricAlarm"]):
        ctx.snapshot.alarms.append(
            Alarm(
                name=a["AlarmName"],
                arn=a.get("AlarmArn"),
                namespace=a.get("Namespace"),
                metric_name=a.get("MetricName"),
                statistic=a.get("Statistic"),
                period=a.get("Period"),
                evaluation_periods=a.get("EvaluationPeriods"),
                threshold=a.get("Threshold"),
                comparison_operator=a.get("ComparisonOperator"),
                actions_enabled=bool(a.get("ActionsEnabled", True)),
                alarm_actions=list(a.get("AlarmActions", [])),
            )
        )
