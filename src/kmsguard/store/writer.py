"""Writing scans: bulk inserts of keys and findings, and key-event scans derived from their parent in SQL."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, literal, select
from sqlalchemy.orm import Session

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.model.usage import TrailUsage
from kmsguard.store.schema import FindingRow, KeyRow, ScanRow, SnapshotRow, TrailUsageRow

KEY_TYPE = "AWS::KMS::Key"
# Score weights: a critical failure costs ten times a low one; info findings do not move the score.
WEIGHTS = {"critical": 10, "high": 5, "medium": 3, "low": 1, "info": 0}
_RANK = {s.value: s.rank for s in Severity}


def fingerprint(check_id: str, account: str, region: str, resource_arn: str, status: str, message: str) -> str:
    """Stable identity of a finding across scans. ERROR findings add the message: one resource can carry
    several distinct read errors, and each is its own finding."""
    parts = [check_id, account, region, resource_arn]
    if status == Status.ERROR.value:
        parts.append(message)
    return hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()


def policy_hash(policy: str | None) -> str | None:
    return hashlib.sha256(policy.encode()).hexdigest() if policy is not None else None


def finding_values(scan_id: int, f: Finding) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "fingerprint": fingerprint(f.check_id, f.account, f.region, f.resource_arn, f.status.value, f.message),
        "check_id": f.check_id,
        "status": f.status.value,
        "severity": f.severity.value,
        "severity_rank": f.severity.rank,
        "account": f.account,
        "region": f.region,
        "resource_type": f.resource_type,
        "resource_arn": f.resource_arn,
        "key_arn": f.resource_arn if f.resource_type == KEY_TYPE else None,
        "message": f.message,
        "evidence": f.evidence,
        "remediation": f.remediation,
        "compliance": f.compliance,
        "mute_reason": f.mute_reason,
    }


def key_values(scan_id: int, key: Key, findings: Iterable[Finding]) -> dict[str, Any]:
    failing = [f for f in findings if f.status is Status.FAIL]
    worst = max((f.severity for f in failing), key=lambda s: s.rank, default=None)
    return {
        "scan_id": scan_id,
        "arn": key.arn,
        "key_id": key.key_id,
        "account": key.account,
        "region": key.region,
        "alias": key.aliases[0] if key.aliases else None,
        "key_manager": key.key_manager,
        "key_state": key.key_state,
        "rotation_enabled": key.rotation_enabled,
        "policy_hash": policy_hash(key.policy),
        "failing": len(failing),
        "worst_severity": worst.value if worst else None,
        "data": key.model_dump_json(),
    }


def _new_scan(s: Session, **values: Any) -> int:
    row = ScanRow(failing_by_severity={}, **values)
    s.add(row)
    s.flush()
    return row.id


def insert_full_scan(
    s: Session,
    snapshot: Snapshot,
    result: ScanResult,
    finished_at: datetime | None = None,
    *,
    keep_snapshot: bool = True,
) -> int:
    """Store a whole scan: the scan row, its snapshot (compressed), one row per key and per finding, and the
    trail usage summary when the result has one."""
    scan_id = _new_scan(
        s,
        started_at=snapshot.collected_at,
        finished_at=finished_at or datetime.now(UTC),
        kind="full",
        accounts=result.accounts,
        regions=result.regions,
    )
    if keep_snapshot:
        s.execute(
            insert(cast(Table, SnapshotRow.__table__)),
            [{"scan_id": scan_id, "data": zlib.compress(snapshot.model_dump_json().encode(), 6)}],
        )
    by_key: dict[str, list[Finding]] = {}
    for f in result.findings:
        if f.resource_type == KEY_TYPE:
            by_key.setdefault(f.resource_arn, []).append(f)
    keys = snapshot.all_keys()
    # Core executemany: SQLAlchemy batches these into multi-row INSERTs on both SQLite and psycopg.
    if keys:
        s.execute(insert(cast(Table, KeyRow.__table__)), [key_values(scan_id, k, by_key.get(k.arn, ())) for k in keys])
    if result.findings:
        s.execute(insert(cast(Table, FindingRow.__table__)), [finding_values(scan_id, f) for f in result.findings])
    if result.trail_usage is not None:
        insert_trail_usage(s, scan_id, result.trail_usage)
    summarise(s, scan_id)
    return scan_id


def insert_trail_usage(s: Session, scan_id: int, usage: TrailUsage) -> None:
    s.add(
        TrailUsageRow(
            scan_id=scan_id,
            window_start=usage.window_start,
            window_end=usage.window_end,
            events=usage.events,
            data=usage.model_dump_json(),
        )
    )


def insert_key_scan(
    s: Session, parent_id: int, key_arn: str, key: Key | None, findings: list[Finding], started_at: datetime
) -> int:
    """A new complete scan = the parent with ``key_arn``'s key row and key findings replaced (``key`` None:
    the key is gone). Copied in SQL, so a 10,000-key estate costs two INSERT ... SELECT, not 10,000 rows
    through Python."""
    parent = s.get(ScanRow, parent_id)
    assert parent is not None
    scan_id = _new_scan(
        s,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        kind="key",
        parent_id=parent_id,
        scope=key_arn,
        accounts=parent.accounts,
        regions=parent.regions,
    )
    _copy(s, KeyRow, scan_id, parent_id, KeyRow.arn != key_arn)
    _copy(s, FindingRow, scan_id, parent_id, (FindingRow.key_arn.is_(None)) | (FindingRow.key_arn != key_arn))
    if key is not None:
        s.execute(insert(cast(Table, KeyRow.__table__)), [key_values(scan_id, key, findings)])
    if findings:
        s.execute(insert(cast(Table, FindingRow.__table__)), [finding_values(scan_id, f) for f in findings])
    summarise(s, scan_id)
    return scan_id


def _copy(s: Session, model: Any, scan_id: int, parent_id: int, where: Any) -> None:
    table = model.__table__
    cols = [c for c in table.columns if c.name not in ("id", "scan_id")]
    sel = select(literal(scan_id), *cols).where(table.c.scan_id == parent_id, where)
    s.execute(insert(table).from_select(["scan_id", *(c.name for c in cols)], sel))


def summarise(s: Session, scan_id: int) -> None:
    """Fill the scan row's counts and score from its findings (one GROUP BY, whichever way it was written)."""
    rows = s.execute(
        select(FindingRow.status, FindingRow.severity, func.count())
        .where(FindingRow.scan_id == scan_id)
        .group_by(FindingRow.status, FindingRow.severity)
    ).all()
    total = failing = 0
    fail_w = ok_w = 0
    by_sev = {s.value: 0 for s in reversed(Severity)}
    for status, severity, n in rows:
        total += n
        w = WEIGHTS.get(severity, 0) * n
        if status == Status.FAIL.value:
            failing += n
            by_sev[severity] = by_sev.get(severity, 0) + n
            fail_w += w
        elif status in (Status.PASS.value, Status.MUTED.value):
            ok_w += w
    scan = s.get(ScanRow, scan_id)
    assert scan is not None
    scan.total = total
    scan.failing = failing
    scan.failing_by_severity = by_sev
    scan.score = score(fail_w, ok_w)
    scan.key_count = s.scalar(select(func.count()).select_from(KeyRow).where(KeyRow.scan_id == scan_id)) or 0


def score(fail_weight: int, ok_weight: int) -> float:
    """Posture score 0-100: the severity-weighted share of judged findings that pass (or are accepted)."""
    judged = fail_weight + ok_weight
    return round(100.0 * ok_weight / judged, 1) if judged else 100.0
