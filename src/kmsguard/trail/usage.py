"""The usage summary of a trail analysis: small, serialisable, and the one shape every output reads.

``TrailReport`` (trail/analyze.py) holds everything an analysis found per key, principal and hour; it grows
with the estate and its logs. ``TrailUsage`` is what travels with a scan (``ScanResult.trail_usage``): the
window, how many events, cryptographic calls per UTC day for the busiest keys over the last days of the
window, and the top keys and principals. Every list is capped, so a 10,000-key estate gives the same few
kilobytes as a small one. The scan JSON, the HTML report and the dashboard (through the store) all read it.

With a snapshot, a key the logs name without its ARN (a bare key id, an alias, an ARN of another partition)
is resolved to the snapshot's key ARN, and the counts of one key logged both ways are merged, so that the
key's page and its label find its usage. A reference the snapshot does not resolve stays as logged.

This module imports no analysis code at import time: ``model.result`` imports it, and a plain
``kmsguard scan -f json`` must not load DuckDB or Arrow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from kmsguard.arn import parse as parse_arn

if TYPE_CHECKING:
    from kmsguard.model.finding import Finding
    from kmsguard.model.snapshot import Snapshot
    from kmsguard.trail.analyze import TrailOptions, TrailReport

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
        index = KeyIndex([_Ident.of_arn(key_arn, key_id, aliases)])
        return next((t for t in self.top_keys if index.resolve(t.key_arn) == key_arn), None)

    def series_for(self, key_arn: str, key_id: str = "", aliases: Iterable[str] = ()) -> KeySeries | None:
        index = KeyIndex([_Ident.of_arn(key_arn, key_id, aliases)])
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


# -- resolving key references ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ident:
    arn: str
    account: str
    region: str
    key_id: str
    aliases: tuple[str, ...]

    @classmethod
    def of_arn(cls, arn: str, key_id: str = "", aliases: Iterable[str] = ()) -> _Ident:
        parsed = parse_arn(arn)
        account, region = (parsed.account, parsed.region) if parsed is not None else ("", "")
        if not key_id and parsed is not None and parsed.resource.startswith("key/"):
            key_id = parsed.resource[4:]
        return cls(arn, account, region, key_id, tuple(aliases))


class KeyIndex:
    """Key references as CloudTrail logs them -> the key ARN of a known key, or None.

    A key id or alias is unique only in its account and region: a bare one resolves only when exactly one
    known key has it (an alias such as ``alias/app`` in two regions stays as logged rather than guessed).
    """

    def __init__(self, keys: Iterable[_Ident]) -> None:
        self._arns: set[str] = set()
        self._placed: dict[tuple[str, str, str], str] = {}  # (account, region, key/ID or alias/NAME) -> ARN
        self._bare: dict[str, str | None] = {}  # key id or alias -> ARN, None when ambiguous
        for k in keys:
            self._arns.add(k.arn)
            for name in (f"key/{k.key_id}" if k.key_id else "", *k.aliases):
                if name:
                    self._placed[(k.account, k.region, name)] = k.arn
                    bare = name[4:] if name.startswith("key/") else name
                    self._bare[bare] = None if self._bare.get(bare, k.arn) != k.arn else k.arn

    @classmethod
    def of_snapshot(cls, snapshot: Snapshot) -> KeyIndex:
        return cls(_Ident(k.arn, k.account, k.region, k.key_id, tuple(k.aliases)) for k in snapshot.all_keys())

    def resolve(self, ref: str) -> str | None:
        if ref in self._arns:
            return ref
        parsed = parse_arn(ref)
        if parsed is not None:
            # By place and name, whatever partition the reference was written in.
            return self._placed.get((parsed.account, parsed.region, parsed.resource))
        return self._bare.get(ref)


# -- building the summary ----------------------------------------------------------------------------------


@dataclass
class _Acc:
    calls: int = 0
    crypto_calls: int = 0
    errors: int = 0
    last_use: datetime | None = None


def summarise(
    report: TrailReport,
    snapshot: Snapshot | None = None,
    *,
    daily_keys: int = DAILY_KEYS,
    top_keys: int = TOP_KEYS,
    top_principals: int = TOP_PRINCIPALS,
    days: int = DAYS,
) -> TrailUsage:
    """The capped usage summary of ``report``; ``snapshot`` resolves key ids and aliases to key ARNs."""
    index = KeyIndex.of_snapshot(snapshot) if snapshot is not None else None
    aliases = {k.arn: k.aliases[0] for k in snapshot.all_keys() if k.aliases} if snapshot is not None else {}

    def arn(ref: str) -> str:
        return (index.resolve(ref) if index is not None else None) or ref

    totals: dict[str, _Acc] = defaultdict(_Acc)
    for k in report.keys:
        acc = totals[arn(k.key_arn)]
        acc.calls += k.calls
        acc.crypto_calls += k.crypto_calls
        acc.errors += k.errors
        last = _time(k.last_use)
        if last is not None and (acc.last_use is None or last > acc.last_use):
            acc.last_use = last

    # Principals are recounted per resolved key (one key logged two ways must not count its callers twice).
    callers: dict[str, set[str]] = defaultdict(set)
    by_principal: dict[str, tuple[int, set[str]]] = {}
    for principal, per_key in report.principals.items():
        used = {arn(ref) for ref in per_key}
        by_principal[principal] = (sum(per_key.values()), used)
        if not principal.startswith("service:"):  # AWS's own work, as KEY_USAGE counts principals
            for key in used:
                callers[key].add(principal)

    start, end = _time(report.window.get("start")), _time(report.window.get("end"))
    axis = _days(start, end, days)
    series = _series(report.hourly, arn, axis, aliases)
    # The analysis returns hourly counts for its busiest keys only (detections.HOURLY_TOP_KEYS): when a key with
    # cryptographic calls is missing from them, a key without a series may still have been used.
    hourly_keys = {str(h["key_arn"]) for h in report.hourly}
    hourly_complete = all(k.key_arn in hourly_keys for k in report.keys if k.crypto_calls)
    keys = [
        KeyTotals(
            key_arn=key,
            alias=aliases.get(key),
            calls=a.calls,
            crypto_calls=a.crypto_calls,
            errors=a.errors,
            principals=len(callers.get(key, ())),
            last_use=a.last_use,
        )
        for key, a in sorted(totals.items(), key=lambda kv: (-kv[1].calls, kv[0]))[:top_keys]
    ]
    principals = [
        PrincipalTotals(principal=p, calls=n, keys=len(used))
        for p, (n, used) in sorted(by_principal.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top_principals]
    ]
    return TrailUsage(
        window_start=start,
        window_end=end,
        events=report.events,
        keys_seen=len(totals),
        principals_seen=len(by_principal),
        days=axis,
        daily=series[:daily_keys],
        daily_complete=hourly_complete and len(series) <= daily_keys,
        top_keys=keys,
        top_principals=principals,
    )


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _days(start: datetime | None, end: datetime | None, limit: int) -> list[date]:
    """The last ``limit`` UTC days of the window (all of it when shorter); none without events."""
    if start is None or end is None or limit <= 0:
        return []
    last = end.astimezone(UTC).date()
    first = max(start.astimezone(UTC).date(), last - timedelta(days=limit - 1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _series(
    hourly: list[dict[str, Any]],
    arn: Callable[[str], str],
    axis: list[date],
    aliases: dict[str, str],
) -> list[KeySeries]:
    """Hourly crypto calls summed per resolved key and UTC day of ``axis``: every key with a call in those days,
    the busiest first."""
    if not axis:
        return []
    slot = {d: i for i, d in enumerate(axis)}
    per_key: dict[str, list[int]] = {}
    for h in hourly:
        day = datetime.fromtimestamp(int(h["hour"]), UTC).date()
        i = slot.get(day)
        if i is None:
            continue  # before the series' first day
        row = per_key.setdefault(arn(str(h["key_arn"])), [0] * len(axis))
        row[i] += int(h["calls"])
    busiest = sorted(((k, c) for k, c in per_key.items() if sum(c) > 0), key=lambda kv: (-sum(kv[1]), kv[0]))
    return [KeySeries(key_arn=k, alias=aliases.get(k), calls=calls) for k, calls in busiest]


def analyze_usage(
    sources: list[str], snapshot: Snapshot | None, options: TrailOptions | None = None
) -> tuple[list[Finding], TrailUsage]:
    """One analysis, both of its results: the findings a scan merges and the usage summary it keeps
    (``scan --trail``, ``report --trail``, ``monitor --trail``). Log files that failed and whatever could not be
    judged are ERROR findings among them (``trail.findings``), so they reach every output that way."""
    from kmsguard.trail.analyze import analyze

    report = analyze(sources, snapshot, options)
    return report.findings, summarise(report, snapshot)
