"""Mutes made in the dashboard: one check on one resource, with a reason, who made it and an optional expiry.

They live in the store (not kmsguard.yaml) so that a team sharing one database shares its accepted
exceptions. An ended mute is kept (``active`` false, who ended it and when): an assessor asks for both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kmsguard.store.schema import MuteRow


class MuteError(ValueError):
    """A mute request that is not acceptable (blank reason or name, expiry in the past)."""


def add_mute(s: Session, check_id: str, resource_arn: str, reason: str, who: str, expires: datetime | None) -> int:
    reason, who = reason.strip(), who.strip()
    if not reason:
        raise MuteError("a mute needs a reason: an assessor will ask why")
    if not who:
        raise MuteError("a mute needs the name of who accepts it")
    now = datetime.now(UTC)
    if expires is not None and expires <= now:
        raise MuteError("the expiry must be in the future")
    row = MuteRow(
        check_id=check_id,
        resource_arn=resource_arn,
        reason=reason,
        who=who,
        expires=expires,
        created_at=now,
        active=True,
    )
    s.add(row)
    s.flush()
    return row.id


def end_mute(s: Session, mute_id: int, who: str) -> bool:
    row = s.get(MuteRow, mute_id)
    if row is None or not row.active:
        return False
    row.active = False
    row.ended_by = who.strip() or "unknown"
    row.ended_at = datetime.now(UTC)
    return True


def active_mutes(s: Session, now: datetime | None = None) -> list[MuteRow]:
    now = now or datetime.now(UTC)
    q = select(MuteRow).where(MuteRow.active.is_(True), or_(MuteRow.expires.is_(None), MuteRow.expires > now))
    return list(s.scalars(q.order_by(MuteRow.id)))


def muted_pairs(s: Session) -> set[tuple[str, str]]:
    return {(m.check_id, m.resource_arn) for m in active_mutes(s)}


def mutes_for(s: Session, check_id: str, resource_arn: str) -> list[MuteRow]:
    q = select(MuteRow).where(MuteRow.check_id == check_id, MuteRow.resource_arn == resource_arn)
    return list(s.scalars(q.order_by(MuteRow.id.desc())))
