"""The key list (filters and paging in SQL) and the key page (web/keyview.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kmsguard.model.snapshot import Key
from kmsguard.store.mutes import mutes_for
from kmsguard.store.queries import (
    KeyFilter,
    distinct,
    finding_history,
    key_drift,
    key_findings,
    key_row,
    latest_scan,
    list_keys,
    trail_usage,
)
from kmsguard.store.schema import KeyRow
from kmsguard.web.access_view import key_access_view, key_fingerprint
from kmsguard.web.deps import MAX_PAGE, AccessDep, PagesDep, StoreDep, clamped, whole_number
from kmsguard.web.keyview import key_view

router = APIRouter()


@router.get("/keys", response_class=HTMLResponse)
def keys(
    request: Request,
    store: StoreDep,
    pages: PagesDep,
    account: str = "",
    region: str = "",
    state: str = "",
    manager: str = "",
    rotation: str = "",
    failing: str = "",
    q: str = "",
    page: str = "1",
) -> HTMLResponse:
    number = whole_number(page, "page", MAX_PAGE)
    flt = KeyFilter(
        account or None,
        region or None,
        state or None,
        manager or None,
        rotation or None,
        failing == "1",
        q.strip() or None,
    )
    with store.session() as s:
        scan = latest_scan(s)
        if scan is None:
            return pages.render(request, "empty.html")
        result = clamped(lambda n: list_keys(s, scan.id, flt, n), number)
        options = {
            "accounts": distinct(s, scan.id, KeyRow.account, KeyRow),
            "regions": distinct(s, scan.id, KeyRow.region, KeyRow),
            "states": distinct(s, scan.id, KeyRow.key_state, KeyRow),
        }
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    return pages.render(
        request, "keys.html", scan=scan, result=result, flt=flt, options=options, query=urlencode(params)
    )


@router.get("/keys/{arn:path}", response_class=HTMLResponse)
def key_page(request: Request, arn: str, store: StoreDep, pages: PagesDep, access: AccessDep) -> HTMLResponse:
    with store.session() as s:
        scan = latest_scan(s)
        row = key_row(s, scan.id, arn) if scan else None
        if scan is None or row is None:
            return pages.render(request, "notfound.html", status_code=404, what=f"key {arn}")
        findings = key_findings(s, scan.id, arn)
        mutes = {f.check_id: mutes_for(s, f.check_id, arn) for f, _ in findings}
        history = finding_history(s, arn)
        drift = key_drift(s, arn)
        stored = trail_usage(s, scan.id)
        key = Key.model_validate_json(row.data)
        effective = key_access_view(access, s, scan, key, key_fingerprint(row.data))
    view = key_view(row, [f for f, _ in findings], stored, effective)
    return pages.render(
        request,
        "key.html",
        scan=scan,
        row=row,
        view=view,
        findings=findings,
        mutes=mutes,
        history=history,
        drift=drift,
        back=request.headers.get("referer"),
    )
