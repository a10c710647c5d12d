"""The fuzz suites' one property, their example budget, and the tally RELIABILITY.md's figures come from.

The property (issue 14, section 6): whatever bytes a loader is given, the real command ends with exit 2 naming
the file, or with a normal result (exit 0 or 1); never a traceback, never an unexpected exception. The CLI runs
in-process through typer's CliRunner with ``catch_exceptions=False``, so an exception reaches hypothesis, which
shrinks the input that raised it to a minimal reproduction.
"""

from __future__ import annotations

import json
import os
import resource
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from typer.testing import CliRunner, Result

from kmsguard.cli.main import app

# KMSGUARD_FUZZ_SCALE=10 multiplies every budget (a deeper run than CI's; scripts/reliability passes it on).
SCALE = float(os.environ.get("KMSGUARD_FUZZ_SCALE", "1"))
# Where each test appends what it ran (one JSON line per test), for scripts/reliability; unset: nothing written.
STATS_ENV = "KMSGUARD_FUZZ_STATS"
RESULT = frozenset({0, 1})  # a normal result: clean, or failing findings / ERROR findings
INPUT_ERROR = 2


def budget(examples: int) -> settings:
    """A fixed, derandomized example budget: the same inputs on every run and machine, so CI time is known and a
    failure reproduces. No example database: nothing is written under .hypothesis/."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        report_multiple_bugs=False,  # the first bug, shrunk: shrinking every distinct one costs minutes
        # Seeds are real files (tens of KB) and every example runs a whole command: both are the point here.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


@dataclass
class Tally:
    """How many times each loader was run and how each run ended (exit code -> count)."""

    loader: str
    exits: Counter[int] = field(default_factory=Counter)

    def record(self, code: int) -> None:
        self.exits[code] += 1

    def write(self, nodeid: str) -> None:
        stat({"test": nodeid, "loader": self.loader, "runs": sum(self.exits.values()), "exits": dict(self.exits)})


def stat(line: dict[str, object]) -> None:
    """Append one line to $KMSGUARD_FUZZ_STATS (scripts/reliability reads them); nothing when it is unset."""
    path = os.environ.get(STATS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:  # one short line per append: safe across xdist workers
            fh.write(json.dumps(line) + "\n")


_runner = CliRunner()


def run(
    tally: Tally, args: Sequence[str | Path], named: Sequence[Path | str], allowed: frozenset[int] = RESULT
) -> Result:
    """Run ``kmsguard ARGS`` and check the property; ``named``: what an input error must name (the file, or for a
    directory of logs either the directory or the file in it)."""
    result = _runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    tally.record(result.exit_code)
    check(result, named, allowed)
    return result


def check(result: Result, named: Sequence[Path | str], allowed: frozenset[int] = RESULT) -> None:
    out = result.output
    assert "Traceback" not in out, out[-3000:]
    assert result.exit_code in allowed | {INPUT_ERROR}, f"exit {result.exit_code}: {out[-3000:]}"
    if result.exit_code == INPUT_ERROR:
        names = [Path(n).name for n in named]
        assert any(n in out for n in names), f"exit 2 without naming {names}: {out[-2000:]}"


def vm_size() -> int:
    """This process's virtual memory size in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextmanager
def memory_guard(extra_mb: int) -> Iterator[None]:
    """Let this process map at most ``extra_mb`` more while the block runs (RLIMIT_AS, soft limit only, restored
    after). The in-process trail suites need it: one bad input once made DuckDB allocate 8.1 GB, and the machine
    running the tests is shared. Going over the guard is a MemoryError (or DuckDB's out-of-memory error), which
    fails the example like any other unexpected exception."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_size() + extra_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
