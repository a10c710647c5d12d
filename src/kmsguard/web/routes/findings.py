"""The findings list (filters and paging in SQL) and dashboard mutes: add one, end one (CSRF-checked POSTs)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kmsguard.store.mutes import MuteError, add_mute, end_mute, mutes_for
from kmsguard.store.queries import FindingFilter, distinct, latest_scan, list_findings
from kmsguard.store.schema import FindingRow
from kmsguard.web.deps import (
    MAX_ID,
    MAX_PAGE,
    SEVERITIES,
    STATUSES,
    CheckedForm,
    PagesDep,
    StoreDep,
    back_target,
    clamped,
    whole_number,
)

router = APIRouter()


@router.get("/findings", response_class=HTMLResponse)
def findings(
    request: Request,
    store: StoreDep,
    pages: PagesDep,
    check: str = "",
    status: str = "FAIL",
    severity: str = "",
    account: str = "",
    region: str = "",
    resource: str = "",
    page: str = "1",
) -> HTMLResponse:
    number = whole_number(page, "page", MAX_PAGE)
    flt = FindingFilter(
        check or None, status or None, severity or None, account or None, region or None, resource.strip() or None
    )
    with store.session() as s:
        scan = latest_scan(s)
        if scan is None:
            return pages.render(request, "empty.html")
        result = clamped(lambda n: list_findings(s, scan.id, flt, n), number)
        mutes = {
            (f.check_id, f.resource_arn): mutes_for(s, f.check_id, f.resource_arn)[:1]
            for f, muted in result.rows
            if muted
        }
        options = {
            "checks": distinct(s, scan.id, FindingRow.check_id),
            "accounts": distinct(s, scan.id, FindingRow.account),
            "regions": distinct(s, scan.id, FindingRow.region),
        }
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    params.setdefault("status", status)
    return pages.render(
        request,
        "findings.html",
        scan=scan,
        result=result,
        flt=flt,
        options=options,
        mutes=mutes,
        query=urlencode(params),
        severities=SEVERITIES,
        statuses=STATUSES,
        here=str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
    )


@router.post("/mutes")
def mute(request: Request, data: CheckedForm, store: StoreDep, pages: PagesDep) -> Response:
    expires = None
    if data.get("expires"):
        try:
            expires = datetime.combine(datetime.fromisoformat(data["expires"]).date(), time(23, 59, 59), UTC)
        except ValueError:
            return pages.render(request, "error.html", status_code=400, message="expiry must be a date (YYYY-MM-DD)")
    try:
        with store.session() as s:
            add_mute(
                s,
                data.get("check_id", ""),
                data.get("resource_arn", ""),
                data.get("reason", ""),
                data.get("who", ""),
                expires,
            )
    except MuteError as e:
        return pages.render(request, "error.html", status_code=400, message=str(e))
    return RedirectResponse(back_target(data), status_code=303)


@router.post("/mutes/{mute_id}/end")
def unmute(mute_id: str, data: CheckedForm, store: StoreDep) -> Response:
    number = whole_number(mute_id, "mute id", MAX_ID)
    with store.session() as s:
        end_mute(s, number, data.get("who", "") or "dashboard")
    return RedirectResponse(back_target(data), status_code=303)
