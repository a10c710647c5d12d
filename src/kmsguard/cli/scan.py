"""`kmsguard scan`: collect (or load) a Snapshot, judge it, render the findings."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kmsguard.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    aws_options,
    collect_live,
    fail,
    scan_config,
    snapshot_file,
    split_csv,
    write_output,
)
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding, Severity
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge
from kmsguard.report import FORMATS, render
from kmsguard.snapshot_io import save_snapshot
from kmsguard.trail.usage import TrailUsage

FAIL_ON = ["info", "low", "medium", "high", "critical", "never"]


def scan(
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(
        None, "--region", "-r", help="Region to scan (repeatable). Default: every region enabled for the account."
    ),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated regions (same as repeated --region)."),
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
    snapshot_out: Path | None = typer.Option(None, "--snapshot-out", help="Also save the collected snapshot here."),
    from_snapshot: Path | None = typer.Option(
        None, "--from-snapshot", help="Judge a saved snapshot instead of calling AWS."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help=f"Output format: table, {', '.join(FORMATS)}. Default: table on a terminal, else json.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report here instead of stdout."),
    fail_on: str = typer.Option(
        "low", "--fail-on", help="Exit 1 when a failing finding is at or above this severity (or 'never')."
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Scan KMS keys, key policies, the audit set-up and the resources that use KMS."""
    fmt = _resolve_format(fmt, output)
    if fail_on not in FAIL_ON:
        fail(f"--fail-on: {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    cfg = scan_config(config, trusted_accounts, trusted_org_id, rotation_max_days)
    region_list = (region or []) + ([regions] if regions else [])

    if from_snapshot is not None:
        if org or accounts or region_list or endpoint_url or profile:
            fail("--from-snapshot judges a saved snapshot: drop the AWS options (--profile, --region, --org ...)")
        snapshot = snapshot_file(from_snapshot)
    else:
        snapshot = collect_live(aws_options(profile, region_list, endpoint_url, org, role_name, accounts), quiet)
    if snapshot_out is not None:
        try:
            save_snapshot(snapshot, snapshot_out)
        except OSError as e:
            fail(f"cannot write snapshot {snapshot_out}: {e.strerror or e}")

    extra, usage = trail_analysis(trail, snapshot, cfg, profile, region_list, endpoint_url, role_name)
    try:
        result = judge(snapshot, cfg, split_csv(checks), split_csv(skip_checks), extra=extra)
    except ValueError as e:
        fail(str(e))
    result.trail_usage = usage
    emit(result, fmt, output)
    raise typer.Exit(exit_code(result, fail_on))


def trail_analysis(
    sources: list[str] | None,
    snapshot: Snapshot,
    cfg: ScanConfig,
    profile: str | None,
    regions: list[str],
    endpoint_url: str | None,
    role_name: str,
) -> tuple[list[Finding], TrailUsage | None]:
    """`--trail` (scan and report): the CloudTrail detections joined with this scan's snapshot, and the key
    usage summary the result keeps; nothing without sources."""
    if not sources:
        return [], None
    from kmsguard.trail.analyze import TrailOptions
    from kmsguard.trail.usage import analyze_usage

    for source in sources:
        if not source.startswith("s3://") and not Path(source).exists():
            fail(f"--trail: {source}: no such file or directory")
    # S3 sources are read with the scan's credentials and endpoint (one bucket: never --org).
    trail_aws = aws_options(profile, regions, endpoint_url, False, role_name, None)
    try:
        return analyze_usage(sources, snapshot, TrailOptions(config=cfg, aws=trail_aws))
    except (OSError, ValueError) as e:
        fail(f"--trail: {e}")


def _resolve_format(fmt: str | None, output: Path | None) -> str:
    if fmt is None:
        return "table" if output is None and sys.stdout.isatty() else "json"
    if fmt != "table" and fmt not in FORMATS:
        fail(f"--format: {fmt!r} is not one of table, {', '.join(FORMATS)}")
    return fmt


def emit(result: ScanResult, fmt: str, output: Path | None) -> None:
    if fmt == "table":
        from kmsguard.report.table import print_table

        print_table(result)
        return
    write_output(render(result, fmt), output)


def exit_code(result: ScanResult, fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_OK
    threshold = Severity(fail_on).rank
    worst = result.worst_failing()
    return EXIT_FINDINGS if worst is not None and worst.rank >= threshold else EXIT_OK


__all__ = ["EXIT_USAGE", "emit", "exit_code", "scan", "trail_analysis"]
