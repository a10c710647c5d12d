"""Token login: the form, and the POST that sets the session cookie (limited per client address)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kmsguard.web.auth import COOKIE, client_address, form
from kmsguard.web.deps import AuthDep, LimiterDep, PagesDep, held_back

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, pages: PagesDep, next: str = "/") -> HTMLResponse:
    return pages.render(request, "login.html", next=next if next.startswith("/") else "/", error=None)


@router.post("/login")
async def login(request: Request, pages: PagesDep, auth: AuthDep, limiter: LimiterDep) -> Response:
    data = await form(request)
    target = data.get("next", "/")
    target = target if target.startswith("/") and not target.startswith("//") else "/"
    if held := held_back(request, target):
        return held
    if not auth.check_token(data.get("token", "")):
        limiter.failed(client_address(request))
        return pages.render(request, "login.html", status_code=401, next=target, error="Wrong token.")
    resp = RedirectResponse(target, status_code=303)
    # Secure when the browser reached us over TLS: directly, or through a proxy (X-Forwarded-Proto, which
    # uvicorn trusts from 127.0.0.1) or one the operator vouches for (--behind-tls).
    secure = request.app.state.behind_tls or request.url.scheme == "https"
    resp.set_cookie(COOKIE, data["token"], httponly=True, samesite="strict", secure=secure)
    return resp
