"""The one pipeline: Snapshot -> checks -> mutes -> ScanResult. Collection lives in kmsguard.collect."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from kmsguard import __version__
from kmsguard.checks.registry import CheckSpec, run_checks, select_checks
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.mutes import apply_mutes


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
    extra: Iterable[Finding] = (),
) -> ScanResult:
    """Run the selected checks, each with its own options from ``config.checks``, then apply the mutes.

    ``today`` decides which mutes have expired (default: today in UTC). ``warn`` receives one line per
    expired mute that still matched a finding; by default it goes to stderr so that every command that
    judges (scan, report, export, demo) says so without each of them remembering to.

    ``extra`` are findings judged elsewhere (``scan --trail``: CloudTrail detections); the same check
    selection and the same mutes apply to them.
    """
    config = config or ScanConfig()
    findings = run_selected(snapshot, config, select_checks(only, skip))
    only_set, skip_set = set(only or ()), set(skip or ())
    findings.extend(f for f in extra if (not only_set or f.check_id in only_set) and f.check_id not in skip_set)
    return ScanResult(
        kmsguard_version=__version__,
        scanned_at=snapshot.collected_at,
        accounts=sorted(a.account_id for a in snapshot.accounts),
        regions=snapshot.regions(),
        findings=mute(findings, config, today, warn),
    )


def run_selected(snapshot: Snapshot, config: ScanConfig, specs: Iterable[CheckSpec]) -> list[Finding]:
    """The checks of ``specs`` that ``config`` enables, each with its own options from ``config.checks``."""
    enabled = [s for s in specs if config.enabled(s.id)]
    findings: list[Finding] = []
    plain = [s for s in enabled if s.id not in config.checks]
    if plain:
        findings.extend(run_checks(snapshot, config, plain))
    for spec in enabled:
        if spec.id in config.checks:
            findings.extend(run_checks(snapshot, config.for_check(spec.id), [spec]))
    return findings


def mute(
    findings: list[Finding], config: ScanConfig, today: date | None = None, warn: Callable[[str], None] = warn_stderr
) -> list[Finding]:
    """``config``'s mutes applied (see ``judge``); one warning per expired mute that still matched."""
    outcome = apply_mutes(findings, config.mutes, today or datetime.now(UTC).date())
    for message in outcome.warnings:
        warn(message)
    return outcome.findings
