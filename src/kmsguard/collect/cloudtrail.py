"""CloudTrail trails of one region, and the metric filters on the log groups they deliver to.

Calls per region: DescribeTrails (shadow trails included, so every region shows the multi-region
trails that cover it). For each trail whose home region this is: GetTrailStatus, GetEventSelectors,
and logs:DescribeMetricFilters on its CloudWatch Logs group. Shadow copies get their status from the
home-region copy afterwards (``share_trail_status``), so no trail is read twice.
"""

from __future__ import annotations

from typing import Any

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import MetricFilter, Trail

SERVICE = "cloudtrail"
KMS_SOURCE = "kms.amazonaws.com"


def collect(ctx: RegionContext) -> None:
    ct = ctx.client(SERVICE)
    for raw in ct.describe_trails(includeShadowTrails=True)["trailList"]:  # not paginated by the API
        trail = Trail(
            name=raw["Name"],
            arn=raw["TrailARN"],
            home_region=raw.get("HomeRegion", ctx.region),
            is_multi_region=bool(raw.get("IsMultiRegionTrail")),
            is_organization_trail=bool(raw.get("IsOrganizationTrail")),
            log_file_validation_enabled=bool(raw.get("LogFileValidationEnabled")),
            cloudwatch_logs_log_group_arn=raw.get("CloudWatchLogsLogGroupArn"),
            kms_key_id=raw.get("KmsKeyId"),
        )
        if trail.home_region == ctx.region:
            _read_home_trail(ctx, ct, trail)
        ctx.snapshot.trails.append(trail)


def _read_home_trail(ctx: RegionContext, ct: Any, trail: Trail) -> None:
    errors = ctx.snapshot.errors
    with guard(errors, SERVICE, "GetTrailStatus", trail.arn):
        trail.is_logging = bool(ct.get_trail_status(Name=trail.arn)["IsLogging"])
    with guard(errors, SERVICE, "GetEventSelectors", trail.arn):
        apply_selectors(trail, ct.get_event_selectors(TrailName=trail.arn))
    if trail.cloudwatch_logs_log_group_arn:
        # arn:aws:logs:<region>:<account>:log-group:<name>:*  (CloudTrail requires the trail's region)
        parts = trail.cloudwatch_logs_log_group_arn.split(":")
        group, region = parts[6], parts[3] or ctx.region
        logs = ctx.session.client("logs", region)
        with guard(errors, "logs", "DescribeMetricFilters", trail.cloudwatch_logs_log_group_arn):
            for f in paginate(logs, "describe_metric_filters", "metricFilters", logGroupName=group):
                ctx.snapshot.metric_filters.append(
                    MetricFilter(
                        log_group_name=f.get("logGroupName", group),
                        name=f["filterName"],
                        pattern=f.get("filterPattern", ""),
                        metrics=[(t["metricNamespace"], t["metricName"]) for t in f.get("metricTransformations", [])],
                    )
                )


def apply_selectors(trail: Trail, resp: dict[str, Any]) -> None:
    """Whether the trail records management events, which ones, and whether KMS events are left out."""
    reads = writes = False
    kms_excluded = True
    if resp.get("AdvancedEventSelectors"):
        for sel in resp["AdvancedEventSelectors"]:
            fields = {f["Field"]: f for f in sel.get("FieldSelectors", [])}
            if "Management" not in fields.get("eventCategory", {}).get("Equals", []):
                continue
            read_only = fields.get("readOnly", {}).get("Equals")
            reads |= read_only is None or "true" in read_only
            writes |= read_only is None or "false" in read_only
            source = fields.get("eventSource", {})
            kms_excluded &= KMS_SOURCE in source.get("NotEquals", []) or (
                bool(source.get("Equals")) and KMS_SOURCE not in source["Equals"]
            )
    else:
        for sel in resp.get("EventSelectors", []):
            if not sel.get("IncludeManagementEvents", True):
                continue
            rw = sel.get("ReadWriteType", "All")
            reads |= rw in ("All", "ReadOnly")
            writes |= rw in ("All", "WriteOnly")
            kms_excluded &= KMS_SOURCE in sel.get("ExcludeManagementEventSources", [])
    trail.logs_management_events = reads or writes
    trail.management_read_write_type = (
        "All" if reads and writes else "ReadOnly" if reads else "WriteOnly" if writes else "None"
    )
    trail.kms_events_excluded = trail.logs_management_events and kms_excluded


def share_trail_status(trails_by_region: dict[str, list[Trail]]) -> None:
    """Copy status and selectors from each trail's home-region copy onto its shadow copies."""
    home = {t.arn: t for region, trails in trails_by_region.items() for t in trails if t.home_region == region}
    for region, trails in trails_by_region.items():
        for t in trails:
            src = home.get(t.arn)
            if src is not None and t.home_region != region:
                t.is_logging = src.is_logging
                t.logs_management_events = src.logs_management_events
                t.management_read_write_type = src.management_read_write_type
                t.kms_events_excluded = src.kms_events_excluded
