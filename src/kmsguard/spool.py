"""Findings on disk: a scan's findings written as they are judged, read back in report order.

A scan of a large Organization judges millions of findings (about 16 per key). Held as objects until the report
is written they were most of the scan's memory (issue 16: 0.12 MiB per key). ``FindingSpool`` keeps at most
``run_size`` of them in memory: each full batch is sorted by ``finding_sort_key`` and written to its own file (a
run) as one JSON line per finding; ``iter_sorted`` merges the runs back in that order (a k-way merge, stable:
findings that sort equal come back in the order they were added, exactly as ``sorted`` leaves them in memory),
so a streamed report is byte for byte the report of the same findings held in memory. The counts the summary
and the exit code need are kept as findings arrive (``Tally``).

A finding's evidence is written as the JSON report writes it (msgspec, anything else as its ``str``), so what
comes back is what any report would have shown.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from kmsguard.model.finding import Finding, FindingLocation, Severity, Status
from kmsguard.model.result import ScanResult, Tally, finding_sort_key
from kmsguard.model.usage import TrailUsage

RUN_SIZE = 20_000  # findings per run: ~20 MB of objects at a time, a few MB on disk
MAX_RUNS = 64  # past this many runs, they are merged into one so the final merge keeps few files open
_ENCODER = msgspec.json.Encoder(enc_hook=str)
_DECODER = msgspec.json.Decoder()
# Every field of a Finding, in declaration order: a field added to Finding is spooled without a change here.
_FIELDS = tuple(Finding.model_fields)


def _encode(f: Finding) -> bytes:
    row = [getattr(f, name) for name in _FIELDS]
    row = [v.model_dump() if isinstance(v, FindingLocation) else v for v in row]  # enums encode as their values
    return _ENCODER.encode(row) + b"\n"


def _decode(line: bytes) -> Finding:
    row: list[Any] = _DECODER.decode(line)
    fields = dict(zip(_FIELDS, row, strict=True))
    fields["status"] = Status(fields["status"])
    fields["severity"] = Severity(fields["severity"])
    if fields["location"] is not None:
        fields["location"] = FindingLocation.model_validate(fields["location"])
    # model_construct as the registry does: these fields were a valid Finding when they were written.
    return Finding.model_construct(**fields)


def _read_run(path: Path) -> Iterator[Finding]:
    with path.open("rb") as fh:
        for line in fh:
            yield _decode(line)


class FindingSpool:
    """Findings added one at a time, kept on disk in sorted runs under a private temporary directory (removed by
    ``close``, also on error: use it as a context manager)."""

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, run_size: int = RUN_SIZE, max_runs: int = MAX_RUNS
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="kmsguard-findings-", dir=directory))
        self._run_size, self._max_runs = run_size, max_runs
        self._buffer: list[Finding] = []
        self._runs: list[Path] = []
        self._seq = 0
        self.tally = Tally()

    def __enter__(self) -> FindingSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def add(self, f: Finding) -> None:
        self.tally.add(f)
        self._buffer.append(f)
        if len(self._buffer) >= self._run_size:
            self._flush()

    def extend(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.add(f)

    def _new_run(self) -> tuple[Path, IO[bytes]]:
        self._seq += 1
        path = self._dir / f"run-{self._seq:06}.jsonl"
        return path, path.open("wb")

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=finding_sort_key)  # stable: equal findings keep the order they came in
        path, fh = self._new_run()
        with fh:
            fh.writelines(_encode(f) for f in self._buffer)
        self._buffer = []
        self._runs.append(path)
        if len(self._runs) > self._max_runs:
            self._compact()

    def _compact(self) -> None:
        """Merge every run so far into one (they are in order of addition, so the merge stays stable)."""
        path, fh = self._new_run()
        with fh:
            fh.writelines(_encode(f) for f in self._merged())
        for old in self._runs:
            old.unlink()
        self._runs = [path]

    def _merged(self) -> Iterator[Finding]:
        # heapq.merge takes equal items from earlier iterables first: runs are listed in the order they were
        # written, so ties keep their order of addition.
        return heapq.merge(*(_read_run(p) for p in self._runs), key=finding_sort_key)

    def iter_sorted(self) -> Iterator[Finding]:
        """Every finding added, in ``finding_sort_key`` order; can be read more than once."""
        self._flush()
        return self._merged()


class SpooledResult:
    """A ScanResult whose findings live in a ``FindingSpool``: what the streamed reports (``report.write``) and
    the exit code read, without the findings in memory."""

    def __init__(
        self,
        spool: FindingSpool,
        *,
        kmsguard_version: str,
        scanned_at: datetime,
        accounts: list[str],
        regions: list[str],
        trail_usage: TrailUsage | None = None,
    ) -> None:
        self.spool = spool
        self.kmsguard_version = kmsguard_version
        self.scanned_at = scanned_at
        self.accounts = accounts
        self.regions = regions
        self.trail_usage = trail_usage

    def tally(self) -> Tally:
        return self.spool.tally

    def iter_sorted(self) -> Iterator[Finding]:
        return self.spool.iter_sorted()

    def materialize(self) -> ScanResult:
        """The findings in memory, for the formats that lay a report out as a whole (tables, Markdown, ...)."""
        return ScanResult(
            kmsguard_version=self.kmsguard_version,
            scanned_at=self.scanned_at,
            accounts=self.accounts,
            regions=self.regions,
            findings=list(self.iter_sorted()),
            trail_usage=self.trail_usage,
        )
