"""What every request to the dashboard passes before the app sees it, and what every response carries.

An ASGI wrapper around the whole app (outside Starlette's error middleware, so a 500 gets the headers too):

- **Host names.** Only the names the dashboard is bound to (loopback, the ``--host`` value) and those given
  with ``--allowed-host`` are served; anything else is 421. Without this, DNS rebinding (evil.example first
  resolving to the attacker, then to 127.0.0.1) lets a page on another site read the dashboard, CSRF value
  included, as a same-origin page.
- **Origin.** A POST (or any unsafe method) must come from a page of this dashboard: its ``Origin`` (or, when
  a browser sends none, its ``Referer``) names the same host and port as the request's ``Host``. Otherwise 403.
- **Body size.** At most 64 KB, refused with 413 before it is read: by ``Content-Length`` when announced, else
  by counting a chunked body as it arrives. The dashboard's forms are a few hundred bytes.
- **Headers** on every response (see ``SECURITY_HEADERS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" with the dashboard's own forms, which the
    # Origin check would then refuse. same-origin keeps every URL (ARNs, filters) from other sites all the same.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    # Every page shows the estate's weaknesses; none of it belongs in a shared or on-disk cache.
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
_ENCODED = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
# A Host header: a DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port. Nothing else
# (no "user@", no path) so that the name compared is the name the browser used.
_HOST = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?", re.IGNORECASE)


def host_name(value: str) -> str | None:
    """The name in a Host header, lower-case, without port, brackets or trailing dot; None if malformed."""
    found = _HOST.fullmatch(value)
    if found is None:
        return None
    return (found["v6"] or found["name"]).lower().rstrip(".") or None


def served_names(bind_host: str, allowed: Iterable[str]) -> frozenset[str]:
    """Loopback, the address listened on and the ``--allowed-host`` names; ValueError names a bad one."""
    names = set(LOOPBACK_NAMES)
    for option, given in [("--host", bind_host), *(("--allowed-host", a) for a in allowed)]:
        # Accept "::1" and "[::1]" alike: --host takes the bare form, a URL the bracketed one.
        bracketed = f"[{given}]" if ":" in given and not given.startswith("[") else given
        name = host_name(bracketed)
        if name is None:
            raise ValueError(f"{option}: {given!r} is not a host name (a name or an address, no scheme or path)")
        names.add(name)
    return frozenset(names)


class Guard:
    """The checks above, in front of ``app``; ``names`` from ``served_names``."""

    def __init__(self, app: ASGIApp, names: frozenset[str], max_body: int = MAX_BODY) -> None:
        self.app = app
        self.names = names
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        messages = await _read_capped(receive, self.max_body)
        if messages is None:
            await _too_large(self.max_body)(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)

    def _refusal(self, scope: Scope, headers: Headers) -> PlainTextResponse | None:
        host = headers.get("host", "")
        if host_name(host) not in self.names:
            return PlainTextResponse(
                f"Host {host!r} is not served here: kmsguard serve --allowed-host NAME adds a name.", 421
            )
        if scope["method"] not in SAFE_METHODS and not _same_origin(headers, host):
            return PlainTextResponse("Refused: this request was sent by another site, not by this dashboard.", 403)
        announced = headers.get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_body:
            return _too_large(self.max_body)
        return None


def _same_origin(headers: Headers, host: str) -> bool:
    # A browser always sends Origin with a POST; "null" (a sandboxed or privacy-stripped origin) never matches.
    source = headers.get("origin") or headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def _too_large(limit: int) -> PlainTextResponse:
    return PlainTextResponse(f"Request body over {limit // 1024} KB refused.", 413)


async def _read_capped(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None as soon as they add up to more than ``limit`` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away: the app sees that as usual
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
            message = {**message, "headers": kept + _ENCODED}
        await send(message)

    return wrapped
