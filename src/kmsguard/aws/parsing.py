"""Answers kmsguard cannot read are call errors, never crashes.

botocore trusts what comes back: a binary body makes its JSON parser raise ``UnicodeDecodeError``, a body cut short
or an HTML page answered with HTTP 200 becomes ``{"message": ...}`` that the collectors then index into, and a
binary error page can fail the error parser itself. Between kmsguard and AWS there can be proxies, emulators and
broken networks, so every client the session factory makes parses through ``CheckedParserFactory``: an answer
that is not the protocol is a ``ResponseParserError`` (one of ``AWS_CALL_ERRORS``, recorded as a
``CollectionError`` on the object it concerns), and an unreadable *error* answer keeps its HTTP status, so
botocore still retries a 5xx and the caller still sees a ``ClientError``.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from botocore.parsers import ResponseParser, ResponseParserError, ResponseParserFactory

# Protocols whose successful answers are one JSON object (botocore would turn anything else into {"message": ...}).
_JSON_PROTOCOLS = frozenset({"json", "rest-json"})


class CheckedParserFactory(ResponseParserFactory):
    """botocore's parser factory, each parser wrapped in ``CheckedParser``."""

    def create_parser(self, protocol_name: str) -> CheckedParser:
        return CheckedParser(super().create_parser(protocol_name), protocol_name)


class CheckedParser(ResponseParser):
    """``inner`` (botocore's parser of ``protocol``), reading only what it can read."""

    def __init__(self, inner: ResponseParser, protocol: str) -> None:
        super().__init__()
        self._inner = inner
        self._protocol = protocol

    def parse(self, response: Mapping[str, Any], shape: Any) -> Any:
        status = int(response["status_code"])
        problem = unreadable(self._protocol, response, shape)
        if problem is None:
            try:
                return self._inner.parse(response, shape)
            except Exception as e:  # the parser met bytes it was never meant for: the answer is at fault, not us
                problem = f"{type(e).__name__}: {e}"
        if status >= 300:
            # An error answer nobody can read is still an error of this status: a 5xx stays retryable.
            reason = http.client.responses.get(status, "error")
            return {
                "Error": {"Code": str(status), "Message": f"{reason} (unreadable answer: {problem})"},
                "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": response.get("headers", {})},
            }
        raise ResponseParserError(f"unreadable answer (HTTP {status}): {problem}")


def unreadable(protocol: str, response: Mapping[str, Any], shape: Any) -> str | None:
    """Why a buffered answer cannot be what the protocol says (None: let botocore's parser judge it)."""
    body = response.get("body")
    if not isinstance(body, bytes) or not body:
        return None  # streamed bodies (S3 objects) and empty answers: nothing buffered to check
    headers = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
    declared = str(headers.get("content-length") or "")
    # botocore reads without enforcing Content-Length: a connection cut mid-answer leaves a silent prefix.
    if declared.isdigit() and "content-encoding" not in headers and len(body) < int(declared):
        return f"truncated: {len(body)} of {declared} bytes"
    if protocol in _JSON_PROTOCOLS and int(response["status_code"]) < 300 and not _payload_member(shape):
        try:
            parsed = json.loads(body)
        except ValueError as e:  # UnicodeDecodeError included
            return f"not JSON ({_sample(body)}): {e}"
        if parsed is not None and not isinstance(parsed, dict):  # null: no output (moto answers it for some calls)
            return f"not a JSON object ({_sample(body)})"
    return None


def _payload_member(shape: Any) -> bool:
    """Whether the output is a bare payload (a blob or string body, not a JSON object)."""
    return bool(shape is not None and shape.serialization.get("payload"))


def _sample(body: bytes) -> str:
    """The start of a body, printable whatever it holds."""
    return repr(body[:40]) + ("..." if len(body) > 40 else "")


__all__ = ["CheckedParser", "CheckedParserFactory", "unreadable"]
