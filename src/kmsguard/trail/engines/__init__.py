"""Where the detections run: DuckDB embedded (the default) or Spark (``--engine spark``).

Both expose the same small surface: load the cache's parts as a view ``events`` (with the run's filters),
build the ``hours`` calendar, materialise a query as a table, and run a query returning rows as dicts.
The SQL is shared (detections.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from kmsguard.trail.sources import Filters

T = TypeVar("T")
R = TypeVar("R")


class Engine(Protocol):
    name: str
    # How many independent queries to send at once. DuckDB: 1 (one connection; it parallelises inside a query).
    # Spark: several, so that independent queries' stages share the cores a lone query leaves idle between its own
    # stages and while the driver plans it.
    parallel: int

    def load(self, parts: list[str], filters: Filters) -> None: ...

    def register_hours(self, start: int, end: int) -> None: ...

    def materialize(self, name: str, sql: str) -> None: ...

    def query(self, sql: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def each(engine: Engine, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``fn`` over ``items`` (independent queries), ``engine.parallel`` at a time, results in order."""
    todo = list(items)
    if engine.parallel <= 1 or len(todo) <= 1:
        return [fn(x) for x in todo]
    with ThreadPoolExecutor(max_workers=min(engine.parallel, len(todo))) as pool:
        return list(pool.map(fn, todo))


def make_engine(name: str, **options: Any) -> Engine:
    if name == "duckdb":
        from kmsguard.trail.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(**options)
    if name == "spark":
        from kmsguard.trail.engines.spark_engine import SparkEngine

        return SparkEngine(**options)
    raise ValueError(f"--engine: {name!r} is not one of duckdb, spark")
