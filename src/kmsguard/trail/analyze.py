"""The trail pipeline: list and prune sources -> ingest into the cache -> SQL detections -> facts.

The facts (``model.trail.TrailFacts``) ride on a Snapshot and the trail family of the check registry judges them
(``checks/trail.py``). ``analyze`` returns everything ``kmsguard trail analyze`` prints, its findings judged on
first use; ``trail.usage.analyze_usage`` is the entry point ``kmsguard scan/report/monitor --trail`` use (the
facts to put on the scan's snapshot, and the usage summary to keep).
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmsguard import __version__
from kmsguard.aws.options import AwsOptions
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding
from kmsguard.model.snapshot import Snapshot
from kmsguard.model.trail import TrailFacts
from kmsguard.timings import Timings
from kmsguard.trail import answers, cache, detections, facts
from kmsguard.trail.cache import IngestReport
from kmsguard.trail.decode import FileStats
from kmsguard.trail.engines import Engine, each, make_engine
from kmsguard.trail.sources import Filters, list_sources, lookup_events


@dataclass
class TrailOptions:
    since: datetime | None = None
    until: datetime | None = None
    accounts: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    cache_dir: Path | None = None
    engine: str = "duckdb"
    lookup: bool = False
    aws: AwsOptions | None = None
    workers: int | None = None
    params: detections.Params = field(default_factory=detections.Params)
    config: ScanConfig = field(default_factory=ScanConfig)
    principal_env: dict[str, str] = field(default_factory=dict)
    engine_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"session": spark} in tests
    timings: Timings | None = None  # --timings: each stage's wall time

    @property
    def filters(self) -> Filters:
        return Filters(self.since, self.until, frozenset(self.accounts), frozenset(self.regions))

    def stage(self, name: str) -> AbstractContextManager[None]:
        return self.timings.stage(name) if self.timings is not None else nullcontext()


@dataclass
class KeyUsage:
    key_arn: str
    calls: int
    crypto_calls: int
    errors: int
    principals: int
    accounts: int
    regions: int
    first_use: str | None
    last_use: str | None
    last_crypto_use: str | None
    actions: dict[str, int]


@dataclass
class TrailReport:
    ingest: IngestReport
    events: int  # KMS events analysed (after --since/--until/--account/--region)
    window: dict[str, str | None]
    keys: list[KeyUsage]
    principals: dict[str, dict[str, int]]  # principal -> key -> calls
    # key_arn, hour (epoch), calls: cryptographic use over time of the busiest keys (detections.HOURLY_TOP_KEYS),
    # ordered by key and hour, for charts
    hourly: list[dict[str, Any]]
    facts: TrailFacts
    # The snapshot the facts are judged on: the one given, or an empty one (no keys to join) when none was.
    snapshot: Snapshot
    config: ScanConfig
    notes: list[str]
    engine: str
    reused: bool = False  # the logs were unchanged: the detections' answers are the last run's (trail/answers.py)
    _findings: list[Finding] | None = field(default=None, repr=False)

    @property
    def findings(self) -> list[Finding]:
        """The trail family's findings: its registered checks on ``snapshot`` (with the facts), through the same
        pipeline as a scan's, so ``config``'s check selection, severity overrides and mutes apply. Judged once, on
        first use: ``scan --trail`` judges the facts in its own run instead."""
        if self._findings is None:
            from kmsguard.pipeline import family, judge

            self._findings = judge(self.snapshot, self.config, only=family("trail")).findings
        return self._findings

    def summary_dict(self) -> dict[str, Any]:
        ing = self.ingest
        return {
            "engine": self.engine,
            "files": {
                "listed": ing.files_listed,
                "pruned_by_path": ing.files_pruned,
                "read": ing.files_read,
                "from_cache": ing.files_cached,
                "failed": len(ing.failed),
            },
            "records": {"read": ing.records, "kms": ing.kms_events, "skipped": ing.skipped},
            "events_analysed": self.events,
            "window": self.window,
            "problems": [_problem(s) for s in ing.with_skips],
            "keys": [k.__dict__ for k in self.keys],
            "principals": self.principals,
            "notes": self.notes,
        }


def _problem(s: FileStats) -> dict[str, Any]:
    out: dict[str, Any] = {"file": s.file, "records_read": s.records, "skipped": s.skipped}
    if s.error:
        out["error"] = s.error
    if s.skip_reasons:
        out["skip_reasons"] = s.skip_reasons
    return out


def default_cache_dir(sources: list[str]) -> Path:
    """One cache per set of sources, under the user's cache directory: re-running on the same sources is
    incremental, and different sources never mix their events."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kmsguard" / "trail"
    norm = sorted(s if s.startswith("s3://") else str(Path(s).resolve()) for s in sources)
    return base / hashlib.sha256("\n".join(norm).encode()).hexdigest()[:16]


def analyze(
    sources: list[str],
    snapshot: Snapshot | None = None,
    options: TrailOptions | None = None,
    progress: Any = None,
) -> TrailReport:
    """Read ``sources`` (and LookupEvents with ``options.lookup``), detect, and judge."""
    opts = options or TrailOptions()
    filters = opts.filters
    detections.where_clause(filters)  # validates --account/--region before any work
    cache_dir = opts.cache_dir or default_cache_dir(sources + (["lookup"] if opts.lookup else []))
    with opts.stage("list sources"):
        listed = list_sources(sources, opts.aws, filters) if sources else []
        files = [f for f in listed if filters.keeps(f)]
    engine: Engine | None = None
    try:
        if progress is not None:
            progress.add_total("files", len(files))
        runner = None
        if opts.engine == "spark" and any(f.uri.startswith("s3://") for f in files):
            # Files in S3 are decoded where they are read, in Spark's tasks (on a cluster, its executors); local
            # files on this machine, by the decoder's process pool, before Spark starts.
            engine = _start(opts, cache_dir)
            runner = getattr(engine, "run_units", None)
        elif opts.engine == "duckdb":
            # DuckDB starts first, even when the kept answers will make it idle (0.06 s): it reserves about 670 MB of
            # address space when it connects, and Arrow's allocator takes what it finds free during the ingest, so
            # under an address-space limit (ulimit -v) a DuckDB started after the ingest could not connect at all.
            engine = _start(opts, cache_dir)
        with opts.stage("ingest (decode, write the cache)"):
            report, parts = cache.ingest(
                files,
                cache_dir,
                aws=opts.aws,
                workers=opts.workers,
                progress=(lambda n: progress.advance("files", n)) if progress is not None else None,
                listed=len(listed),
                runner=runner,
            )
            if opts.lookup:
                parts += _lookup(opts, cache_dir, report)
        summaries = _summaries(snapshot)
        key = answers.fingerprint(parts, filters, _queries(opts.params, summaries, filters), opts.engine)
        with opts.stage("answers kept from the last run"):
            got = answers.load(cache_dir, key)
        reused = got is not None
        if got is None:
            if engine is None:
                engine = _start(opts, cache_dir)
            with opts.stage("load the cache"):
                engine.load(parts, filters)
            got = _ask(engine, opts, summaries, progress)
            answers.save(cache_dir, key, got)
        with opts.stage("findings"):
            out = _report(opts, snapshot, report, got)
        out.reused = reused
        return out
    finally:
        if engine is not None:
            engine.close()


def _start(opts: TrailOptions, cache_dir: Path) -> Engine:
    with opts.stage(f"start the {opts.engine} engine"):
        return make_engine(opts.engine, **_engine_options(opts, cache_dir))


def _summaries(snapshot: Snapshot | None) -> dict[str, str]:
    """The summary queries a run asks: policy conformance and environments are judged against a snapshot, so
    without one their rows would go unused."""
    unused = {"coverage"} | (set() if snapshot is not None else {"use_pairs", "context_use"})
    return {name: sql for name, sql in detections.SUMMARIES.items() if name not in unused}


def _queries(p: detections.Params, summaries: dict[str, str], filters: Filters) -> list[str]:
    """What the answers depend on besides the events: the text of every query the run would ask (it carries the
    thresholds and the names it lists from trail/schema.py), and the detection module's own text (the steps
    between the queries: the calendar, the evidence)."""
    asked = [detections.COVERAGE, *detections.AGGREGATES.values(), *summaries.values()]
    asked += [sql for d in detections.all_detections(p) for sql in (d.groups_sql(), d.evidence_sql(p.cap))]
    asked += [detections.dup_ids_sql("raw_events"), detections.events_view("raw_events", filters)]
    module = Path(detections.__file__).read_text(encoding="utf-8")
    return [hashlib.sha256("\n".join([module, repr(p), *asked]).encode()).hexdigest()]


def _engine_options(opts: TrailOptions, cache_dir: Path) -> dict[str, Any]:
    """DuckDB spills what exceeds its memory limit into the cache directory, not into the working directory."""
    if opts.engine == "duckdb":
        return {"temp_directory": str(cache_dir / "spill"), **opts.engine_options}
    return opts.engine_options


def _lookup(opts: TrailOptions, cache_dir: Path, report: IngestReport) -> list[str]:
    aws = opts.aws or AwsOptions()
    regions = opts.regions or aws.regions or [os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"]
    parts: list[str] = []
    for region in regions:
        name = f"lookup://{region}"
        st, part = cache.write_records(lookup_events(aws, region, opts.since, opts.until), name, cache_dir)
        report.stats.append(st)
        report.files_listed += 1
        report.files_read += 1
        if part:
            parts.append(part)
    return parts


def _ask(engine: Engine, opts: TrailOptions, summaries: dict[str, str], progress: Any = None) -> answers.Answers:
    """Every question the run asks the engine: coverage, the detections (groups and evidence), the summaries."""
    p = opts.params
    steps = 1 + len(detections.all_detections(p)) + len(summaries)

    def tick() -> None:
        if progress is not None:
            progress.advance("queries", 1)

    if progress is not None:
        progress.add_total("queries", steps)
    with opts.stage("detections (SQL)"):
        cov = engine.query(detections.COVERAGE)[0]
        t0, t1 = cov["t0"], cov["t1"]
        engine.register_hours(*detections.calendar(int(t0), int(t1)) if t0 is not None else (0, 0))
        detections.prepare(engine)
        tick()
        rows = detections.run(engine, p, tick)
    with opts.stage("summaries (SQL)"):

        def ask(sql: str) -> list[dict[str, Any]]:
            rows = engine.query(sql)
            tick()
            return rows

        summ = dict(zip(summaries, each(engine, ask, summaries.values()), strict=True))
    found = {name: (r.groups, r.evidence) for name, r in rows.items()}
    return answers.Answers(coverage=cov, detections=found, summaries=summ, engine=engine.name)


def _report(opts: TrailOptions, snapshot: Snapshot | None, report: IngestReport, got: answers.Answers) -> TrailReport:
    p, cov, summ = opts.params, got.coverage, got.summaries
    t0, t1 = cov["t0"], cov["t1"]
    rows = {name: detections.DetectionRows(g, e) for name, (g, e) in got.detections.items()}
    found = facts.build(p, cov, rows, summ, report.failed, opts.principal_env)
    judged_on = (
        snapshot.model_copy(update={"trail": found})
        if snapshot is not None
        else Snapshot(kmsguard_version=__version__, collected_at=datetime.now(UTC), trail=found)
    )

    actions: dict[str, dict[str, int]] = defaultdict(dict)
    for r in summ["key_actions"]:
        actions[r["key_arn"]][r["event_name"]] = int(r["calls"])
    keys = [
        KeyUsage(
            key_arn=r["key_arn"],
            calls=int(r["calls"]),
            crypto_calls=int(r["crypto_calls"] or 0),
            errors=int(r["errors"] or 0),
            principals=int(r["principals"]),
            accounts=int(r["accounts"]),
            regions=int(r["regions"]),
            first_use=facts.iso(r["first_ts"]),
            last_use=facts.iso(r["last_ts"]),
            last_crypto_use=facts.iso(r["last_crypto_ts"]),
            actions=dict(sorted(actions[r["key_arn"]].items())),
        )
        for r in sorted(summ["key_usage"], key=lambda r: (-int(r["calls"]), r["key_arn"]))
    ]
    principals: dict[str, dict[str, int]] = defaultdict(dict)
    for r in summ["principal_keys"]:
        principals[r["principal"]][r["key_arn"]] = int(r["calls"])
    hourly = [{"key_arn": r["key_arn"], "hour": int(r["hour"]), "calls": int(r["calls"])} for r in summ["hourly"]]
    return TrailReport(
        ingest=report,
        events=int(cov["events"]),
        window={"start": facts.iso(t0), "end": facts.iso(t1)},
        keys=keys,
        principals={k: dict(sorted(v.items())) for k, v in sorted(principals.items())},
        hourly=hourly,
        facts=found,
        snapshot=judged_on,
        config=opts.config,
        notes=[],
        engine=got.engine,
    )
