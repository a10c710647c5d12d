"""Start and stop an in-process moto server on 127.0.0.1 and a free port.

The emulator layer (see ``patches.py``) is applied before the server starts, so AWS behaviours that
moto lacks and kmsguard relies on (AWS managed keys, rotation periods, ...) look as they do in AWS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from types import TracebackType

from moto.server import ThreadedMotoServer

DEFAULT_ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_aws_managed_policies(on: bool) -> None:
    """Whether IAM accounts moto creates from now on hold the AWS managed policies (moto reads this
    process-wide variable when it creates an account's IAM backend)."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true" if on else "false"


class Emulator:
    """A moto server on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, quiet: bool = True, aws_managed_policies: bool = True) -> None:
        self.port = port or free_port()
        self.quiet = quiet
        self.aws_managed_policies = aws_managed_policies
        self._server: ThreadedMotoServer | None = None

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
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

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
