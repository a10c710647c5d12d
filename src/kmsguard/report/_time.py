"""Timestamps as the formats want them."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(dt: datetime) -> datetime:
    # A naive scanned_at is taken as UTC (the scan records UTC); an aware one is converted.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso_z(dt: datetime, seconds: bool = False) -> str:
    """``2024-05-01T12:00:00Z``-style, the form SARIF's date-time properties and most readers expect.

    ``seconds=True`` drops the fraction, for text a person reads.
    """
    return utc(dt).isoformat(timespec="seconds" if seconds else "auto").replace("+00:00", "Z")
