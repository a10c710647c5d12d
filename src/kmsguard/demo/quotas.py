"""AWS's time in the emulator: request latency and per-(account, Region, operation) request quotas.

Off by default. ``Emulator(aws_latency=..., aws_quotas=...)`` (and ``kmsguard demo --aws-latency MS[:JITTER]
--aws-quotas default|FILE``) put ``AwsTiming``, a WSGI layer, in front of that server's moto app, so the
state (token buckets, the latency's random draws) belongs to one server, never to the process:

- every AWS request waits the latency (uniform in ``MS - JITTER .. MS + JITTER`` milliseconds), throttled
  answers included, and every answer says what it waited in the ``x-kmsguard-latency-ms`` header;
- each (account, Region, quota) has a token bucket refilled at the quota's rate and holding one second's
  worth of requests; a request finding it empty gets AWS's throttling error in the protocol the client
  spoke, never reaches moto, and is counted (``patches.throttled_counts()``, the requests endpoint).

The quota table and the token bucket are ``kmsguard.aws.quotas`` (``aws/quotas.yaml``: its format and sources are
in the file), which kmsguard's own clients pace themselves by.
"""

from __future__ import annotations

import functools
import io
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kmsguard.aws.quotas import Clock, QuotaTable, TokenBucket

LATENCY_HEADER = "x-kmsguard-latency-ms"
TIME_ENDPOINT = "/moto-api/kmsguard/aws-time"
THROTTLED_MESSAGE = "Rate exceeded"


# --------------------------------------------------------------------------------------------------------------
# Latency


@dataclass(frozen=True)
class Latency:
    """What each request waits, in milliseconds: ``ms`` plus a uniform draw in ``[-jitter_ms, +jitter_ms]``."""

    ms: float
    jitter_ms: float = 0.0

    def draw(self, rng: random.Random) -> float:
        """One request's wait in milliseconds."""
        if not self.jitter_ms:
            return self.ms
        return rng.uniform(self.ms - self.jitter_ms, self.ms + self.jitter_ms)


def parse_latency(text: str) -> Latency:
    """``"30"`` or ``"30:10"`` (milliseconds). ValueError, one line, naming what is wrong."""
    ms_text, sep, jitter_text = text.strip().partition(":")
    ms = _milliseconds(ms_text, "MS")
    jitter = _milliseconds(jitter_text, "JITTER") if sep else 0.0
    if jitter > ms:
        # Below zero would have to be cut off, and the mean would no longer be MS.
        raise ValueError(f"{text!r}: JITTER ({jitter:g}) must not exceed MS ({ms:g})")
    return Latency(ms, jitter)


def _milliseconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number of milliseconds (expected MS or MS:JITTER)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} must be a finite number of milliseconds, 0 or more")
    return value


class Throttler:
    """One token bucket per (account, Region, service, quota), made on first use."""

    def __init__(self, table: QuotaTable, clock: Clock = time.monotonic) -> None:
        self.table = table
        self._clock = clock
        self._buckets: dict[tuple[str, str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, account: str, region: str, service: str, operation: str) -> bool:
        quota = self.table.quota_for(service, operation)
        if quota is None:
            return True
        key = (account, region, service, quota.name)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(quota.rate_in(region), clock=self._clock)
        return bucket.take()


# --------------------------------------------------------------------------------------------------------------
# AWS's throttling answers, per protocol (what botocore's parsers read and its retry checks call throttling:
# botocore/retries/standard.py _THROTTLED_ERROR_CODES, botocore/data/_retry.json)

Answer = tuple[int, list[tuple[str, str]], bytes]


def throttling_answer(request: Any, service: str) -> Answer:
    """The throttling error AWS sends for this request, in the protocol the client used."""
    request_id = str(uuid.uuid4())
    ids = [("x-amzn-RequestId", request_id)]
    if request.headers.get("smithy-protocol") == "rpc-v2-cbor" or "/operation/" in request.path:
        body = _cbor_text_map({"__type": "ThrottlingException", "message": THROTTLED_MESSAGE})
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), *ids]
        return 400, headers + _query_compatible_header(service), body
    if request.headers.get("X-Amz-Target"):  # awsJson 1.0 / 1.1 (KMS, CloudTrail, Logs, Config, ...)
        content_type = request.headers.get("Content-Type") or "application/x-amz-json-1.1"
        body = json.dumps({"__type": "ThrottlingException", "message": THROTTLED_MESSAGE}).encode()
        return 400, [("Content-Type", content_type), *ids, *_query_compatible_header(service)], body
    if service == "ec2":  # EC2 throttles with its own code and error shape
        return (
            400,
            [("Content-Type", "text/xml")],
            _xml(
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                f"</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        )
    protocol = _protocol_of(service)
    if protocol == "rest-json":
        body = json.dumps({"message": THROTTLED_MESSAGE}).encode()
        return 429, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException"), *ids], body
    if service == "s3":
        return (
            503,
            [("Content-Type", "application/xml")],
            _xml(
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                f"<RequestId>{request_id}</RequestId></Error>"
            ),
        )
    # query (STS, IAM, SNS, RDS, ...) and the other rest-xml services
    return (
        400,
        [("Content-Type", "text/xml"), *ids],
        _xml(
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            f"<Message>{THROTTLED_MESSAGE}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ),
    )


def _xml(text: str) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode()


@functools.cache
def _service_metadata(service: str) -> dict[str, Any]:
    try:
        from botocore.loaders import create_loader

        model = create_loader().load_service_model(service, "service-2")
        return dict(model.get("metadata", {}))
    except Exception:  # a name botocore does not know: answer in the query shape
        return {}


def _protocol_of(service: str) -> str:
    return str(_service_metadata(service).get("protocol", "query"))


def _query_compatible_header(service: str) -> list[tuple[str, str]]:
    """Former query services answering JSON/CBOR (CloudWatch, SQS) say their query error code in a header."""
    if "awsQueryCompatible" in _service_metadata(service):
        return [("x-amzn-query-error", "Throttling;Sender")]
    return []


def _cbor_text_map(items: Mapping[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949: major type 5 holding major type 3 items)."""

    def text(s: str) -> bytes:
        raw = s.encode()
        head = bytes([0x60 | len(raw)]) if len(raw) < 24 else bytes([0x78, len(raw)])
        return head + raw

    return bytes([0xA0 | len(items)]) + b"".join(text(k) + text(v) for k, v in items.items())


# --------------------------------------------------------------------------------------------------------------
# The WSGI layer


class AwsTiming:
    """WSGI middleware in front of one moto server's app: latency, then quota, then moto (see module doc)."""

    def __init__(
        self,
        app: Callable[..., Any],
        latency: Latency | None = None,
        quotas: QuotaTable | None = None,
        clock: Clock = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self.app = app
        self.latency = latency
        self.throttler = Throttler(quotas, clock) if quotas is not None else None
        self.paused = False  # set while an estate is seeded (Emulator.aws_time_paused, the aws-time endpoint)
        self._rng = random.Random(seed)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from kmsguard.demo import patches

        path = environ.get("PATH_INFO", "")
        if path == TIME_ENDPOINT:
            return self._time_endpoint(environ, start_response)
        if self.paused or not patches.is_aws_request(path):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        answer = self._throttled(environ)
        waited = self.latency.draw(self._rng) if self.latency is not None else 0.0
        if waited:
            time.sleep(waited / 1000)
        latency_header = (LATENCY_HEADER, f"{waited:.3f}")
        if answer is not None:
            status, headers, body = answer
            start_response(_status_line(status), [*headers, ("Content-Length", str(len(body))), latency_header])
            return [body]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, latency_header], exc_info)

        return self.app(environ, start)  # type: ignore[no-any-return]

    def _time_endpoint(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """GET: this server's latency and quotas. POST ``{"paused": true|false}`` pauses or resumes them (an
        out-of-process benchmark seeds its estate paused); ``{"latency": "MS[:JITTER]"}`` ("0": none) changes the
        latency, so one seeded server can answer instantly and then slowly."""
        status, error = 200, None
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                self._set(json.loads(_with_buffered_body(environ)["wsgi.input"].read() or b"{}"))
            except ValueError as e:
                status, error = 400, str(e)
        state: dict[str, Any] = {
            "latency_ms": self.latency.ms if self.latency else 0,
            "jitter_ms": self.latency.jitter_ms if self.latency else 0,
            "quotas": self.throttler.table.origin if self.throttler else None,
            "paused": self.paused,
        }
        if error is not None:
            state = {"error": error}
        data = json.dumps(state).encode()
        start_response(_status_line(status), [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _set(self, body: Any) -> None:
        """Apply a POSTed ``{"paused": bool, "latency": "MS[:JITTER]"}`` (either or both); ValueError names the
        problem and changes nothing."""
        usage = 'POST a JSON object {"paused": true|false} and/or {"latency": "MS[:JITTER]"}'
        if not isinstance(body, dict) or not body or set(body) - {"paused", "latency"}:
            raise ValueError(usage)
        paused = body.get("paused", self.paused)
        if not isinstance(paused, bool):
            raise ValueError(usage)
        latency = self.latency
        if "latency" in body:
            if not isinstance(body["latency"], str):
                raise ValueError(usage)
            latency = parse_latency(body["latency"])  # ValueError naming what is wrong
            latency = latency if latency.ms or latency.jitter_ms else None
        self.paused, self.latency = paused, latency

    def _throttled(self, environ: dict[str, Any]) -> Answer | None:
        """AWS's throttling answer when the request's bucket is empty (and count it), else None."""
        if self.throttler is None:
            return None
        # moto's own request class: its REST routing (the operation of an S3 or Lambda call) needs it.
        from moto.moto_server.werkzeug_app import BackendRequest

        from kmsguard.demo import patches

        probe = BackendRequest(environ, shallow=True)
        service = patches.service_of(probe)
        if service not in self.throttler.table.services:
            return None
        probe = BackendRequest(_with_buffered_body(environ))
        operation = patches.operation_of(probe, service)
        if self.throttler.admit(patches.account_of(probe), patches.region_of(probe), service, operation):
            return None
        patches.record_throttled(service, operation)
        return throttling_answer(probe, service)


def _with_buffered_body(environ: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``environ`` whose body can be read without taking it from moto: both get their own stream."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return {**environ, "wsgi.input": io.BytesIO(body)}


def _status_line(status: int) -> str:
    from http import HTTPStatus

    return f"{status} {HTTPStatus(status).phrase}"
