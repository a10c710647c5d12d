"""What every command shares: exit codes, error reporting, AWS options, progress, output."""

from __future__ import annotations

import difflib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from kmsguard.aws.options import CONCURRENCY, MAX_ATTEMPTS, QUOTAS, TIMEOUT, AwsOptions, describe_seconds
from kmsguard.config import ScanConfig
from kmsguard.config_file import ConfigFileError, load_config
from kmsguard.fileio import open_atomic, write_atomic
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import Judged, ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.snapshot_io import SnapshotFileError, load_snapshot

if TYPE_CHECKING:
    from kmsguard.spool import SpooledResult

# Exit codes (DESIGN.md): 0 nothing failing at/above --fail-on, 1 failing findings (or ERROR findings without
# --allow-errors), 2 usage or input error, 3 could not reach or read AWS (also: every AWS call failed).
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_AWS = 0, 1, 2, 3
FAIL_ON = ["info", "low", "medium", "high", "critical", "never"]
ENDPOINT_ENV = "KMSGUARD_ENDPOINT_URL"
FROM_SNAPSHOT_AWS = "--from-snapshot judges a saved snapshot: drop the AWS options (--profile, --region, --org ...)"
ALLOW_ERRORS_HELP = "Do not exit 1 for ERROR findings (what could not be read or judged); they are still reported."

err_console = Console(stderr=True)

# How AWS is called, on every command that calls it (README "AWS calls: timeouts, retries, deadline").
TIMEOUT_OPTION = typer.Option(
    None,
    "--timeout",
    metavar="SECONDS",
    help=f"Seconds an AWS call may wait to connect and for each read of the answer (default {TIMEOUT:g}).",
)
MAX_ATTEMPTS_OPTION = typer.Option(
    None,
    "--max-attempts",
    help="Attempts per AWS call, the first included; throttling, 5xx and network errors are retried "
    f"(default {MAX_ATTEMPTS}).",
)
DEADLINE_OPTION = typer.Option(
    None,
    "--deadline",
    metavar="DURATION",
    help="Stop reading AWS after this long (seconds, or 90s, 15m, 1h): what was read is judged, the rest is "
    "reported as ERROR, exit 3. Default: no limit.",
)

CONCURRENCY_OPTION = typer.Option(
    None,
    "--concurrency",
    metavar="N",
    help=f"AWS calls in flight at once, across accounts and regions (default {CONCURRENCY}).",
)
QUOTAS_OPTION = typer.Option(
    None,
    "--quotas",
    metavar="default|FILE|off",
    help="Pace AWS calls below these request quotas per account, region and operation: AWS's published ones "
    "(default), a file in the same format (raised quotas; docs/configuration.md), or off.",
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error naming what is wrong and exit with ``code``."""
    # Escaped: a message quoting brackets (`pip install 'kmsguard[spark]'`, a JSON path) is text, not markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def known_checks(checks: list[str] | None, skip_checks: list[str] | None) -> None:
    """Exit 2 naming any unknown id in --checks or --skip-checks: before AWS is read, not after a long scan."""
    from kmsguard.checks.registry import select_checks

    try:
        select_checks(split_csv(checks), split_csv(skip_checks))
    except ValueError as e:
        fail(str(e))


def split_csv(values: list[str] | None) -> list[str] | None:
    """Accept both repeated options and comma-separated lists: -r a -r b,c -> [a, b, c]."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def typed_endpoint(endpoint_url: str | None) -> bool:
    """Whether ``--endpoint-url`` was asked for in this command rather than inherited from an exported
    ``KMSGUARD_ENDPOINT_URL`` (`kmsguard demo --keep-running` suggests exporting it). Typing the exported value
    again changes nothing, so it counts as inherited."""
    return bool(endpoint_url) and endpoint_url != os.environ.get(ENDPOINT_ENV)


def aws_options(
    profile: str | None,
    regions: list[str] | None,
    endpoint_url: str | None,
    org: bool,
    role_name: str,
    accounts: list[str] | None,
    excluded_regions: list[str] | None = None,
    *,
    timeout: float | None = None,
    max_attempts: int | None = None,
    deadline: str | None = None,
    concurrency: int | None = None,
    quotas: str | None = None,
) -> AwsOptions:
    accts = split_csv(accounts)
    for a in accts or ():
        if not (a.isdigit() and len(a) == 12):
            fail(f"--accounts: {a!r} is not a 12-digit AWS account id")
    if timeout is not None and not 0 < timeout <= 3600:
        fail(f"--timeout: {timeout:g} is not a number of seconds between 0 and 3600")
    if max_attempts is not None and not 1 <= max_attempts <= 20:
        fail(f"--max-attempts: {max_attempts} is not between 1 and 20")
    if concurrency is not None and not 1 <= concurrency <= 1024:
        fail(f"--concurrency: {concurrency} is not between 1 and 1024")
    return AwsOptions(
        profile=profile,
        regions=split_csv(regions),
        excluded_regions=split_csv(excluded_regions),
        endpoint_url=endpoint_url,
        org=org,
        role_name=role_name,
        accounts=accts,
        timeout=TIMEOUT if timeout is None else timeout,
        max_attempts=MAX_ATTEMPTS if max_attempts is None else max_attempts,
        deadline=None if deadline is None else duration_seconds(deadline, "--deadline"),
        max_workers=CONCURRENCY if concurrency is None else concurrency,
        quotas=quota_spec(quotas),
    )


def quota_spec(text: str | None) -> str | None:
    """``--quotas`` as AwsOptions.quotas: None for off; a file is read now, so a bad one stops the command (exit 2)
    before any call rather than after the scan has begun."""
    if text is None:
        return QUOTAS
    if text.strip().lower() == "off":
        return None
    from kmsguard.aws.quotas import QuotaFileError, load_quotas

    try:
        load_quotas(text)
    except QuotaFileError as e:
        fail(f"--quotas {e}")
    return text


_SECONDS_PER = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str, flag: str) -> float:
    """``90``, ``90s``, ``15m`` or ``1h`` as seconds; exit 2 naming ``flag`` for anything else."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _SECONDS_PER else "s"
    number = value[:-1] if value[-1:] in _SECONDS_PER else value
    try:
        seconds = float(number) * _SECONDS_PER[unit]
    except ValueError:
        fail(f"{flag}: {text!r} is not a duration (seconds, or 90s, 15m, 1h)")
    if not 0 < seconds < 7 * 86400:  # also refuses nan and inf
        fail(f"{flag}: {text!r} must be more than 0 and less than a week")
    return seconds


def check_regions(options: AwsOptions) -> None:
    """Exit 2 naming any requested or excluded region that is no AWS region (a typo), before anything is scanned."""
    from kmsguard.arn import partition_of
    from kmsguard.aws.errors import AwsUnavailable
    from kmsguard.aws.regions import botocore_regions, unknown_regions

    partitions = sorted({partition_of(r) for r in options.regions or ()})
    if len(partitions) > 1:
        # Credentials belong to one partition (aws, aws-us-gov, aws-cn): one run scans one of them.
        fail(f"--region/--regions: {', '.join(options.regions or ())} span the partitions {', '.join(partitions)}; "
             "scan each partition in its own run, with that partition's credentials")  # fmt: skip
    for flag, asked in (("--region/--regions", options.regions), ("--excluded-regions", options.excluded_regions)):
        if not asked:
            continue
        try:
            bad = unknown_regions(asked, options)
        except AwsUnavailable as e:
            fail(str(e), EXIT_AWS)
        for region in bad:
            near = difflib.get_close_matches(region, sorted(botocore_regions()), n=3)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            fail(f"{flag}: {region!r} is not an AWS region known to botocore or listed by the account{hint}")


def refuse_blind(options: AwsOptions) -> None:
    """Exit 3 when every AWS call of the run failed: nothing was read, so no finding means nothing."""
    calls = options.calls
    if calls.blind:
        fail(
            f"every AWS call failed ({calls.failed} call(s), none answered), so nothing was scanned; "
            f"first failure: {calls.first_failure}",
            EXIT_AWS,
        )


def cut_short(options: AwsOptions | None, code: int) -> int:
    """The exit code of a run that read AWS: 3 (saying why on stderr) when its --deadline stopped the reading, so
    part of the estate was not seen (what was read has been judged and reported, the rest as ERROR findings);
    else ``code``. Call it after the report is out."""
    if options is None or not options.clock.cut_short:
        return code
    deadline = describe_seconds(options.clock.seconds or 0)
    err_console.print(
        f"[bold red]error:[/] the --deadline of {deadline} passed before AWS was read in full: "
        f"{options.clock.refused} call(s) were not made; what was read is reported, the rest as ERROR findings",
        highlight=False,
        soft_wrap=True,
    )
    return EXIT_AWS


def exit_code(result: Judged, fail_on: str, allow_errors: bool = False) -> int:
    """The exit code of a judged result (scan, report, trail analyze), in memory or spooled: see ``outcome_code``."""
    tally = result.tally()
    return outcome_code(tally.errors, tally.worst_failing, fail_on, allow_errors)


def outcome_code(errors: int, worst_failing: Severity | None, fail_on: str, allow_errors: bool = False) -> int:
    """The one exit-code rule of every command that judges (scan, report, trail analyze, monitor --once): 1 when
    a failing finding is at or above ``fail_on`` ('never': none is), and 1 for any ERROR finding (something could
    not be read or judged, so a pass would be unproven) unless ``allow_errors``; else 0. A run that read nothing
    at all has already exited 3 (``refuse_blind``)."""
    if errors and not allow_errors:
        return EXIT_FINDINGS
    if fail_on == "never" or worst_failing is None:
        return EXIT_OK
    return EXIT_FINDINGS if worst_failing.rank >= Severity(fail_on).rank else EXIT_OK


def check_fail_on(fail_on: str) -> None:
    if fail_on not in FAIL_ON:
        fail(f"--fail-on: {fail_on!r} is not one of {', '.join(FAIL_ON)}")


def check_format(fmt: str) -> None:
    """--format of a command that shows the table too: one of ``report.CHOICES``."""
    from kmsguard.report.registry import CHOICES

    if fmt not in CHOICES:
        fail(f"--format: {fmt!r} is not one of {', '.join(CHOICES)}")


# Prowler calls the lowest severity "informational"; kmsguard's is "info". Both are accepted.
_SEVERITY_NAMES = {s.value: s for s in Severity} | {"informational": Severity.INFO}


def severities(values: list[str] | None, flag: str = "--severity") -> set[Severity] | None:
    """``--severity high,critical`` (repeatable, any case) as a set; None when not given."""
    out = set()
    for v in split_csv(values) or ():
        if v.lower() not in _SEVERITY_NAMES:
            fail(f"{flag}: {v!r} is not one of {', '.join(s.value for s in reversed(Severity))}")
        out.add(_SEVERITY_NAMES[v.lower()])
    return out or None


def statuses(values: list[str] | None, flag: str = "--status") -> set[Status] | None:
    """``--status FAIL,ERROR`` (repeatable, any case) as a set; None when not given."""
    out = set()
    for v in split_csv(values) or ():
        if v.upper() not in Status.__members__:
            fail(f"{flag}: {v!r} is not one of {', '.join(s.value for s in Status)}")
        out.add(Status(v.upper()))
    return out or None


def keep_findings(result: ScanResult, sevs: set[Severity] | None, stats: set[Status] | None) -> ScanResult:
    """Only the findings of these severities and statuses (None: all). The report and the exit code both follow
    what is kept, as Prowler's --severity/--status do."""
    if sevs is None and stats is None:
        return result
    return result.model_copy(update={"findings": [f for f in result.findings if kept(f, sevs, stats)]})


def kept(f: Finding, sevs: set[Severity] | None, stats: set[Status] | None) -> bool:
    """``keep_findings`` of one finding."""
    return (sevs is None or f.severity in sevs) and (stats is None or f.status in stats)


def s3_url(output: Path | str) -> str | None:
    """``-o s3://bucket/key`` as an s3:// URL (a Path has already folded it to ``s3:/bucket/key``); None for a
    local path."""
    text = str(output)
    return "s3://" + text[len("s3:") :].lstrip("/") if text.startswith("s3:/") else None


def local_dir(path: Path | None, flag: str) -> None:
    """Options that name a directory cannot be S3: exit 2 rather than make a local folder called ``s3:``."""
    if path is not None and s3_url(path) is not None:
        fail(f"{flag}: {path} is not a local directory (only files can be written to S3)")


def write_output(data: str | bytes, output: Path | str | None, aws: AwsOptions | None = None) -> None:
    """Write a report to stdout, a local file (atomically: ``fileio.write_atomic``), or ``s3://bucket/key``
    (through the session factory, with ``aws``'s profile and endpoint; default: the environment's credentials
    and ``KMSGUARD_ENDPOINT_URL``)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if output is None:
        if isinstance(data, str):
            sys.stdout.write(data if data.endswith("\n") else data + "\n")
        else:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
        return
    url = s3_url(output)
    if url is not None:
        _put_s3(url, raw, aws or AwsOptions(endpoint_url=os.environ.get(ENDPOINT_ENV)))
        return
    path = Path(output)
    try:
        write_atomic(path, raw)  # a run failing half-way leaves the previous file as it was
    except OSError as e:
        fail(f"cannot write {path}: {e.strerror or e}")


def write_report(
    result: ScanResult | SpooledResult, fmt: str, output: Path | None, aws: AwsOptions | None = None
) -> None:
    """``result`` in format ``fmt`` to stdout, a file or S3, as ``write_output`` writes. A format in
    ``report.STREAMED`` is written as the findings are read, so a spooled result is never held whole (to S3
    through a temporary file); any other is rendered in memory."""
    from kmsguard.report import STREAMED, render, write

    if fmt not in STREAMED:
        whole = result if isinstance(result, ScanResult) else result.materialize()
        write_output(render(whole, fmt), output, aws)
        return
    if output is None:
        write(result, fmt, sys.stdout)
        sys.stdout.flush()
        return
    url = s3_url(output)
    try:
        if url is not None:
            with tempfile.TemporaryFile() as tmp:
                _write_text(result, fmt, tmp)
                tmp.seek(0)
                _put_s3(url, tmp, aws or AwsOptions(endpoint_url=os.environ.get(ENDPOINT_ENV)))
            return
        with open_atomic(output) as fh:  # a run failing half-way leaves the previous file as it was
            _write_text(result, fmt, fh)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror or e}")


def _write_text(result: ScanResult | SpooledResult, fmt: str, raw: BinaryIO) -> None:
    from kmsguard.report import write

    # newline="": the text goes out as written (a CSV's \r\n row ends included), UTF-8 as write_output's.
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    write(result, fmt, text)
    text.flush()
    text.detach()  # the caller closes the file


def _put_s3(url: str, data: bytes | BinaryIO, aws: AwsOptions) -> None:
    from kmsguard.aws.errors import AWS_CALL_ERRORS, AwsUnavailable, error_code
    from kmsguard.aws.session import SessionFactory
    from kmsguard.trail.sources import split_s3

    try:
        bucket, key = split_s3(url)
    except ValueError as e:
        fail(str(e))
    if not key or key.endswith("/"):
        fail(f"{url}: give the object key to write (s3://bucket/path/report.json)")
    try:
        factory = SessionFactory(aws)
        factory.caller.client("s3", factory.home_region).put_object(Bucket=bucket, Key=key, Body=data)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    except AWS_CALL_ERRORS as e:
        code, message = error_code(e)
        fail(f"cannot write {url}: {code}: {message}", EXIT_AWS)


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
    """Collect a Snapshot from AWS with a progress bar on a terminal; exit 2 for a region that does not exist,
    3 when AWS cannot be reached or every call failed."""
    from kmsguard.aws.errors import AwsUnavailable
    from kmsguard.collect.snapshot import collect_snapshot

    check_regions(options)
    try:
        with progress_bar(not quiet) as bar:
            snapshot = collect_snapshot(options, bar)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    refuse_blind(options)
    _say_throttled(options)
    return snapshot


def _say_throttled(options: AwsOptions) -> None:
    """One line when AWS throttled the reading: why it was slower, and what to do if it keeps happening. (A call
    throttled past --max-attempts is an ERROR finding on what it would have read, like any failed call.)"""
    stats = options.pacer.stats if options.pacer is not None else None
    if stats is None or not stats.throttled:
        return
    err_console.print(
        f"kmsguard: AWS throttled {stats.throttled} call(s); each was retried with back-off and its pace (per "
        "account, region and operation) halved. If it recurs, this account's quotas are lower than kmsguard's "
        "table: give them with --quotas FILE (docs/configuration.md), or lower --concurrency.",
        highlight=False,
        soft_wrap=True,
    )


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
