"""The one pipeline: Snapshot -> checks -> mutes -> ScanResult. Collection lives in kmsguard.collect."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from kmsguard import __version__
from kmsguard.checks.registry import CheckSpec, iter_checks, load_builtin_checks, select_checks
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.mutes import Muter


def warn_stderr(message: str) -> None:
    sys.stderr.write(f"kmsguard: warning: {message}\n")


def judge(
    snapshot: Snapshot,
    config: ScanConfig | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    *,
    today: date | None = None,
    warn: Callable[[str], None] = warn_stderr,
) -> ScanResult:
    """Run the selected checks, each with its own options from ``config.checks``, then apply the mutes.

    ``today`` decides which mutes have expired (default: today in UTC). ``warn`` receives one line per
    expired mute that still matched a finding; by default it goes to stderr so that every command that
    judges (scan, report, export, demo) says so without each of them remembering to.
    """
    findings = list(judge_stream(snapshot, config, only, skip, today=today, warn=warn))
    return ScanResult(**scanned(snapshot), findings=findings)


def family(name: str) -> list[str]:
    """The ids of one family's checks (``trail analyze`` judges only the trail family)."""
    return sorted(cid for cid, spec in load_builtin_checks().items() if spec.family == name)


def scanned(snapshot: Snapshot) -> dict[str, Any]:
    """What a result says about its scan besides the findings: version, time, accounts, regions."""
    return {
        "kmsguard_version": __version__,
        "scanned_at": snapshot.collected_at,
        "accounts": sorted(a.account_id for a in snapshot.accounts),
        "regions": snapshot.regions(),
    }


def judge_stream(
    snapshot: Snapshot,
    config: ScanConfig | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
    *,
    today: date | None = None,
    warn: Callable[[str], None] = warn_stderr,
) -> Iterator[Finding]:
    """``judge``'s findings one at a time, muted, in the order the checks yield them (not sorted), so a large
    scan can write them to a spool (``kmsguard.spool``) instead of holding them. The expired-mute warnings go
    to ``warn`` once the last finding has been taken."""
    config = config or ScanConfig()
    muter = Muter(config.mutes, today or datetime.now(UTC).date())
    for f in _selected(snapshot, config, select_checks(only, skip)):
        yield muter.apply(f)
    for message in muter.warnings():
        warn(message)


def run_selected(snapshot: Snapshot, config: ScanConfig, specs: Iterable[CheckSpec]) -> list[Finding]:
    """The checks of ``specs`` that ``config`` enables, each with its own options from ``config.checks``."""
    return list(_selected(snapshot, config, specs))


def _selected(snapshot: Snapshot, config: ScanConfig, specs: Iterable[CheckSpec]) -> Iterator[Finding]:
    enabled = [s for s in specs if config.enabled(s.id)]
    plain = [s for s in enabled if s.id not in config.checks]
    if plain:
        yield from iter_checks(snapshot, config, plain)
    for spec in enabled:
        if spec.id in config.checks:
            yield from iter_checks(snapshot, config.for_check(spec.id), [spec])


def mute(
    findings: list[Finding], config: ScanConfig, today: date | None = None, warn: Callable[[str], None] = warn_stderr
) -> list[Finding]:
    """``config``'s mutes applied (see ``judge``); one warning per expired mute that still matched."""
    muter = Muter(config.mutes, today or datetime.now(UTC).date())
    out = [muter.apply(f) for f in findings]
    for message in muter.warnings():
        warn(message)
    return out
