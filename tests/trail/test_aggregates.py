"""The summaries and detections that read the materialised aggregates (usage_agg, hourly_agg) give exactly what
their per-event definitions give.

The reference queries below are the definitions, written directly over ``events`` (one pass per question,
as the first version ran them). They are the specification the aggregate form must keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kmsguard.trail import cache, detections
from kmsguard.trail.detections import HUMAN, Params
from kmsguard.trail.engines.duckdb_engine import DuckDBEngine
from kmsguard.trail.sources import Filters, list_sources
from kmsguard.trail.synth import write_trail_files

from . import scenario as sc
from .conftest import SAMPLES

REFERENCE = {
    "key_usage": f"""
        SELECT key_arn, min(key_account) AS key_account, count(*) AS calls,
               sum(CASE WHEN is_crypto THEN 1 ELSE 0 END) AS crypto_calls,
               sum(CASE WHEN error_code IS NOT NULL THEN 1 ELSE 0 END) AS errors,
               count(DISTINCT CASE WHEN {HUMAN} THEN principal END) AS principals,
               count(DISTINCT CASE WHEN {HUMAN} THEN principal_account END) AS accounts,
               count(DISTINCT region) AS regions,
               min(event_ts) AS first_ts, max(event_ts) AS last_ts,
               max(CASE WHEN is_crypto AND error_code IS NULL THEN event_ts END) AS last_crypto_ts
        FROM events WHERE key_arn IS NOT NULL GROUP BY key_arn""",
    "key_actions": """
        SELECT key_arn, event_name, count(*) AS calls,
               sum(CASE WHEN error_code IS NOT NULL THEN 1 ELSE 0 END) AS errors
        FROM events WHERE key_arn IS NOT NULL GROUP BY key_arn, event_name""",
    "principal_keys": """
        SELECT principal, min(principal_type) AS principal_type, min(principal_account) AS principal_account,
               key_arn, count(*) AS calls, sum(CASE WHEN error_code IS NOT NULL THEN 1 ELSE 0 END) AS errors
        FROM events WHERE key_arn IS NOT NULL AND principal IS NOT NULL GROUP BY principal, key_arn""",
    "use_pairs": f"""
        SELECT key_arn, principal, min(principal_arn) AS principal_arn, min(principal_type) AS principal_type,
               min(principal_account) AS principal_account, event_name, coalesce(invoked_by, '') AS invoked_by,
               count(*) AS calls, min(event_ts) AS first_ts, max(event_ts) AS last_ts
        FROM events
        WHERE error_code IS NULL AND key_arn LIKE 'arn:%' AND {HUMAN} AND principal IS NOT NULL AND is_crypto
        GROUP BY key_arn, principal, event_name, coalesce(invoked_by, '')""",
    # Every key's hourly crypto calls; the summary keeps the busiest HOURLY_TOP_KEYS keys of these.
    "hourly": """
        SELECT key_arn, event_ts - event_ts % 3600 AS hour, count(*) AS calls
        FROM events WHERE key_arn IS NOT NULL AND is_crypto GROUP BY key_arn, event_ts - event_ts % 3600""",
}

# Detections whose groups now come from usage_agg/hourly_agg, by their per-event definition.
_KEY_T0 = "t AS (SELECT key_arn AS tk, min(event_ts) AS t0 FROM events WHERE key_arn IS NOT NULL GROUP BY key_arn)"
_USE = f"key_arn IS NOT NULL AND error_code IS NULL AND {HUMAN}"


def reference_detections(p: Params) -> dict[str, str]:
    learn = int(p.learn_days * 86400)
    return {
        "new_principal": f"""
            WITH {_KEY_T0} SELECT b.key_arn, b.principal, min(b.principal_account) AS account,
                   min(b.event_ts) AS first_ts, min(t.t0) AS key_t0, count(*) AS calls
            FROM events b JOIN t ON b.key_arn = t.tk WHERE {_USE} AND principal IS NOT NULL
            GROUP BY b.key_arn, b.principal HAVING min(b.event_ts) >= min(t.t0) + {learn}""",
        "new_account": f"""
            WITH {_KEY_T0} SELECT b.key_arn, b.principal_account, min(b.event_ts) AS first_ts,
                   count(*) AS calls, min(t.t0) AS key_t0, count(DISTINCT b.principal) AS principals
            FROM events b JOIN t ON b.key_arn = t.tk WHERE {_USE} AND principal_account IS NOT NULL
            GROUP BY b.key_arn, b.principal_account HAVING min(b.event_ts) >= min(t.t0) + {learn}""",
        "cross_account": f"""
            SELECT key_arn, principal_account, min(key_account) AS key_account, count(*) AS calls,
                   count(DISTINCT principal) AS principals, min(event_ts) AS first_ts, max(event_ts) AS last_ts
            FROM events WHERE {_USE} AND principal_account IS NOT NULL AND key_account IS NOT NULL
                  AND principal_account <> key_account
            GROUP BY key_arn, principal_account""",
    }


def _rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Order-free and type-free (DuckDB sums are HUGEINT, counts BIGINT): sorted tuples of plain values."""
    return sorted(tuple(int(v) if isinstance(v, int) else v for v in r.values()) for r in rows)


def _engine(root: Path, cache_dir: Path) -> DuckDBEngine:
    files = list_sources([str(root)])
    _, parts = cache.ingest(files, cache_dir, workers=1)
    engine = DuckDBEngine()
    engine.load(parts, Filters())
    cov = engine.query(detections.COVERAGE)[0]
    engine.register_hours(int(cov["t0"]), int(cov["t1"]))
    detections.prepare(engine)
    return engine


@pytest.fixture(scope="module", params=["scenario", "delivered_twice", "samples", "sans_lab"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "scenario":
        root = tmp_path_factory.mktemp("logs")
        sc.write_logs(root)
    elif request.param == "delivered_twice":  # every event in two files: the duplicates take their own path
        root = tmp_path_factory.mktemp("logs")
        recs = sc.records()
        write_trail_files(root, recs)
        write_trail_files(root, recs)
    elif request.param == "samples":
        root = SAMPLES
    else:
        root = request.getfixturevalue("sans_lab")
    eng = _engine(root, tmp_path_factory.mktemp("cache"))
    yield eng
    eng.close()


def test_summaries_equal_their_per_event_definitions(engine: DuckDBEngine) -> None:
    for name in ("key_usage", "key_actions", "principal_keys", "use_pairs"):
        got = engine.query(detections.SUMMARIES[name])
        assert got, name  # the data exercises every summary
        assert _rows(got) == _rows(engine.query(REFERENCE[name])), name


def test_hourly_is_the_busiest_keys_in_order(engine: DuckDBEngine) -> None:
    every = engine.query(REFERENCE["hourly"])
    totals: dict[str, int] = {}
    for r in every:
        totals[r["key_arn"]] = totals.get(r["key_arn"], 0) + int(r["calls"])
    busiest = sorted(totals, key=lambda k: (-totals[k], k))[: detections.HOURLY_TOP_KEYS]
    want = sorted((r["key_arn"], int(r["hour"]), int(r["calls"])) for r in every if r["key_arn"] in busiest)
    got = [(r["key_arn"], int(r["hour"]), int(r["calls"])) for r in engine.query(detections.SUMMARIES["hourly"])]
    assert got == want  # ordered by key and hour, no Python sort needed


def test_hourly_keeps_only_the_busiest_keys(tmp_path: Path) -> None:
    """More keys than the cap: the quietest fall out of the chart data, never the busiest."""
    from datetime import timedelta

    from kmsguard.trail.synth import event, key_arn, write_trail_files

    from .conftest import T0, user

    n = detections.HOURLY_TOP_KEYS + 5
    recs = [
        event("Decrypt", key_arn("111122223333", "us-east-1", i), user("app"), T0 + timedelta(minutes=j))
        for i in range(n)
        for j in range(i + 1)  # key i is used i + 1 times
    ]
    write_trail_files(tmp_path / "logs", recs)
    eng = _engine(tmp_path / "logs", tmp_path / "cache")
    try:
        keys = {r["key_arn"] for r in eng.query(detections.SUMMARIES["hourly"])}
    finally:
        eng.close()
    assert keys == {key_arn("111122223333", "us-east-1", i) for i in range(5, n)}


def test_detections_from_aggregates_equal_their_per_event_definitions(engine: DuckDBEngine) -> None:
    p = Params()
    by_name = {d.name: d for d in detections.all_detections(p)}
    for name, sql in reference_detections(p).items():
        got = engine.query(by_name[name].groups_sql())
        assert _rows(got) == _rows(engine.query(sql)), name


def test_duplicate_ids_found_through_the_hash(engine: DuckDBEngine) -> None:
    exact = engine.query(
        "SELECT event_id FROM raw_events WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1"
    )
    assert _rows(engine.query("SELECT * FROM dup_ids")) == _rows(exact)
