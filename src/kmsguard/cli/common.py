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

from kmsguard.aws.options import AwsOptions

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
