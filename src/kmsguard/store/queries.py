"""Reading the store for the dashboard and the CLI: every filter is SQL and every list is paged, so a
10,000-key estate (over 100,000 findings per scan) reads as fast as a small one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from kmsguard.model.usage import TrailUsage
from kmsguard.store.schema import DriftRow, FindingRow, KeyRow, MuteRow, ScanRow, TrailUsageRow

PAGE_SIZE = 50


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    per_page: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass
class FindingFilter:
    check_id: str | None = None
    status: str | None = None  # FAIL, PASS, ERROR, MUTED (MUTED: in the scan, or muted in the dashboard)
    severity: str | None = None
    account: str | None = None
    region: str | None = None
    resource: str | None = None  # substring of the resource ARN
    extra: dict[str, str] = field(default_factory=dict)


def latest_scan(s: Session) -> ScanRow | None:
    return s.scalars(select(ScanRow).order_by(ScanRow.id.desc()).limit(1)).first()


def previous_scan_id(s: Session, scan_id: int) -> int | None:
    return s.scalar(select(func.max(ScanRow.id)).where(ScanRow.id < scan_id))


def trend(s: Session, limit: int = 60) -> list[ScanRow]:
    rows = s.scalars(select(ScanRow).order_by(ScanRow.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def _active_mute(now: datetime) -> Any:
    return and_(
        MuteRow.check_id == FindingRow.check_id,
        MuteRow.resource_arn == FindingRow.resource_arn,
        MuteRow.active.is_(True),
        or_(MuteRow.expires.is_(None), MuteRow.expires > now),
    )


def _mute_exists(now: datetime) -> Any:
    return select(MuteRow.id).where(_active_mute(now)).exists()


def count_by(s: Session, scan_id: int, column: Any, *, failing: bool = True) -> list[tuple[str, int]]:
    """Failing findings (not muted in the dashboard) grouped by one column, largest group first."""
    q = select(column, func.count()).where(FindingRow.scan_id == scan_id)
    if failing:
        q = q.where(FindingRow.status == "FAIL", ~_mute_exists(datetime.now(UTC)))
    rows = s.execute(q.group_by(column).order_by(func.count().desc(), column)).all()
    return [(str(k), int(n)) for k, n in rows]


def status_by_check(s: Session, scan_id: int) -> dict[str, dict[str, int]]:
    """check id -> status -> count, dashboard mutes counted as MUTED (for the compliance view)."""
    now = datetime.now(UTC)
    muted = _mute_exists(now)
    out: dict[str, dict[str, int]] = {}
    q = (
        select(FindingRow.check_id, FindingRow.status, muted.label("muted"), func.count())
        .where(FindingRow.scan_id == scan_id)
        .group_by(FindingRow.check_id, FindingRow.status, "muted")
    )
    for check, status, is_muted, n in s.execute(q):
        st = "MUTED" if status == "FAIL" and is_muted else status
        out.setdefault(check, {}).setdefault(st, 0)
        out[check][st] += int(n)
    return out


def findings_query(scan_id: int, flt: FindingFilter, now: datetime | None = None) -> Select[Any]:
    now = now or datetime.now(UTC)
    muted = _mute_exists(now)
    q = select(FindingRow, muted.label("muted")).where(FindingRow.scan_id == scan_id)
    if flt.check_id:
        q = q.where(FindingRow.check_id == flt.check_id)
    if flt.severity:
        q = q.where(FindingRow.severity == flt.severity)
    if flt.account:
        q = q.where(FindingRow.account == flt.account)
    if flt.region:
        q = q.where(FindingRow.region == flt.region)
    if flt.resource:
        q = q.where(FindingRow.resource_arn.contains(flt.resource, autoescape=True))
    if flt.status == "MUTED":
        q = q.where(or_(FindingRow.status == "MUTED", and_(FindingRow.status == "FAIL", muted)))
    elif flt.status == "FAIL":
        q = q.where(FindingRow.status == "FAIL", ~muted)
    elif flt.status:
        q = q.where(FindingRow.status == flt.status)
    return q


def list_findings(s: Session, scan_id: int, flt: FindingFilter, page: int = 1, per_page: int = PAGE_SIZE) -> Page:
    q = findings_query(scan_id, flt)
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    q = q.order_by(FindingRow.severity_rank.desc(), FindingRow.check_id, FindingRow.resource_arn, FindingRow.id)
    rows = s.execute(q.offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
    return Page([(r[0], bool(r[1])) for r in rows], int(total), page, per_page)


@dataclass
class KeyFilter:
    account: str | None = None
    region: str | None = None
    state: str | None = None
    manager: str | None = None
    rotation: str | None = None  # "on", "off"
    failing: bool = False
    q: str | None = None  # substring of alias or ARN


def list_keys(s: Session, scan_id: int, flt: KeyFilter, page: int = 1, per_page: int = PAGE_SIZE) -> Page:
    cols = (
        KeyRow.arn,
        KeyRow.key_id,
        KeyRow.account,
        KeyRow.region,
        KeyRow.alias,
        KeyRow.key_manager,
        KeyRow.key_state,
        KeyRow.rotation_enabled,
        KeyRow.failing,
        KeyRow.worst_severity,
    )
    q = select(*cols).where(KeyRow.scan_id == scan_id)
    if flt.account:
        q = q.where(KeyRow.account == flt.account)
    if flt.region:
        q = q.where(KeyRow.region == flt.region)
    if flt.state:
        q = q.where(KeyRow.key_state == flt.state)
    if flt.manager:
        q = q.where(KeyRow.key_manager == flt.manager)
    if flt.rotation in ("on", "off"):
        q = q.where(KeyRow.rotation_enabled.is_(flt.rotation == "on"))
    if flt.failing:
        q = q.where(KeyRow.failing > 0)
    if flt.q:
        q = q.where(or_(KeyRow.alias.contains(flt.q, autoescape=True), KeyRow.arn.contains(flt.q, autoescape=True)))
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    q = q.order_by(KeyRow.failing.desc(), KeyRow.account, KeyRow.region, KeyRow.alias, KeyRow.arn)
    rows = s.execute(q.offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
    return Page(list(rows), int(total), page, per_page)


def distinct(s: Session, scan_id: int, column: Any, model: Any = FindingRow) -> list[str]:
    return [str(v) for v in s.scalars(select(column).where(model.scan_id == scan_id).distinct().order_by(column))]


def key_row(s: Session, scan_id: int, arn: str) -> KeyRow | None:
    return s.scalars(select(KeyRow).where(KeyRow.scan_id == scan_id, KeyRow.arn == arn)).first()


def key_findings(s: Session, scan_id: int, arn: str) -> list[tuple[FindingRow, bool]]:
    q = findings_query(scan_id, FindingFilter()).where(FindingRow.key_arn == arn)
    q = q.order_by(FindingRow.severity_rank.desc(), FindingRow.check_id)
    return [(r[0], bool(r[1])) for r in s.execute(q)]


@dataclass
class HistoryEntry:
    scan_id: int
    at: datetime
    check_id: str
    status: str  # the status from this scan on; "GONE" when the finding stopped being reported


def finding_history(s: Session, arn: str, limit_scans: int = 200) -> list[HistoryEntry]:
    """Status changes of each check on ``arn`` over the last scans (newest first): only the transitions,
    since most scans repeat the previous status."""
    scan_ids = list(reversed(s.scalars(select(ScanRow.id).order_by(ScanRow.id.desc()).limit(limit_scans)).all()))
    if not scan_ids:
        return []
    rows = s.execute(
        select(FindingRow.scan_id, ScanRow.started_at, FindingRow.check_id, FindingRow.status)
        .join(ScanRow, ScanRow.id == FindingRow.scan_id)
        .where(FindingRow.key_arn == arn, FindingRow.scan_id >= scan_ids[0])
        .order_by(FindingRow.scan_id)
    ).all()
    at = dict(s.execute(select(ScanRow.id, ScanRow.started_at).where(ScanRow.id >= scan_ids[0])).all())  # type: ignore[arg-type]
    per_scan: dict[int, dict[str, str]] = {}
    for sid, _at, check, status in rows:
        per_scan.setdefault(sid, {})[check] = status
    out: list[HistoryEntry] = []
    last: dict[str, str] = {}
    for sid in scan_ids:
        now = per_scan.get(sid, {})
        for check in sorted(now.keys() | last.keys()):
            status = now.get(check, "GONE")
            if last.get(check, "GONE") != status:
                out.append(HistoryEntry(sid, at[sid], check, status))
        last = {c: st for c, st in now.items()}
    return list(reversed(out))


def key_drift(s: Session, arn: str, limit: int = 50) -> list[tuple[DriftRow, datetime]]:
    q = (
        select(DriftRow, ScanRow.started_at)
        .join(ScanRow, ScanRow.id == DriftRow.scan_id)
        .where(DriftRow.resource_arn == arn, DriftRow.kind.not_in(("new_finding", "resolved_finding")))
        .order_by(DriftRow.id.desc())
        .limit(limit)
    )
    return [(r[0], r[1]) for r in s.execute(q)]


def recent_drift(s: Session, limit: int = 20) -> list[tuple[DriftRow, datetime]]:
    q = (
        select(DriftRow, ScanRow.started_at)
        .join(ScanRow, ScanRow.id == DriftRow.scan_id)
        .where(DriftRow.kind != "resolved_finding")
        .order_by(DriftRow.id.desc())
        .limit(limit)
    )
    return [(r[0], r[1]) for r in s.execute(q)]


@dataclass
class StoredUsage:
    scan_id: int  # the scan that analysed the logs (the one shown, or an earlier one)
    usage: TrailUsage


def trail_usage(s: Session, scan_id: int) -> StoredUsage | None:
    """The latest CloudTrail usage summary stored at or before ``scan_id``: key-event scans analyse no logs,
    so the page of a scan derived from a full one shows the full one's usage."""
    row = s.execute(
        select(TrailUsageRow.scan_id, TrailUsageRow.data)
        .where(TrailUsageRow.scan_id <= scan_id)
        .order_by(TrailUsageRow.scan_id.desc())
        .limit(1)
    ).first()
    return StoredUsage(int(row[0]), TrailUsage.model_validate_json(row[1])) if row is not None else None


def keys_in_scan(s: Session, scan_id: int, arns: list[str]) -> set[str]:
    """Which of ``arns`` are keys of the scan (so a page can link them)."""
    if not arns:
        return set()
    return set(s.scalars(select(KeyRow.arn).where(KeyRow.scan_id == scan_id, KeyRow.arn.in_(arns))))
