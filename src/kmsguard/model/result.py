"""A judged scan: the findings plus what was scanned. Every output format renders one of these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, TypeAdapter

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.usage import TrailUsage


def finding_sort_key(f: Finding) -> tuple[int, str, str, str, str, str, str]:
    """The one order every output uses: worst severity first, then check, account, region, resource.

    Status and message close the key so that two findings on the same resource (e.g. two read errors on one
    key) still come out in the same order on every run, whatever order the checks produced them in.
    """
    return (-f.severity.rank, f.check_id, f.account, f.region, f.resource_arn, f.status.value, f.message)


class Tally:
    """The counts a report's summary and the exit code need, kept one finding at a time: a spooled result
    (``kmsguard.spool``) keeps them as it writes, so neither needs the findings in memory."""

    def __init__(self, findings: Iterable[Finding] = ()) -> None:
        self.total = 0
        self.by_status: Counter[str] = Counter()
        self.failing_by_severity: Counter[str] = Counter()
        self.failing_by_check: Counter[str] = Counter()
        self.worst_failing: Severity | None = None
        for f in findings:
            self.add(f)

    def add(self, f: Finding) -> None:
        self.total += 1
        self.by_status[f.status.value] += 1
        if f.status is Status.FAIL:
            self.failing_by_severity[f.severity.value] += 1
            self.failing_by_check[f.check_id] += 1
            if self.worst_failing is None or f.severity.rank > self.worst_failing.rank:
                self.worst_failing = f.severity

    @property
    def errors(self) -> int:
        return self.by_status[Status.ERROR.value]

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": {s.value: self.by_status.get(s.value, 0) for s in Status},
            "failing_by_severity": {s.value: self.failing_by_severity.get(s.value, 0) for s in reversed(Severity)},
            "failing_by_check": dict(sorted(self.failing_by_check.items())),
        }


class Judged(Protocol):
    """What a streamable report reads: a ScanResult in memory, or a spooled one (``kmsguard.spool``)."""

    kmsguard_version: str
    scanned_at: datetime
    accounts: list[str]
    regions: list[str]
    trail_usage: TrailUsage | None

    def tally(self) -> Tally: ...

    def iter_sorted(self) -> Iterator[Finding]: ...


# One adapter for the whole list: pydantic serialises it in one call, faster than model_dump per finding.
_FINDINGS = TypeAdapter(list[Finding])


class ScanResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kmsguard_version: str
    scanned_at: datetime
    accounts: list[str]
    regions: list[str]
    findings: list[Finding]
    # CloudTrail key usage when the scan analysed logs (`scan --trail`, `trail analyze`, `monitor --trail`).
    # Optional with a default: a scan JSON written before the field existed still validates.
    trail_usage: TrailUsage | None = None

    def tally(self) -> Tally:
        return Tally(self.findings)

    def summary(self) -> dict[str, Any]:
        return self.tally().summary()

    def worst_failing(self) -> Severity | None:
        return self.tally().worst_failing

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=finding_sort_key)

    def iter_sorted(self) -> Iterator[Finding]:
        return iter(self.sorted_findings())

    def to_json_dict(self) -> dict[str, Any]:
        """The stable JSON contract of `kmsguard scan --format json` (findings in ``finding_sort_key`` order).

        Keys come out in the order written here and in Finding's field order; ``mute_reason`` is present only
        on findings that carry one (MUTED), and ``location`` only on IaC findings (`kmsguard iac`), so a live
        scan's unmuted findings have exactly the documented keys. ``trail_usage`` is present only when the scan
        analysed CloudTrail logs, so a scan without them reads as before.
        """
        findings: list[dict[str, Any]] = _FINDINGS.dump_python(self.sorted_findings(), mode="json")
        for f in findings:
            if f["mute_reason"] is None:
                del f["mute_reason"]
            if f["location"] is None:
                del f["location"]
        out: dict[str, Any] = {
            "kmsguard_version": self.kmsguard_version,
            "scanned_at": self.scanned_at.isoformat(),
            "accounts": self.accounts,
            "regions": self.regions,
            "summary": self.summary(),
            "findings": findings,
        }
        if self.trail_usage is not None:
            out["trail_usage"] = self.trail_usage.model_dump(mode="json")
        return out
