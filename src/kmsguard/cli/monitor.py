"""`kmsguard monitor`: scan on a schedule and on KMS events, keep history in the store, alert on what changed."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from kmsguard.arn import parse as parse_arn
from kmsguard.cli.common import (
    ALLOW_ERRORS_HELP,
    CONCURRENCY_OPTION,
    DEADLINE_OPTION,
    EXIT_AWS,
    MAX_ATTEMPTS_OPTION,
    QUOTAS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    check_regions,
    cut_short,
    fail,
    outcome_code,
    refuse_blind,
)
from kmsguard.monitor.channels import Channel, SlackChannel, SmtpChannel, SnsChannel, WebhookChannel, parse_smtp
from kmsguard.monitor.events import SqsEvents, queue_region, queue_url
from kmsguard.monitor.schedule import parse_schedule
from kmsguard.monitor.service import AWS_ERRORS, DB_ERRORS, Cycle, Monitor, MonitorSettings, TrailError
from kmsguard.store.db import StoreError, open_store


def monitor(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="KMSGUARD_DB",
        help="Database URL (sqlite:///PATH, postgresql://...). Default: user data dir.",
    ),
    once: bool = typer.Option(False, "--once", help="Run one cycle (scan, store, diff, alert) and exit."),
    interval: str = typer.Option("1h", "--interval", help="Full scan schedule: 30m, 1h, 1d ... or a cron expression."),
    events: str | None = typer.Option(None, "--events", help="sqs://QUEUE_URL receiving EventBridge KMS API events."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Region to scan (repeatable)."),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated regions."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", envvar="KMSGUARD_ENDPOINT_URL", help="Send every AWS call to this endpoint."
    ),
    org: bool = typer.Option(False, "--org", help="Scan every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed per account."),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids (comma-separated)."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    deadline: str | None = DEADLINE_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    quotas: str | None = QUOTAS_OPTION,
    config: Path | None = typer.Option(None, "--config", help="kmsguard.yaml (default: ./kmsguard.yaml if present)."),
    sns_topic: str | None = typer.Option(None, "--sns-topic", help="Alert to this SNS topic ARN."),
    slack_webhook: str | None = typer.Option(
        None, "--slack-webhook", envvar="KMSGUARD_SLACK_WEBHOOK", help="Alert to this Slack incoming webhook URL."
    ),
    webhook: str | None = typer.Option(None, "--webhook", help="POST each alert as JSON to this URL."),
    smtp: str | None = typer.Option(None, "--smtp", help="E-mail alerts via HOST[:PORT] or smtp+starttls://U:P@H:P."),
    smtp_from: str | None = typer.Option(None, "--smtp-from", help="Sender address of alert e-mails."),
    smtp_to: list[str] | None = typer.Option(None, "--smtp-to", help="Recipient of alert e-mails (repeatable)."),
    dashboard_url: str | None = typer.Option(None, "--dashboard-url", help="Link alerts to this `kmsguard serve`."),
    trail: list[str] | None = typer.Option(
        None,
        "--trail",
        help="CloudTrail logs to analyse each full cycle (file, directory or s3://bucket/prefix; repeatable).",
    ),
    event_wait: int = typer.Option(5, "--event-wait", help="Seconds each SQS long poll waits (1-20)."),
    allow_errors: bool = typer.Option(False, "--allow-errors", help=f"With --once: {ALLOW_ERRORS_HELP}"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only."),
) -> None:
    """Watch the estate: scan on a schedule and on KMS events, store history, alert on drift."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The monitor's own progress at INFO; the libraries' chatter (botocore endpoint resolution, urllib3
    # connections) only when something is wrong.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        schedule = parse_schedule(interval)
        queue = queue_url(events) if events else None
    except ValueError as e:
        fail(str(e))
    region_list = (region or []) + ([regions] if regions else [])
    options = aws_options(
        profile,
        region_list,
        endpoint_url,
        org,
        role_name,
        accounts,
        timeout=timeout,
        max_attempts=max_attempts,
        deadline=deadline,  # per full scan
        concurrency=concurrency,
        quotas=quotas,
    )
    check_regions(options)
    for source in trail or ():
        if not source.startswith("s3://") and not Path(source).exists():
            fail(f"--trail: {source}: no such file or directory")
    cfg = _load_config(config)
    channels = _channels(sns_topic, slack_webhook, webhook, smtp, smtp_from, smtp_to, profile, endpoint_url)
    stop = threading.Event()
    settings = MonitorSettings(db_url=db, options=options, config=cfg, dashboard_url=dashboard_url)
    if trail:
        # S3 sources are read as `scan --trail` reads them: the caller's credentials, never --org.
        settings.trail = list(trail)
        settings.trail_aws = aws_options(profile, region_list, endpoint_url, False, role_name, None)
    if once:
        settings.retry_attempts = 3
        try:
            store = open_store(db)
        except StoreError as e:
            fail(str(e))
        mon = Monitor(settings, channels, stop, store)
        mon.deliver()
        try:
            cycle = mon.full_cycle()
        except AWS_ERRORS as e:
            fail(f"cannot scan AWS: {e}", EXIT_AWS)
        except DB_ERRORS as e:
            fail(f"the store became unavailable: {str(e).splitlines()[0]}")
        except TrailError as e:
            fail(str(e))
        errors = _print_cycle(mon, cycle)
        refuse_blind(options)
        # Failing findings are what the monitor alerts on, not a failure of the run: only ERRORs fail --once.
        raise typer.Exit(cut_short(options, outcome_code(errors, None, "never", allow_errors)))
    _on_sigterm(stop)
    mon = Monitor(settings, channels, stop)
    sqs = None
    if queue is not None:
        import boto3

        client = boto3.Session(profile_name=profile).client(
            "sqs", region_name=queue_region(queue, "us-east-1"), endpoint_url=endpoint_url
        )
        sqs = SqsEvents(client, queue, max(1, min(event_wait, 20)))
    mon.run(schedule, sqs)
    typer.echo("kmsguard monitor: stopped")


def _print_cycle(mon: Monitor, cycle: Cycle) -> int:
    """What one --once cycle found: each change and the alert as the channels receive it (what, where, how bad).
    Returns the number of ERROR findings of the scan."""
    from kmsguard.monitor.channels import render_text
    from kmsguard.store.queries import count_by
    from kmsguard.store.schema import AlertRow, FindingRow

    with mon.store.session() as s:
        errors = dict(count_by(s, cycle.scan_id, FindingRow.status, failing=False)).get("ERROR", 0)
        alert = s.get(AlertRow, cycle.alert_id) if cycle.alert_id is not None else None
        payload = dict(alert.payload) if alert is not None else None
    typer.echo(
        f"scan {cycle.scan_id}: {cycle.failing} failing, {errors} error(s), {len(cycle.drift)} change(s), "
        f"{'1 alert' if payload else 'no alert'}"
    )
    for d in cycle.drift:
        typer.echo(f"- [{d.severity.upper()}] {d.kind}: {d.summary}")
        typer.echo(f"  where: account {d.account}, region {d.region}, {d.resource_arn}")
    if payload:
        typer.echo(f"\nalert {cycle.alert_id}:\n{render_text(payload)}")
    return errors


def _load_config(path: Path | None) -> Any:
    from kmsguard.config_file import ConfigFileError, load_config

    try:
        return load_config(path)
    except ConfigFileError as e:
        fail(str(e))


def _channels(
    sns_topic: str | None,
    slack: str | None,
    webhook: str | None,
    smtp: str | None,
    smtp_from: str | None,
    smtp_to: list[str] | None,
    profile: str | None,
    endpoint_url: str | None,
) -> list[Channel]:
    out: list[Channel] = []
    if sns_topic:
        topic = parse_arn(sns_topic)
        if topic is None or topic.service != "sns" or not topic.region:
            fail(f"--sns-topic: {sns_topic!r} is not an SNS topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME)")
        import boto3

        client = boto3.Session(profile_name=profile).client("sns", region_name=topic.region, endpoint_url=endpoint_url)
        out.append(SnsChannel(sns_topic, client))
    for flag, url, cls in (("--slack-webhook", slack, SlackChannel), ("--webhook", webhook, WebhookChannel)):
        if url:
            if not url.startswith(("http://", "https://")):
                fail(f"{flag}: {url!r} is not an http(s) URL")
            out.append(cls(url))
    if smtp:
        try:
            out.append(SmtpChannel(parse_smtp(smtp, smtp_from, [a for v in smtp_to or [] for a in v.split(",") if a])))
        except ValueError as e:
            fail(str(e))
    return out


def _on_sigterm(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the loop to stop after the current step; a second SIGINT interrupts."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("kmsguard.monitor").info("signal %d: stopping after the current step", signum)
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
