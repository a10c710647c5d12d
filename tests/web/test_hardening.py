"""The dashboard under attack (issue 14, section 5), against a real uvicorn server over real HTTP, and in real
headless Chromium where a browser matters: DNS rebinding and forms on other sites, oversized bodies, hostile
paging parameters, the security headers on every response (errors included), the session cookie's Secure flag
and the login rate limit.

Chromium plays the rebinding victim with ``--host-resolver-rules``: ``evil.example`` resolves to 127.0.0.1, as it
would once the attacker's DNS answered with the loopback address."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

import web.test_dashboard_browser as dash
from kmsguard.demo.emulator import free_port
from kmsguard.store import open_store
from kmsguard.store.mutes import active_mutes
from kmsguard.web.auth import LoginLimiter
from web.access_estate import snapshot
from web.test_access_pages import store_scan

TOKEN = dash.TOKEN
EVIL = "evil.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# A failing finding of the hand-built estate (web/access_estate.py): what the attacker wants muted.
TARGET = {"check_id": "alarm_missing_decrypt_failures", "resource_arn": "arn:aws:::111122223333:us-east-1"}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str


def call(
    base: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    source: str | None = None,
) -> Reply:
    """One request over a fresh connection; ``headers`` may set Host; ``source`` picks the client address."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(
        url.hostname or "", url.port, timeout=10, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def post_form(base: str, path: str, fields: dict[str, str], **headers: str) -> Reply:
    """A form POST as the dashboard's own pages send it (Origin: the dashboard), unless ``headers`` override."""
    sent = {**FORM, "Origin": base, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return call(base, "POST", path, headers=sent, body=urlencode(fields))


def login(base: str, token: str, *, source: str | None = None, **headers: str) -> Reply:
    sent = {**FORM, "Origin": base, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return call(base, "POST", "/login", headers=sent, body=urlencode({"token": token, "next": "/"}), source=source)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(base: str) -> str:
    """The CSRF value the findings page's forms carry (what a rebinding page would have read)."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', call(base, "GET", "/findings", headers=bearer()).body)
    assert found, "the findings page has no mute form"
    return found.group(1)


def raw_exchange(base: str, data: bytes) -> str:
    """Send ``data`` on a socket without finishing the request, then read what the server answers."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received.decode("latin-1")


def mutes(db_url: str) -> list[Any]:
    store = open_store(db_url)
    try:
        with store.session() as s:
            return [(m.check_id, m.resource_arn) for m in active_mutes(s)]
    finally:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kmsguard.db'}"
    store_scan(url, snapshot())
    return url


@pytest.fixture
def open_dashboard(sqlite_url: str) -> Iterator[str]:
    """No token, on 127.0.0.1: exactly the set-up DNS rebinding aims at."""
    with dash.serving(sqlite_url, token=None) as base:
        yield base


@pytest.fixture
def locked_dashboard(sqlite_url: str) -> Iterator[str]:
    with dash.serving(sqlite_url) as base:
        yield base


@pytest.fixture(scope="module")
def rebinding_browser() -> Iterator[Any]:
    if not shutil.which(dash.CHROMIUM):
        pytest.fail("Chromium is not installed (apt-get install -y chromium): the dashboard tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = [*dash.ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"]
        b = p.chromium.launch(executable_path=dash.CHROMIUM, args=args, headless=True)
        yield b
        b.close()


@contextmanager
def attacker_site(html: str) -> Iterator[int]:
    """A page on another site (served on 127.0.0.1, reached by the browser as evil.example): its port."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def port_of(base: str) -> int:
    port = urlsplit(base).port
    assert port is not None
    return port


# -- 1. DNS rebinding: only the bound and allowed host names; Origin on every POST -------------------------------


def test_only_the_bound_and_allowed_host_names_are_served(sqlite_url: str) -> None:
    with dash.serving(sqlite_url, token=None, allowed_hosts=["kms.internal"]) as base:
        port = port_of(base)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LocalHost.:{port}", "kms.internal"):
            reply = call(base, "GET", "/findings", headers={"Host": host})
            assert reply.status == 200, host
            assert 'name="csrf"' in reply.body
        for host in (f"{EVIL}:{port}", EVIL, f"localhost.{EVIL}:{port}", f"kms.internal.{EVIL}", f"[::2]:{port}", ""):
            reply = call(base, "GET", "/findings", headers={"Host": host})
            assert reply.status == 421, host
            assert 'name="csrf"' not in reply.body and "csrf" not in reply.body.lower()
            assert "not served here" in reply.body and "--allowed-host" in reply.body


def test_a_rebound_name_gets_no_page_in_a_browser(rebinding_browser: Any, open_dashboard: str) -> None:
    page = rebinding_browser.new_page()
    resp = page.goto(f"http://{EVIL}:{port_of(open_dashboard)}/findings")
    assert resp.status == 421
    assert page.locator("input[name=csrf]").count() == 0 and "not served here" in page.inner_text("body")
    resp = page.goto(open_dashboard + "/findings")  # the same browser, the bound name: the dashboard
    assert resp.status == 200 and page.locator("input[name=csrf]").count() > 0
    page.close()


def test_a_form_on_another_site_cannot_mute_even_with_the_csrf_value(
    rebinding_browser: Any, open_dashboard: str, sqlite_url: str
) -> None:
    """Suppose the CSRF value leaked: the browser's Origin header still gives the other site away."""
    fields = "".join(
        f'<input type="hidden" name="{k}" value="{v}">'
        for k, v in {**TARGET, "csrf": csrf_of(open_dashboard), "reason": "pwned", "who": "mallory"}.items()
    )
    html = f'<form method="post" action="{open_dashboard}/mutes">{fields}<button id="go">go</button></form>'
    with attacker_site(html) as port:
        page = rebinding_browser.new_page()
        page.goto(f"http://{EVIL}:{port}/")
        with page.expect_navigation() as nav:
            page.click("#go")
        assert nav.value.status == 403
        assert "other site" in page.inner_text("body")
        page.close()
    assert mutes(sqlite_url) == []


def test_every_post_checks_origin_then_referer(open_dashboard: str, sqlite_url: str) -> None:
    fields = {**TARGET, "csrf": csrf_of(open_dashboard), "reason": "accepted risk", "who": "alice"}
    refused = [
        {"Origin": f"http://{EVIL}"},
        {"Origin": f"http://{EVIL}:{port_of(open_dashboard)}"},
        {"Origin": "http://localhost:1"},  # another local service
        {"Origin": "null"},
        {"Origin": "", "Referer": f"http://{EVIL}/page"},
        {"Origin": ""},  # neither header: not a browser form of this dashboard
    ]
    for headers in refused:
        sent = {**FORM, **{k: v for k, v in headers.items() if v}}
        reply = call(open_dashboard, "POST", "/mutes", headers=sent, body=urlencode(fields))
        assert reply.status == 403, headers
        login_reply = call(open_dashboard, "POST", "/login", headers=sent, body="token=x")
        assert login_reply.status == 403, headers
    assert mutes(sqlite_url) == []
    # The dashboard's own form: Origin, or only a same-origin Referer.
    assert post_form(open_dashboard, "/mutes", fields).status == 303
    assert mutes(sqlite_url) == [(TARGET["check_id"], TARGET["resource_arn"])]
    referer_only = {**FORM, "Referer": open_dashboard + "/findings"}
    reply = call(open_dashboard, "POST", "/mutes", headers=referer_only, body=urlencode({**fields, "reason": "again"}))
    assert reply.status == 303


def test_serve_passes_allowed_host_and_behind_tls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kmsguard.db'}"
    store_scan(url, snapshot())
    port = free_port()
    kmsguard = Path(sys.executable).with_name("kmsguard")
    cmd = [str(kmsguard), "serve", "--db", url, "--port", str(port), "--token", TOKEN]
    cmd += ["--allowed-host", "kms.test", "--allowed-host", "Dash.Test"]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "KMSGUARD_BEHIND_TLS": "1"}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                call(base, "GET", "/login")
                break
            except OSError:
                time.sleep(0.1)
        assert call(base, "GET", "/login", headers={"Host": f"kms.test:{port}"}).status == 200
        assert call(base, "GET", "/login", headers={"Host": "dash.test"}).status == 200
        assert call(base, "GET", "/login", headers={"Host": f"{EVIL}:{port}"}).status == 421
        cookie = login(base, TOKEN).headers["set-cookie"]
        assert "; secure" in cookie.lower()
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("bad", ["http://kms.test", "kms.test/path", "alice@kms.test", ""])
def test_serve_refuses_an_allowed_host_that_is_not_a_name(tmp_path: Path, bad: str) -> None:
    from typer.testing import CliRunner

    from kmsguard.cli.main import app

    url = f"sqlite:///{tmp_path / 'kmsguard.db'}"
    res = CliRunner().invoke(app, ["serve", "--db", url, "--allowed-host", bad], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert f"--allowed-host: {bad!r} is not a host name" in res.output
    assert len(res.output.strip().splitlines()) == 1


# -- 2. request bodies are capped before they are read ------------------------------------------------------------


def test_a_huge_announced_body_is_refused_before_it_is_read(locked_dashboard: str) -> None:
    """100 MB announced, 1 KB sent: the 413 comes back at once, so nothing waited for (or kept) the rest."""
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port_of(locked_dashboard)}\r\nOrigin: {locked_dashboard}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n"
    )
    answer = raw_exchange(locked_dashboard, head.encode() + b"token=" + b"a" * 1000)
    assert answer.startswith("HTTP/1.1 413 "), answer[:200]
    assert "x-content-type-options: nosniff" in answer.lower()


def test_a_chunked_body_is_counted_as_it_arrives(locked_dashboard: str) -> None:
    """No Content-Length: 70 chunks of 1 KB and no end; the 413 comes when the count passes 64 KB."""
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port_of(locked_dashboard)}\r\nOrigin: {locked_dashboard}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(70))
    answer = raw_exchange(locked_dashboard, head.encode() + chunks)
    assert answer.startswith("HTTP/1.1 413 "), answer[:200]


def test_a_body_within_the_limit_is_read(locked_dashboard: str) -> None:
    padding = "p" * (64 * 1024 - 200)
    reply = post_form(locked_dashboard, "/login", {"token": "wrong-token-wrong", "next": "/", "pad": padding})
    assert reply.status == 401 and "Wrong token" in reply.body
    reply = call(locked_dashboard, "POST", "/login", headers={**FORM, "Origin": locked_dashboard}, body="t" * 70_000)
    assert reply.status == 413 and "64 KB" in reply.body


# -- 3. paging parameters -----------------------------------------------------------------------------------------


def test_a_page_number_past_int64_is_a_400_not_a_500(db_url: str) -> None:
    store_scan(db_url, snapshot())
    with dash.serving(db_url) as base:
        for path in ("/keys", "/findings"):
            reply = call(base, "GET", path + "?page=9223372036854775808", headers=bearer())
            assert reply.status == 400, reply.body[:300]
            assert "page must be a whole number from 1 to 1000000" in reply.body


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "1e3", "", "%00", "1000001", "9" * 400])
def test_garbage_page_numbers_are_refused(locked_dashboard: str, value: str) -> None:
    for path in ("/keys", "/findings"):
        reply = call(locked_dashboard, "GET", f"{path}?page={value}", headers=bearer())
        assert reply.status == 400, (path, value, reply.body[:300])
        assert "page must be a whole number" in reply.body


def test_a_page_past_the_last_shows_the_last(locked_dashboard: str) -> None:
    reply = call(locked_dashboard, "GET", "/findings?status=&page=999", headers=bearer())
    assert reply.status == 200
    assert re.search(r"Page (\d+) of \1\b", reply.body), re.findall(r"Page \d+ of \d+", reply.body)
    assert "alarm_missing_decrypt_failures" in reply.body  # the rows of the last page, not an empty table


@pytest.mark.parametrize("mute_id", ["9223372036854775808", "abc", "0"])
def test_an_unmute_id_out_of_range_is_a_400(locked_dashboard: str, mute_id: str) -> None:
    reply = post_form(locked_dashboard, f"/mutes/{mute_id}/end", {"csrf": csrf_of(locked_dashboard)}, **bearer())
    assert reply.status == 400, reply.body[:300]
    assert "mute id must be a whole number" in reply.body


# -- 4. headers, the cookie, the login rate limit ----------------------------------------------------------------


def assert_hardened(reply: Reply, what: str) -> None:
    h = reply.headers
    assert h["x-content-type-options"] == "nosniff", what
    assert h["referrer-policy"] in ("no-referrer", "same-origin"), what
    assert h["cache-control"] == "no-store", what
    assert h["x-frame-options"] == "DENY", what
    csp = [part.strip() for part in (h["content-security-policy"] or "").split(";")]
    for directive in ("default-src 'none'", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp, (what, csp)


def test_security_headers_on_every_response(sqlite_url: str) -> None:
    with dash.serving(sqlite_url) as base:
        replies = {
            "login page": (call(base, "GET", "/login"), 200),
            "redirect to login": (call(base, "GET", "/keys"), 303),
            "page": (call(base, "GET", "/", headers=bearer()), 200),
            "key page": (call(base, "GET", "/keys/nope", headers=bearer()), 404),
            "no such route": (call(base, "GET", "/nope", headers=bearer()), 404),
            "wrong method": (call(base, "DELETE", "/", headers={**bearer(), "Origin": base}), 405),
            "wrong token": (login(base, "wrong-token-wrong"), 401),
            "login redirect": (login(base, TOKEN), 303),
            "foreign host": (call(base, "GET", "/", headers={"Host": EVIL}), 421),
            "cross-site post": (post_form(base, "/mutes", {}, Origin=f"http://{EVIL}"), 403),
            "too large": (post_form(base, "/login", {"token": "x" * 70_000}), 413),
            "bad page": (call(base, "GET", "/keys?page=x", headers=bearer()), 400),
        }
        # A server error: the store loses a table under the running dashboard.
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
            db.execute("DROP TABLE keys")
        replies["server error"] = (call(base, "GET", "/keys", headers=bearer()), 500)
    for what, (reply, status) in replies.items():
        assert reply.status == status, (what, reply.status, reply.body[:200])
        assert_hardened(reply, what)


def test_the_session_cookie_is_secure_over_tls(sqlite_url: str) -> None:
    with dash.serving(sqlite_url) as base:
        plain = login(base, TOKEN).headers["set-cookie"].lower()
        assert "httponly" in plain and "samesite=strict" in plain and "secure" not in plain.replace("samesite", "")
        # TLS ended by a proxy on this host (uvicorn trusts X-Forwarded-Proto from 127.0.0.1).
        proxied = login(base, TOKEN, X_Forwarded_Proto="https").headers["set-cookie"].lower()
        assert "; secure" in proxied
    with dash.serving(sqlite_url, behind_tls=True) as base:
        assert "; secure" in login(base, TOKEN).headers["set-cookie"].lower()


def test_login_attempts_are_rate_limited_per_client_address(sqlite_url: str) -> None:
    with dash.serving(sqlite_url) as base:
        for _ in range(5):
            assert login(base, "wrong-token-wrong").status == 401
        held = login(base, TOKEN)  # even the right token: guessing must not go on
        assert held.status == 429
        assert 1 <= int(held.headers["retry-after"]) <= 60
        assert "Too many failed logins" in held.body
        assert_hardened(held, "rate limited")
        # Another client address is not held back by this one's failures.
        assert login(base, TOKEN, source="127.0.0.2").status == 303


def test_wrong_bearer_tokens_count_as_failed_logins(sqlite_url: str) -> None:
    with dash.serving(sqlite_url) as base:
        for _ in range(5):
            assert call(base, "GET", "/", headers=bearer("wrong-token-wrong")).status == 303
        assert call(base, "GET", "/", headers=bearer()).status == 429
        assert login(base, TOKEN).status == 429


def test_the_limit_forgets_failures_after_the_window() -> None:
    now = [1000.0]
    limiter = LoginLimiter(failures=5, window=60.0, clock=lambda: now[0])
    for _ in range(4):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is None  # four failures: still allowed
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None
    now[0] += 45
    assert limiter.retry_after("10.0.0.1") == 15
    now[0] += 15.5
    assert limiter.retry_after("10.0.0.1") is None
