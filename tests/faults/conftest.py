"""The fault suite's fixtures: a warmed moto server behind the fault proxy, a small estate, and one way to run a
command and read what it reported.

Every test runs a real command (``scan``, ``monitor --once``, ``export securityhub``) in-process against moto over
HTTP, with ``tests/faultproxy.py`` between them injecting one fault. Calls get short timeouts (1-2 s), so the
estates stay small and the whole suite runs in well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from typer.testing import CliRunner

from faultproxy import FaultProxy  # tests/ is on sys.path: the shared HTTP fault proxy
from kmsguard.aws.options import AwsOptions
from kmsguard.cli.main import app
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import Emulator

EAST = "us-east-1"


@pytest.fixture(scope="session", autouse=True)
def _warm(moto_server: Emulator) -> None:
    """One scan before the suite: moto imports each service's backend on its first request, which can take longer
    than the suite's 1 s timeouts on a busy machine and would time out calls the test did not mean to fault."""
    collect_snapshot(AwsOptions(endpoint_url=moto_server.endpoint_url, regions=[EAST]))


@dataclass
class Estate:
    """Customer managed keys in us-east-1, by name: ``arns[name]``, ``ids[name]``."""

    arns: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


def make_keys(client: Any, *names: str) -> Estate:
    kms = client("kms", EAST)
    est = Estate()
    for name in names:
        meta = kms.create_key(Description=name)["KeyMetadata"]
        est.arns[name], est.ids[name] = meta["Arn"], meta["KeyId"]
    return est


@pytest.fixture
def estate(client: Any) -> Estate:
    """Two keys: ``hit`` (the one a test faults) and ``fine`` (which must come through untouched)."""
    return make_keys(client, "hit", "fine")


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def findings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.stdout)["findings"]
        return found

    def errors(self, arn: str | None = None) -> list[dict[str, Any]]:
        """The ERROR findings (on ``arn`` only, when given)."""
        return [f for f in self.findings if f["status"] == "ERROR" and (arn is None or f["resource_arn"] == arn)]

    def read_errors(self, arn: str | None = None) -> list[tuple[str, str]]:
        """(operation, code) of each failed call reported (on ``arn``): the scan_collection_error findings."""
        return sorted(
            (f["evidence"]["operation"], f["evidence"]["code"])
            for f in self.errors(arn)
            if f["check_id"] == "scan_collection_error"
        )

    def judged(self, arn: str) -> bool:
        """Whether ``arn`` is in the report at all: nothing the estate holds may silently drop out."""
        return any(f["resource_arn"] == arn for f in self.findings)


def kmsguard(*args: str) -> Run:
    """Run a command in-process. A traceback escapes as an exception and fails the test; stderr is checked too
    (an exception inside a worker thread would only print one)."""
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    return Run(res.exit_code, res.stdout, res.stderr)


def kmsguard_process(*args: str, timeout: float = 60) -> Run:
    """Run a command as its own process, for tests whose timing matters: the scan's CPU work (botocore loading a
    model per client) then does not share one interpreter with moto and the proxy, which would slow their answers.
    ``timeout`` bounds the test whatever the command does."""
    cmd = [sys.executable, "-m", "kmsguard.cli.main", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in res.stderr, res.stderr
    return Run(res.returncode, res.stdout, res.stderr)


def scan(proxy: FaultProxy, *extra: str) -> Run:
    """``scan`` of us-east-1 through the proxy, JSON out; ``--fail-on never``, so exit 1 means ERROR findings."""
    where = ("--endpoint-url", proxy.endpoint_url, "--regions", EAST)
    return kmsguard("scan", *where, "-f", "json", "-q", "--fail-on", "never", *extra)
