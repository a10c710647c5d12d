"""Runs that could not see do not pass: the exit-code rule of scan, report, trail analyze and monitor --once.

- every AWS call of a scan failed: exit 3 naming the first failure (nothing was read, so no finding means nothing);
- any ERROR finding (something could not be read or judged): exit 1 even at ``--fail-on never``, unless
  ``--allow-errors``;
- ``trail analyze`` whose sources held nothing, or whose every log file failed: exit 2 saying so.

AWS is the real moto server over HTTP; faults come from the test proxy in front of it (tests/faultproxy.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from faultproxy import FaultProxy, Rule
from kmsguard.cli.main import app
from kmsguard.demo.emulator import Emulator

runner = CliRunner()


def kmsguard(*args: str, **kw: Any) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False, **kw)


class DenyEverything(FaultProxy):
    """Credentials that work (sts:GetCallerIdentity answers) and a role that may read nothing: every other call
    gets AccessDenied, in its service's wire protocol."""

    def _match(self, operation: str, body: bytes) -> Rule | None:
        if operation == "GetCallerIdentity":
            return None
        return Rule(operation, None, 403, "AccessDenied", b"", None)


@pytest.fixture
def deny_all(aws: Emulator) -> Any:
    p = DenyEverything(aws.endpoint_url).start()
    yield p
    p.stop()


@pytest.fixture
def one_key(client) -> str:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn: str = kms.create_key(Description="k")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=arn)
    return arn


def test_a_scan_whose_every_call_failed_exits_3_naming_the_failure(deny_all: DenyEverything) -> None:
    res = kmsguard("scan", "--endpoint-url", deny_all.endpoint_url, "--regions", "us-east-1", "-f", "json", "-q")
    assert res.exit_code == 3, res.output
    assert "every AWS call failed" in res.output and "AccessDenied" in res.output
    assert deny_all.count() > 5  # the scan did try: DescribeRegions, ListKeys, IAM, S3, CloudTrail ...
    assert '"findings"' not in res.stdout  # no report that could pass for a clean estate


def test_a_report_or_monitor_cycle_that_read_nothing_exits_3(deny_all: DenyEverything, tmp_path: Path) -> None:
    live = ("--endpoint-url", deny_all.endpoint_url, "--regions", "us-east-1", "-q")
    rep = kmsguard("report", "--framework", "cis", "-f", "json", "-o", str(tmp_path / "r.json"), *live)
    assert rep.exit_code == 3 and "every AWS call failed" in rep.output
    mon = kmsguard("monitor", "--once", "--db", f"sqlite:///{tmp_path / 'm.db'}", *live)
    assert mon.exit_code == 3 and "every AWS call failed" in mon.output
    # Nothing was stored: a stored blind scan would make the next cycle's drift report every finding resolved.
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert db.execute("SELECT count(*) FROM scans").fetchone() == (0,)


def test_error_findings_fail_the_run_unless_allowed(aws: Emulator, one_key: str, tmp_path: Path) -> None:
    proxy = FaultProxy(aws.endpoint_url).start()
    try:
        proxy.fail("GetKeyPolicy", "AccessDeniedException")
        out = tmp_path / "r.json"
        live = ("--endpoint-url", proxy.endpoint_url, "--regions", "us-east-1", "-f", "json", "-o", str(out), "-q")
        res = kmsguard("scan", *live, "--fail-on", "never")
        errors = [f for f in json.loads(out.read_text())["findings"] if f["status"] == "ERROR"]
        assert errors and any(f["resource_arn"] == one_key for f in errors)
        assert res.exit_code == 1, res.output  # --fail-on never says nothing about what could not be read
        assert kmsguard("scan", *live, "--fail-on", "never", "--allow-errors").exit_code == 0

        rep = ("report", "--framework", "cis", "-f", "json", "-o", str(tmp_path / "c.json"), *live[:4], "-q")
        assert kmsguard(*rep).exit_code == 1
        assert kmsguard(*rep, "--allow-errors").exit_code == 0
    finally:
        proxy.stop()


def test_report_fail_on(aws: Emulator, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client("kms").create_key(Description="no rotation")  # key_rotation_disabled: a medium failing finding
    base = ("report", "--framework", "cis", "-f", "json", "-o", str(tmp_path / "r.json"))
    live = ("--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "-q")
    assert kmsguard(*base, *live).exit_code == 0  # default: never, as before
    assert kmsguard(*base, *live, "--fail-on", "medium").exit_code == 1
    assert kmsguard(*base, *live, "--fail-on", "critical", "--checks", "key_rotation_disabled").exit_code == 0
    bad = kmsguard(*base, *live, "--fail-on", "severe")
    assert bad.exit_code == 2 and "--fail-on" in bad.output


def test_trail_analyze_of_an_empty_bucket_says_nothing_was_found(
    aws: Emulator, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    client("s3").create_bucket(Bucket="empty-bucket")
    res = kmsguard("trail", "analyze", "s3://empty-bucket/", "--endpoint-url", aws.endpoint_url, "-f", "json", "-q")
    assert res.exit_code == 2, res.output
    assert "no CloudTrail log files found in s3://empty-bucket/" in res.output
    (tmp_path / "empty").mkdir()
    local = kmsguard("trail", "analyze", str(tmp_path / "empty"), "-f", "json", "-q")
    assert local.exit_code == 2 and "no CloudTrail log files found" in local.output


def test_trail_analyze_whose_every_file_failed_exits_2_with_the_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from kmsguard.trail.synth import event, write_trail_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    role = "arn:aws:sts::123456789012:assumed-role/app/s1"
    paths = write_trail_files(tmp_path / "logs", [event("Decrypt", key, role, datetime(2025, 1, 1, tzinfo=UTC))])
    for p in paths:  # every file cut short: a truncated gzip
        p.write_bytes(p.read_bytes()[:20])
    res = kmsguard("trail", "analyze", str(tmp_path / "logs"), "-f", "json", "-q")
    assert res.exit_code == 2, res.output
    assert "every log file failed" in res.output and paths[0].name in res.output
    assert "gzip" in res.output  # the reason, not only the count
