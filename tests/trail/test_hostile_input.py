"""Hostile CloudTrail input (issue 14, section 3): times no CloudTrail event has, noise, gzip bombs.

Events dated before CloudTrail began, ahead of the clock or far from their file's date are skipped with their
reason rather than analysed (two records dated 0001 and 9999 once took 33 s and 8.1 GB building one row per hour of
the span); the hourly tables cover only the analysed window, capped; a chart that cannot be drawn is a note, not a
failed run; random bytes are a failed file whichever decoder reads them; and a file under 1 MB, whatever it holds,
is analysed in under 500 MB (measured in a child process: peak RSS, not time).
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kmsguard import gunzip
from kmsguard.cli.main import app
from kmsguard.config import ScanConfig
from kmsguard.model.snapshot import Snapshot
from kmsguard.model.trail import TrailFacts
from kmsguard.trail import decode, detections, fastpath
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.cache import BEFORE_CLOUDTRAIL, FAR_FROM_PATH, IN_THE_FUTURE, IngestReport
from kmsguard.trail.charts import write_charts
from kmsguard.trail.detections import Params
from kmsguard.trail.engines.duckdb_engine import DuckDBEngine
from kmsguard.trail.sources import Filters
from kmsguard.trail.synth import event, key_arn

from .conftest import ACCT, T0, user

R = "us-east-1"
KEY = key_arn(ACCT, R, 1)
BOB = user("bob")
DAY_DIR = f"AWSLogs/{ACCT}/CloudTrail/{R}/2024/05/02"


def trail_doc(times: list[str], key: str = KEY) -> bytes:
    recs = []
    for i, t in enumerate(times):
        rec = event("Decrypt", key, BOB, T0)
        rec["eventTime"], rec["eventID"] = t, f"id-{i}-{t}"
        recs.append(rec)
    return json.dumps({"Records": recs}).encode()


def run(root: Path, cache_dir: Path, **kw: Any) -> TrailReport:
    return analyze([str(root)], None, TrailOptions(cache_dir=cache_dir, workers=1, **kw))


@pytest.fixture(params=["native", "msgspec"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both decoders: the native scanner (when built) and the msgspec path alone."""
    if request.param == "native":
        request.getfixturevalue("native_scanner")
    else:
        monkeypatch.setattr(fastpath, "AVAILABLE", False)
    return str(request.param)


# --- times no CloudTrail event has ------------------------------------------------------------------------------


def test_events_outside_a_sane_window_are_skipped_with_their_reason(tmp_path: Path, decoder: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    tomorrow_and_more = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A flat file: no date in its path, so only CloudTrail's start and the clock bound its events.
    (logs / "flat.json").write_bytes(
        trail_doc(
            [
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2013-10-31T23:59:59Z",  # the day before CloudTrail began
                tomorrow_and_more,
                "2013-11-01T00:00:00Z",  # CloudTrail's first second: kept
                "2024-05-01T00:00:00Z",
            ]
        )
    )
    # A file under the layout's day 2024-05-02: two days either side are plausible, a week is not.
    day = logs / DAY_DIR / "f.json"
    day.parent.mkdir(parents=True)
    day.write_bytes(
        trail_doc(["2024-05-02T10:00:00Z", "2024-04-30T01:00:00Z", "2024-05-04T20:00:00Z", "2024-05-09T00:00:00Z"])
    )
    r = run(logs, tmp_path / "cache")
    reasons = {s.file: s.skip_reasons for s in r.ingest.stats}
    assert reasons[str(logs / "flat.json")] == {BEFORE_CLOUDTRAIL: 2, IN_THE_FUTURE: 2}
    assert reasons[str(day)] == {FAR_FROM_PATH: 1}
    assert not r.ingest.failed and r.ingest.skipped == 5
    assert r.events == 5 and r.ingest.kms_events == 5  # the counts say what the cache holds
    assert r.window == {"start": "2013-11-01T00:00:00Z", "end": "2024-05-04T20:00:00Z"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9999-12-31T23:59:59-01:00", IN_THE_FUTURE),  # the offset carries it into year 10000
        ("0001-01-01T00:00:00+01:00", BEFORE_CLOUDTRAIL),  # ... or into year 0
        ("0000-01-01T00:00:00Z", BEFORE_CLOUDTRAIL),
        ("99999-01-01T00:00:00Z", "unreadable eventTime"),
    ],
)
def test_times_beyond_what_a_datetime_holds_are_judged_not_raised(tmp_path: Path, text: str, reason: str) -> None:
    """These raised OverflowError or 'year 0 is out of range' (exit 2 with that as the message) before."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "f.json").write_bytes(trail_doc([text, "2024-05-01T00:00:00Z"]))
    r = run(logs, tmp_path / "cache")
    assert r.ingest.stats[0].skip_reasons == {reason: 1} and r.events == 1


def test_a_path_dated_year_1_or_9999_is_read(tmp_path: Path) -> None:
    """The layout's date with its slack fell outside what a datetime holds: listing the file raised OverflowError."""
    logs = tmp_path / "logs"
    for day in ("0001/01/01", "9999/12/31"):
        path = logs / f"AWSLogs/{ACCT}/CloudTrail/{R}/{day}/f.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(trail_doc(["2024-05-01T00:00:00Z"]))
    r = run(logs, tmp_path / "cache")
    assert r.ingest.files_read == 2 and r.events == 1  # the same event twice: delivered twice, analysed once


# --- the hour calendar ------------------------------------------------------------------------------------------


def test_calendar_covers_the_window_capped() -> None:
    hour = 3600
    t0 = 1_714_521_600  # 2024-05-01T00:00:00Z
    assert detections.calendar(t0 + 1800, t0 + 5 * hour) == (t0, t0 + 5 * hour)
    start, end = detections.calendar(t0 - 10 * 366 * 24 * hour, t0 + 1800)
    assert end == t0 + 1800 and start == t0 - (detections.HOURS_CAP - 1) * hour


def test_hourly_usage_covers_only_the_capped_calendar(tmp_path: Path) -> None:
    """Ten years of logs: the hourly series (charts, the scan's daily usage) keeps the last HOURS_CAP hours."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "f.json").write_bytes(trail_doc(["2014-05-01T00:00:00Z", "2024-05-01T00:00:00Z", "2024-05-01T05:00:00Z"]))
    r = run(logs, tmp_path / "cache")
    assert r.events == 3 and r.window["start"] == "2014-05-01T00:00:00Z"
    last = int(datetime(2024, 5, 1, 5, tzinfo=UTC).timestamp())
    assert [h["hour"] for h in r.hourly] == [last - 5 * 3600, last]
    assert r.keys[0].calls == 3  # the totals still count every event of the window


# Spike detection's definition, as it first ran: every hour of the calendar from the key's first use, quiet hours
# filled in as zeros, median and MAD by the engine. The detection must give exactly what this gives.
REFERENCE_SPIKES = """
WITH hourly AS (SELECT key_arn, event_name, hour, sum(n) AS n FROM hourly_agg
                WHERE is_crypto AND ok AND human GROUP BY key_arn, event_name, hour),
span AS (SELECT key_arn, event_name, min(hour) AS first_hour FROM hourly GROUP BY key_arn, event_name),
filled AS (SELECT s.key_arn, s.event_name, c.hour, coalesce(h.n, 0) AS n FROM span s
           JOIN hours c ON c.hour >= s.first_hour LEFT JOIN hourly h ON h.key_arn = s.key_arn
           AND h.event_name = s.event_name AND h.hour = c.hour),
stats AS (SELECT key_arn, event_name, median(n) AS med, count(*) AS nhours FROM filled GROUP BY key_arn, event_name),
dev AS (SELECT f.key_arn, f.event_name, median(abs(f.n - s.med)) AS mad FROM filled f
        JOIN stats s ON f.key_arn = s.key_arn AND f.event_name = s.event_name GROUP BY f.key_arn, f.event_name)
SELECT h.key_arn, h.event_name, h.hour, h.n, s.med, d.mad, s.nhours FROM hourly h
JOIN stats s ON h.key_arn = s.key_arn AND h.event_name = s.event_name
JOIN dev d ON h.key_arn = d.key_arn AND h.event_name = d.event_name
WHERE s.nhours >= {min_hours} AND h.n >= {min_count} AND h.n > s.med + {k} * greatest(1.4826 * d.mad, 1.0)
"""


def _spike_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["key_arn"], r["event_name"], int(r["hour"]), int(r["n"]), float(r["med"]), float(r["mad"]), int(r["nhours"]))
        for r in rows
    )


@pytest.mark.parametrize("seed", range(12))
def test_spike_baseline_counts_quiet_hours_without_listing_them(seed: int) -> None:
    """The detection reads the median and MAD off the busy hours' ranks; on random hourly counts (quiet stretches,
    ties, even and odd spans, busy hours that outnumber the quiet ones and the reverse) it gives exactly what filling
    every quiet hour with a zero gives. k = -1000 makes every busy hour a row, so every baseline is compared."""
    rng = random.Random(seed)
    last = 1_714_521_600
    rows = []
    for key in range(rng.randint(1, 6)):
        for action in ("Decrypt", "Encrypt")[: rng.randint(1, 2)]:
            span = rng.randint(1, 400)
            busy = rng.sample(range(span), rng.randint(1, span))
            for h in busy:
                rows.append((f"k{key}", action, last - h * 3600, rng.choice([1, 1, 2, 3, 5, 8, 60, 200])))
    engine = DuckDBEngine()
    try:
        engine.load([], Filters())
        engine.con.execute(
            "CREATE TABLE hourly_agg (key_arn VARCHAR, event_name VARCHAR, hour BIGINT, is_crypto BOOLEAN, "
            "ok BOOLEAN, human BOOLEAN, n BIGINT)"
        )
        engine.con.executemany("INSERT INTO hourly_agg VALUES (?, ?, ?, true, true, true, ?)", [list(r) for r in rows])
        engine.register_hours(min(r[2] for r in rows), last + 1800)
        p = Params(spike_k=-1000.0, spike_min_count=1, spike_min_hours=0)
        got = engine.query(detections.spikes(p).groups_sql())
        want = engine.query(REFERENCE_SPIKES.format(min_hours=0, min_count=1, k=-1000.0))
    finally:
        engine.close()
    assert _spike_rows(got) == _spike_rows(want) and len(got) == len(rows)


# --- charts -----------------------------------------------------------------------------------------------------


def _report(hours: list[int]) -> TrailReport:
    return TrailReport(
        ingest=IngestReport(),
        events=len(hours),
        window={"start": None, "end": None},
        keys=[],
        principals={BOB: {KEY: len(hours)}},
        hourly=[{"key_arn": KEY, "hour": h, "calls": 1} for h in hours],
        facts=TrailFacts(),
        snapshot=Snapshot(kmsguard_version="test", collected_at=datetime.now(UTC)),
        config=ScanConfig(),
        notes=[],
        engine="duckdb",
    )


def test_a_chart_that_cannot_be_drawn_is_left_out_and_said(tmp_path: Path) -> None:
    """matplotlib refuses dates past year 9999: that chart is left out with the reason, the others are written."""
    beyond = int(datetime(9999, 12, 31, 23, tzinfo=UTC).timestamp()) + 3600
    page, problems = write_charts(_report([beyond - 7200, beyond]), tmp_path / "charts")
    assert len(problems) == 1 and problems[0].startswith("chart usage_over_time not drawn (")
    assert sorted(p.name for p in (tmp_path / "charts").glob("*.png")) == ["top_keys.png", "top_principals.png"]
    assert "chart usage_over_time not drawn" in page.read_text()


def test_charts_that_cannot_be_written_do_not_fail_the_run(tmp_path: Path) -> None:
    """--charts naming a file, not a directory: the analysis is reported and exits as it would without charts."""
    from typer.testing import CliRunner

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "f.json").write_bytes(trail_doc(["2024-05-01T00:00:00Z"]))
    taken = tmp_path / "taken"
    taken.write_text("a file")
    args = ["trail", "analyze", str(logs), "--cache", str(tmp_path / "c"), "--workers", "1", "-f", "json"]
    res = CliRunner().invoke(app, [*args, "--charts", str(taken), "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["trail_usage"]["events"] == 1
    assert f"note: charts not written to {taken} (" in res.stderr


# --- noise ------------------------------------------------------------------------------------------------------


def noise(seed: int, size: int = 20_000) -> bytes:
    """Random bytes. Seed 27 has a line that is JSON (a lone digit): read as JSON lines, it passed as records."""
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("name", ["noise.gz", "noise.json"])
def test_random_bytes_are_a_failed_file(tmp_path: Path, decoder: str, name: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    seeds = [27, 1, 2, 3]
    for seed in seeds:
        (logs / f"{seed}-{name}").write_bytes(noise(seed))
    (logs / f"gzip-{name}").write_bytes(gzip.compress(noise(27)))  # valid gzip, noise inside
    (logs / f"magic-{name}").write_bytes(b"\x1f\x8b" + noise(5))  # a gzip header, then noise
    r = run(logs, tmp_path / "cache")
    assert len(r.ingest.failed) == len(seeds) + 2 == len(r.ingest.stats), [(s.file, s.error) for s in r.ingest.stats]
    assert r.ingest.records == 0 and r.ingest.kms_events == 0 and r.events == 0


def test_random_bytes_streamed_are_a_failed_file(tmp_path: Path, decoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed (a huge file), noise's braces look like records to the splitter: none reads, so the file failed."""
    monkeypatch.setattr(decode, "STREAM_THRESHOLD", 1000)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "noise.json").write_bytes(noise(27))
    (logs / "noise.json.gz").write_bytes(gzip.compress(noise(27)))
    r = run(logs, tmp_path / "cache")
    errors = [s.error or "" for s in r.ingest.stats]
    assert len(errors) == 2 and all(e.startswith("not JSON (") and e.endswith(", none readable)") for e in errors)


def test_a_json_lines_file_of_no_record_is_a_failed_file() -> None:
    st = decode.FileStats("x.jsonl")
    decode.decode_into(b'{"a": 1}\n7\n"text"\n', "x.jsonl", st, decode.Columns())
    assert st.error == "JSON of another shape (no line is a CloudTrail record)"


# --- gzip bombs -------------------------------------------------------------------------------------------------


def members(*parts: tuple[bytes, int]) -> bytes:
    """A multi-member gzip: each part compressed once and repeated (how a bomb is made fast)."""
    return b"".join(gzip.compress(data, 9) * times for data, times in parts)


def test_no_inflate_step_exceeds_its_bound() -> None:
    """One small compressed chunk that inflates to 64 MB comes out in pieces of at most INFLATE_STEP."""
    bomb = gzip.compress(b" " * (64 << 20), 9)
    sizes = [len(p) for p in gunzip.inflate([bomb])]
    assert sum(sizes) == 64 << 20 and max(sizes) <= gunzip.INFLATE_STEP and len(bomb) < 100_000


def test_expand_stops_at_its_limit_whatever_the_trailer_says() -> None:
    bomb = bytearray(gzip.compress(b"x" * (32 << 20), 9))
    bomb[-4:] = (100).to_bytes(4, "little")  # the trailer's size, forged small
    assert gunzip.expand(bytes(bomb), 1 << 20) is None
    data = members((b'{"Records": []}', 1), (b" ", 3))
    assert gunzip.expand(data, 1 << 20) == b'{"Records": []}   '  # every member, as gzip reads them


def test_a_long_string_costs_the_splitter_its_length_not_a_hundred_times_it() -> None:
    """The splitter's string pattern kept a backtracking position per character: 16 MB of string took 2 GB."""
    import tracemalloc

    doc = b'{"Records": [{"userAgent": "' + b"a" * (8 << 20) + b'"}, {"eventName": "x"}]}'
    tracemalloc.start()
    try:
        found = list(decode.split_records([doc]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == 2 and peak < 64 << 20, f"peak {peak >> 20} MB"


def test_a_record_larger_than_the_limit_fails_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A string that never ends: the splitter would buffer (and rescan) it whole; the file fails instead."""
    monkeypatch.setattr(decode, "STREAM_THRESHOLD", 1000)
    monkeypatch.setattr(decode, "MAX_RECORD_BYTES", 1 << 20)
    logs = tmp_path / "logs"
    logs.mkdir()
    good = json.loads(trail_doc(["2024-05-01T00:00:00Z"]))["Records"][0]
    head = b'{"Records": [' + json.dumps(good).encode() + b', {"eventVersion": "1.08", "userAgent": "'
    (logs / "f.json.gz").write_bytes(members((head, 1), (b"a" * (1 << 20), 8)))
    r = run(logs, tmp_path / "cache")
    (st,) = r.ingest.failed
    assert st.error == "a record or string larger than 1 MB after 1 records" and r.events == 0


# --- any file under 1 MB in under 500 MB ----------------------------------------------------------------------


def _dates(path: Path) -> None:
    """The issue's file: 20 KB, two records dated 0001 and 9999."""
    doc = json.loads(trail_doc(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]))
    for rec in doc["Records"]:
        rec["userAgent"] = "x" * 10_000
    path.write_text(json.dumps(doc))


def _spread(path: Path) -> None:
    """Hundreds of keys, each with an hour busy enough to be judged for spikes, first used when CloudTrail began:
    every key's baseline spans the whole window."""
    began = datetime(2013, 11, 1, 1, tzinfo=UTC)
    recs = []
    for k in range(240):
        key = key_arn(ACCT, R, k)
        recs.append(event("Decrypt", key, BOB, began + timedelta(hours=k)))
        recs += [event("Decrypt", key, BOB, T0 + timedelta(hours=k % 24, seconds=s)) for s in range(60)]
    path.write_bytes(gzip.compress(json.dumps({"Records": recs}).encode(), 9))


def _noise(path: Path) -> None:
    path.write_bytes(noise(27, 900_000))


def _whitespace_bomb(path: Path) -> None:
    """A valid empty trail file: 600 MB of spaces between its brackets."""
    path.write_bytes(members((b'{"Records": [', 1), (b" " * (8 << 20), 75), (b"]}", 1)))


def _copies_bomb(path: Path) -> None:
    """1.7 million copies of one KMS event (one event id): the duplicate removal has them all to sort."""
    rec = json.dumps(
        {
            "eventVersion": "1.08",
            "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt",
            "eventTime": "2024-05-01T00:00:00Z",
            "eventID": "same",
        }
    ).encode()
    block = b",".join([rec] * 10_000)
    path.write_bytes(members((b'{"Records": [' + rec, 1), (b"," + block, 170), (b"]}", 1)))


def _string_bomb(path: Path) -> None:
    path.write_bytes(members((b'{"Records": [{"eventVersion": "1.08", "userAgent": "', 1), (b"a" * (8 << 20), 75)))


HOSTILE = {
    "dates.json": _dates,
    "spread.json.gz": _spread,
    "noise.gz": _noise,
    "whitespace.json.gz": _whitespace_bomb,
    "copies.json.gz": _copies_bomb,
    "string.json.gz": _string_bomb,
}

# Runs a command and prints its exit code and the peak RSS (KB) of it and its children: the wrapper's only child.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "sys.stderr.buffer.write(done.stderr)\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
PEAK_LIMIT_KB = 500 * 1024


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_any_file_under_1mb_is_analysed_in_under_500mb(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    HOSTILE[name](path)
    assert path.stat().st_size < 1_000_000
    charts = tmp_path / "charts"
    cmd = [sys.executable, "-m", "kmsguard.cli.main", "trail", "analyze", str(path), "--cache", str(tmp_path / "c")]
    cmd += ["--charts", str(charts), "-f", "json", "-q"]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, timeout=600, check=False
    )
    code, peak_kb = (int(x) for x in done.stdout.split())
    assert "Traceback" not in done.stderr, done.stderr
    assert peak_kb < PEAK_LIMIT_KB, f"{name}: peak {peak_kb // 1024} MB"
    # Analysed (0: nothing failing at --fail-on low, 1: findings) with its charts, or refused as unreadable (2).
    assert code in (0, 1, 2), done.stderr
    assert (charts / "index.html").exists() or "every log file failed" in done.stderr, done.stderr
