"""Start and stop an in-process moto server on 127.0.0.1 and a free port.

The emulator layer (see ``patches.py``) is applied before the server starts, so AWS behaviours that
moto lacks and kmsguard relies on (AWS managed keys, rotation periods, ...) look as they do in AWS.
``aws_latency`` and ``aws_quotas`` (off by default) give this server AWS's time: see ``quotas.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from moto.server import ThreadedMotoServer

from kmsguard.aws.quotas import QuotaTable, load_quotas
from kmsguard.demo.quotas import AwsTiming, Latency, parse_latency

DEFAULT_ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_aws_managed_policies(on: bool) -> None:
    """Whether IAM accounts moto creates from now on hold the AWS managed policies (moto reads this
    process-wide variable when it creates an account's IAM backend)."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true" if on else "false"


class _Server(ThreadedMotoServer):
    """moto's threaded server with ``wrap`` around its app: the place for per-server behaviour.

    ``_server_entry`` is moto 5.2.5's own, but for the wrapper."""

    def __init__(self, port: int, wrap: Callable[[Any], Any] | None) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._wrap = wrap

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app: Any = DomainDispatcherApplication(create_backend_app)
        if self._wrap is not None:
            app = self._wrap(app)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class Emulator:
    """A moto server on 127.0.0.1; use as a context manager or call start()/stop().

    ``aws_latency`` ("30", "30:10" or a ``Latency``) and ``aws_quotas`` ("default", a file path or a
    ``QuotaTable``) make every request wait and throttle it at AWS's request quotas; both off by default.
    ``clock`` (the quota buckets' time) and ``seed`` (the latency jitter's) are for deterministic tests.
    ValueError (``QuotaFileError`` for a quota file) when either cannot be read.
    """

    def __init__(
        self,
        port: int | None = None,
        quiet: bool = True,
        aws_managed_policies: bool = True,
        aws_latency: Latency | str | None = None,
        aws_quotas: QuotaTable | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.quiet = quiet
        self.aws_managed_policies = aws_managed_policies
        self.aws_latency = parse_latency(aws_latency) if isinstance(aws_latency, str) else aws_latency
        self.aws_quotas = load_quotas(aws_quotas) if isinstance(aws_quotas, str) else aws_quotas
        self._clock, self._seed = clock, seed
        self._server: ThreadedMotoServer | None = None
        self._aws_timing: AwsTiming | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        from kmsguard.demo import patches

        patches.apply()
        # AWS managed IAM policies (AdministratorAccess, PowerUserAccess, ...) exist in every real account, and
        # effective access must see what they grant; moto loads them only when told, per account, on first use.
        # They make moto's reset ~30x slower (0.1 s -> 3 s after a demo seed), so a test server may go without.
        set_aws_managed_policies(self.aws_managed_policies)
        if self.quiet:
            # werkzeug logs every request at INFO on stderr; the demo's output is the scan, not the traffic.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = _Server(self.port, self._timing())
        self._server.start()
        return self

    def _timing(self) -> Callable[[Any], Any] | None:
        """The latency/quota layer for this server's app; None (moto's app untouched) when both are off."""
        if self.aws_latency is None and self.aws_quotas is None:
            return None

        def wrap(app: Any) -> AwsTiming:
            self._aws_timing = AwsTiming(app, self.aws_latency, self.aws_quotas, self._clock, self._seed)
            return self._aws_timing

        return wrap

    @contextlib.contextmanager
    def aws_time_paused(self) -> Iterator[None]:
        """Within the block requests neither wait nor spend quota: for seeding an estate (at AWS's CreateKey
        quota of 5 a second, 3,000 keys would take ten minutes). Nothing happens when both are off."""
        timing = self._aws_timing
        if timing is None:
            yield
            return
        timing.paused = True
        try:
            yield
        finally:
            timing.paused = False

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every resource in every account (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def request_count(self) -> int:
        """How many AWS requests the server has answered since start (for call-count benchmarks)."""
        from kmsguard.demo import patches

        return patches.request_count()

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Answered AWS requests by (service, operation), e.g. {("kms", "DescribeKey"): 30}."""
        from kmsguard.demo import patches

        return patches.request_counts()

    def throttled_counts(self) -> dict[tuple[str, str], int]:
        """Of ``request_counts()``, the requests answered with a throttling error, by (service, operation)."""
        from kmsguard.demo import patches

        return patches.throttled_counts()

    def reset_request_counts(self) -> None:
        from kmsguard.demo import patches

        patches.reset_request_counts()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3, the aws CLI and kmsguard at this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return json.dumps({"endpoint_url": self.endpoint_url})
