"""CloudTrail trails of one region, and the metric filters on the log groups they deliver to.

Calls per region: DescribeTrails (shadow trails included, so every region shows the multi-region
trails that cover it). For each trail whose home region this is: GetTrailStatus, GetEventSelectors,
and logs:DescribeMetricFilters on its CloudWatch Logs group. Shadow copies get their status from the
home-region copy afterwards (``share_trail_status``), so no trail is read twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from kmsguard.arn import log_group
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
        # arn:PARTITION:logs:<region>:<account>:log-group:<name>:*  (CloudTrail requires the trail's region)
        found = log_group(trail.cloudwatch_logs_log_group_arn)
        group, region = (found[2], found[1] or ctx.region) if found else ("", ctx.region)
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


# The management events a trail's selectors are evaluated against, as the CloudTrail record fields a selector
# can name. The KMS writes are the key-administration calls the audit checks alarm on (policy changes, disabling,
# scheduled deletion); the KMS read is Decrypt. The EC2 pair only tells whether other services' management
# events are recorded (for the legacy summary fields).
_Event = dict[str, str]


def _management_event(source: str, name: str, read_only: bool) -> _Event:
    return {
        "eventCategory": "Management",
        "eventSource": source,
        "eventName": name,
        "readOnly": "true" if read_only else "false",
        "eventType": "AwsApiCall",
    }


KMS_WRITE_EVENTS = tuple(
    _management_event(KMS_SOURCE, n, False) for n in ("PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey")
)
KMS_READ_EVENTS = (_management_event(KMS_SOURCE, "Decrypt", True),)
_OTHER_WRITE_EVENTS = (_management_event("ec2.amazonaws.com", "RunInstances", False),)
_OTHER_READ_EVENTS = (_management_event("ec2.amazonaws.com", "DescribeInstances", True),)

_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "Equals": lambda actual, v: actual == v,
    "StartsWith": lambda actual, v: actual.startswith(v),
    "EndsWith": lambda actual, v: actual.endswith(v),
}
_NEGATIVE: dict[str, Callable[[str, str], bool]] = {
    "NotEquals": lambda actual, v: actual == v,
    "NotStartsWith": lambda actual, v: actual.startswith(v),
    "NotEndsWith": lambda actual, v: actual.endswith(v),
}


def _field_matches(fs: dict[str, Any], event: _Event) -> bool:
    """One field condition of an advanced selector: any positive value matches, and no negative one does.

    A field the synthetic event does not carry (userIdentity.arn, resources.ARN, errorCode, ...) depends on the
    caller or the call, so the selector cannot be relied on to record every such event: it counts as no match.
    """
    actual = event.get(fs.get("Field", ""))
    if actual is None:
        return False
    positives = [(op, v) for op in _POSITIVE for v in fs.get(op) or []]
    if positives and not any(_POSITIVE[op](actual, v) for op, v in positives):
        return False
    return not any(_NEGATIVE[op](actual, v) for op in _NEGATIVE for v in fs.get(op) or [])


def _advanced_matches(sel: dict[str, Any], event: _Event) -> bool:
    """An advanced selector matches an event when every one of its field conditions does (they are ANDed)."""
    fields = sel.get("FieldSelectors") or []
    # eventCategory is required; a selector without it is not one CloudTrail accepts for management events.
    if not any(f.get("Field") == "eventCategory" for f in fields):
        return False
    return all(_field_matches(f, event) for f in fields)


def _basic_matches(sel: dict[str, Any], event: _Event) -> bool:
    """A basic event selector matches a management event by ReadWriteType, unless its source is excluded."""
    if not sel.get("IncludeManagementEvents", True):
        return False
    rw = sel.get("ReadWriteType", "All")
    if rw not in ("All", "ReadOnly" if event["readOnly"] == "true" else "WriteOnly"):
        return False
    return event["eventSource"] not in (sel.get("ExcludeManagementEventSources") or [])


def _recorded(resp: dict[str, Any], events: tuple[_Event, ...]) -> bool:
    """Whether the trail records every one of ``events``: each must match some selector as a whole.

    CloudTrail logs an event when it matches ANY of the trail's selectors; a trail has either basic
    EventSelectors or AdvancedEventSelectors, never both (advanced ones win if a response carries both).
    """
    advanced = resp.get("AdvancedEventSelectors") or []
    if advanced:
        return all(any(_advanced_matches(s, e) for s in advanced) for e in events)
    basic = resp.get("EventSelectors") or []
    return all(any(_basic_matches(s, e) for s in basic) for e in events)


def _rw_type(reads: bool, writes: bool) -> Literal["All", "ReadOnly", "WriteOnly", "None"]:
    return "All" if reads and writes else "ReadOnly" if reads else "WriteOnly" if writes else "None"


def apply_selectors(trail: Trail, resp: dict[str, Any]) -> None:
    """Whether the trail records KMS's write and read management events, from its event selectors.

    Each selector is evaluated as a whole against each event (see ``_recorded``), which sets
    ``kms_writes_recorded`` and ``kms_reads_recorded``. The older summary fields are derived from those so
    that "records management events of this kind and does not exclude KMS" means exactly the same thing:
    when the trail records any KMS event, ``management_read_write_type`` says which kinds of KMS event and
    ``kms_events_excluded`` is False; when it records management events but none of KMS's, the type describes
    the other services' events and ``kms_events_excluded`` is True.
    """
    kms_writes = _recorded(resp, KMS_WRITE_EVENTS)
    kms_reads = _recorded(resp, KMS_READ_EVENTS)
    other_writes = _recorded(resp, _OTHER_WRITE_EVENTS)
    other_reads = _recorded(resp, _OTHER_READ_EVENTS)
    trail.kms_writes_recorded = kms_writes
    trail.kms_reads_recorded = kms_reads
    trail.logs_management_events = kms_writes or kms_reads or other_writes or other_reads
    if kms_writes or kms_reads:
        trail.management_read_write_type = _rw_type(kms_reads, kms_writes)
        trail.kms_events_excluded = False
    else:
        trail.management_read_write_type = _rw_type(other_reads, other_writes)
        trail.kms_events_excluded = trail.logs_management_events


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
                t.kms_writes_recorded = src.kms_writes_recorded
                t.kms_reads_recorded = src.kms_reads_recorded
