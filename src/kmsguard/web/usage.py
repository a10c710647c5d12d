"""CloudTrail key usage on the dashboard, from the summary `monitor --trail` stores with a scan.

The key page: that key's cryptographic calls per day (an inline SVG from report/svg_charts.py, the same chart as
the HTML report's) with its totals, or a sentence that says exactly what is known: no trail data at all, no
call in the logs, or not among the busiest keys the summary keeps. The overview: top keys and principals.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmsguard.model.snapshot import Key
from kmsguard.model.usage import KeyTotals, PrincipalTotals, TrailUsage
from kmsguard.report.svg_charts import daily_strips
from kmsguard.store.queries import StoredUsage


@dataclass
class KeyUsageView:
    message: str
    scan_id: int  # the scan whose logs these are
    window: str
    chart: str | None = None
    totals: KeyTotals | None = None


def _window(u: TrailUsage) -> str:
    if u.window_start is None or u.window_end is None:
        return "no events"
    return f"{u.window_start:%Y-%m-%d %H:%M} to {u.window_end:%Y-%m-%d %H:%M} UTC"


def key_usage(stored: StoredUsage | None, key: Key) -> KeyUsageView | None:
    """What the key page says about the key's use; None when no scan has trail usage ("no trail data")."""
    if stored is None:
        return None
    u = stored.usage
    view = KeyUsageView("", stored.scan_id, _window(u))
    view.totals = u.totals_for(key.arn, key.key_id, key.aliases)
    series = u.series_for(key.arn, key.key_id, key.aliases)
    span = f"{u.days[0]:%Y-%m-%d} to {u.days[-1]:%Y-%m-%d}" if u.days else ""
    if u.events == 0:
        view.message = "The CloudTrail logs analysed have no KMS events."
    elif series is not None:
        view.chart = daily_strips(
            f"Cryptographic calls per UTC day, {span}",
            u.days,
            [("calls per day", series.calls)],
            strip_h=110,
            label_w=100,
            plot_w=540,
        )
        view.message = f"{series.total} cryptographic call(s) from {span}."
    elif view.totals is not None:
        view.message = (
            f"No cryptographic call from {span}."
            if u.daily_complete
            else f"Not among the {len(u.daily)} busiest keys from {span}: its calls per day were not kept."
        )
    elif u.all_keys_listed:
        view.message = "No call to this key in the CloudTrail logs analysed."
    else:
        view.message = (
            f"Not among the {len(u.top_keys)} busiest of the {u.keys_seen} keys in the CloudTrail logs analysed: "
            "its usage was not kept."
        )
    return view


@dataclass
class Bar:
    label: str
    name: str  # the full key ARN or principal
    calls: int
    width: int  # percent of the busiest entry, for an inline bar
    linked: bool = False  # a key of the scan shown: its page exists
    crypto_calls: int = 0  # keys: how many of the calls were cryptographic
    key_count: int = 0  # principals: how many keys they called


@dataclass
class OverviewUsage:
    scan_id: int
    window: str
    events: int
    keys: list[Bar]
    principals: list[Bar]
    keys_seen: int
    principals_seen: int


def overview_usage(stored: StoredUsage | None, in_scan: set[str], top: int = 10) -> OverviewUsage | None:
    """Top keys and principals for the overview; keys the shown scan does not have (another account's, or
    deleted) are listed without a link."""
    if stored is None:
        return None
    u = stored.usage
    keys, principals = u.top_keys[:top], u.top_principals[:top]
    return OverviewUsage(
        stored.scan_id,
        _window(u),
        u.events,
        [_key_bar(k, keys[0].calls, k.key_arn in in_scan) for k in keys],
        [_principal_bar(p, principals[0].calls) for p in principals],
        u.keys_seen,
        u.principals_seen,
    )


def _pct(n: int, peak: int) -> int:
    return max(1, round(100 * n / peak)) if peak else 0


def _key_bar(k: KeyTotals, peak: int, linked: bool) -> Bar:
    return Bar(k.label, k.key_arn, k.calls, _pct(k.calls, peak), linked, crypto_calls=k.crypto_calls)


def _principal_bar(p: PrincipalTotals, peak: int) -> Bar:
    return Bar(p.label, p.principal, p.calls, _pct(p.calls, peak), key_count=p.keys)
