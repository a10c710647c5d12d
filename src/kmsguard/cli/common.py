"""What every command shares: exit codes, error reporting, AWS options, progress, output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from kmsguard.aws.errors import AwsUnavailable
from kmsguard.aws.options import AwsOptions
from kmsguard.config import ScanConfig
from kmsguard.config_file import ConfigFileError, load_config
from kmsguard.model.snapshot import Snapshot
from kmsguard.snapshot_io import SnapshotFileError, load_snapshot

# Exit codes (DESIGN.md): 0 nothing failing at/above --fail-on, 1 failing findings,
# 2 usage or input error, 3 could not reach or read AWS.
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_AWS = 0, 1, 2, 3

err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error naming what is wrong and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def split_csv(values: list[str] | None) -> list[str] | None:
    """Accept both repeated options and comma-separated lists: -r a -r b,c -> [a, b, c]."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def aws_options(
    profile: str | None,
    regions: list[str] | None,
    endpoint_url: str | None,
    org: bool,
    role_name: str,
    accounts: list[str] | None,
) -> AwsOptions:
    accts = split_csv(accounts)
    for a in accts or ():
        if not (a.isdigit() and len(a) == 12):
            fail(f"--accounts: {a!r} is not a 12-digit AWS account id")
    return AwsOptions(
        profile=profile,
        regions=split_csv(regions),
        endpoint_url=endpoint_url,
        org=org,
        role_name=role_name,
        accounts=accts,
    )


def write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")


class BarProgress:
    """collect.progress.Progress on a rich progress bar (one row per kind of work)."""

    def __init__(self, rich: RichProgress) -> None:
        self._rich = rich
        self._tasks: dict[str, TaskID] = {}

    def _task(self, kind: str) -> TaskID:
        if kind not in self._tasks:
            self._tasks[kind] = self._rich.add_task(kind, total=0)
        return self._tasks[kind]

    def add_total(self, kind: str, n: int) -> None:
        task = self._task(kind)
        total = self._rich.tasks[task].total or 0
        self._rich.update(task, total=total + n)

    def advance(self, kind: str, n: int = 1) -> None:
        self._rich.advance(self._task(kind), n)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[BarProgress | None]:
    """A progress bar on stderr when it is a terminal; None otherwise."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    with RichProgress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as rich:
        yield BarProgress(rich)


def collect_live(options: AwsOptions, quiet: bool) -> Snapshot:
    """Collect a Snapshot from AWS with a progress bar on a terminal; exit 3 when AWS cannot be reached."""
    from kmsguard.collect.snapshot import collect_snapshot

    try:
        with progress_bar(not quiet) as bar:
            return collect_snapshot(options, bar)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)


def snapshot_file(path: Path) -> Snapshot:
    """A saved snapshot, or exit 2 naming the file and what is wrong with it."""
    try:
        return load_snapshot(path)
    except SnapshotFileError as e:
        fail(str(e))


def scan_config(
    path: Path | None,
    trusted_accounts: list[str] | None = None,
    trusted_org_id: list[str] | None = None,
    rotation_max_days: int | None = None,
) -> ScanConfig:
    """kmsguard.yaml (or defaults) with the command-line overrides every judging command accepts."""
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
