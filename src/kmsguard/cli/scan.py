"""`kmsguard scan`: collect (or load) a Snapshot, judge it, render the findings."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kmsguard.aws.errors import AwsUnavailable
from kmsguard.cli.common import (
    EXIT_AWS,
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    aws_options,
    fail,
    progress_bar,
    split_csv,
    write_output,
)
from kmsguard.config import ScanConfig
from kmsguard.config_file import ConfigFileError, load_config
from kmsguard.model.finding import Severity
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge
from kmsguard.report import FORMATS, render
from kmsguard.snapshot_io import SnapshotFileError, load_snapshot, save_snapshot

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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Scan KMS keys, key policies, the audit set-up and the resources that use KMS."""
    fmt = _resolve_format(fmt, output)
    if fail_on not in FAIL_ON:
        fail(f"--fail-on: {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    cfg = _config(config, trusted_accounts, trusted_org_id, rotation_max_days)
    region_list = (region or []) + ([regions] if regions else [])

    if from_snapshot is not None:
        if org or accounts or region_list or endpoint_url or profile:
            fail("--from-snapshot judges a saved snapshot: drop the AWS options (--profile, --region, --org ...)")
        try:
            snapshot = load_snapshot(from_snapshot)
        except SnapshotFileError as e:
            fail(str(e))
    else:
        snapshot = _collect(profile, region_list, endpoint_url, org, role_name, accounts, quiet)
    if snapshot_out is not None:
        try:
            save_snapshot(snapshot, snapshot_out)
        except OSError as e:
            fail(f"cannot write snapshot {snapshot_out}: {e.strerror or e}")

    try:
        result = judge(snapshot, cfg, split_csv(checks), split_csv(skip_checks))
    except ValueError as e:
        fail(str(e))
    emit(result, fmt, output)
    raise typer.Exit(exit_code(result, fail_on))


def _resolve_format(fmt: str | None, output: Path | None) -> str:
    if fmt is None:
        return "table" if output is None and sys.stdout.isatty() else "json"
    if fmt != "table" and fmt not in FORMATS:
        fail(f"--format: {fmt!r} is not one of table, {', '.join(FORMATS)}")
    return fmt


def _config(
    path: Path | None,
    trusted_accounts: list[str] | None,
    trusted_org_id: list[str] | None,
    rotation_max_days: int | None,
) -> ScanConfig:
    try:
        cfg = load_config(path)
    except ConfigFileError as e:
        fail(str(e))
    for acct in split_csv(trusted_accounts) or ():
        if not (acct.isdigit() and len(acct) == 12):
            fail(f"--trusted-accounts: {acct!r} is not a 12-digit AWS account id")
        cfg.trusted_accounts.append(acct)
    for org_id in split_csv(trusted_org_id) or ():
        if not org_id.startswith("o-"):
            fail(f"--trusted-org-id: {org_id!r} is not an Organization id (o-...)")
        cfg.trusted_org_ids.append(org_id)
    if rotation_max_days is not None:
        if not 90 <= rotation_max_days <= 2560:
            fail("--rotation-max-days must be between 90 and 2560 (the range KMS accepts)")
        cfg.max_rotation_days = rotation_max_days
    return cfg


def _collect(
    profile: str | None,
    regions: list[str],
    endpoint_url: str | None,
    org: bool,
    role_name: str,
    accounts: list[str] | None,
    quiet: bool,
) -> Snapshot:
    from kmsguard.collect.snapshot import collect_snapshot

    options = aws_options(profile, regions, endpoint_url, org, role_name, accounts)
    try:
        with progress_bar(not quiet) as bar:
            return collect_snapshot(options, bar)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)


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


__all__ = ["EXIT_USAGE", "emit", "exit_code", "scan"]
