"""A re-run over unchanged logs reads the detections' answers kept from the last run and asks no SQL; anything
the answers depend on (a new log file, a threshold, a filter, the summaries a snapshot needs) makes it ask again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app
from kmsguard.timings import Timings
from kmsguard.trail import answers
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.detections import Params
from kmsguard.trail.sources import Filters
from kmsguard.trail.synth import event, write_trail_files

from . import scenario as sc

ASKED = "detections (SQL)"  # the stage in which the engine is asked the SQL


def _run(logs: Path, cache: Path, **kw: object) -> tuple[TrailReport, Timings]:
    clock = Timings()
    snap = kw.pop("snapshot", sc.snapshot())
    rep = analyze([str(logs)], snap, TrailOptions(cache_dir=cache, workers=1, timings=clock, **kw))  # type: ignore[arg-type]
    return rep, clock


def _view(r: TrailReport) -> tuple[object, ...]:
    findings = sorted((f.check_id, f.resource_arn, f.message, json.dumps(f.evidence, default=str)) for f in r.findings)
    return (r.events, r.window, findings, [k.__dict__ for k in r.keys], r.principals, r.hourly, r.notes, r.engine)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    sc.write_logs(root)
    return root


def test_a_rerun_over_unchanged_logs_asks_no_sql_and_reports_the_same(logs: Path, tmp_path: Path) -> None:
    first, clock1 = _run(logs, tmp_path / "cache")
    second, clock2 = _run(logs, tmp_path / "cache")
    assert ASKED in clock1.stages and "load the cache" in clock1.stages
    assert ASKED not in clock2.stages and "load the cache" not in clock2.stages
    assert first.findings and _view(second) == _view(first)
    assert second.reused and not first.reused
    assert second.ingest.files_cached == first.ingest.files_read > 0


def test_a_new_log_file_is_asked_again_and_counted(logs: Path, tmp_path: Path) -> None:
    first, _ = _run(logs, tmp_path / "cache")
    late = datetime(2024, 9, 1, tzinfo=UTC)
    more = [event("Decrypt", sc.K_BUSY, sc.APP, late + timedelta(seconds=i)) for i in range(3)]
    write_trail_files(logs / "more", more)
    second, clock = _run(logs, tmp_path / "cache")
    assert ASKED in clock.stages
    assert second.events == first.events + 3


@pytest.mark.parametrize(
    "change",
    [
        {"params": Params(burst_threshold=50)},  # a threshold: the burst on K_PROBED (8 failures) is gone
        {"since": datetime(2024, 3, 1, tzinfo=UTC)},  # a filter
        {"snapshot": None},  # no snapshot: fewer summaries asked
    ],
    ids=["threshold", "filter", "snapshot"],
)
def test_what_the_answers_depend_on_is_asked_again(logs: Path, tmp_path: Path, change: dict[str, object]) -> None:
    _run(logs, tmp_path / "cache")
    changed, clock = _run(logs, tmp_path / "cache", **change)
    fresh, _ = _run(logs, tmp_path / "fresh", **change)
    assert ASKED in clock.stages
    assert _view(changed) == _view(fresh)


def test_a_damaged_answers_file_is_asked_again(logs: Path, tmp_path: Path) -> None:
    first, _ = _run(logs, tmp_path / "cache")
    (kept,) = (tmp_path / "cache" / "answers").glob("*.msgpack")
    kept.write_bytes(kept.read_bytes()[:40])
    second, clock = _run(logs, tmp_path / "cache")
    assert ASKED in clock.stages
    assert _view(second) == _view(first)


def test_answers_that_would_not_read_back_equal_are_not_kept(tmp_path: Path) -> None:
    # A naive datetime (Spark's rows) comes back from MessagePack as text: keeping it would change a re-run.
    naive = answers.Answers({"events": 1}, {"admin": ([{"t": datetime(2024, 1, 1)}], [])}, {}, "spark")
    aware = answers.Answers({"events": 1}, {"admin": ([{"t": datetime(2024, 1, 1, tzinfo=UTC)}], [])}, {}, "duckdb")
    assert not answers.save(tmp_path, "k1", naive) and answers.load(tmp_path, "k1") is None
    assert answers.save(tmp_path, "k2", aware) and answers.load(tmp_path, "k2") == aware


def test_only_the_newest_answers_are_kept(tmp_path: Path) -> None:
    for i in range(answers.KEEP + 3):
        assert answers.save(tmp_path, f"k{i}", answers.Answers({"events": i}, {}, {}, "duckdb"))
    assert len(list((tmp_path / "answers").glob("*.msgpack"))) == answers.KEEP
    assert answers.load(tmp_path, f"k{answers.KEEP + 2}") is not None and answers.load(tmp_path, "k0") is None


def test_the_fingerprint_follows_every_part(tmp_path: Path) -> None:
    part = tmp_path / "a.parquet"
    part.write_bytes(b"1")
    f = Filters(None, None, frozenset(), frozenset())
    before = answers.fingerprint([str(part)], f, ["q"], "duckdb")
    part.write_bytes(b"22")  # a part rewritten (a failed file's rows dropped)
    assert answers.fingerprint([str(part)], f, ["q"], "duckdb") != before
    assert answers.fingerprint([str(tmp_path / "gone.parquet")], f, ["q"], "duckdb") is None


def test_timings_names_every_stage_on_stderr(logs: Path, tmp_path: Path) -> None:
    args = ["trail", "analyze", str(logs), "--cache", str(tmp_path / "c"), "-f", "json", "-q", "--timings"]
    args += ["-o", str(tmp_path / "out.json"), "--fail-on", "never"]
    runner = CliRunner()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    for stage in ("list sources", "ingest (decode, write the cache)", "detections (SQL)", "findings", "report"):
        assert stage in res.stderr
    assert "total" in res.stderr
    again = runner.invoke(app, args)
    assert "answers kept from the last run" in again.stderr and "detections (SQL)" not in again.stderr
    assert "its detections' answers reused" in again.stderr and "answers reused" not in res.stderr


def test_the_fingerprint_follows_the_sql_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    # A query's text can change without detections.py changing (the names it lists come from trail/schema.py).
    from kmsguard.trail import detections
    from kmsguard.trail.analyze import _queries, _summaries

    f = Filters(None, None, frozenset(), frozenset())
    before = _queries(Params(), _summaries(None), f)
    assert _queries(Params(), _summaries(None), f) == before
    assert _queries(Params(spike_k=5.0), _summaries(None), f) != before
    assert _queries(Params(), _summaries(None), Filters(None, None, frozenset({"111122223333"}), frozenset())) != before
    monkeypatch.setitem(detections.AGGREGATES, "rare_events", "SELECT * FROM events WHERE error_code IS NOT NULL")
    assert _queries(Params(), _summaries(None), f) != before
