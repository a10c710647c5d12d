"""The principal page: the keys one principal can decrypt or administer (effective access, web/access_view.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kmsguard.store.queries import latest_scan
from kmsguard.web.access_view import principal_view
from kmsguard.web.deps import AccessDep, PagesDep, StoreDep

router = APIRouter()


@router.get("/principal", response_class=HTMLResponse)
def principal_page(
    request: Request, store: StoreDep, pages: PagesDep, access: AccessDep, arn: str = ""
) -> HTMLResponse:
    """By a query parameter, not a path: an IAM path may hold "/../", which a browser would fold out of a URL path."""
    arn = arn.strip()
    with store.session() as s:
        scan = latest_scan(s)
        if scan is None:
            return pages.render(request, "empty.html")
        if not arn:
            return pages.render(request, "principal.html", scan=scan, view=None)
        view = principal_view(access, s, scan, arn)
    if not view.known:
        return pages.render(request, "notfound.html", status_code=404, what=f"principal {arn}")
    return pages.render(request, "principal.html", scan=scan, view=view)
