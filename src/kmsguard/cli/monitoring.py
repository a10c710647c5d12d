"""`kmsguard monitoring setup`: plan (default) or apply the audit set-up the scan's audit checks look for."""

from __future__ import annotations

import json
import sys

import typer

from kmsguard.aws.errors import AWS_CALL_ERRORS, AwsUnavailable, error_code
from kmsguard.cli.common import (
    EXIT_AWS,
    EXIT_FINDINGS,
    EXIT_OK,
    MAX_ATTEMPTS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    check_regions,
    err_console,
    fail,
)

app = typer.Typer(help="Set up the monitoring the audit checks look for.", no_args_is_help=True)


@app.command("setup")
def setup(
    sns_topic: str | None = typer.Option(None, "--sns-topic", help="SNS topic ARN the alarms notify."),
    apply: bool = typer.Option(False, "--apply", help="Make the changes (after a confirmation)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Region (repeatable)."),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated regions (default: all enabled)."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", envvar="KMSGUARD_ENDPOINT_URL", help="Send every AWS call to this endpoint."
    ),
    org: bool = typer.Option(False, "--org", help="Every ACTIVE account of the AWS Organization."),
    role_name: str = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed in each account."),
    accounts: list[str] | None = typer.Option(None, "--accounts", help="Only these account ids (comma-separated)."),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Metric filters, alarms, Config rules and the KMS dashboard, per account and region."""
    from kmsguard.aws.org import plan_accounts
    from kmsguard.aws.regions import resolve_regions
    from kmsguard.aws.session import SessionFactory
    from kmsguard.monitoring_setup.setup import RegionPlan, apply_steps, plan_regions

    if fmt not in ("text", "json"):
        fail(f"--format: {fmt!r} is not one of text, json")
    if sns_topic is not None and not (sns_topic.startswith("arn:") and ":sns:" in sns_topic):
        fail(f"--sns-topic: {sns_topic!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    if apply and not yes and not sys.stdin.isatty():
        fail("--apply changes AWS and needs a confirmation: run on a terminal or pass --yes")
    region_list = (region or []) + ([regions] if regions else [])
    options = aws_options(
        profile, region_list, endpoint_url, org, role_name, accounts, timeout=timeout, max_attempts=max_attempts
    )
    check_regions(options)
    try:
        factory = SessionFactory(options)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    caller = factory.caller
    acct_plan = plan_accounts(caller.global_client("organizations"), caller.account_id, options.org, options.accounts)
    plans: list[RegionPlan] = []
    problems: list[str] = []
    for ap in acct_plan.accounts:
        try:
            session = factory.assume(ap.account_id, options.role_name)
            ec2 = session.client("ec2", factory.home_region)
            planned = resolve_regions(ec2, options.regions, factory.home_region, options.excluded_regions)
            plans.extend(plan_regions(session, planned.regions, sns_topic))
        except AWS_CALL_ERRORS as e:
            code, message = error_code(e)
            problems.append(f"{ap.account_id}: {code}: {message}")
    steps = [s for p in plans for s in p.steps]
    if fmt == "json" and not apply:
        doc = {"regions": [p.to_dict() for p in plans], "errors": problems}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif fmt == "text":
        for p in plans:
            sys.stdout.write(f"{p.account} {p.region}:\n")
            if p.refused:
                sys.stdout.write(f"  refused: {p.refused}\n")
            for s in p.steps:
                sys.stdout.write(f"  {s.call} {s.name} (in {s.region})\n")
            for n in p.notes:
                sys.stdout.write(f"  note: {n}\n")
            if not p.steps and not p.refused:
                sys.stdout.write("  already set up\n")
        for pr in problems:
            sys.stdout.write(f"error: {pr}\n")
    if not apply or not steps:
        raise typer.Exit(EXIT_FINDINGS if problems else EXIT_OK)
    if not yes and not typer.confirm(f"Make these {len(steps)} change(s)?", err=True):
        fail("not confirmed; nothing changed")
    results = apply_steps(plans)
    failed = [r for r in results if not r.ok]
    if fmt == "json":
        doc = {
            "regions": [p.to_dict() for p in plans],
            "results": [r.step.to_dict() | {"ok": r.ok, "message": r.message} for r in results],
            "errors": problems,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for r in failed:
            sys.stdout.write(f"failed: {r.step.call} {r.step.name} in {r.step.region}: {r.message}\n")
        sys.stdout.write(f"{len(results) - len(failed)} done, {len(failed)} failed\n")
    if failed or problems:
        err_console.print(f"{len(failed)} step(s) failed")
    raise typer.Exit(EXIT_FINDINGS if failed or problems else EXIT_OK)
