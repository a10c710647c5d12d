"""`kmsguard provision key`: a customer managed key to the guide's standard, or its CloudFormation/Terraform."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import typer

from kmsguard.aws.errors import AWS_CALL_ERRORS, AwsUnavailable, error_code
from kmsguard.aws.options import AwsOptions
from kmsguard.cli.common import (
    EXIT_AWS,
    EXIT_FINDINGS,
    EXIT_OK,
    MAX_ATTEMPTS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    fail,
    write_output,
)
from kmsguard.cli.fix import parse_context, principal_arns
from kmsguard.config import GUIDE_TAGS, ROTATION_DAYS_MAX, ROTATION_DAYS_MIN
from kmsguard.policy.principals import account_of

app = typer.Typer(help="Create KMS keys to standard.", no_args_is_help=True)


@app.command("key")
def key(
    alias: str = typer.Option(..., "--alias", help="Alias, e.g. alias/production-encryption-2026."),
    admin: list[str] = typer.Option(..., "--admin", help="Administrator role ARN (repeatable)."),
    user: list[str] | None = typer.Option(None, "--user", help="User role ARN (repeatable)."),
    environment: str | None = typer.Option(None, "--environment", help="Environment tag, e.g. Production."),
    data_classification: str | None = typer.Option(
        None, "--data-classification", help="DataClassification tag, e.g. CUI."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Owner tag, e.g. security@example.com."),
    cost_center: str | None = typer.Option(None, "--cost-center", help="CostCenter tag."),
    allow_untagged: bool = typer.Option(
        False, "--allow-untagged", help="Create the key without the guide's four tags (not to standard)."
    ),
    description: str | None = typer.Option(
        None, "--description", help="Key description (default: '<alias name> encryption key')."
    ),
    rotation_days: int = typer.Option(365, "--rotation-days", help="90-2560."),
    multi_region: bool = typer.Option(False, "--multi-region", help="A multi-Region key (default single-region)."),
    require_context: list[str] | None = typer.Option(None, "--require-context", help="K=V every use must send."),
    via_service: list[str] | None = typer.Option(None, "--via-service", help="Users only through this service."),
    region: str | None = typer.Option(None, "--region", "-r", help="Region of the key."),
    account: str | None = typer.Option(
        None, "--account", help="Account of the key (for --output; default: --admin's)."
    ),
    output: str | None = typer.Option(None, "--output", help="cloudformation or terraform: write a template instead."),
    output_file: Path | None = typer.Option(
        None, "--output-file", "-o", help="Where to write the template (a file or s3://bucket/key)."
    ),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile from the shared config."),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", envvar="KMSGUARD_ENDPOINT_URL", help="Send every AWS call to this endpoint."
    ),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
) -> None:
    """Create (and verify) a symmetric customer managed key with a least-privilege policy, or its template."""
    from kmsguard.provision.spec import KeySpec

    if not alias.startswith("alias/") or alias.startswith("alias/aws/") or len(alias) <= len("alias/"):
        fail(f"--alias: {alias!r} must look like alias/NAME (and alias/aws/ is reserved for AWS)")
    if not ROTATION_DAYS_MIN <= rotation_days <= ROTATION_DAYS_MAX:
        fail(f"--rotation-days must be between {ROTATION_DAYS_MIN} and {ROTATION_DAYS_MAX}")
    if output not in (None, "cloudformation", "terraform"):
        fail(f"--output: {output!r} is not one of cloudformation, terraform")
    admins, users = principal_arns(admin, "--admin"), principal_arns(user, "--user")
    if not admins:
        fail("--admin: give at least one administrator role or user ARN")
    if account is not None and not (account.isdigit() and len(account) == 12):
        fail(f"--account: {account!r} is not a 12-digit AWS account id")
    spec = KeySpec(
        account=account or account_of(admins[0]) or "",
        alias=alias,
        admins=admins,
        users=users,
        environment=environment,
        data_classification=data_classification,
        owner=owner,
        cost_center=cost_center,
        description=description,
        rotation_days=rotation_days,
        multi_region=multi_region,
        require_context=parse_context(require_context),
        via_services=list(via_service or []),
    )
    try:
        spec.policy()
    except ValueError as e:
        fail(str(e))
    # Last of the input checks, so a bad --admin or --alias is named first.
    given = {
        "Environment": environment,
        "DataClassification": data_classification,
        "Owner": owner,
        "CostCenter": cost_center,
    }
    missing = [tag for tag in GUIDE_TAGS if not (given[tag] or "").strip()]
    if missing and not allow_untagged:
        flags = ", ".join(f"--{re.sub(r'(?<!^)(?=[A-Z])', '-', tag).lower()}" for tag in missing)
        fail(
            f"the guide's tagging standard needs {', '.join(missing)}: give {flags} "
            "(or --allow-untagged to create a key that key_missing_tags will flag)"
        )
    if output is not None:
        from kmsguard.provision.templates import cloudformation, terraform

        template = cloudformation(spec) if output == "cloudformation" else terraform(spec)
        write_output(template, output_file, AwsOptions(profile=profile, endpoint_url=endpoint_url))
        raise typer.Exit(EXIT_OK)
    where = [region] if region else None
    options = aws_options(profile, where, endpoint_url, False, "", None, timeout=timeout, max_attempts=max_attempts)
    _create(spec, options, region)


def _create(spec: object, options: AwsOptions, region: str | None) -> None:
    from kmsguard.aws.session import SessionFactory
    from kmsguard.provision.key import provision
    from kmsguard.provision.spec import KeySpec

    assert isinstance(spec, KeySpec)
    try:
        factory = SessionFactory(options)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    if factory.identity.account_id != spec.account:
        fail(f"--admin is in account {spec.account} but the credentials are for {factory.identity.account_id}")
    try:
        result = provision(factory.caller, region or factory.home_region, spec)
    except AWS_CALL_ERRORS as e:
        code, message = error_code(e)
        fail(f"{code}: {message}", EXIT_FINDINGS)
    sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    bad = result.differences or not all(result.checks.values())
    raise typer.Exit(EXIT_FINDINGS if bad else EXIT_OK)
