"""`kmsguard report`: the evidence for one compliance framework, per control, as HTML, PDF, Markdown, CSV or JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kmsguard.aws.options import AwsOptions
from kmsguard.cli import source as src
from kmsguard.cli.common import (
    ALLOW_ERRORS_HELP,
    CONCURRENCY_OPTION,
    DEADLINE_OPTION,
    MAX_ATTEMPTS_OPTION,
    QUOTAS_OPTION,
    TIMEOUT_OPTION,
    check_fail_on,
    cut_short,
    exit_code,
    fail,
    write_output,
)
from kmsguard.compliance.assess import FrameworkReport, assess
from kmsguard.compliance.mapping import FRAMEWORKS
from kmsguard.report.framework_report import (
    REPORT_FORMATS,
    render_report_csv,
    render_report_json,
    render_report_markdown,
)


def report(
    framework: str = typer.Option(..., "--framework", help=f"One of {', '.join(FRAMEWORKS)}."),
    fmt: str = typer.Option("html", "--format", "-f", help=f"One of {', '.join(REPORT_FORMATS)}."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file or s3://bucket/key instead of stdout."
    ),
    fail_on: str = typer.Option(
        "never", "--fail-on", help="Exit 1 when a failing finding is at or above this severity (default 'never')."
    ),
    allow_errors: bool = typer.Option(False, "--allow-errors", help=ALLOW_ERRORS_HELP),
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
    trail: list[str] | None = src.TRAIL,
    quiet: bool = src.QUIET,
) -> None:
    """Compliance evidence per control: status, checks, resources, what is wrong, the fix, the evidence."""
    if framework not in FRAMEWORKS:
        fail(f"--framework: {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    if fmt not in REPORT_FORMATS:
        fail(f"--format: {fmt!r} is not one of {', '.join(REPORT_FORMATS)}")
    check_fail_on(fail_on)
    if fmt == "pdf" and output is None and sys.stdout.isatty():
        fail("--format pdf is binary: give --output FILE (or redirect stdout)")
    if fmt == "pdf":
        from kmsguard.report.pdf import PdfUnavailable, find_chromium

        try:
            find_chromium()  # before scanning: do not make the user wait for a scan that cannot be printed
        except PdfUnavailable as e:
            fail(str(e))
    region_list = (region or []) + ([regions] if regions else [])
    source = src.Source(
        profile,
        region_list,
        endpoint_url,
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
    snapshot, result = src.judged(
        source, config, checks, skip_checks, trusted_accounts, trusted_org_id, rotation_max_days, trail
    )
    rep = assess(result, framework, snapshot)
    write_output(_render(rep, fmt), output, AwsOptions(profile=profile, endpoint_url=endpoint_url))
    raise typer.Exit(cut_short(source.options, exit_code(result, fail_on, allow_errors)))


def _render(rep: FrameworkReport, fmt: str) -> str | bytes:
    if fmt in ("html", "pdf"):
        from kmsguard.report.html import render_report_html

        html = render_report_html(rep)
        if fmt == "html":
            return html
        from kmsguard.report.pdf import PdfUnavailable, html_to_pdf

        try:
            return html_to_pdf(html)
        except PdfUnavailable as e:
            fail(str(e))
    render = {"markdown": render_report_markdown, "csv": render_report_csv, "json": render_report_json}[fmt]
    return render(rep)
