"""A judged scan: the findings plus what was scanned. Every output format renders one of these."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from kmsguard.model.finding import Finding, Severity, Status


class ScanResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kmsguard_version: str
    scanned_at: datetime
    accounts: list[str]
    regions: list[str]
    findings: list[Finding]

    def summary(self) -> dict[str, Any]:
        by_status = Counter(f.status.value for f in self.findings)
        failing = [f for f in self.findings if f.status is Status.FAIL]
        by_sev = Counter(f.severity.value for f in failing)
        by_check = Counter(f.check_id for f in failing)
        return {
            "total": len(self.findings),
            "by_status": {s.value: by_status.get(s.value, 0) for s in Status},
            "failing_by_severity": {s.value: by_sev.get(s.value, 0) for s in reversed(Severity)},
            "failing_by_check": dict(sorted(by_check.items())),
        }

    def worst_failing(self) -> Severity | None:
        sevs = [f.severity for f in self.findings if f.status is Status.FAIL]
        return max(sevs, key=lambda s: s.rank) if sevs else None

    def to_json_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `kmsguard scan --format json`."""
        return {
            "kmsguard_version": self.kmsguard_version,
            "scanned_at": self.scanned_at.isoformat(),
            "accounts": self.accounts,
            "regions": self.regions,
            "summary": self.summary(),
            "findings": [
                f.model_dump(mode="json", exclude={"mute_reason"} if f.mute_reason is None else None)
                for f in self.findings
            ],
        }
