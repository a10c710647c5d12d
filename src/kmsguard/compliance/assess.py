"""Judge a framework's controls from a scan's findings: the evidence an assessor reads, per control.

A control's status comes only from the findings of the checks that support it (``Finding.compliance``,
which the registry fills from ``controls.yaml``). The rules, in order:

- **not assessed** -- no kmsguard check supports the control, or its checks produced no PASS, FAIL or
  MUTED finding (they were skipped, found nothing in scope, or could read nothing). Never "met": no evidence
  is not evidence of compliance.
- **not met** -- a FAIL of high or critical severity (the control's objective is defeated somewhere: a
  public key, a key about to be deleted under live data, no multi-region trail), or FAILs and no PASS at all
  (nothing in scope satisfies it).
- **partly met** -- FAILs of medium or lower severity alongside PASS findings (the control is implemented
  for part of the scope), or no FAIL but ERROR findings (part of the scope could not be read, so "met"
  cannot be claimed).
- **met** -- at least one PASS or MUTED finding, no FAIL, no ERROR. MUTED findings are accepted exceptions:
  they do not count against the control, and the report lists each one with its reason.

The score is ``(met + partly met / 2) / assessed controls``, as a percentage; ``None`` when nothing was
assessed. Controls not assessed are counted beside it (coverage), never inside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kmsguard.checks.registry import CheckSpec, load_builtin_checks
from kmsguard.compliance.mapping import FRAMEWORKS, Control, family, framework_controls, supporting_checks
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult, finding_sort_key
from kmsguard.model.snapshot import Snapshot
from kmsguard.report._common import is_region_arn
from kmsguard.trail.usage import TrailUsage


class ControlStatus(StrEnum):
    MET = "met"
    PARTLY_MET = "partly met"
    NOT_MET = "not met"
    NOT_ASSESSED = "not assessed"


STATUS_ORDER = (ControlStatus.NOT_MET, ControlStatus.PARTLY_MET, ControlStatus.MET, ControlStatus.NOT_ASSESSED)
_DEFEATING = (Severity.HIGH, Severity.CRITICAL)


@dataclass
class Evidence:
    """One finding behind a control, with what an assessor needs to verify or fix it."""

    finding: Finding
    fix_command: str
    facts: dict[str, Any] = field(default_factory=dict)  # from the snapshot: rotation, state, trails ...


@dataclass
class ControlAssessment:
    control: Control
    family: str
    status: ControlStatus
    reason: str
    checks: list[str]  # the checks that support the control (catalogue)
    checks_with_findings: list[str]
    counts: dict[str, int]  # findings by status
    failing: list[Evidence]
    muted: list[Evidence]
    errors: list[Evidence]
    passing: list[Evidence]
    remediation: dict[str, str]  # check id -> remedy text, for the failing checks


@dataclass
class FrameworkReport:
    framework: str
    name: str
    version: str
    kmsguard_version: str
    scanned_at: datetime
    accounts: list[str]
    regions: list[str]
    controls: list[ControlAssessment]
    trail_usage: TrailUsage | None = None  # the scan's CloudTrail key usage, shown beside the controls

    def counts(self) -> dict[str, int]:
        c = Counter(a.status for a in self.controls)
        return {s.value: c.get(s, 0) for s in STATUS_ORDER}

    def score(self) -> float | None:
        c = self.counts()
        assessed = len(self.controls) - c[ControlStatus.NOT_ASSESSED.value]
        if not assessed:
            return None
        return round(100 * (c[ControlStatus.MET.value] + c[ControlStatus.PARTLY_MET.value] / 2) / assessed, 1)

    def findings(self) -> list[Finding]:
        """Every finding behind any control, once each."""
        seen: dict[int, Finding] = {}
        for a in self.controls:
            for e in (*a.failing, *a.muted, *a.errors, *a.passing):
                seen.setdefault(id(e.finding), e.finding)
        return sorted(seen.values(), key=finding_sort_key)

    def failing_by_severity(self) -> dict[str, int]:
        c = Counter(f.severity.value for f in self.findings() if f.status is Status.FAIL)
        return {s.value: c.get(s.value, 0) for s in sorted(Severity, key=lambda s: s.rank, reverse=True)}

    def by_family(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for a in self.controls:
            out.setdefault(a.family, {s.value: 0 for s in STATUS_ORDER})[a.status.value] += 1
        return out

    def by_account_region(self) -> dict[str, dict[str, int]]:
        """``account / region`` -> findings by status (FAIL, MUTED, ERROR, PASS)."""
        out: dict[str, dict[str, int]] = {}
        for f in self.findings():
            row = out.setdefault(f"{f.account} / {f.region}", {s.value: 0 for s in Status})
            row[f.status.value] += 1
        return dict(sorted(out.items()))


def fix_command(f: Finding) -> str:
    """The `kmsguard fix` invocation that targets exactly this finding's subject."""
    if f.resource_type == "AWS::KMS::Key":
        return f"kmsguard fix --checks {f.check_id} --key {f.resource_arn}"
    if is_region_arn(f.resource_arn):
        return f"kmsguard fix --checks {f.check_id} --account {f.account} --region {f.region}"
    return f"kmsguard fix --checks {f.check_id} --resource {f.resource_arn}"


def assess(
    result: ScanResult,
    framework: str,
    snapshot: Snapshot | None = None,
    specs: dict[str, CheckSpec] | None = None,
) -> FrameworkReport:
    """The framework report for ``result``; ``snapshot`` (when there is one) adds facts to the evidence."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r} (one of {', '.join(FRAMEWORKS)})")
    specs = specs if specs is not None else load_builtin_checks()
    topics = {cid: s.topics for cid, s in specs.items()}
    facts = _Facts(snapshot)
    by_control: dict[str, list[Finding]] = {}
    for f in result.sorted_findings():
        for cid in f.compliance.get(framework, ()):
            by_control.setdefault(cid, []).append(f)
    evidence_cache: dict[int, Evidence] = {}

    def ev(f: Finding) -> Evidence:
        if id(f) not in evidence_cache:
            evidence_cache[id(f)] = Evidence(f, fix_command(f), facts.of(f))
        return evidence_cache[id(f)]

    name, version = FRAMEWORKS[framework]
    controls = [
        _assess_control(c, framework, supporting_checks(c, topics), by_control.get(c.id, []), specs, ev)
        for c in framework_controls(framework)
    ]
    return FrameworkReport(
        framework=framework,
        name=name,
        version=version,
        kmsguard_version=result.kmsguard_version,
        scanned_at=result.scanned_at,
        accounts=result.accounts,
        regions=result.regions,
        controls=controls,
        trail_usage=result.trail_usage,
    )


def _assess_control(
    control: Control,
    framework: str,
    checks: list[str],
    findings: list[Finding],
    specs: dict[str, CheckSpec],
    ev: Any,
) -> ControlAssessment:
    counts = Counter(f.status for f in findings)
    failing = [f for f in findings if f.status is Status.FAIL]
    status, reason = _status(checks, counts, failing)
    remediation = {}
    for f in failing:
        if f.check_id not in remediation:
            spec = specs.get(f.check_id)
            remediation[f.check_id] = (spec.remediation if spec else "") or f.remediation
    return ControlAssessment(
        control=control,
        family=family(framework, control.id),
        status=status,
        reason=reason,
        checks=checks,
        checks_with_findings=sorted({f.check_id for f in findings}),
        counts={s.value: counts.get(s, 0) for s in Status},
        failing=[ev(f) for f in failing],
        muted=[ev(f) for f in findings if f.status is Status.MUTED],
        errors=[ev(f) for f in findings if f.status is Status.ERROR],
        passing=[ev(f) for f in findings if f.status is Status.PASS],
        remediation=remediation,
    )


def _status(checks: list[str], counts: Counter[Status], failing: list[Finding]) -> tuple[ControlStatus, str]:
    fail, ok, err = counts[Status.FAIL], counts[Status.PASS] + counts[Status.MUTED], counts[Status.ERROR]
    if not checks:
        return ControlStatus.NOT_ASSESSED, "no kmsguard check gives evidence for this control"
    if not fail and not ok:
        if err:
            return ControlStatus.NOT_ASSESSED, f"its checks could not read what they needed ({err} ERROR)"
        return ControlStatus.NOT_ASSESSED, "its checks were not run or found nothing in scope"
    defeating = [f for f in failing if f.severity in _DEFEATING]
    if defeating:
        return ControlStatus.NOT_MET, f"{len(defeating)} high or critical failing finding(s)"
    if fail and not counts[Status.PASS]:
        return ControlStatus.NOT_MET, f"{fail} failing finding(s) and nothing in scope passes"
    if fail:
        return ControlStatus.PARTLY_MET, f"{fail} failing finding(s) (medium or lower), {ok} passing"
    if err:
        return ControlStatus.PARTLY_MET, f"no failure, but {err} subject(s) could not be read (ERROR)"
    muted = counts[Status.MUTED]
    note = f"; {muted} accepted exception(s) (MUTED)" if muted else ""
    return ControlStatus.MET, f"{ok} passing finding(s), none failing{note}"


class _Facts:
    """Facts from the snapshot that make a finding verifiable: a key's rotation and state, a region's trails."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.trails: dict[tuple[str, str], list[dict[str, Any]]] = {}
        if snapshot is None:
            return
        for acct in snapshot.accounts:
            for reg in acct.regions:
                for k in reg.keys:
                    self.keys[k.arn] = {
                        "key_state": k.key_state,
                        "key_manager": k.key_manager,
                        "aliases": k.aliases,
                        "rotation_enabled": k.rotation_enabled,
                        "rotation_period_days": k.rotation_period_days,
                        "next_rotation_date": k.next_rotation_date.isoformat() if k.next_rotation_date else None,
                    }
                self.trails[(acct.account_id, reg.region)] = [
                    {
                        "trail": t.name,
                        "multi_region": t.is_multi_region,
                        "logging": t.is_logging,
                        "log_file_validation": t.log_file_validation_enabled,
                        "cloudwatch_logs": bool(t.cloudwatch_logs_log_group_arn),
                        "management_events": t.logs_management_events,
                    }
                    for t in reg.trails
                ]

    def of(self, f: Finding) -> dict[str, Any]:
        if f.resource_arn in self.keys:
            return self.keys[f.resource_arn]
        if is_region_arn(f.resource_arn):
            if f.region == "global":
                trails = [t for (a, _), ts in self.trails.items() if a == f.account for t in ts]
            else:
                trails = self.trails.get((f.account, f.region), [])
            return {"trails": _unique(trails)} if trails else {}
        return {}


def _unique(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["trail"] not in seen:
            seen.add(r["trail"])
            out.append(r)
    return out
