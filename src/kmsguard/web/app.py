"""The dashboard: a FastAPI app rendering Jinja2 templates from the store. No JavaScript, no external assets.

Every page reads the latest scan (a scan is always complete, see ``store.schema``), with filters and paging
done in SQL, so it stays fast on a 10,000-key estate. ``create_app`` puts what the routes share on
``app.state`` (``web.deps``), includes one router per page group (``web.routes``), and returns the app behind
``web.guard.Guard`` (host names, Origin, body size, security headers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from kmsguard.store.db import Store
from kmsguard.web.access_view import AccessCache
from kmsguard.web.auth import Auth, LoginLimiter, client_address
from kmsguard.web.deps import BadRequest, CsrfRefused, Pages, held_back
from kmsguard.web.guard import Guard, served_names
from kmsguard.web.routes import ROUTERS


def create_app(
    store: Store,
    token: str | None = None,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
    behind_tls: bool = False,
) -> ASGIApp:
    """The dashboard, serving the names ``host``, loopback and ``allowed_hosts`` (ValueError names a bad one);
    ``behind_tls``: a proxy ends TLS in front of it, so the session cookie is Secure even over plain HTTP."""
    names = served_names(host, allowed_hosts)
    app = FastAPI(title="kmsguard", docs_url=None, redoc_url=None, openapi_url=None)
    auth, limiter = Auth(token), LoginLimiter()
    pages = Pages(auth)
    app.state.store = store
    app.state.auth = auth
    app.state.limiter = limiter
    app.state.pages = pages
    app.state.behind_tls = behind_tls
    # Effective access: the Estate and evaluator of the last few full scans' snapshots (web/access_view.py).
    app.state.access = AccessCache(store)

    @app.exception_handler(BadRequest)
    def bad_request(request: Request, exc: BadRequest) -> HTMLResponse:
        return pages.render(request, "error.html", status_code=400, message=str(exc))

    @app.exception_handler(CsrfRefused)
    def csrf_refused(request: Request, exc: CsrfRefused) -> HTMLResponse:
        what = "a valid form (CSRF check failed)"
        return pages.render(request, "notfound.html", status_code=403, what=what)

    @app.middleware("http")
    async def require_login(request: Request, call_next: Any) -> Response:
        if request.url.path != "/login":
            # A bearer token is a login attempt like the form's: the same limit, or it would bypass it.
            bearer = "authorization" in request.headers
            if bearer and (held := held_back(request)):
                return held
            if not auth.ok(request):
                if bearer:
                    limiter.failed(client_address(request))
                # The query too: /principal?arn=... is the page, not /principal.
                here = request.url.path + ("?" + request.url.query if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)
        response: Response = await call_next(request)
        return response

    for router in ROUTERS:
        app.include_router(router)
    return Guard(app, names)
