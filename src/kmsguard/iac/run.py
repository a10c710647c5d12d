"""Load and judge many templates, on every core: each unit is independent (a stack, a module), so a pool of
processes takes them in chunks. Below ``POOL_FROM`` sources one process does it all: starting workers costs
more than a few templates.

Workers are started with ``spawn`` (as the trail cache's are): a fork would copy whatever lock a thread of the
parent -- the progress bar's, a logging handler's -- held at that moment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context

from kmsguard.checks.registry import CheckSpec, select_checks
from kmsguard.config import ScanConfig
from kmsguard.iac.declared import IacContext, IacError
from kmsguard.iac.discover import Source, load
from kmsguard.iac.judge import judge_unit
from kmsguard.model.finding import Finding
from kmsguard.pipeline import warn_stderr

POOL_FROM = 64
CHUNK = 8
MAX_WORKERS = 8


@dataclass(frozen=True)
class Judged:
    findings: list[Finding]
    units: int


def default_workers(n_sources: int) -> int:
    return 1 if n_sources < POOL_FROM else max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def judge_sources(
    sources: Sequence[Source],
    ctx: IacContext,
    config: ScanConfig,
    specs: Sequence[CheckSpec],
    *,
    workers: int = 1,
    advance: Callable[[int], None] | None = None,
) -> Judged:
    """Every source loaded and judged (findings before mutes). IacError for the first source, in order, that
    cannot be read: a CI job must fail on it naming the file, whatever else was found."""
    at = datetime.now(UTC)
    ids = tuple(s.id for s in specs)
    jobs = [(src, ctx, config, ids, at) for src in sources]
    if workers > 1:
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                return _collect(pool.map(_one, jobs, chunksize=CHUNK), advance)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): judge here instead. Whatever a worker had already sent
            # back is judged again, so nothing is counted twice and nothing is lost.
            warn_stderr("a worker process of `iac scan` stopped; judging the templates in this process instead")
    return _collect((_one(job) for job in jobs), advance)


_Outcome = tuple[list[Finding] | None, tuple[str, int | None, str] | None]


def _collect(outcomes: object, advance: Callable[[int], None] | None) -> Judged:
    findings: list[Finding] = []
    units = 0
    for found, error in outcomes:  # type: ignore[attr-defined]
        if error is not None:
            raise IacError(*error)
        if found is not None:
            findings += found
            units += 1
        if advance is not None:
            advance(1)
    return Judged(findings, units)


def _one(job: tuple[Source, IacContext, ScanConfig, tuple[str, ...], datetime]) -> _Outcome:
    src, ctx, config, ids, at = job
    try:
        unit = load(src, ctx)
    except IacError as e:  # sent back as plain values: IacError's constructor does not survive pickling
        return None, (e.file, e.line, e.message)
    if unit is None:
        return None, None
    return judge_unit(unit, ctx, config, _specs(ids), at), None


_SPECS: dict[tuple[str, ...], list[CheckSpec]] = {}


def _specs(ids: tuple[str, ...]) -> list[CheckSpec]:
    if ids not in _SPECS:  # once per worker process
        _SPECS[ids] = select_checks(ids) if ids else []
    return _SPECS[ids]
