"""The overview: the latest scan's score, counts, trend, recent drift and trail usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kmsguard.store.queries import count_by, keys_in_scan, latest_scan, recent_drift, trail_usage, trend
from kmsguard.store.schema import FindingRow
from kmsguard.web.deps import SEVERITIES, PagesDep, StoreDep
from kmsguard.web.trend_chart import TrendPoint, trend_svg
from kmsguard.web.usage import overview_usage

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, store: StoreDep, pages: PagesDep) -> HTMLResponse:
    with store.session() as s:
        scan = latest_scan(s)
        if scan is None:
            return pages.render(request, "empty.html")
        points = [TrendPoint(r.started_at, r.score, r.failing) for r in trend(s)]
        ctx: dict[str, Any] = {
            "scan": scan,
            "by_severity": dict(count_by(s, scan.id, FindingRow.severity)),
            "by_check": count_by(s, scan.id, FindingRow.check_id)[:15],
            "by_account": count_by(s, scan.id, FindingRow.account),
            "by_region": count_by(s, scan.id, FindingRow.region),
            "chart": trend_svg(points),
            "drift": recent_drift(s, 15),
            "severities": SEVERITIES,
        }
        stored = trail_usage(s, scan.id)
        top = [k.key_arn for k in stored.usage.top_keys] if stored else []
        ctx["usage"] = overview_usage(stored, keys_in_scan(s, scan.id, top))
    return pages.render(request, "overview.html", **ctx)
