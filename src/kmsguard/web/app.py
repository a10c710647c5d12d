"""The dashboard: a FastAPI app rendering Jinja2 templates from the store. No JavaScript, no external assets.

Every page reads the latest scan (a scan is always complete, see ``store.schema``), with filters and paging
done in SQL, so it stays fast on a 10,000-key estate. ``create_app`` returns it behind ``web.guard.Guard``
(host names, Origin, body size, security headers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.types import ASGIApp

from kmsguard.model.snapshot import Key
from kmsguard.store.db import Store
from kmsguard.store.mutes import MuteError, add_mute, end_mute, mutes_for
from kmsguard.store.queries import (
    FindingFilter,
    KeyFilter,
    Page,
    count_by,
    distinct,
    finding_history,
    key_drift,
    key_findings,
    key_row,
    keys_in_scan,
    latest_scan,
    list_findings,
    list_keys,
    recent_drift,
    status_by_check,
    trail_usage,
    trend,
)
from kmsguard.store.schema import FindingRow, KeyRow, ScanRow
from kmsguard.web.access_view import AccessCache, key_access_view, key_fingerprint, principal_view
from kmsguard.web.auth import COOKIE, Auth, LoginLimiter, client_address, form
from kmsguard.web.charts import TrendPoint, trend_svg
from kmsguard.web.guard import Guard, served_names
from kmsguard.web.keyview import key_view
from kmsguard.web.usage import overview_usage

TEMPLATES = Path(__file__).parent / "templates"
SEVERITIES = ["critical", "high", "medium", "low", "info"]
STATUSES = ["FAIL", "PASS", "ERROR", "MUTED"]
# 50 million rows deep: past any estate, and an OFFSET every database takes (2**63 overflowed it: a 500).
MAX_PAGE = 1_000_000
MAX_ID = 2**63 - 1  # the largest id a BIGINT column can hold


class BadRequest(Exception):
    """A query or form value the dashboard refuses: 400, with this message."""


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
    auth = Auth(token)
    limiter = LoginLimiter()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["q"] = lambda v: quote(str(v), safe=":/")
    env.filters["qarg"] = lambda v: quote(str(v), safe="")  # a query-string value
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""
    # Effective access: the Estate and evaluator of the last few full scans' snapshots (web/access_view.py).
    access = AccessCache(store)
    app.state.access = access

    def render(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.update(request=request, csrf=auth.csrf(), login=auth.token is not None, page_name=name)
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status_code)

    def held_back(request: Request, target: str = "/") -> HTMLResponse | None:
        """429 while the client's address has too many failed logins, whatever it presents now."""
        wait = limiter.retry_after(client_address(request))
        if wait is None:
            return None
        message = f"Too many failed logins from this address: try again in {wait} s."
        resp = render(request, "login.html", status_code=429, next=target, error=message)
        resp.headers["Retry-After"] = str(wait)
        return resp

    @app.exception_handler(BadRequest)
    def bad_request(request: Request, exc: BadRequest) -> HTMLResponse:
        return render(request, "error.html", status_code=400, message=str(exc))

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

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") else "/", error=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        data = await form(request)
        target = data.get("next", "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        if held := held_back(request, target):
            return held
        if not auth.check_token(data.get("token", "")):
            limiter.failed(client_address(request))
            return render(request, "login.html", status_code=401, next=target, error="Wrong token.")
        resp = RedirectResponse(target, status_code=303)
        # Secure when the browser reached us over TLS: directly, or through a proxy (X-Forwarded-Proto, which
        # uvicorn trusts from 127.0.0.1) or one the operator vouches for (--behind-tls).
        secure = behind_tls or request.url.scheme == "https"
        resp.set_cookie(COOKIE, data["token"], httponly=True, samesite="strict", secure=secure)
        return resp

    def latest(s: Session) -> ScanRow | None:
        return latest_scan(s)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        with store.session() as s:
            scan = latest(s)
            if scan is None:
                return render(request, "empty.html")
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
        return render(request, "overview.html", **ctx)

    @app.get("/keys", response_class=HTMLResponse)
    def keys(
        request: Request,
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
            scan = latest(s)
            if scan is None:
                return render(request, "empty.html")
            result = clamped(lambda n: list_keys(s, scan.id, flt, n), number)
            options = {
                "accounts": distinct(s, scan.id, KeyRow.account, KeyRow),
                "regions": distinct(s, scan.id, KeyRow.region, KeyRow),
                "states": distinct(s, scan.id, KeyRow.key_state, KeyRow),
            }
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        return render(request, "keys.html", scan=scan, result=result, flt=flt, options=options, query=urlencode(params))

    @app.get("/keys/{arn:path}", response_class=HTMLResponse)
    def key_page(request: Request, arn: str) -> HTMLResponse:
        with store.session() as s:
            scan = latest(s)
            row = key_row(s, scan.id, arn) if scan else None
            if scan is None or row is None:
                return render(request, "notfound.html", status_code=404, what=f"key {arn}")
            findings = key_findings(s, scan.id, arn)
            mutes = {f.check_id: mutes_for(s, f.check_id, arn) for f, _ in findings}
            history = finding_history(s, arn)
            drift = key_drift(s, arn)
            stored = trail_usage(s, scan.id)
            key = Key.model_validate_json(row.data)
            effective = key_access_view(access, s, scan, key, key_fingerprint(row.data))
        view = key_view(row, [f for f, _ in findings], stored, effective)
        return render(
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

    @app.get("/principal", response_class=HTMLResponse)
    def principal_page(request: Request, arn: str = "") -> HTMLResponse:
        """The keys one principal can decrypt or administer (effective access), by a query parameter: an
        IAM path may hold "/../", which a browser would fold out of a URL path."""
        arn = arn.strip()
        with store.session() as s:
            scan = latest(s)
            if scan is None:
                return render(request, "empty.html")
            if not arn:
                return render(request, "principal.html", scan=scan, view=None)
            view = principal_view(access, s, scan, arn)
        if not view.known:
            return render(request, "notfound.html", status_code=404, what=f"principal {arn}")
        return render(request, "principal.html", scan=scan, view=view)

    @app.get("/findings", response_class=HTMLResponse)
    def findings(
        request: Request,
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
            scan = latest(s)
            if scan is None:
                return render(request, "empty.html")
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
        return render(
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

    @app.post("/mutes")
    async def mute(request: Request) -> Response:
        data = await form(request)
        if not auth.csrf_ok(data.get("csrf", "")):
            return render(request, "notfound.html", status_code=403, what="a valid form (CSRF check failed)")
        expires = None
        if data.get("expires"):
            try:
                expires = datetime.combine(datetime.fromisoformat(data["expires"]).date(), time(23, 59, 59), UTC)
            except ValueError:
                return render(request, "error.html", status_code=400, message="expiry must be a date (YYYY-MM-DD)")
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
            return render(request, "error.html", status_code=400, message=str(e))
        return RedirectResponse(_back(data), status_code=303)

    @app.post("/mutes/{mute_id}/end")
    async def unmute(request: Request, mute_id: str) -> Response:
        data = await form(request)
        if not auth.csrf_ok(data.get("csrf", "")):
            return render(request, "notfound.html", status_code=403, what="a valid form (CSRF check failed)")
        number = whole_number(mute_id, "mute id", MAX_ID)
        with store.session() as s:
            end_mute(s, number, data.get("who", "") or "dashboard")
        return RedirectResponse(_back(data), status_code=303)

    @app.get("/compliance", response_class=HTMLResponse)
    def compliance(request: Request, framework: str = "") -> HTMLResponse:
        from kmsguard.checks.registry import load_builtin_checks
        from kmsguard.compliance.mapping import FRAMEWORKS, framework_controls, supporting_checks

        slug = framework if framework in FRAMEWORKS else next(iter(FRAMEWORKS))
        specs = load_builtin_checks()
        topics = {cid: spec.topics for cid, spec in specs.items()}
        with store.session() as s:
            scan = latest(s)
            if scan is None:
                return render(request, "empty.html")
            by_check = status_by_check(s, scan.id)
        rows = []
        for control in framework_controls(slug):
            checks = supporting_checks(control, topics)
            counts = {st: sum(by_check.get(c, {}).get(st, 0) for c in checks) for st in STATUSES}
            state = "fail" if counts["FAIL"] else "error" if counts["ERROR"] else "pass" if counts["PASS"] else "none"
            rows.append({"control": control, "checks": checks, "counts": counts, "state": state})
        return render(request, "compliance.html", scan=scan, frameworks=FRAMEWORKS, slug=slug, rows=rows)

    return Guard(app, names)


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


def _back(data: dict[str, str]) -> str:
    target = data.get("back", "/findings")
    return target if target.startswith("/") and not target.startswith("//") else "/findings"


def pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text
