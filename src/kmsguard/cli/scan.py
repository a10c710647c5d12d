"""`kmsguard scan`: collect (or load) a Snapshot, judge it, render the findings."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kmsguard.aws.options import AwsOptions
from kmsguard.cli.common import (
    ALLOW_ERRORS_HELP,
    CONCURRENCY_OPTION,
    DEADLINE_OPTION,
    EXIT_USAGE,
    FAIL_ON,
    FROM_SNAPSHOT_AWS,
    MAX_ATTEMPTS_OPTION,
    QUOTAS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    check_fail_on,
    check_format,
    collect_live,
    cut_short,
    exit_code,
    fail,
    kept,
    known_checks,
    s3_url,
    scan_config,
    severities,
    snapshot_file,
    split_csv,
    statuses,
    typed_endpoint,
    write_output,
    write_report,
)
from kmsguard.cli.trail import UNUSED_DAYS
from kmsguard.config import ScanConfig
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.model.usage import TrailUsage
from kmsguard.pipeline import judge_stream, scanned
from kmsguard.report.registry import CHOICES
from kmsguard.snapshot_io import save_snapshot, snapshot_bytes
from kmsguard.spool import FindingSpool, SpooledResult


def scan(
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(
        None, "--region", "-r", help="Region to scan (repeatable). Default: every region enabled for the account."
    ),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated regions (same as repeated --region)."),
    excluded_regions: list[str] | None = typer.Option(
        None, "--excluded-regions", "--excluded-region", help="Never scan these regions (comma-separated or repeated)."
    ),
    endpoint_url: str | None = typer.Option(
        None,
        "--endpoint-url",
        envvar="KMSGUARD_ENDPOINT_URL",
        help="Send every AWS call to this endpoint (an emulator).",
    ),
    org: bool = typer.Option(False, "--org", help="Scan every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option(
        "OrganizationAccountAccessRole", "--role-name", help="Role assumed in each member account."
    ),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids (comma-separated)."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    deadline: str | None = DEADLINE_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    quotas: str | None = QUOTAS_OPTION,
    snapshot_out: Path | None = typer.Option(
        None, "--snapshot-out", help="Also save the collected snapshot to this file or s3://bucket/key."
    ),
    from_snapshot: Path | None = typer.Option(
        None, "--from-snapshot", help="Judge a saved snapshot instead of calling AWS."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help=f"Output format: {', '.join(CHOICES)}. Default: table on a terminal, else json.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file or s3://bucket/key instead of stdout."
    ),
    fail_on: str = typer.Option(
        "low", "--fail-on", help="Exit 1 when a failing finding is at or above this severity (or 'never')."
    ),
    allow_errors: bool = typer.Option(False, "--allow-errors", help=ALLOW_ERRORS_HELP),
    severity: list[str] | None = typer.Option(
        None, "--severity", help="Report only findings of these severities (critical, high, medium, low, info)."
    ),
    status: list[str] | None = typer.Option(
        None, "--status", help="Report only findings with these statuses (FAIL, PASS, ERROR, MUTED)."
    ),
    checks: list[str] | None = typer.Option(None, "--checks", help="Run only these check ids (comma-separated)."),
    skip_checks: list[str] | None = typer.Option(None, "--skip-checks", help="Skip these check ids."),
    config: Path | None = typer.Option(None, "--config", help="kmsguard.yaml (default: ./kmsguard.yaml if present)."),
    trusted_accounts: list[str] | None = typer.Option(
        None, "--trusted-accounts", help="Accounts whose principals are not external (comma-separated)."
    ),
    trusted_org_id: list[str] | None = typer.Option(
        None, "--trusted-org-id", help="Organizations (o-...) whose principals are not external."
    ),
    rotation_max_days: int | None = typer.Option(
        None, "--rotation-max-days", help="Longest acceptable rotation period (default 365)."
    ),
    trail: list[str] | None = typer.Option(
        None, "--trail", help="CloudTrail logs to analyse too (file, directory or s3://bucket/prefix; repeatable)."
    ),
    unused_days: int = UNUSED_DAYS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Scan KMS keys, key policies, the audit set-up and the resources that use KMS."""
    fmt = _resolve_format(fmt, output)
    check_fail_on(fail_on)
    sevs, stats = severities(severity), statuses(status)
    cfg = scan_config(config, trusted_accounts, trusted_org_id, rotation_max_days)
    known_checks(checks, skip_checks)
    region_list = (region or []) + ([regions] if regions else [])
    # Where reports and snapshots go on S3 (the scan's credentials; an exported KMSGUARD_ENDPOINT_URL too).
    out_aws = AwsOptions(profile=profile, endpoint_url=endpoint_url)

    options: AwsOptions | None = None
    if from_snapshot is not None:
        # An endpoint exported in the environment was not asked for here: only typed options are refused.
        calling = (timeout, max_attempts, deadline, concurrency, quotas) != (None,) * 5
        if org or accounts or region_list or excluded_regions or profile or typed_endpoint(endpoint_url) or calling:
            fail(FROM_SNAPSHOT_AWS)
        snapshot = snapshot_file(from_snapshot)
    else:
        options = aws_options(
            profile,
            region_list,
            endpoint_url,
            org,
            role_name,
            accounts,
            excluded_regions,
            timeout=timeout,
            max_attempts=max_attempts,
            deadline=deadline,
            concurrency=concurrency,
            quotas=quotas,
        )
        snapshot = collect_live(options, quiet)
    if snapshot_out is not None:
        _save_snapshot(snapshot, snapshot_out, out_aws)

    usage = trail_analysis(trail, snapshot, cfg, profile, region_list, endpoint_url, role_name, unused_days)
    # The findings go to a spool on disk as they are judged, not into memory: an Organization's scan judges
    # millions of them. The snapshot is let go before the report is written.
    with FindingSpool() as spool:
        try:
            findings = judge_stream(snapshot, cfg, split_csv(checks), split_csv(skip_checks))
            spool.extend(f for f in findings if kept(f, sevs, stats))
        except ValueError as e:
            fail(str(e))
        result = SpooledResult(spool, **scanned(snapshot), trail_usage=usage)
        del snapshot
        emit(result, fmt, output, out_aws)
        code = exit_code(result, fail_on, allow_errors)
    raise typer.Exit(cut_short(options, code))


def _save_snapshot(snapshot: Snapshot, path: Path, aws: AwsOptions) -> None:
    if s3_url(path) is not None:
        write_output(snapshot_bytes(snapshot, gzipped=path.suffix == ".gz"), path, aws)
        return
    try:
        save_snapshot(snapshot, path)
    except OSError as e:
        fail(f"cannot write snapshot {path}: {e.strerror or e}")


def trail_analysis(
    sources: list[str] | None,
    snapshot: Snapshot,
    cfg: ScanConfig,
    profile: str | None,
    regions: list[str],
    endpoint_url: str | None,
    role_name: str,
    unused_days: int | None = None,
) -> TrailUsage | None:
    """`--trail` (scan and report): the CloudTrail facts put on this scan's snapshot (``Snapshot.trail``: the trail
    family of checks judges them with the rest), and the key usage summary the result keeps; nothing without
    sources."""
    if not sources:
        return None
    from kmsguard.trail.analyze import TrailOptions
    from kmsguard.trail.detections import Params
    from kmsguard.trail.usage import analyze_usage

    for source in sources:
        if not source.startswith("s3://") and not Path(source).exists():
            fail(f"--trail: {source}: no such file or directory")
    # S3 sources are read with the scan's credentials and endpoint (one bucket: never --org).
    trail_aws = aws_options(profile, regions, endpoint_url, False, role_name, None)
    try:
        params = Params() if unused_days is None else Params(unused_days=unused_days)
        snapshot.trail, usage = analyze_usage(sources, snapshot, TrailOptions(config=cfg, aws=trail_aws, params=params))
        return usage
    except (OSError, ValueError) as e:
        fail(f"--trail: {e}")


def _resolve_format(fmt: str | None, output: Path | None) -> str:
    if fmt is None:
        return "table" if output is None and sys.stdout.isatty() else "json"
    check_format(fmt)
    return fmt


def emit(result: ScanResult | SpooledResult, fmt: str, output: Path | None, aws: AwsOptions | None = None) -> None:
    if fmt == "table":
        from kmsguard.report.table import print_table

        print_table(result if isinstance(result, ScanResult) else result.materialize())
        return
    write_report(result, fmt, output, aws)


__all__ = ["EXIT_USAGE", "FAIL_ON", "emit", "exit_code", "scan", "trail_analysis"]
