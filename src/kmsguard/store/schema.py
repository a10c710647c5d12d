"""The store's tables (SQLAlchemy 2 Core/ORM metadata). Migrations in ``migrate.py`` create and evolve them.

One row per scan; per scan, one row per key (its KMS state as collected), one per finding, and the CloudTrail
usage summary when the scan analysed logs. A scan is always complete: a key-event cycle writes a new scan
derived from the previous one with that key's rows replaced, so "the latest scan" is the estate's current
state and drift is always between consecutive scans.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names: migrations on PostgreSQL and SQLite then agree on what to drop or alter.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ScanRow(Base):
    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "full" (a whole collection) or "key" (one key re-read after an event; the rest copied from the parent).
    kind: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scope: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # the key ARN of a "key" scan
    accounts: Mapped[list[str]] = mapped_column(JSON)
    regions: Mapped[list[str]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    failing: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float, default=100.0)
    failing_by_severity: Mapped[dict[str, int]] = mapped_column(JSON)
    key_count: Mapped[int] = mapped_column(Integer, default=0)


class SnapshotRow(Base):
    """The full collected Snapshot of a "full" scan, zlib-compressed JSON, so it can be re-judged later."""

    __tablename__ = "snapshots"

    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class KeyRow(Base):
    __tablename__ = "keys"
    __table_args__ = (
        Index("ix_keys_scan_account_region", "scan_id", "account", "region"),
        Index("ix_keys_scan_arn", "scan_id", "arn"),
        Index("ix_keys_arn", "arn"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    arn: Mapped[str] = mapped_column(String(2048))
    key_id: Mapped[str] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(512), nullable=True)
    key_manager: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rotation_enabled: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    policy_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failing: Mapped[int] = mapped_column(Integer, default=0)
    worst_severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    data: Mapped[str] = mapped_column(Text)  # the model.Key as JSON


class FindingRow(Base):
    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_scan_check", "scan_id", "check_id"),
        Index("ix_findings_scan_status_severity", "scan_id", "status", "severity_rank"),
        Index("ix_findings_scan_account_region", "scan_id", "account", "region"),
        Index("ix_findings_scan_resource", "scan_id", "resource_arn"),
        Index("ix_findings_fingerprint", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(40))
    check_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(16))
    severity_rank: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(128))
    resource_arn: Mapped[str] = mapped_column(String(2048))
    # The key a finding is about when it is about a key; lets a key-event scan replace exactly its rows.
    key_arn: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, object]] = mapped_column(JSON)
    remediation: Mapped[str] = mapped_column(Text)
    compliance: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    mute_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class TrailUsageRow(Base):
    """The CloudTrail key usage summary of a full scan run with ``monitor --trail`` (a ``TrailUsage`` as JSON).

    One row per scan that analysed logs, not one per key: the summary is capped (see ``trail.usage``), and the
    dashboard reads one key's series out of it. Key-event scans have none; readers take the latest row at or
    before the scan they show.
    """

    __tablename__ = "trail_usage"

    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    events: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)


class DriftRow(Base):
    __tablename__ = "drift"
    __table_args__ = (Index("ix_drift_scan", "scan_id"), Index("ix_drift_resource", "resource_arn"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    resource_arn: Mapped[str] = mapped_column(String(2048))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, object]] = mapped_column(JSON)


class AlertStateRow(Base):
    """Which failing findings have been alerted and are still open: the de-duplication memory."""

    __tablename__ = "alert_state"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    resource_arn: Mapped[str] = mapped_column(String(2048))
    opened_scan_id: Mapped[int] = mapped_column(Integer)


class AlertRow(Base):
    """The outbox: one alert per cycle that had something to say, recorded before anything is sent."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "channel"), Index("ix_deliveries_pending", "sent", "channel"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(512))
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MuteRow(Base):
    """A mute made in the dashboard: accepted exception for one check on one resource."""

    __tablename__ = "mutes"
    __table_args__ = (Index("ix_mutes_check_resource", "check_id", "resource_arn"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(128))
    resource_arn: Mapped[str] = mapped_column(String(2048))
    reason: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(256))
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ended_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
