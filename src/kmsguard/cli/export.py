"""`kmsguard export securityhub`: send the findings to AWS Security Hub with BatchImportFindings.

Findings go in batches of 100 (the API's limit) as ASFF (report/asff.py), into the Security Hub of
``--securityhub-region`` (default: the one ``--region`` given, else the session's region). ``--region``/``-r`` is
the region to scan, as in every other command; with ``--from-snapshot`` nothing is scanned and one ``--region``
only names the Security Hub region, as export's ``--region`` always did.
Every rejected finding is reported with its id and Security Hub's error; the command exits 1 when any was
rejected, 3 when Security Hub cannot be reached, 0 when all were imported.
PASS findings are sent only with ``--include-passed`` (they resolve earlier imports of the same finding).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from kmsguard.aws.errors import AWS_CALL_ERRORS, AwsUnavailable
from kmsguard.cli import source as src
from kmsguard.cli.common import (
    CONCURRENCY_OPTION,
    DEADLINE_OPTION,
    EXIT_AWS,
    EXIT_FINDINGS,
    EXIT_OK,
    MAX_ATTEMPTS_OPTION,
    QUOTAS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    cut_short,
    err_console,
    fail,
    split_csv,
)
from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report.asff import asff_findings

BATCH = 100

app = typer.Typer(help="Send findings to other tools.", no_args_is_help=True)


@dataclass
class ImportOutcome:
    sent: int = 0
    imported: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)


def batches(items: list[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def import_findings(client: Any, findings: list[dict[str, Any]]) -> ImportOutcome:
    """BatchImportFindings in batches of 100, adding up SuccessCount, FailedCount and FailedFindings."""
    out = ImportOutcome()
    for batch in batches(findings):
        resp = client.batch_import_findings(Findings=batch)
        out.sent += len(batch)
        out.imported += int(resp.get("SuccessCount", 0))
        out.failed.extend(resp.get("FailedFindings", []))
        missing = int(resp.get("FailedCount", 0)) - len(resp.get("FailedFindings", []))
        if missing > 0:  # FailedCount without details: still count them as failed
            out.failed.extend({"Id": "?", "ErrorCode": "Unknown", "ErrorMessage": "no detail"} for _ in range(missing))
    return out


def to_send(result: ScanResult, region: str, include_passed: bool) -> list[dict[str, Any]]:
    keep = [f for f in result.sorted_findings() if include_passed or f.status is not Status.PASS]
    return asff_findings(result.model_copy(update={"findings": keep}), region)


@app.command("securityhub")
def securityhub(
    target_region: str | None = typer.Option(
        None,
        "--securityhub-region",
        help="Security Hub region to import into (default: the one --region scanned, else the session's region).",
    ),
    include_passed: bool = typer.Option(False, "--include-passed", help="Also send PASS findings (RESOLVED)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the ASFF findings instead of sending them."),
    profile: str | None = src.PROFILE,
    region: list[str] | None = src.REGION,
    regions: str | None = src.REGIONS,
    excluded_regions: list[str] | None = src.EXCLUDED,
    endpoint_url: str | None = src.ENDPOINT,
    org: bool = src.ORG,
    role_name: str = src.ROLE,
    accounts: list[str] | None = src.ACCOUNTS,
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    deadline: str | None = DEADLINE_OPTION,
    concurrency: int | None = CONCURRENCY_OPTION,
    quotas: str | None = QUOTAS_OPTION,
    from_snapshot: Path | None = src.FROM_SNAPSHOT,
    checks: list[str] | None = src.CHECKS,
    skip_checks: list[str] | None = src.SKIP,
    config: Path | None = src.CONFIG,
    trusted_accounts: list[str] | None = src.TRUSTED,
    trusted_org_id: list[str] | None = src.TRUSTED_ORG,
    rotation_max_days: int | None = src.ROTATION,
    quiet: bool = src.QUIET,
) -> None:
    """Scan (or load a snapshot), then import the findings into AWS Security Hub with BatchImportFindings."""
    import boto3

    region_list = (region or []) + ([regions] if regions else [])
    scanned = split_csv(region_list) or []
    # export's --region used to name the Security Hub region: one --region still imports there (backward
    # compatible), and with --from-snapshot, where nothing is scanned, that is all it names.
    if from_snapshot is not None and len(scanned) > 1:
        fail("--from-snapshot judges a saved snapshot: give one --region, or --securityhub-region, to import into")
    scan_regions = region_list if from_snapshot is None else []
    # --endpoint-url also addresses Security Hub, so it is allowed beside --from-snapshot here.
    scan_endpoint = None if from_snapshot is not None else endpoint_url
    source = src.Source(
        profile,
        scan_regions,
        scan_endpoint,
        org,
        role_name,
        accounts,
        from_snapshot,
        quiet,
        excluded_regions,
        timeout=timeout,
        max_attempts=max_attempts,
        deadline=deadline,
        concurrency=concurrency,
        quotas=quotas,
    )
    _, result = src.judged(source, config, checks, skip_checks, trusted_accounts, trusted_org_id, rotation_max_days)
    session = boto3.Session(profile_name=profile) if profile else boto3.Session()
    home = target_region or (scanned[0] if len(scanned) == 1 else None) or session.region_name or "us-east-1"
    findings = to_send(result, home, include_passed)
    if dry_run:
        import json

        typer.echo(json.dumps(findings, indent=2, default=str))
        raise typer.Exit(cut_short(source.options, EXIT_OK))
    from kmsguard.aws.session import SessionFactory

    # Through the session factory, as every AWS call: --timeout and --max-attempts bound Security Hub too.
    hub = aws_options(profile, [home], endpoint_url, False, "", None, timeout=timeout, max_attempts=max_attempts)
    try:
        outcome = import_findings(SessionFactory(hub).caller.client("securityhub", home), findings)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    except AWS_CALL_ERRORS as e:
        fail(f"Security Hub in {home}: {e}", EXIT_AWS)
    for f in outcome.failed:
        err_console.print(
            f"rejected: {f.get('Id')}: {f.get('ErrorCode')}: {f.get('ErrorMessage')}", highlight=False, soft_wrap=True
        )
    typer.echo(
        f"Security Hub ({home}): sent {outcome.sent} finding(s) in {-(-outcome.sent // BATCH)} batch(es); "
        f"imported {outcome.imported}, failed {len(outcome.failed)}"
    )
    raise typer.Exit(cut_short(source.options, EXIT_FINDINGS if outcome.failed else EXIT_OK))
