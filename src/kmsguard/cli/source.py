"""What `report` and `export` share with `scan`: the options that say where findings come from.

Either ``--from-snapshot FILE`` or the scan's live options (profile, regions, endpoint, org, accounts), plus
the judging options (config file, check selection, trusted accounts, rotation limit). The handling itself is
``kmsguard.cli.common``'s, as scan's is: these commands only declare the same options and hand them over, so a flag
means the same thing in every command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from kmsguard.aws.options import AwsOptions
from kmsguard.cli.common import (
    FROM_SNAPSHOT_AWS,
    aws_options,
    collect_live,
    fail,
    known_checks,
    scan_config,
    snapshot_file,
    split_csv,
    typed_endpoint,
)
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge

PROFILE = typer.Option(None, "--profile", help="AWS profile from the shared config.")
REGION = typer.Option(None, "--region", "-r", help="Region to scan (repeatable). Default: every enabled region.")
REGIONS = typer.Option(None, "--regions", help="Comma-separated regions (same as repeated --region).")
EXCLUDED = typer.Option(
    None, "--excluded-regions", "--excluded-region", help="Never scan these regions (comma-separated or repeated)."
)
ENDPOINT = typer.Option(
    None, "--endpoint-url", envvar="KMSGUARD_ENDPOINT_URL", help="Send every AWS call to this endpoint (an emulator)."
)
ORG = typer.Option(False, "--org", help="Scan every ACTIVE account of the AWS Organization.")
ROLE = typer.Option("OrganizationAccountAccessRole", "--role-name", help="Role assumed in each member account.")
ACCOUNTS = typer.Option(None, "--accounts", help="Only these account ids (comma-separated).")
FROM_SNAPSHOT = typer.Option(None, "--from-snapshot", help="Judge a saved snapshot instead of calling AWS.")
CHECKS = typer.Option(None, "--checks", help="Run only these check ids (comma-separated).")
SKIP = typer.Option(None, "--skip-checks", help="Skip these check ids.")
CONFIG = typer.Option(None, "--config", help="kmsguard.yaml (default: ./kmsguard.yaml if present).")
TRUSTED = typer.Option(None, "--trusted-accounts", help="Accounts whose principals are not external (comma-separated).")
TRUSTED_ORG = typer.Option(None, "--trusted-org-id", help="Organizations (o-...) whose principals are not external.")
ROTATION = typer.Option(None, "--rotation-max-days", help="Longest acceptable rotation period (default 365).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
TRAIL = typer.Option(
    None, "--trail", help="CloudTrail logs to analyse too (file, directory or s3://bucket/prefix; repeatable)."
)


@dataclass
class Source:
    profile: str | None
    regions: list[str]
    endpoint_url: str | None
    org: bool
    role_name: str
    accounts: list[str] | None
    from_snapshot: Path | None
    quiet: bool
    excluded_regions: list[str] | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    deadline: str | None = None
    concurrency: int | None = None
    quotas: str | None = None
    # The options a live snapshot was read with (None from a file): the command's exit code reads their deadline.
    options: AwsOptions | None = field(default=None, init=False)

    def snapshot(self) -> Snapshot:
        if self.from_snapshot is not None:
            # As in scan: an endpoint exported in the environment was not asked for here.
            endpoint = typed_endpoint(self.endpoint_url)
            calling = (self.timeout, self.max_attempts, self.deadline, self.concurrency, self.quotas) != (None,) * 5
            where = self.org or self.accounts or self.regions or self.excluded_regions or endpoint or self.profile
            if where or calling:
                fail(FROM_SNAPSHOT_AWS)
            return snapshot_file(self.from_snapshot)
        self.options = aws_options(
            self.profile,
            self.regions,
            self.endpoint_url,
            self.org,
            self.role_name,
            self.accounts,
            self.excluded_regions,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            deadline=self.deadline,
            concurrency=self.concurrency,
            quotas=self.quotas,
        )
        return collect_live(self.options, self.quiet)


def judged(
    source: Source,
    config: Path | None,
    checks: list[str] | None,
    skip_checks: list[str] | None,
    trusted_accounts: list[str] | None,
    trusted_org_id: list[str] | None,
    rotation_max_days: int | None,
    trail: list[str] | None = None,
) -> tuple[Snapshot, ScanResult]:
    """The snapshot and its judged result; with ``trail``, the CloudTrail facts judged with it and the key usage
    kept, exactly as `scan --trail` does."""
    from kmsguard.cli.scan import trail_analysis

    cfg = scan_config(config, trusted_accounts, trusted_org_id, rotation_max_days)
    known_checks(checks, skip_checks)
    snapshot = source.snapshot()
    usage = trail_analysis(trail, snapshot, cfg, source.profile, source.regions, source.endpoint_url, source.role_name)
    try:
        result = judge(snapshot, cfg, split_csv(checks), split_csv(skip_checks))
    except ValueError as e:
        fail(str(e))
    result.trail_usage = usage
    return snapshot, result
