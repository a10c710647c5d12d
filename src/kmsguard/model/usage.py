"""The usage summary of a trail analysis: small, serialisable, and the one shape every output reads.

``TrailUsage`` is what travels with a scan (``ScanResult.trail_usage``): the window, how many events,
cryptographic calls per UTC day for the busiest keys over the last days of the window, and the top keys and
principals. Every list is capped, so a 10,000-key estate gives the same few kilobytes as a small one. The scan
JSON, the HTML report and the dashboard (through the store) all read it; ``trail.usage.summarise`` builds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from kmsguard.arn import parse as parse_arn
from kmsguard.model.keyrefs import KeyIndex, KeyRef

# Caps: enough for a report page and a dashboard, small enough to keep with every stored scan.
DAILY_KEYS = 25  # keys with a daily series
TOP_KEYS = 25
TOP_PRINCIPALS = 25
DAYS = 90  # the daily series covers the last DAYS days of the window (key_unused's default horizon too)


class KeyTotals(BaseModel):
    """One key's calls over the whole window."""

    model_config = ConfigDict(extra="forbid")

    key_arn: str  # the key ARN; as logged (key id, alias) when nothing resolved it
    alias: str | None = None  # from the snapshot, when there is one
    calls: int
    crypto_calls: int
    errors: int
    principals: int  # distinct callers other than AWS services
    last_use: datetime | None = None

    @property
    def label(self) -> str:
        return key_label(self.key_arn, self.alias)


class KeySeries(BaseModel):
    """One key's successful and failed cryptographic calls per day of ``TrailUsage.days``."""

    model_config = ConfigDict(extra="forbid")

    key_arn: str
    alias: str | None = None
    calls: list[int]

    @property
    def label(self) -> str:
        return key_label(self.key_arn, self.alias)

    @property
    def total(self) -> int:
        return sum(self.calls)


class PrincipalTotals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str  # the role for assumed-role sessions, ``service:NAME`` for AWS services
    calls: int
    keys: int

    @property
    def label(self) -> str:
        return principal_label(self.principal)


class TrailUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_start: datetime | None  # first and last event analysed; None when there was none
    window_end: datetime | None
    events: int  # KMS events analysed
    keys_seen: int  # distinct keys in the window (top_keys holds at most TOP_KEYS of them)
    principals_seen: int
    days: list[date]  # the daily series' UTC days, consecutive, ending on the window's last day
    daily: list[KeySeries]  # busiest keys in ``days`` first
    # True when every key with a cryptographic call in ``days`` has its series here: a key without one then
    # had no such call. False when a cap left keys out (this summary's, or the analysis's own hourly cap).
    daily_complete: bool
    top_keys: list[KeyTotals]  # most calls first
    top_principals: list[PrincipalTotals]  # most calls first

    @property
    def all_keys_listed(self) -> bool:
        """True when ``top_keys`` is every key seen: a key missing from it was not used in the window."""
        return self.keys_seen <= len(self.top_keys)

    def totals_for(self, key_arn: str, key_id: str = "", aliases: Iterable[str] = ()) -> KeyTotals | None:
        """The totals of one key, matched the way ``summarise`` resolves references (ARN, id, alias)."""
        index = KeyIndex([KeyRef.of_arn(key_arn, key_id, aliases)])
        return next((t for t in self.top_keys if index.resolve(t.key_arn) == key_arn), None)

    def series_for(self, key_arn: str, key_id: str = "", aliases: Iterable[str] = ()) -> KeySeries | None:
        index = KeyIndex([KeyRef.of_arn(key_arn, key_id, aliases)])
        return next((s for s in self.daily if index.resolve(s.key_arn) == key_arn), None)


def key_label(key_arn: str, alias: str | None = None) -> str:
    """A short name for charts: the alias, else ``key/1234abcd…90ab us-east-1`` (both ends of the id: keys
    made by one tool often share a prefix); the full ARN goes in tables."""
    if alias:
        return alias
    parsed = parse_arn(key_arn)
    if parsed is not None and parsed.resource.startswith("key/"):
        key_id = parsed.resource[4:]
        short = key_id if len(key_id) <= 13 else f"{key_id[:8]}…{key_id[-4:]}"
        return f"key/{short} {parsed.region}"
    return key_arn


def principal_label(principal: str) -> str:
    """``user/alice (111122223333)`` for IAM ARNs; ``service:…`` and ``account:…`` as they are."""
    parsed = parse_arn(principal)
    if parsed is not None and parsed.resource:
        return f"{parsed.resource} ({parsed.account})" if parsed.account else parsed.resource
    return principal
