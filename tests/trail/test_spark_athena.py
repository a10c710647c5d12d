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


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_files_in_s3_are_decoded_in_spark_tasks(spark: Any, aws: Any, client: Any, tmp_path: Path) -> None:
    """Local files are decoded on this machine; files in S3 where Spark runs, in its tasks (on a cluster, the
    executors read the prefix). The findings are DuckDB's either way."""
    from kmsguard.aws.options import AwsOptions
    from kmsguard.timings import Timings
    from kmsguard.trail import sources

    s3 = client("s3")
    s3.create_bucket(Bucket="trail-bucket")
    logs = tmp_path / "logs"
    for p in sc.write_logs(logs):
        s3.put_object(Bucket="trail-bucket", Key=str(p.relative_to(logs)), Body=p.read_bytes())
    opts = AwsOptions(endpoint_url=aws.endpoint_url)
    sources._CLIENTS.clear()
    src = "s3://trail-bucket/AWSLogs/"
    clock = Timings()
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    on_spark = {"engine": "spark", "engine_options": {"session": spark}, "timings": clock}
    sp = analyze([src], None, TrailOptions(cache_dir=tmp_path / "s", aws=opts, **on_spark))  # type: ignore[arg-type]
    duck = analyze([src], None, TrailOptions(cache_dir=tmp_path / "d", aws=opts, workers=1))
    stages = list(clock.stages)
    # Spark started before the ingest (its tasks did the decoding), and ran jobs for it.
    assert stages.index("start the spark engine") < stages.index("ingest (decode, write the cache)")
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) > jobs_before
    assert sp.ingest.files_read == duck.ingest.files_read > 0 and not sp.ingest.failed
    assert sp.events == duck.events
    assert sorted(map(_key, sp.findings)) == sorted(map(_key, duck.findings))
