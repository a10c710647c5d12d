"""DuckDB over the Parquet cache: embedded, multi-threaded, and the default engine."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from kmsguard.trail.detections import dedup_sql, dup_ids_sql, events_view
from kmsguard.trail.schema import ARROW_SCHEMA
from kmsguard.trail.sources import Filters

# DuckDB's working memory; beyond it, sorts, aggregates and windows spill to ``temp_directory``. DuckDB's own
# default (80% of the machine's memory) let one hostile file, a megabyte of gzip holding millions of copies of
# one event id, take gigabytes; analyses of millions of ordinary events stay below this limit.
MEMORY_LIMIT = "128MB"


class DuckDBEngine:
    name = "duckdb"
    parallel = 1

    def __init__(
        self, threads: int | None = None, memory_limit: str | None = MEMORY_LIMIT, temp_directory: str | None = None
    ) -> None:
        self.con = duckdb.connect(":memory:")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        if temp_directory:  # else DuckDB's default: ``.tmp`` in the working directory
            self.con.execute("SET temp_directory = ?", [temp_directory])
        self._empty = pa.table({f.name: pa.array([], f.type) for f in ARROW_SCHEMA}, schema=ARROW_SCHEMA)

    def load(self, parts: list[str], filters: Filters) -> None:
        if parts:
            files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in parts) + "]"
            self.con.execute(f"CREATE OR REPLACE VIEW raw_events AS SELECT * FROM read_parquet({files})")
        else:
            self.con.register("raw_events", self._empty)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dup_ids AS {dup_ids_sql('raw_events')}")
        row = self.con.execute("SELECT count(*) FROM dup_ids").fetchone()
        dups = bool(row and row[0])
        if dups:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE deduped AS {dedup_sql('raw_events', filters)}")
        view = events_view("raw_events", filters, dups, "deduped" if dups else None)
        self.con.execute(f"CREATE OR REPLACE VIEW events AS {view}")

    def register_hours(self, start: int, end: int) -> None:
        start -= start % 3600
        self.con.execute(
            f"CREATE OR REPLACE TABLE hours AS SELECT range AS hour FROM range({int(start)}, {int(end) + 1}, 3600)"
        )

    def materialize(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def query(self, sql: str) -> list[dict[str, Any]]:
        cur = self.con.execute(sql)
        cols = [d[0] for d in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()
