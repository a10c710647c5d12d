"""Where a command's time goes, stage by stage (``--timings``): wall seconds per named stage, and this process's
age when the command began (interpreter start and imports), so the figures add up to what the user waited."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc/self/stat's start time, 10 ms resolution), or None
    where that cannot be read."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of the whole line: ticks since boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Timings:
    """Stages in the order they ran; a stage that runs twice adds up. ``start`` is the process's age when the
    command began."""

    def __init__(self) -> None:
        self.start = process_age()
        self.stages: dict[str, float] = {}
        self._began = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t

    def lines(self) -> list[str]:
        """One line per stage, then the rest (what no stage covered) and the total, as a process's wall time."""
        rows: list[tuple[str, float]] = []
        if self.start is not None:
            rows.append(("start-up (interpreter and imports)", self.start))
        rows += list(self.stages.items())
        spent = time.perf_counter() - self._began
        rows.append(("other", max(0.0, spent - sum(self.stages.values()))))
        total = spent + (self.start or 0.0)
        width = max(len(name) for name, _ in rows)
        out = [f"  {name:<{width}}  {secs:7.2f} s  {100 * secs / total if total else 0:5.1f} %" for name, secs in rows]
        return [*out, f"  {'total':<{width}}  {total:7.2f} s"]


__all__ = ["Timings", "process_age"]
