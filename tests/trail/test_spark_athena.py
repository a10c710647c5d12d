"""--engine spark gives the findings DuckDB gives (real local Spark). The Athena queries: test_athena_sql.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kmsguard.trail.analyze import TrailOptions, analyze

from . import scenario as sc


def _key(f: Any) -> tuple[str, str, str]:
    return (f.check_id, f.resource_arn, f.message)


@pytest.mark.slow
# Spark in local mode runs every detection as its own job: 2.5 min alone on 2 cores, past the suite's 300 s
# limit when the other worker is busy (the limit is there to catch hangs, and 15 min still does).
@pytest.mark.timeout(900)
def test_spark_engine_matches_duckdb(spark: Any, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sc.write_logs(logs)
    snap = sc.snapshot()
    duck = analyze([str(logs)], snap, TrailOptions(cache_dir=tmp_path / "d", workers=1))
    sp = analyze(
        [str(logs)], snap, TrailOptions(cache_dir=tmp_path / "s", engine="spark", engine_options={"session": spark})
    )
    assert sp.engine == "spark" and sp.ingest.files_read == duck.ingest.files_read
    assert sp.events == duck.events
    assert sorted(map(_key, sp.findings)) == sorted(map(_key, duck.findings))
    assert [k.__dict__ for k in sp.keys] == [k.__dict__ for k in duck.keys]
