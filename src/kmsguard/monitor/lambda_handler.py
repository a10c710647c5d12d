"""AWS Lambda entry point: ``kmsguard.monitor.lambda_handler.handler``.

The same monitor as `kmsguard monitor`, one invocation per trigger: an EventBridge schedule runs a full
cycle; a KMS API event (EventBridge rule on CloudTrail) re-reads and re-judges that key. Configuration comes
from the environment (deploy/cloudformation/monitor.yaml sets it):

- KMSGUARD_DB: the store URL. Lambda's /tmp does not outlive the instance, so use PostgreSQL (or SQLite on
  an EFS mount) to keep history and alert state between invocations.
- KMSGUARD_SNS_TOPIC: the alert topic ARN. KMSGUARD_SLACK_WEBHOOK, KMSGUARD_WEBHOOK: optional channels.
- KMSGUARD_REGIONS: comma-separated regions to scan (default: every enabled region).
- KMSGUARD_DASHBOARD_URL: where alerts link to, when a dashboard is served.

The Monitor is kept between invocations of a warm instance, so its last snapshot is reused for key events.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kmsguard.arn import parse as parse_arn
from kmsguard.aws.options import AwsOptions
from kmsguard.monitor.channels import Channel, SlackChannel, SnsChannel, WebhookChannel
from kmsguard.monitor.events import key_event
from kmsguard.monitor.service import Monitor, MonitorSettings

log = logging.getLogger("kmsguard.monitor")
_monitor: Monitor | None = None


def _build() -> Monitor:
    import boto3

    env = os.environ
    regions = [r.strip() for r in env.get("KMSGUARD_REGIONS", "").split(",") if r.strip()] or None
    endpoint = env.get("KMSGUARD_ENDPOINT_URL") or None
    options = AwsOptions(regions=regions, endpoint_url=endpoint)
    channels: list[Channel] = []
    topic = env.get("KMSGUARD_SNS_TOPIC")
    if topic:
        parsed = parse_arn(topic)
        region = parsed.region if parsed is not None else None
        channels.append(SnsChannel(topic, boto3.client("sns", region_name=region, endpoint_url=endpoint)))
    if env.get("KMSGUARD_SLACK_WEBHOOK"):
        channels.append(SlackChannel(env["KMSGUARD_SLACK_WEBHOOK"]))
    if env.get("KMSGUARD_WEBHOOK"):
        channels.append(WebhookChannel(env["KMSGUARD_WEBHOOK"]))
    settings = MonitorSettings(
        db_url=env.get("KMSGUARD_DB", "sqlite:////tmp/kmsguard.db"),
        options=options,
        dashboard_url=env.get("KMSGUARD_DASHBOARD_URL"),
        retry_attempts=3,
        retry_base=1.0,
    )
    return Monitor(settings, channels)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Scheduled event -> full cycle; KMS API event -> that key; SQS batch -> each record's event."""
    global _monitor
    if _monitor is None:
        logging.getLogger().setLevel(logging.INFO)
        _monitor = _build()
    mon = _monitor
    mon.deliver()
    records = event.get("Records")
    bodies = [r.get("body") for r in records] if isinstance(records, list) else [event]
    out: list[dict[str, Any]] = []
    for body in bodies:
        ev = key_event(body)
        if ev is not None:
            cycle = mon.key_cycle(ev)
        elif not isinstance(records, list):  # a direct invocation (the schedule, or by hand): full cycle
            cycle = mon.full_cycle()
        else:
            continue
        if cycle is not None:
            out.append(
                {
                    "scan_id": cycle.scan_id,
                    "kind": cycle.kind,
                    "drift": len(cycle.drift),
                    "alerted": cycle.alert_id is not None,
                }
            )
    return {"cycles": out}
