"""Where the detections run: DuckDB embedded (the default) or Spark (``--engine spark``).

Both expose the same small surface: load the cache's parts as a view ``events`` (with the run's filters),
build the ``hours`` calendar, materialise a query as a table, and run a query returning rows as dicts.
The SQL is shared (detections.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from kmsguard.trail.sources import Filters


class Engine(Protocol):
    name: str

    def load(self, parts: list[str], filters: Filters) -> None: ...

    def register_hours(self, start: int, end: int) -> None: ...

    def materialize(self, name: str, sql: str) -> None: ...

    def query(self, sql: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def make_engine(name: str, **options: Any) -> Engine:
    if name == "duckdb":
        from kmsguard.trail.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(**options)
    if name == "spark":
        from kmsguard.trail.engines.spark_engine import SparkEngine

        return SparkEngine(**options)
    raise ValueError(f"--engine: {name!r} is not one of duckdb, spark")
