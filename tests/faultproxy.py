"""A tiny HTTP proxy in front of the moto server that counts calls and injects AWS faults.

moto does not enforce the behaviours kmsguard must survive (AccessDenied on one key's policy,
throttling, an opted-out region, a failed AssumeRole), so tests put this proxy between kmsguard
and moto: every request still travels over real HTTP and is answered by moto, except the ones a
rule picks, which get the error answer AWS would give, in the service's own wire protocol.
It also counts requests per operation, which is how the tests measure the call budget.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Rule:
    operation: str
    contains: str | None  # only requests whose body contains this text
    status: int
    code: str | None  # an AWS error code to answer with, or None to answer ``body`` as is
    body: bytes
    times: int | None  # how many matching requests to answer; None = all of them
    hits: int = 0


@dataclass
class Call:
    operation: str
    body: str


def _operation(path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """(operation, protocol) of a request: JSON target header, smithy RPC path, or query Action."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    if "/operation/" in path:
        return path.rsplit("/", 1)[-1], "cbor"
    if body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0], "query"
    return f"{headers.get('method', 'GET')} {urlsplit(path).path}", "rest"


def _error_body(protocol: str, code: str, message: str) -> tuple[bytes, str]:
    if protocol == "json":
        return json.dumps({"__type": code, "message": message}).encode(), "application/x-amz-json-1.1"
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>fault-proxy</RequestId></ErrorResponse>"
    )
    return xml.encode(), "text/xml"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy._serve(self, body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(
        self, operation: str, code: str, *, contains: str | None = None, times: int | None = None, status: int = 400
    ) -> None:
        """Answer ``operation`` (optionally only requests mentioning ``contains``) with AWS error ``code``."""
        with self._lock:
            self._rules.append(Rule(operation, contains, status, code, b"", times))

    def respond(self, operation: str, body: str, *, contains: str | None = None) -> None:
        """Answer ``operation`` with this body (status 200) instead of asking moto."""
        with self._lock:
            self._rules.append(Rule(operation, contains, 200, None, body.encode(), None))

    def count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if operation is None or c.operation == operation)

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(c.operation for c in self.calls)

    def _match(self, operation: str, body: bytes) -> Rule | None:
        text = body.decode("utf-8", "replace")
        with self._lock:
            for rule in self._rules:
                if rule.operation != operation or (rule.contains and rule.contains not in text):
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        headers["method"] = handler.command
        operation, protocol = _operation(handler.path, headers, body)
        with self._lock:
            self.calls.append(Call(operation, body.decode("utf-8", "replace")))
        rule = self._match(operation, body)
        if rule is not None:
            if rule.code is not None:
                payload, ctype = _error_body(protocol, rule.code, f"injected by the test proxy: {rule.code}")
            else:
                payload, ctype = rule.body, "text/xml"
            self._reply(handler, rule.status, [("Content-Type", ctype)], payload)
            return
        conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            fwd = {k: v for k, v in handler.headers.items() if k.lower() not in ("connection", "content-length")}
            conn.request(handler.command, handler.path, body=body or None, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            out = [
                (k, v)
                for k, v in resp.getheaders()
                if k.lower() not in ("transfer-encoding", "connection", "content-length")
            ]
            self._reply(handler, resp.status, out, data, head=handler.command == "HEAD")
        finally:
            conn.close()

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False
    ) -> None:
        handler.send_response(status)
        for k, v in headers:
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
