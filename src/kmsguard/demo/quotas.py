"""AWS's time in the emulator: request latency and per-(account, Region, operation) request quotas.

Off by default. ``Emulator(aws_latency=..., aws_quotas=...)`` (and ``kmsguard demo --aws-latency MS[:JITTER]
--aws-quotas default|FILE``) put ``AwsTiming``, a WSGI layer, in front of that server's moto app, so the
state (token buckets, the latency's random draws) belongs to one server, never to the process:

- every AWS request waits the latency (uniform in ``MS - JITTER .. MS + JITTER`` milliseconds), throttled
  answers included, and every answer says what it waited in the ``x-kmsguard-latency-ms`` header;
- each (account, Region, quota) has a token bucket refilled at the quota's rate and holding one second's
  worth of requests; a request finding it empty gets AWS's throttling error in the protocol the client
  spoke, never reaches moto, and is counted (``patches.throttled_counts()``, the requests endpoint).

The quota table is ``quotas.yaml`` beside this module (its format and sources are in the file).
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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kmsguard.fileio import LoadError, format_path, load_yaml, read_text

DEFAULT_QUOTAS = "default"
LATENCY_HEADER = "x-kmsguard-latency-ms"
TIME_ENDPOINT = "/moto-api/kmsguard/aws-time"
THROTTLED_MESSAGE = "Rate exceeded"

Clock = Callable[[], float]


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


# --------------------------------------------------------------------------------------------------------------
# The quota table


class QuotaFileError(ValueError):
    """A quota file kmsguard will not use; ``str()`` is one line naming the file and, where known, the line."""


@dataclass(frozen=True)
class Quota:
    """One request quota: ``rate`` requests per second per account and Region (``regions`` where it differs)."""

    service: str
    name: str
    rate: float
    operations: tuple[str, ...]
    regions: Mapping[str, float] = field(default_factory=dict)

    def rate_in(self, region: str) -> float:
        return self.regions.get(region, self.rate)


@dataclass(frozen=True)
class QuotaTable:
    """The quotas by (service, operation); an operation no quota names is unlimited."""

    quotas: tuple[Quota, ...]
    origin: str  # "quotas.yaml (built in)" or the file's path, for messages

    @functools.cached_property
    def _by_operation(self) -> dict[tuple[str, str], Quota]:
        return {(q.service, op): q for q in self.quotas for op in q.operations}

    @functools.cached_property
    def services(self) -> frozenset[str]:
        return frozenset(q.service for q in self.quotas)

    def quota_for(self, service: str, operation: str) -> Quota | None:
        return self._by_operation.get((service, operation))


def load_quotas(spec: str) -> QuotaTable:
    """``"default"`` (the built-in quotas.yaml) or a file in the same format. QuotaFileError names file and line."""
    if spec == DEFAULT_QUOTAS:
        name = "quotas.yaml (built in)"
        text = resources.files("kmsguard.demo").joinpath("quotas.yaml").read_text(encoding="utf-8")
    else:
        name = spec
        try:
            text = read_text(Path(spec))
        except LoadError as e:
            raise QuotaFileError(f"{spec}: {e}") from None
    return parse_quotas(text, name)


def parse_quotas(text: str, name: str) -> QuotaTable:
    try:
        root, data = load_yaml(text)
    except LoadError as e:
        where = f" line {e.line}:" if e.line is not None else ""
        raise QuotaFileError(f"{name}:{where} {e.reason}{': ' + e.detail if e.detail else ''}") from None
    return QuotaTable(tuple(_QuotaReader(name, root).table(data)), name)


class _QuotaReader:
    """Walks the parsed document beside its YAML nodes, so every complaint names its line."""

    def __init__(self, name: str, root: yaml.Node | None) -> None:
        self.name, self.root = name, root

    def fail(self, loc: list[str], message: str) -> QuotaFileError:
        line = self._line_of(loc)
        where = f" line {line}:" if line else ""
        return QuotaFileError(f"{self.name}:{where} {format_path(loc) or '(top level)'}: {message}")

    def _line_of(self, loc: list[str]) -> int | None:
        node, line = self.root, (self.root.start_mark.line + 1 if self.root is not None else None)
        for part in loc:
            if not isinstance(node, yaml.MappingNode):
                break
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if found is None:
                break
            node, line = found[1], found[0].start_mark.line + 1
        return line

    def mapping(self, value: Any, loc: list[str], allowed: Iterable[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(loc, "expected a mapping")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(loc, f"{key!r} is not a name")
            if allowed is not None and key not in allowed:
                raise self.fail([*loc, key], f"unknown setting {key!r} (expected {', '.join(allowed)})")
        return value

    def rate(self, value: Any, loc: list[str]) -> float:
        # bool is an int to Python, but `ListKeys: yes` is a mistake, not one request per second.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise self.fail(loc, f"a quota is a positive number of requests per second, not {value!r}")
        return float(value)

    def table(self, data: Any) -> list[Quota]:
        top = self.mapping(data, [], ["services"])
        services = self.mapping(top.get("services"), ["services"])
        quotas: list[Quota] = []
        for service, body in services.items():
            quotas += self.service(service, body, ["services", service])
        return quotas

    def service(self, service: str, body: Any, loc: list[str]) -> list[Quota]:
        body = self.mapping(body, loc, ["source", "quotas"])
        entries = self.mapping(body.get("quotas"), [*loc, "quotas"])
        quotas = [self.quota(service, name, value, [*loc, "quotas", name]) for name, value in entries.items()]
        seen: dict[str, str] = {}
        for q in quotas:
            for op in q.operations:
                if op in seen:
                    raise self.fail([*loc, "quotas", q.name], f"{op} is already limited by {seen[op]!r}")
                seen[op] = q.name
        return quotas

    def quota(self, service: str, name: str, value: Any, loc: list[str]) -> Quota:
        if not isinstance(value, dict):
            return Quota(service, name, self.rate(value, loc), (name,))
        body = self.mapping(value, loc, ["operations", "rate", "regions"])
        ops = body.get("operations", [name])
        if not isinstance(ops, list) or not ops or not all(isinstance(op, str) and op for op in ops):
            raise self.fail([*loc, "operations"], "expected a non-empty list of operation names")
        regions = self.mapping(body.get("regions", {}), [*loc, "regions"])
        return Quota(
            service,
            name,
            self.rate(body.get("rate"), [*loc, "rate"]),
            tuple(ops),
            {region: self.rate(r, [*loc, "regions", region]) for region, r in regions.items()},
        )


# --------------------------------------------------------------------------------------------------------------
# Token buckets


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; ``take()`` spends one if there is one. Thread-safe."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        # One second's worth; at least one token, or a quota under 1/s (0.25: one call in 4 s) never admits.
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


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
        """GET: this server's latency and quotas; POST ``{"paused": true|false}``: pause or resume them (an
        out-of-process benchmark seeds its estate paused)."""
        status = 200
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                body = json.loads(_with_buffered_body(environ)["wsgi.input"].read() or b"{}")
                if not isinstance(body, dict) or not isinstance(body.get("paused"), bool):
                    raise ValueError
                self.paused = body["paused"]
            except ValueError:
                status = 400
        state = {
            "latency_ms": self.latency.ms if self.latency else 0,
            "jitter_ms": self.latency.jitter_ms if self.latency else 0,
            "quotas": self.throttler.table.origin if self.throttler else None,
            "paused": self.paused,
        }
        if status != 200:
            state = {"error": 'POST a JSON body {"paused": true} or {"paused": false}'}
        data = json.dumps(state).encode()
        start_response(_status_line(status), [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

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
