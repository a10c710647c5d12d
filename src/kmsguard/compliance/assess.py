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

**Who can decrypt each key.** The access controls (CMMC AC.L2-3.1.1 and AC.L2-3.1.5, NIST SP 800-171 3.1.1 and
3.1.5, Rev 3 03.01.05, NIST SP 800-53 AC-3 and AC-6: ``ACCESS_CONTROLS``) also carry, as evidence, every customer
managed key with the principals that can call kms:Decrypt on it (allowed or only under request conditions) and
how (``via``: key policy, key policy + IAM, grant, role chain), from effective access (``checks.access``) over
the scan's snapshot -- the answer the access checks judged, computed once per snapshot. Without a snapshot
(an assessment of a scan result alone) the table is rebuilt from the access checks' findings, whose evidence
carries each failing principal with its paths: it then lists only the keys and principals that fail, and says
so (``DecryptAccess.complete`` is false). Status rules are unchanged: the table is evidence, not a verdict.
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
from kmsguard.model.finding import Finding, Severity, Status, is_region_arn
from kmsguard.model.result import ScanResult, finding_sort_key
from kmsguard.model.snapshot import Snapshot
from kmsguard.model.usage import TrailUsage


class ControlStatus(StrEnum):
    MET = "met"
    PARTLY_MET = "partly met"
    NOT_MET = "not met"
    NOT_ASSESSED = "not assessed"


STATUS_ORDER = (ControlStatus.NOT_MET, ControlStatus.PARTLY_MET, ControlStatus.MET, ControlStatus.NOT_ASSESSED)
_DEFEATING = (Severity.HIGH, Severity.CRITICAL)

# Controls whose evidence includes who can decrypt each key (framework slug -> control ids).
ACCESS_CONTROLS: dict[str, frozenset[str]] = {
    "cmmc-l2": frozenset({"AC.L2-3.1.1", "AC.L2-3.1.5"}),
    "nist-800-171": frozenset({"3.1.1", "3.1.5"}),
    "nist-800-171r3": frozenset({"03.01.05"}),
    "nist-800-53": frozenset({"AC-3", "AC-6"}),
}
# The access checks whose FAIL evidence lists decrypting principals (``{"principals": [PrincipalAccess...]}``).
_DECRYPT_EVIDENCE_CHECKS = ("key_decrypt_via_broad_iam", "key_decryptable_by_unintended", "role_chain_to_decrypt")
_ACCESS_CHECKS = (*_DECRYPT_EVIDENCE_CHECKS, "key_admin_can_grant_itself_use")


@dataclass
class Evidence:
    """One finding behind a control, with what an assessor needs to verify or fix it."""

    finding: Finding
    fix_command: str
    facts: dict[str, Any] = field(default_factory=dict)  # from the snapshot: rotation, state, trails ...


@dataclass
class DecryptPrincipal:
    principal: str  # an ARN, or an aggregate: account:ID, org:o-..., service:NAME, "*"
    decision: str  # allowed | conditional
    via: list[str]  # the kinds of path: key_policy, key_policy+iam, grant, assume_role
    path: str  # the first path in words: its statements, the role chain

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "decision": self.decision, "via": self.via, "path": self.path}


@dataclass
class DecryptRow:
    """One key: who can call kms:Decrypt on it, or why that could not be judged."""

    key_arn: str
    account: str
    region: str
    alias: str | None
    principals: list[DecryptPrincipal] = field(default_factory=list)
    error: str | None = None

    @property
    def allowed(self) -> int:
        return sum(1 for p in self.principals if p.decision == "allowed")

    @property
    def conditional(self) -> int:
        return sum(1 for p in self.principals if p.decision == "conditional")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key_arn,
            "alias": self.alias,
            "account": self.account,
            "region": self.region,
            "allowed": self.allowed,
            "conditional": self.conditional,
            "principals": [p.to_dict() for p in self.principals],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class DecryptAccess:
    """Who can decrypt each customer managed key: the evidence table of the access controls."""

    source: str  # "effective access" (from the snapshot) or "access findings" (failing findings' evidence)
    complete: bool  # every judged key is listed (False: only keys and principals that failing findings name)
    note: str
    rows: list[DecryptRow]
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "complete": self.complete,
            "note": self.note,
            "keys": [r.to_dict() for r in self.rows],
            "assumptions": self.assumptions,
        }


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
    who_can_decrypt: DecryptAccess | None = None  # the access controls (ACCESS_CONTROLS) only


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


def fix_command(f: Finding, spec: CheckSpec | None) -> str:
    """The `kmsguard fix` invocation for this finding; "" when no fixer acts on its check (``CheckSpec.fixer``: the
    remediation text is then the fix), so a report never offers a command that fails. A key's command targets that
    key; a resource's targets its check in the resource's account and region (fix has no per-resource option), and
    ``KEY`` stands for the customer managed key the user chooses to move it to."""
    if spec is None or spec.fixer is None:
        return ""
    if f.resource_type == "AWS::KMS::Key":
        return f"kmsguard fix --checks {f.check_id} --key {f.resource_arn}"
    # A resource is moved to a customer managed key the user chooses: fix needs it named.
    return f"kmsguard fix --checks {f.check_id} --account {f.account} --region {f.region} --target-key KEY"


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
            evidence_cache[id(f)] = Evidence(f, fix_command(f, specs.get(f.check_id)), facts.of(f))
        return evidence_cache[id(f)]

    name, version = FRAMEWORKS[framework]
    controls = [
        _assess_control(c, framework, supporting_checks(c, topics), by_control.get(c.id, []), specs, ev)
        for c in framework_controls(framework)
    ]
    wanted = ACCESS_CONTROLS.get(framework, frozenset())
    if any(a.control.id in wanted for a in controls):
        table = who_can_decrypt(result, snapshot)
        for a in controls:
            if a.control.id in wanted:
                a.who_can_decrypt = table
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


# --- who can decrypt each key ----------------------------------------------------------------------------------


def _path_text(paths: list[dict[str, Any]]) -> str:
    if not paths:
        return ""
    p = paths[0]
    inner = [f"chain: {' → '.join(str(c).split(':', 5)[-1] for c in p.get('chain') or [])}"] if p.get("chain") else []
    inner += [str(s) for s in p.get("statements") or []]
    more = f"; {len(paths) - 1} other path(s)" if len(paths) > 1 else ""
    return str(p.get("via", "")) + (f" ({'; '.join(inner)})" if inner else "") + more


def _principal(d: dict[str, Any]) -> DecryptPrincipal:
    paths = [p for p in d.get("paths") or [] if isinstance(p, dict)]
    vias = list(dict.fromkeys(str(p.get("via")) for p in paths))
    return DecryptPrincipal(str(d.get("principal")), str(d.get("decision")), vias, _path_text(paths))


def who_can_decrypt(result: ScanResult, snapshot: Snapshot | None) -> DecryptAccess | None:
    """The evidence table of the access controls: from effective access when there is a snapshot, otherwise
    from the access checks' findings (None when there are none: the checks were not run)."""
    if snapshot is not None:
        return _from_snapshot(snapshot)
    return _from_findings(result)


def _from_snapshot(snapshot: Snapshot) -> DecryptAccess:
    from kmsguard.checks.access import effective_access
    from kmsguard.policy.actions import DECRYPT

    keys = {k.arn: k for k in snapshot.all_keys()}
    rows: list[DecryptRow] = []
    assumptions: list[str] = []
    for arn, access in sorted(effective_access(snapshot).items()):
        k = keys[arn]
        row = DecryptRow(arn, k.account, k.region, k.aliases[0] if k.aliases else None)
        if isinstance(access, str):
            row.error = access
        else:
            row.principals = [_principal(p.to_dict()) for p in access.results.get(DECRYPT, [])]
            assumptions = assumptions or list(access.assumptions)
        rows.append(row)
    return DecryptAccess(
        source="effective access",
        complete=True,
        note="every customer managed key (not pending deletion) with each principal that can call kms:Decrypt "
        "on it, through the key policy, identity policies, grants or role chains, under SCPs, RCPs and "
        "permission boundaries",
        rows=rows,
        assumptions=assumptions,
    )


def _from_findings(result: ScanResult) -> DecryptAccess | None:
    findings = [f for f in result.sorted_findings() if f.check_id in _ACCESS_CHECKS]
    if not findings:
        return None
    rows: dict[str, DecryptRow] = {}
    for f in findings:
        if f.check_id not in _DECRYPT_EVIDENCE_CHECKS and f.status is not Status.ERROR:
            continue
        if f.status not in (Status.FAIL, Status.MUTED, Status.ERROR):
            continue
        row = rows.setdefault(f.resource_arn, DecryptRow(f.resource_arn, f.account, f.region, None))
        if f.status is Status.ERROR:
            row.error = row.error or f.message
            continue
        seen = {p.principal for p in row.principals}
        for d in f.evidence.get("principals") or []:
            if isinstance(d, dict) and d.get("principal") not in seen and "decision" in d:
                row.principals.append(_principal(d))
                seen.add(str(d.get("principal")))
    for row in rows.values():
        row.principals.sort(key=lambda p: p.principal)
    return DecryptAccess(
        source="access findings",
        complete=False,
        note="without the scan's snapshot, only the keys and principals that failing (or muted) access findings "
        "name are listed; keys whose access checks pass are not. Report from a live scan or --from-snapshot "
        "for every key",
        rows=[rows[a] for a in sorted(rows)],
    )
