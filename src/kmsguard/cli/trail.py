"""`kmsguard trail analyze`: key usage and attacks from CloudTrail logs (see docs/trail.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from kmsguard import __version__
from kmsguard.aws.errors import AwsUnavailable
from kmsguard.aws.options import AwsOptions
from kmsguard.cli.common import (
    ALLOW_ERRORS_HELP,
    EXIT_AWS,
    MAX_ATTEMPTS_OPTION,
    TIMEOUT_OPTION,
    aws_options,
    check_fail_on,
    check_format,
    err_console,
    exit_code,
    fail,
    local_dir,
    progress_bar,
    scan_config,
    split_csv,
    write_output,
)
from kmsguard.config import ScanConfig
from kmsguard.model.result import ScanResult
from kmsguard.report.registry import CHOICES

app = typer.Typer(help="Key usage and attacks from CloudTrail logs.", no_args_is_help=True)

_RELATIVE = re.compile(r"(\d+)([dhm])")
# key_unused's window, shared with `scan --trail`.
UNUSED_DAYS = typer.Option(
    90, "--unused-days", min=1, help="key_unused (with logs): no cryptographic use in this many days."
)


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 (a date or a date and time; UTC unless an offset is given) or a relative ``7d``/``12h``/``30m``."""
    m = _RELATIVE.fullmatch(text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
        return datetime.now(UTC) - delta
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not a time (2024-05-01, 2024-05-01T12:00:00Z, or 7d / 12h / 30m ago)")
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@app.command("analyze")
def analyze_cmd(
    sources: list[str] | None = typer.Argument(
        None, help="Log files, directories (AWSLogs/... or flat), JSON-lines files, or s3://bucket/prefix."
    ),
    snapshot: Path | None = typer.Option(None, "--snapshot", help="A saved scan snapshot to join with the logs."),
    since: str | None = typer.Option(None, "--since", help="Only events at or after this time (ISO 8601 or 7d)."),
    until: str | None = typer.Option(None, "--until", help="Only events at or before this time."),
    account: list[str] | None = typer.Option(None, "--account", help="Only logs of these accounts (repeatable)."),
    region: list[str] | None = typer.Option(None, "--region", "-r", help="Only logs of these regions (repeatable)."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache directory (default: per source set, ~/.cache)."),
    fmt: str | None = typer.Option(None, "--format", "-f", help=f"{', '.join(CHOICES)}."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to this file or s3://bucket/key instead of stdout."
    ),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb (embedded) or spark (pip install 'kmsguard[spark]')."
    ),
    spark_master: str | None = typer.Option(
        None,
        "--spark-master",
        help="With --engine spark: local[*] (default), spark://HOST:PORT, yarn or k8s://URL (or trail.spark.master "
        "in kmsguard.yaml).",
    ),
    spark_conf: list[str] | None = typer.Option(
        None, "--spark-conf", help="With --engine spark: a Spark setting NAME=VALUE (repeatable; over kmsguard.yaml's)."
    ),
    config: Path | None = typer.Option(None, "--config", help="kmsguard.yaml (default: ./kmsguard.yaml if present)."),
    lookup: bool = typer.Option(False, "--lookup", help="Also read KMS events from CloudTrail LookupEvents."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile (for s3:// sources and --lookup)."),
    endpoint_url: str | None = typer.Option(
        None,
        "--endpoint-url",
        envvar="KMSGUARD_ENDPOINT_URL",
        help="Send every AWS call to this endpoint (an emulator).",
    ),
    timeout: float | None = TIMEOUT_OPTION,
    max_attempts: int | None = MAX_ATTEMPTS_OPTION,
    workers: int | None = typer.Option(None, "--workers", help="Decoder processes (default: one per core)."),
    unused_days: int = UNUSED_DAYS,
    learn_days: float = typer.Option(7.0, "--learn-days", help="Days at the start of the logs learnt as normal."),
    burst_threshold: int = typer.Option(
        5, "--burst-threshold", help="Failed calls on one key within 5 minutes above which a burst is reported."
    ),
    spike_k: float = typer.Option(6.0, "--spike-k", help="Spike: calls above median + k * 1.4826 * MAD."),
    spike_min_count: int = typer.Option(50, "--spike-min-count", help="Spike: never below this many calls/hour."),
    principal_env: list[str] | None = typer.Option(
        None, "--principal-env", help="PRINCIPAL_ARN=ENVIRONMENT, for trail_foreign_environment (repeatable)."
    ),
    summary_out: Path | None = typer.Option(None, "--summary-out", help="Write the usage summary (JSON) here."),
    charts: Path | None = typer.Option(None, "--charts", help="Write PNG charts and an HTML page to this directory."),
    fail_on: str = typer.Option("low", "--fail-on", help="Exit 1 at or above this severity (or 'never')."),
    allow_errors: bool = typer.Option(False, "--allow-errors", help=ALLOW_ERRORS_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    timings: bool = typer.Option(
        False, "--timings", help="Print on stderr where the time went: start-up, listing, decoding, SQL, report."
    ),
) -> None:
    """Analyse CloudTrail logs: per-key usage summaries and findings."""
    from kmsguard.timings import Timings

    clock = Timings()
    with clock.stage("imports (the trail engine)"):
        from kmsguard.cli.scan import emit
        from kmsguard.trail.analyze import TrailOptions, analyze
        from kmsguard.trail.detections import Params
        from kmsguard.trail.usage import summarise

    srcs = list(sources or [])
    if not srcs and not lookup:
        fail("give at least one SOURCE (file, directory or s3://bucket/prefix), or --lookup")
    if fmt is None:
        import sys

        fmt = "table" if output is None and sys.stdout.isatty() else "json"
    check_format(fmt)
    check_fail_on(fail_on)
    if engine not in ("duckdb", "spark"):
        fail(f"--engine: {engine!r} is not one of duckdb, spark")
    cfg = scan_config(config)
    engine_options = _spark_options(cfg, spark_master, spark_conf) if engine == "spark" else {}
    if engine == "spark":
        _require_pyspark()
        _stop_on_sigterm()
    local_dir(charts, "--charts")
    local_dir(cache, "--cache")
    envs: dict[str, str] = {}
    for item in principal_env or ():
        arn, sep, env = item.partition("=")
        if not sep or not arn or not env:
            fail(f"--principal-env: {item!r} is not PRINCIPAL_ARN=ENVIRONMENT")
        envs[arn] = env
    snap = None
    if snapshot is not None:
        from kmsguard.snapshot_io import SnapshotFileError, load_snapshot

        try:
            snap = load_snapshot(snapshot)
        except SnapshotFileError as e:
            fail(str(e))
    needs_aws = lookup or any(s.startswith("s3://") for s in srcs)
    opts = TrailOptions(
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        accounts=split_csv(account) or [],
        regions=split_csv(region) or [],
        cache_dir=cache,
        engine=engine,
        lookup=lookup,
        aws=aws_options(
            profile, split_csv(region), endpoint_url, False, "", None, timeout=timeout, max_attempts=max_attempts
        )
        if needs_aws
        else None,
        workers=workers,
        params=Params(
            burst_threshold=burst_threshold,
            spike_k=spike_k,
            spike_min_count=spike_min_count,
            learn_days=learn_days,
            unused_days=unused_days,
        ),
        principal_env=envs,
        config=cfg,
        engine_options=engine_options,
        timings=clock,
    )
    for s in srcs:
        if not s.startswith("s3://") and not Path(s).exists():
            fail(f"{s}: no such file or directory")
    try:
        with progress_bar(not quiet) as bar:
            report = analyze(srcs, snap, opts, bar)
    except AwsUnavailable as e:
        fail(str(e), EXIT_AWS)
    except ValueError as e:
        fail(str(e))

    _print_summary(report)
    _refuse_nothing_read(srcs, report)
    out_aws = AwsOptions(profile=profile, endpoint_url=endpoint_url)
    if summary_out is not None:
        write_output(json.dumps(report.summary_dict(), indent=2, default=str), summary_out, out_aws)
    if charts is not None:
        from kmsguard.trail.charts import write_charts

        page, problems = write_charts(report, charts)
        err_console.print(f"charts: {page}", highlight=False)
        for problem in problems:  # a chart is an extra: the analysis stands without it
            err_console.print(f"  note: {problem}", highlight=False, soft_wrap=True)
    result = ScanResult(
        kmsguard_version=__version__,
        scanned_at=datetime.now(UTC),
        accounts=sorted({f.account for f in report.findings}),
        regions=sorted({f.region for f in report.findings}),
        findings=report.findings,
        trail_usage=summarise(report, snap),
    )
    with clock.stage("report"):
        if fmt == "table":
            _print_usage(report)
        emit(result, fmt, output, out_aws)
    if timings:
        err_console.print("timings:\n" + "\n".join(clock.lines()), highlight=False)
    raise typer.Exit(exit_code(result, fail_on, allow_errors))


def _spark_options(cfg: ScanConfig, master: str | None, conf: list[str] | None) -> dict[str, Any]:
    """Where Spark runs: --spark-master over kmsguard.yaml's trail.spark.master; --spark-conf over its conf."""
    from kmsguard.config import check_spark_conf, check_spark_master

    settings = dict(cfg.trail.spark.conf)
    for item in conf or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--spark-conf: {item!r} is not NAME=VALUE")
        settings[name.strip()] = value
    try:
        check_spark_conf(settings)
        chosen = check_spark_master(master) if master is not None else cfg.trail.spark.master
    except ValueError as e:
        fail(f"--spark-master/--spark-conf: {e}")
    return {"master": chosen, "conf": settings}


def _stop_on_sigterm() -> None:
    """SIGTERM (``kill``, a scheduler stopping the job) ends the run as Ctrl-C does, through ``finally``: the Spark
    session is stopped, so a cluster ends the application and frees its executors at once. (A run killed outright
    takes its JVM with it too: Spark's gateway exits when its stdin, a pipe from this process, closes.)"""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def _require_pyspark() -> None:
    """--engine spark needs the optional pyspark: one line saying how to get it, not an import traceback."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        fail("--engine spark needs pyspark, which is not installed: pip install 'kmsguard[spark]'")


def _refuse_nothing_read(sources: list[str], report: object) -> None:
    """Exit 2 when the sources held no log file, or when every log file failed: an analysis of nothing is not a
    clean bill of health."""
    from kmsguard.trail.analyze import TrailReport

    assert isinstance(report, TrailReport)
    ing = report.ingest
    from_sources = [s for s in ing.stats if not s.file.startswith("lookup://")]
    if sources and not from_sources and ing.files_pruned == 0:
        fail(f"no CloudTrail log files found in {', '.join(sources)}")
    if ing.stats and all(s.error for s in ing.stats):
        reasons = "; ".join(f"{s.file}: {s.error}" for s in ing.stats[:3])
        more = f" (and {len(ing.stats) - 3} more)" if len(ing.stats) > 3 else ""
        fail(f"every log file failed ({len(ing.stats)}), nothing was analysed: {reasons}{more}")


def _print_summary(report: object) -> None:
    """What was read and what was not, on stderr (stdout carries the report)."""
    from kmsguard.trail.analyze import TrailReport

    assert isinstance(report, TrailReport)
    ing = report.ingest
    err_console.print(
        f"trail: {ing.files_listed} file(s) listed, {ing.files_pruned} pruned by path, {ing.files_read} read, "
        f"{ing.files_cached} from cache, {len(ing.failed)} failed; {ing.records} record(s) read, "
        f"{ing.kms_events} KMS event(s), {ing.skipped} skipped; {report.events} event(s) analysed "
        f"({report.window['start']} .. {report.window['end']}) with {report.engine}"
        + (" (logs unchanged since the last run: its detections' answers reused)" if report.reused else ""),
        highlight=False,
        soft_wrap=True,
    )
    for s in ing.with_skips[:20]:
        why = s.error or ", ".join(f"{k}: {v}" for k, v in sorted((s.skip_reasons or {}).items()))
        err_console.print(f"  {s.file}: {s.skipped} skipped; {why}", highlight=False, soft_wrap=True)
    if len(ing.with_skips) > 20:
        err_console.print(f"  ... and {len(ing.with_skips) - 20} more file(s) (see --summary-out)", highlight=False)
    for note in report.notes:
        err_console.print(f"  note: {note}", highlight=False, soft_wrap=True)


def _print_usage(report: object, top: int = 15) -> None:
    from rich.console import Console
    from rich.table import Table

    from kmsguard.trail.analyze import TrailReport

    assert isinstance(report, TrailReport)
    t = Table(title="Key usage", title_justify="left")
    for col in (
        "key",
        "calls",
        "crypto",
        "errors",
        "principals",
        "accounts",
        "regions",
        "first",
        "last",
        "top actions",
    ):
        t.add_column(col)
    for k in report.keys[:top]:
        acts = ", ".join(f"{a} {n}" for a, n in sorted(k.actions.items(), key=lambda x: -x[1])[:3])
        t.add_row(
            k.key_arn,
            str(k.calls),
            str(k.crypto_calls),
            str(k.errors),
            str(k.principals),
            str(k.accounts),
            str(k.regions),
            k.first_use or "",
            k.last_use or "",
            acts,
        )
    Console().print(t)
