"""The usage summary of a trail analysis (``model.usage.TrailUsage``), built from its report.

``TrailReport`` (trail/analyze.py) holds everything an analysis found per key, principal and hour; it grows
with the estate and its logs. ``summarise`` caps it into the ``TrailUsage`` that travels with a scan.

With a snapshot, a key the logs name without its ARN (a bare key id, an alias, an ARN of another partition)
is resolved to the snapshot's key ARN, and the counts of one key logged both ways are merged, so that the
key's page and its label find its usage. A reference the snapshot does not resolve stays as logged.

This module imports no analysis code at import time: a plain ``kmsguard scan -f json`` must not load DuckDB or
Arrow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kmsguard.model.keyrefs import KeyIndex
from kmsguard.model.usage import (
    DAILY_KEYS,
    DAYS,
    TOP_KEYS,
    TOP_PRINCIPALS,
    KeySeries,
    KeyTotals,
    PrincipalTotals,
    TrailUsage,
)

if TYPE_CHECKING:
    from kmsguard.model.snapshot import Snapshot
    from kmsguard.model.trail import TrailFacts
    from kmsguard.trail.analyze import TrailOptions, TrailReport

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
) -> tuple[TrailFacts, TrailUsage]:
    """One analysis, both of its results: the facts a scan puts on its snapshot (``Snapshot.trail``, judged by the
    trail family of checks with the rest) and the usage summary it keeps (``scan --trail``, ``report --trail``,
    ``monitor --trail``). Log files that failed are facts too, so their ERROR findings reach every output."""
    from kmsguard.trail.analyze import analyze

    report = analyze(sources, snapshot, options)
    return report.facts, summarise(report, snapshot)
