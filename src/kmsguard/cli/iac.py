"""`kmsguard iac scan` and `kmsguard iac diff`: templates judged before they are deployed (docs/iac.md)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.markup import escape

from kmsguard.cli.common import (
    ALLOW_ERRORS_HELP,
    EXIT_FINDINGS,
    EXIT_OK,
    check_fail_on,
    check_format,
    exit_code,
    fail,
    keep_findings,
    progress_bar,
    scan_config,
    severities,
    split_csv,
    statuses,
    write_output,
)
from kmsguard.cli.source import CHECKS, CONFIG, QUIET, SKIP, TRUSTED, TRUSTED_ORG
from kmsguard.iac.declared import IacContext, IacError, Unit
from kmsguard.report import render
from kmsguard.report.registry import CHOICES

if TYPE_CHECKING:
    from kmsguard.checks.registry import CheckSpec
    from kmsguard.config import ScanConfig
    from kmsguard.iac.diff import KeyChange
    from kmsguard.model.result import ScanResult

app = typer.Typer(no_args_is_help=True, help="Judge CloudFormation, CDK output and Terraform before deploying.")

ACCOUNT_OPTION = typer.Option(
    "123456789012",
    "--account",
    help="The account the templates deploy to: ${AWS::AccountId} and aws_caller_identity resolve to it, and "
    "principals of other accounts are external.",
)
REGION_OPTION = typer.Option("us-east-1", "--region", help="The Region the templates deploy to (sets the partition).")
ROOT_OPTION = typer.Option(
    None, "--root", help="Report file names relative to this directory (default: the current directory)."
)


def _context(account: str, region: str) -> IacContext:
    from kmsguard.arn import partition_of

    if not (account.isdigit() and len(account) == 12):
        fail(f"--account: {account!r} is not a 12-digit AWS account id")
    try:
        partition_of(region)
    except ValueError as e:
        fail(f"--region: {e}")
    return IacContext(account=account, region=region)


def load_units(
    paths: Sequence[Path], root: Path, ctx: IacContext, side: Literal["after", "before"] = "after", quiet: bool = True
) -> list[Unit]:
    """Every unit under ``paths``; exit 2 naming the file (and line) of the first one that cannot be read."""
    from kmsguard.iac.discover import load, sources

    try:
        found = sources(paths, root)
    except FileNotFoundError as e:
        fail(str(e))
    units: list[Unit] = []
    with progress_bar(not quiet) as bar:
        if bar is not None:
            bar.add_total("templates", len(found))
        for src in found:
            try:
                unit = load(src, ctx, side)
            except IacError as e:
                fail(str(e))
            if unit is not None:
                units.append(unit)
            if bar is not None:
                bar.advance("templates")
    return units


@app.command("scan")
def scan(
    paths: list[Path] = typer.Argument(..., help="Template files or directories (searched recursively)."),
    fmt: str = typer.Option("table", "--format", "-f", help=f"Output format: {', '.join(CHOICES)}."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    fail_on: str = typer.Option(
        "low", "--fail-on", help="Exit 1 when a failing finding is at or above this severity (or 'never')."
    ),
    allow_errors: bool = typer.Option(False, "--allow-errors", help=ALLOW_ERRORS_HELP),
    severity: list[str] | None = typer.Option(None, "--severity", help="Report only findings of these severities."),
    status: list[str] | None = typer.Option(
        None, "--status", help="Report only findings with these statuses (FAIL, PASS, ERROR, MUTED)."
    ),
    checks: list[str] | None = CHECKS,
    skip_checks: list[str] | None = SKIP,
    config: Path | None = CONFIG,
    trusted_accounts: list[str] | None = TRUSTED,
    trusted_org_id: list[str] | None = TRUSTED_ORG,
    account: str = ACCOUNT_OPTION,
    region: str = REGION_OPTION,
    root: Path | None = ROOT_OPTION,
    quiet: bool = QUIET,
    allow_no_templates: bool = typer.Option(
        False,
        "--allow-no-templates",
        help="Exit 0 when the paths hold no template (a pre-commit hook handed only other YAML or JSON files).",
    ),
) -> None:
    """Judge templates with the same checks and policy engine as `kmsguard scan`; each finding names its file
    and line."""
    from kmsguard.iac.judge import iac_checks

    check_format(fmt)
    check_fail_on(fail_on)
    sevs, stats = severities(severity), statuses(status)
    cfg = scan_config(config, trusted_accounts, trusted_org_id)
    ctx = _context(account, region)
    try:
        specs = iac_checks(split_csv(checks), split_csv(skip_checks))
    except ValueError as e:
        fail(str(e))
    judged = _judge(paths, root or Path.cwd(), ctx, cfg, specs, quiet, allow_no_templates)
    if judged is None:
        typer.echo("kmsguard iac: no template among the paths; nothing to judge", err=True)
        raise typer.Exit(EXIT_OK)
    result = keep_findings(judged, sevs, stats)
    if fmt == "table":
        from kmsguard.report.table import print_table

        print_table(result)
    else:
        write_output(render(result, fmt), output)
    raise typer.Exit(exit_code(result, fail_on, allow_errors))


def _judge(
    paths: Sequence[Path],
    root: Path,
    ctx: IacContext,
    cfg: ScanConfig,
    specs: Sequence[CheckSpec],
    quiet: bool,
    allow_none: bool = False,
) -> ScanResult | None:
    """Every template under ``paths`` loaded and judged (on every core for many); exit 2 naming the first file
    that cannot be read, or when there is no template at all (None then, with ``allow_none``)."""
    from kmsguard.iac.discover import sources
    from kmsguard.iac.judge import iac_result
    from kmsguard.iac.run import default_workers, judge_sources

    try:
        found = sources(paths, root)
    except FileNotFoundError as e:
        fail(str(e))
    at = datetime.now(UTC)
    with progress_bar(not quiet) as bar:
        if bar is not None:
            bar.add_total("templates", len(found))
        try:
            advance = functools.partial(bar.advance, "templates") if bar is not None else None
            judged = judge_sources(found, ctx, cfg, specs, workers=default_workers(len(found)), advance=advance)
        except IacError as e:
            fail(str(e))
    if not judged.units:
        if allow_none:
            return None
        fail(f"no CloudFormation template, Terraform file or plan under {', '.join(map(str, paths))}")
    return iac_result(judged.findings, ctx, cfg, at)


@app.command("diff")
def diff(
    paths: list[Path] = typer.Argument(
        None,
        help="OLD NEW (two files or directories); with --base, the paths to compare (default: .); one Terraform "
        "plan JSON alone compares its before and after.",
    ),
    base: str | None = typer.Option(None, "--base", help="Compare the working tree with this git revision."),
    fail_on_new_access: str | None = typer.Option(
        None, "--fail-on-new-access", help="Exit 1 when a change gives new access: public, external or any."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    config: Path | None = CONFIG,
    trusted_accounts: list[str] | None = TRUSTED,
    trusted_org_id: list[str] | None = TRUSTED_ORG,
    account: str = ACCOUNT_OPTION,
    region: str = REGION_OPTION,
) -> None:
    """For every key policy a change touches: the access gained and lost, public or new external access, and
    whether administration is locked out. Exit 1 for a lock-out, a policy that cannot be judged, or new access at
    --fail-on-new-access."""
    from kmsguard.iac.diff import FAIL_ON_NEW_ACCESS, diff_units

    from_diff = _diff_levels(fail_on_new_access, FAIL_ON_NEW_ACCESS)
    if fmt not in ("table", "json"):
        fail(f"--format: {fmt!r} is not one of table, json")
    cfg = scan_config(config, trusted_accounts, trusted_org_id)
    ctx = _context(account, region)
    paths = list(paths or [])
    with _sides(paths, base, ctx) as (old, new, paired), progress_bar(True) as bar:

        def progress(done: int, total: int) -> None:
            if bar is not None:
                if done == 1:
                    bar.add_total("keys", total)
                bar.advance("keys")

        changes = diff_units(
            old,
            new,
            ctx,
            paired=paired,
            trusted_accounts=cfg.trusted_accounts,
            trusted_org_ids=cfg.trusted_org_ids,
            progress=progress,
        )
    data = {"changes": [c.to_dict() for c in changes]}
    if fmt == "json":
        write_output(json.dumps(data, indent=2) + "\n", output)
    else:
        _print_changes(changes)
    failing = any(c.admin_lockout or c.error for c in changes) or (
        from_diff is not None and any(c.new_access(from_diff) for c in changes)
    )
    raise typer.Exit(EXIT_FINDINGS if failing else EXIT_OK)


def _diff_levels(value: str | None, levels: Sequence[str]) -> str | None:
    if value is not None and value not in levels:
        fail(f"--fail-on-new-access: {value!r} is not one of {', '.join(levels)}")
    return value


@contextmanager
def _sides(paths: list[Path], base: str | None, ctx: IacContext) -> Iterator[tuple[list[Unit], list[Unit], bool]]:
    """(old units, new units, paired) for the three ways of naming the two versions."""
    if base is not None:
        targets = paths or [Path(".")]
        with _git_checkout(base, targets) as (old_root, old_paths):
            old = load_units(old_paths, old_root, ctx) if old_paths else []
            yield old, load_units(targets, _git_toplevel(), ctx), False
        return
    if len(paths) == 1:
        from kmsguard.iac.discover import sources

        try:
            found = sources(paths, paths[0].parent)
        except FileNotFoundError as e:
            fail(str(e))
        if len(found) != 1 or found[0].kind != "terraform-plan":
            fail("iac diff: give OLD and NEW, --base REF, or one Terraform plan JSON (its before and after)")
        root = paths[0].parent
        yield load_units(paths, root, ctx, "before"), load_units(paths, root, ctx, "after"), False
        return
    if len(paths) != 2:
        fail("iac diff: give OLD and NEW, --base REF [PATH...], or one Terraform plan JSON")
    old_path, new_path = paths
    for p in paths:
        if not p.exists():
            fail(f"{p}: no such file or directory")
    paired = old_path.is_file() and new_path.is_file()
    old_root = old_path.parent if old_path.is_file() else old_path
    new_root = new_path.parent if new_path.is_file() else new_path
    yield load_units([old_path], old_root, ctx), load_units([new_path], new_root, ctx), paired


def _git(args: list[str], cwd: Path | None = None) -> bytes:
    git = shutil.which("git")
    if git is None:
        fail("--base needs git on the PATH")
    try:
        done = subprocess.run([git, *args], cwd=cwd, capture_output=True, check=False)
    except OSError as e:
        fail(f"git: {e}")
    if done.returncode != 0:
        fail(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip() or 'failed'}")
    return done.stdout


def _git_toplevel() -> Path:
    return Path(_git(["rev-parse", "--show-toplevel"]).decode().strip())


@contextmanager
def _git_checkout(rev: str, targets: list[Path]) -> Iterator[tuple[Path, list[Path]]]:
    """The files of ``targets`` as they are at ``rev``, extracted into a temporary directory laid out like the
    repository; (that directory, the targets inside it that existed at ``rev``)."""
    top = _git_toplevel()
    _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"])
    rels = []
    for t in targets:
        try:
            rels.append(t.resolve().relative_to(top).as_posix() or ".")
        except ValueError:
            fail(f"{t}: not inside the git repository {top}")
    archive = _git(["archive", "--format=tar", rev, "--", *rels], cwd=top) if rels else b""
    with tempfile.TemporaryDirectory(prefix="kmsguard-iac-") as tmp:
        dest = Path(tmp)
        if archive:
            import io

            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(dest, filter="data")
        yield dest, [dest / r for r in rels if (dest / r).exists()]


def _print_changes(changes: list[KeyChange]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not changes:
        console.print("No key policy changed.")
        return
    for c in changes:
        where = f"{c.location.file}:{c.location.line}" if c.location else c.unit
        head = f"{where} {c.key} ({c.status}{', when ' + c.world if c.world else ''})"
        flags = []
        if c.opens_public:
            flags.append("[bold red]opens the key to the public[/]")
        if c.new_external:
            flags.append(f"[red]new external principals: {escape(', '.join(c.new_external))}[/]")
        if c.admin_lockout:
            flags.append("[bold red]locks out every administrator[/]")
        if c.error:
            flags.append(f"[bold red]could not be judged: {escape(c.error)}[/]")
        console.print(escape(head) + (": " + "; ".join(flags) if flags else ""))
        for kind, items in (("+", c.gained), ("-", c.lost)):
            for item in items:
                console.print(escape(f"  {kind} {item['principal']}: {item['action']}"))
        for u in c.uncertain:
            console.print(escape(f"  ? {u}"))
        if c.unknown_values:
            console.print(escape(f"  judged with any value for: {'; '.join(c.unknown_values)}"))
