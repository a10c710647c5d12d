"""AWS's request quotas: the table (``quotas.yaml`` beside this module, with its sources) and a token bucket.

Both sides of a request use them: the emulator throttles at these quotas (``kmsguard.demo.quotas``), and the
clients kmsguard makes pace themselves below them (``kmsguard.aws.pacing``), so the figures live in one file.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kmsguard.fileio import LoadError, format_path, load_yaml, read_text

DEFAULT_QUOTAS = "default"

Clock = Callable[[], float]


# --------------------------------------------------------------------------------------------------------------
# The quota table


class QuotaFileError(ValueError):
    """A quota file kmsguard will not use; ``str()`` is one line naming the file and, where known, the line."""


@dataclass(frozen=True)
class Quota:
    """One request quota: ``rate`` requests per second per account and Region (``regions`` where it differs)."""

    service: str
    name: str
    rate: float
    operations: tuple[str, ...]
    regions: Mapping[str, float] = field(default_factory=dict)

    def rate_in(self, region: str) -> float:
        return self.regions.get(region, self.rate)


@dataclass(frozen=True)
class QuotaTable:
    """The quotas by (service, operation); an operation no quota names is unlimited."""

    quotas: tuple[Quota, ...]
    origin: str  # "quotas.yaml (built in)" or the file's path, for messages

    @functools.cached_property
    def _by_operation(self) -> dict[tuple[str, str], Quota]:
        return {(q.service, op): q for q in self.quotas for op in q.operations}

    @functools.cached_property
    def services(self) -> frozenset[str]:
        return frozenset(q.service for q in self.quotas)

    def quota_for(self, service: str, operation: str) -> Quota | None:
        return self._by_operation.get((service, operation))


def load_quotas(spec: str) -> QuotaTable:
    """``"default"`` (the built-in quotas.yaml) or a file in the same format. QuotaFileError names file and line."""
    if spec == DEFAULT_QUOTAS:
        name = "quotas.yaml (built in)"
        text = resources.files("kmsguard.aws").joinpath("quotas.yaml").read_text(encoding="utf-8")
    else:
        name = spec
        try:
            text = read_text(Path(spec))
        except LoadError as e:
            raise QuotaFileError(f"{spec}: {e}") from None
    return parse_quotas(text, name)


def parse_quotas(text: str, name: str) -> QuotaTable:
    try:
        root, data = load_yaml(text)
    except LoadError as e:
        where = f" line {e.line}:" if e.line is not None else ""
        raise QuotaFileError(f"{name}:{where} {e.reason}{': ' + e.detail if e.detail else ''}") from None
    return QuotaTable(tuple(_QuotaReader(name, root).table(data)), name)


class _QuotaReader:
    """Walks the parsed document beside its YAML nodes, so every complaint names its line."""

    def __init__(self, name: str, root: yaml.Node | None) -> None:
        self.name, self.root = name, root

    def fail(self, loc: list[str], message: str) -> QuotaFileError:
        line = self._line_of(loc)
        where = f" line {line}:" if line else ""
        return QuotaFileError(f"{self.name}:{where} {format_path(loc) or '(top level)'}: {message}")

    def _line_of(self, loc: list[str]) -> int | None:
        node, line = self.root, (self.root.start_mark.line + 1 if self.root is not None else None)
        for part in loc:
            if not isinstance(node, yaml.MappingNode):
                break
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if found is None:
                break
            node, line = found[1], found[0].start_mark.line + 1
        return line

    def mapping(self, value: Any, loc: list[str], allowed: Iterable[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(loc, "expected a mapping")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(loc, f"{key!r} is not a name")
            if allowed is not None and key not in allowed:
                raise self.fail([*loc, key], f"unknown setting {key!r} (expected {', '.join(allowed)})")
        return value

    def rate(self, value: Any, loc: list[str]) -> float:
        # bool is an int to Python, but `ListKeys: yes` is a mistake, not one request per second.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise self.fail(loc, f"a quota is a positive number of requests per second, not {value!r}")
        return float(value)

    def table(self, data: Any) -> list[Quota]:
        top = self.mapping(data, [], ["services"])
        services = self.mapping(top.get("services"), ["services"])
        quotas: list[Quota] = []
        for service, body in services.items():
            quotas += self.service(service, body, ["services", service])
        return quotas

    def service(self, service: str, body: Any, loc: list[str]) -> list[Quota]:
        body = self.mapping(body, loc, ["source", "quotas"])
        entries = self.mapping(body.get("quotas"), [*loc, "quotas"])
        quotas = [self.quota(service, name, value, [*loc, "quotas", name]) for name, value in entries.items()]
        seen: dict[str, str] = {}
        for q in quotas:
            for op in q.operations:
                if op in seen:
                    raise self.fail([*loc, "quotas", q.name], f"{op} is already limited by {seen[op]!r}")
                seen[op] = q.name
        return quotas

    def quota(self, service: str, name: str, value: Any, loc: list[str]) -> Quota:
        if not isinstance(value, dict):
            return Quota(service, name, self.rate(value, loc), (name,))
        body = self.mapping(value, loc, ["operations", "rate", "regions"])
        ops = body.get("operations", [name])
        if not isinstance(ops, list) or not ops or not all(isinstance(op, str) and op for op in ops):
            raise self.fail([*loc, "operations"], "expected a non-empty list of operation names")
        regions = self.mapping(body.get("regions", {}), [*loc, "regions"])
        return Quota(
            service,
            name,
            self.rate(body.get("rate"), [*loc, "rate"]),
            tuple(ops),
            {region: self.rate(r, [*loc, "regions", region]) for region, r in regions.items()},
        )


# --------------------------------------------------------------------------------------------------------------
# Token buckets


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; ``take()`` spends one if there is one. Thread-safe."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        # One second's worth; at least one token, or a quota under 1/s (0.25: one call in 4 s) never admits.
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
