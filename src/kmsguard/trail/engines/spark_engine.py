"""Spark: the same detection SQL as Spark SQL over the same Parquet cache, on a cluster or in local mode.

Local files are decoded on this machine by the decoder pool (``cache.ingest``) before Spark is asked anything.
Files in S3 are decoded where Spark runs: ``run_units`` hands each unit of files to a Spark task that runs
``cache.ingest_unit`` (the decoder the DuckDB engine uses) and writes its Parquet part into the cache directory,
which on a cluster must be storage the driver and every executor see (a shared mount). The detections then read
the parts with Spark's Parquet reader.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from kmsguard.aws.options import AwsOptions
from kmsguard.trail.decode import FileStats
from kmsguard.trail.detections import dup_ids_sql, events_view
from kmsguard.trail.sources import Filters, LogFile


def _spark_schema() -> Any:
    from pyspark.sql import types as T

    from kmsguard.trail.schema import ARROW_SCHEMA

    mapping = {
        "string": T.StringType(),
        "int64": T.LongType(),
        "bool": T.BooleanType(),
        "timestamp[us, tz=UTC]": T.TimestampType(),
    }
    return T.StructType([T.StructField(f.name, mapping[str(f.type)], True) for f in ARROW_SCHEMA])


def _run_unit(args: tuple[list[LogFile], str, AwsOptions | None]) -> list[FileStats]:
    from kmsguard.trail.cache import ingest_unit

    files, part, aws = args
    return ingest_unit(files, part, aws)


# Spark's defaults are for tables of billions of rows: adaptive execution (which merges small shuffle partitions)
# is switched off for cached tables, which the run's prepared tables are, so each of its ~40 aggregates ran
# spark.sql.shuffle.partitions (200) tasks whatever the data: 4 minutes for 2,700 events on 2 cores. Settings from
# kmsguard.yaml (``trail.spark.conf``) or --spark-conf override these.
_LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
_QUIET = f"-Dlog4j2.configurationFile={_LOG_CONFIG.as_uri()}"  # Spark's log: errors only (the file says why)
DEFAULT_CONF = {
    "spark.driver.extraJavaOptions": _QUIET,
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}
_LOCAL = re.compile(r"local(?:\[(\d+|\*)(?:,\d+)?\])?")


def local_conf(master: str) -> dict[str, str]:
    """What local mode runs better with: a shuffle partition per thread (1M events on 2 cores: 34 s at 2, 38 s at 8,
    minutes at 200); the JIT's first tier only, since the JVM lives for one run and its second tier costs more CPU
    than it saves (67 CPU seconds instead of 90); and a code cache large enough for the code Spark generates per
    query (the default filled mid-run and the JIT switched itself off). Nothing for a cluster's master."""
    m = _LOCAL.fullmatch(master)
    if m is None:
        return {}
    threads = (os.cpu_count() or 1) if m.group(1) in (None, "*") and master != "local" else int(m.group(1) or 1)
    return {
        "spark.sql.shuffle.partitions": str(max(1, threads)),
        "spark.driver.extraJavaOptions": f"{_QUIET} -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m",
    }


class SparkEngine:
    name = "spark"
    parallel = 8

    def __init__(self, session: Any = None, master: str = "local[*]", conf: dict[str, str] | None = None) -> None:
        self._owns = session is None
        if session is None:
            from pyspark.sql import SparkSession

            # Spark's Python workers must import kmsguard: run them on this interpreter.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            if _LOCAL.fullmatch(master):  # one machine: bind to loopback, without Spark's warning about the host name
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = SparkSession.builder.master(master).appName("kmsguard-trail")
            settings = {**DEFAULT_CONF, **local_conf(master), **(conf or {})}
            for name, value in settings.items():
                builder = builder.config(name, value)
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
        self.spark = session

    def run_units(self, units: list[tuple[list[LogFile], str, AwsOptions | None]]) -> list[list[FileStats]]:
        """Decode units of files in Spark tasks (one task each); returns each unit's file stats."""
        if not units:
            return []
        rdd = self.spark.sparkContext.parallelize(units, len(units))
        return list(rdd.map(_run_unit).collect())

    def load(self, parts: list[str], filters: Filters) -> None:
        schema = _spark_schema()
        df = self.spark.read.schema(schema).parquet(*parts) if parts else self.spark.createDataFrame([], schema)
        df.createOrReplaceTempView("raw_events")
        self.materialize("dup_ids", dup_ids_sql("raw_events"))
        # As DuckDB: without duplicated ids, ``events`` is the filtered rows, with no window over every event.
        dups = bool(self.spark.sql("SELECT count(*) AS n FROM dup_ids").collect()[0]["n"])
        if dups:  # cached: each query would otherwise run the deduplicating window again
            self.materialize("events", events_view("raw_events", filters, dups))
        else:  # a view: each query reads only the Parquet columns it needs, cheaper than caching all of them
            self._drop("events")
            self.spark.sql(f"CREATE TEMP VIEW events AS {events_view('raw_events', filters, dups)}")

    def register_hours(self, start: int, end: int) -> None:
        start -= start % 3600
        self.spark.sql(
            f"CREATE OR REPLACE TEMP VIEW hours AS SELECT explode(sequence(CAST({int(start)} AS BIGINT), "
            f"CAST({int(end)} AS BIGINT), CAST(3600 AS BIGINT))) AS hour"
        )

    def materialize(self, name: str, sql: str) -> None:
        self._drop(name)
        self.spark.sql(f"CACHE TABLE {name} AS {sql}")

    def _drop(self, name: str) -> None:
        """``name`` gone, cached or not: CACHE TABLE ... AS refuses a name an earlier run of the session left."""
        self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
        self.spark.sql(f"DROP VIEW IF EXISTS {name}")

    def query(self, sql: str) -> list[dict[str, Any]]:
        return [r.asDict() for r in self.spark.sql(sql).collect()]

    def close(self) -> None:
        if self._owns:  # pragma: no cover - tests share one session
            self.spark.stop()
