"""A tiny HTTP proxy in front of the moto server that counts calls and injects AWS faults.

moto does not enforce the behaviours kmsguard must survive (AccessDenied on one key's policy,
throttling, an opted-out region, a failed AssumeRole), so tests put this proxy between kmsguard
and moto: every request still travels over real HTTP and is answered by moto, except the ones a
rule picks, which get the error answer AWS would give, in the service's own wire protocol.
It also counts requests per operation, which is how the tests measure the call budget.

Beyond AWS's own error answers, a rule can make the network misbehave (tests/faults/):
``hang`` (accept the request, never answer), ``reset`` (drop the connection with a TCP reset),
``cut`` (moto's answer, cut off after some bytes of its body), ``drip`` (moto's answer, a few bytes at a
time) and ``garbage`` (HTTP 200 with a binary body). ``fail(..., status=500)`` gives a 5xx.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
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
    # How to answer: "answer" (status, code/body), or a network fault: "hang", "reset", "cut", "drip".
    fault: str = "answer"
    interval: float = 0.0  # drip: seconds between pieces
    after: int = 0  # cut: bytes of the body sent before the connection closes
    content_type: str = "text/xml"


# Bytes no AWS protocol parser can read: not UTF-8, not JSON, not XML, not CBOR.
GARBAGE = bytes(range(0x80, 0x100)) + b"\x00\xff\xfe garbage \x9c\x81"


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


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5. kmsguard opens up to --concurrency connections at once; past the
    # backlog the kernel drops the SYN, the client resends it after 1 s, and a 1 s connect timeout fails with
    # ConnectTimeoutError: a fault of this proxy, not of the endpoint a test means to simulate (CI saw it).
    request_queue_size = 128


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._released = threading.Event()  # set on stop: hung requests give up
        self.calls: list[Call] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    proxy._serve(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (its timeout): nobody to answer

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def fail(
        self, operation: str, code: str, *, contains: str | None = None, times: int | None = None, status: int = 400
    ) -> None:
        """Answer ``operation`` (optionally only requests mentioning ``contains``) with AWS error ``code``."""
        with self._lock:
            self._rules.append(Rule(operation, contains, status, code, b"", times))

    def respond(
        self,
        operation: str,
        body: str | bytes,
        *,
        contains: str | None = None,
        status: int = 200,
        times: int | None = None,
        content_type: str = "text/xml",
    ) -> None:
        """Answer ``operation`` with this body (status 200 unless told) instead of asking moto."""
        raw = body.encode() if isinstance(body, str) else body
        self._add(Rule(operation, contains, status, None, raw, times, content_type=content_type))

    def garbage(self, operation: str, *, contains: str | None = None, times: int | None = None) -> None:
        """Answer ``operation`` with HTTP 200 and a binary body (what a broken proxy or middlebox may send)."""
        self.respond(operation, GARBAGE, contains=contains, times=times, content_type="application/x-amz-json-1.1")

    def hang(self, operation: str, *, contains: str | None = None, times: int | None = None) -> None:
        """Accept ``operation``'s request and never answer (until the proxy stops)."""
        self._add(Rule(operation, contains, 0, None, b"", times, fault="hang"))

    def reset(self, operation: str, *, contains: str | None = None, times: int | None = None) -> None:
        """Read ``operation``'s request, then drop the connection with a TCP reset, answering nothing."""
        self._add(Rule(operation, contains, 0, None, b"", times, fault="reset"))

    def cut(self, operation: str, *, after: int, contains: str | None = None, times: int | None = None) -> None:
        """Send moto's answer to ``operation`` with its full Content-Length but only ``after`` bytes of its body,
        then close the connection (an answer cut off mid-way)."""
        self._add(Rule(operation, contains, 0, None, b"", times, fault="cut", after=after))

    def drip(self, operation: str, *, interval: float, contains: str | None = None, times: int | None = None) -> None:
        """Send moto's answer to ``operation`` a few bytes at a time, ``interval`` seconds apart."""
        self._add(Rule(operation, contains, 0, None, b"", times, fault="drip", interval=interval))

    def _add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

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
                if rule.operation not in (operation, "*") or (rule.contains and rule.contains not in text):
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
        if rule is not None and rule.fault == "hang":
            handler.close_connection = True
            self._released.wait()
            return
        if rule is not None and rule.fault == "reset":
            _reset(handler)
            return
        if rule is not None and rule.fault == "answer":
            if rule.code is not None:
                payload, ctype = _error_body(protocol, rule.code, f"injected by the test proxy: {rule.code}")
            else:
                payload, ctype = rule.body, rule.content_type
            self._reply(handler, rule.status, [("Content-Type", ctype)], payload)
            return
        status, answer, data = self._forward(handler, body)
        if rule is None:
            self._reply(handler, status, answer, data, head=handler.command == "HEAD")
        elif rule.fault == "cut":
            declared = [*answer, ("Content-Length", str(len(data)))]
            self._reply(handler, status, declared, data[: rule.after], length=False)
            handler.close_connection = True
        else:  # drip
            _drip(handler, _raw_response(handler, status, answer, data), rule.interval)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's answer to the request: status, headers (hop-by-hop ones dropped) and body."""
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
            return resp.status, out, data
        finally:
            conn.close()

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        head: bool = False,
        length: bool = True,
    ) -> None:
        handler.send_response(status)
        for k, v in headers:
            handler.send_header(k, v)
        if length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the client's connection with a TCP reset (SO_LINGER 0) instead of an answer."""
    sock: socket.socket = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    sock.close()


def _raw_response(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, '')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    handler.close_connection = True
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _drip(handler: BaseHTTPRequestHandler, raw: bytes, interval: float, piece: int = 64) -> None:
    """Send ``raw`` ``piece`` bytes at a time, ``interval`` seconds apart (the client may give up meanwhile)."""
    try:
        for start in range(0, len(raw), piece):
            if start:
                time.sleep(interval)
            handler.wfile.write(raw[start : start + piece])
    except OSError:
        pass  # the client timed out and closed: that is what a drip tests
