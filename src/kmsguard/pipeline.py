"""The one pipeline: Snapshot -> checks -> ScanResult. Collection lives in kmsguard.collect."""

from __future__ import annotations

from collections.abc import Iterable

from kmsguard import __version__
from kmsguard.checks.registry import run_checks, select_checks
from kmsguard.config import ScanConfig
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot


def judge(
    snapshot: Snapshot,
    config: ScanConfig | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] | None = None,
) -> ScanResult:
    specs = select_checks(only, skip)
    findings = run_checks(snapshot, config or ScanConfig(), specs)
    return ScanResult(
        kmsguard_version=__version__,
        scanned_at=snapshot.collected_at,
        accounts=sorted(a.account_id for a in snapshot.accounts),
        regions=snapshot.regions(),
        findings=findings,
    )
