"""Token login for the dashboard, and CSRF protection for its forms.

The token is compared in constant time; after login it lives in an HttpOnly, SameSite=Strict cookie. Every
form carries a CSRF value derived from a per-process secret (and the token), checked on every POST, so a
page on another site cannot mute findings through a logged-in browser, nor through an unauthenticated
dashboard on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
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


async def form(request: Request) -> dict[str, str]:
    """The urlencoded body of a POST (no multipart: the dashboard's forms are plain)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
