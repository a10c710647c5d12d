"""Token login for the dashboard, and CSRF protection for its forms.

The token is compared in constant time; after login it lives in an HttpOnly, SameSite=Strict cookie (Secure
over TLS). Every form carries a CSRF value derived from a per-process secret (and the token), checked on every
POST, so a page on another site cannot mute findings through a logged-in browser, nor through an
unauthenticated dashboard on 127.0.0.1 (web/guard.py adds the Host and Origin checks). Failed logins are
limited per client address (``LoginLimiter``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.requests import Request

COOKIE = "kmsguard_token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_required(host: str, token: str | None, require: bool) -> bool:
    return token is not None or require or host not in LOOPBACK


class Auth:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self._secret = secrets.token_bytes(32)

    def ok(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = request.cookies.get(COOKIE) or ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def check_token(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf(self) -> str:
        return hmac.new(self._secret, (self.token or "").encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, value: str) -> bool:
        return hmac.compare_digest(value.encode(), self.csrf().encode())


class LoginLimiter:
    """At most ``failures`` failed logins per client address in any ``window`` seconds; then the address
    waits until the oldest of them leaves the window. Only the last ``failures`` times of at most ``clients``
    addresses are kept, so a flood from many addresses cannot grow it without bound. Used from the event loop
    only (async routes and middleware), hence no lock."""

    def __init__(
        self,
        failures: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        clients: int = 10_000,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self.clients = clients
        self._failed: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or None when it may try now."""
        recent = self._recent(client)
        if len(recent) < self.failures:
            return None
        return max(1, math.ceil(recent[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        recent = self._recent(client)
        recent.append(self.clock())
        self._failed.pop(client, None)
        self._failed[client] = recent  # last in the dict's order: the oldest address is dropped first
        if len(self._failed) > self.clients:
            del self._failed[next(iter(self._failed))]

    def _recent(self, client: str) -> deque[float]:
        recent = self._failed.get(client) or deque(maxlen=self.failures)
        while recent and recent[0] <= self.clock() - self.window:
            recent.popleft()
        if not recent:
            self._failed.pop(client, None)
        return recent


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def form(request: Request) -> dict[str, str]:
    """The urlencoded body of a POST (no multipart: the dashboard's forms are plain)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
