"""What every dashboard route shares, handed over the FastAPI way: ``create_app`` puts the store, the login
and CSRF check (``Auth``), the login limiter, the templates and the effective-access cache on ``app.state``;
routes ask for them with ``Depends`` (the ``*Dep`` annotations), never by closing over them.

Also the request-value rules every page applies: whole numbers for pages and ids (``whole_number``), the last
page for a page past the end (``clamped``), a POST's CSRF value (``checked_form``) and where a form sends the
browser back to (``back_target``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kmsguard.store.db import Store
from kmsguard.store.queries import Page
from kmsguard.web.access_view import AccessCache
from kmsguard.web.auth import Auth, LoginLimiter, client_address, form

TEMPLATES = Path(__file__).parent / "templates"
SEVERITIES = ["critical", "high", "medium", "low", "info"]
STATUSES = ["FAIL", "PASS", "ERROR", "MUTED"]
# 50 million rows deep: past any estate, and an OFFSET every database takes (2**63 overflowed it: a 500).
MAX_PAGE = 1_000_000
MAX_ID = 2**63 - 1  # the largest id a BIGINT column can hold


class BadRequest(Exception):
    """A query or form value the dashboard refuses: 400, with this message."""


class CsrfRefused(Exception):
    """A POST without this dashboard's CSRF value: 403."""


class Pages:
    """The Jinja2 templates, rendered with what every page needs (the CSRF value, whether login is on)."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
        self.env.filters["q"] = lambda v: quote(str(v), safe=":/")
        self.env.filters["qarg"] = lambda v: quote(str(v), safe="")  # a query-string value
        self.env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""

    def render(self, request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.update(request=request, csrf=self.auth.csrf(), login=self.auth.token is not None, page_name=name)
        return HTMLResponse(self.env.get_template(name).render(**ctx), status_code=status_code)


# --- app.state, as dependencies ----------------------------------------------------------------------------


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    async def read(request: Request) -> Any:  # async: a look-up needs no worker thread
        return getattr(request.app.state, name)

    return read


StoreDep = Annotated[Store, Depends(_state("store"))]
AuthDep = Annotated[Auth, Depends(_state("auth"))]
LimiterDep = Annotated[LoginLimiter, Depends(_state("limiter"))]
PagesDep = Annotated[Pages, Depends(_state("pages"))]
AccessDep = Annotated[AccessCache, Depends(_state("access"))]


async def checked_form(request: Request, auth: AuthDep) -> dict[str, str]:
    """The POST's form, once its CSRF value is this dashboard's (CsrfRefused otherwise)."""
    data = await form(request)
    if not auth.csrf_ok(data.get("csrf", "")):
        raise CsrfRefused
    return data


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def held_back(request: Request, target: str = "/") -> HTMLResponse | None:
    """429 while the client's address has too many failed logins, whatever it presents now."""
    state = request.app.state
    wait = state.limiter.retry_after(client_address(request))
    if wait is None:
        return None
    message = f"Too many failed logins from this address: try again in {wait} s."
    pages: Pages = state.pages
    resp = pages.render(request, "login.html", status_code=429, next=target, error=message)
    resp.headers["Retry-After"] = str(wait)
    return resp


def whole_number(raw: str, what: str, high: int) -> int:
    """``raw`` as an integer from 1 to ``high``, or BadRequest naming ``what``. Judged as text first: int() of a
    5,000-digit string raises, and 2**63 passed on to SQL is a 500."""
    digits = raw.lstrip("0")
    if raw.isascii() and raw.isdigit() and 0 < len(digits) <= len(str(high)) and int(digits) <= high:
        return int(digits)
    raise BadRequest(f"{what} must be a whole number from 1 to {high}")


def clamped(fetch: Callable[[int], Page], number: int) -> Page:
    """Page ``number``, or the last page when there are fewer (a stale link after the estate shrank)."""
    result = fetch(number)
    return fetch(result.pages) if result.page > result.pages else result


def back_target(data: dict[str, str]) -> str:
    """Where a form sends the browser back to: a path of this dashboard, else the findings list."""
    target = data.get("back", "/findings")
    return target if target.startswith("/") and not target.startswith("//") else "/findings"
