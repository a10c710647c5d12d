"""`kmsguard demo` end to end: one real run in a subprocess (it is slow), and the scan checked against the estate.

The subprocess runs with no AWS credentials and a profile that does not exist: the demo must need neither.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from kmsguard.demo.emulator import free_port
from kmsguard.demo.estate import SHOWCASED_CHECKS

SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "schemas" / "sarif-schema-2.1.0.json"


@dataclass
class DemoRun:
    proc: subprocess.Popen[str]
    port: int
    output_dir: Path
    report: dict[str, Any]  # what --format json printed
    exports: dict[str, str]
    returncode: int | None = None
    stderr: str = ""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """Runs `kmsguard demo --keep-running` once for the whole module; stopped with SIGTERM at the end."""
    out = tmp_path_factory.mktemp("demo-out")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_PROFILE"] = "no-such-profile-kmsguard-demo"  # would break any client that consulted it
    cmd = [
        sys.executable,
        "-c",
        "from kmsguard.cli.main import main; main()",
        "demo",
        "--keep-running",
        "--format",
        "json",
        "--output-dir",
        str(out),
        "--port",
        str(port),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    json_lines: list[str] = []
    exports: dict[str, str] = {}
    for line in proc.stdout:  # until the demo says how to reach the emulator it leaves running
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
            if len(exports) == 4:
                break
        else:
            json_lines.append(line)
    if len(exports) < 4:  # the demo ended before keeping the emulator up: report why
        proc.wait(timeout=60)
        pytest.fail(f"demo exited {proc.returncode} early:\n{proc.stderr.read()}")
    run = DemoRun(proc, port, out, json.loads("".join(json_lines)), exports)
    yield run
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _stop(run: DemoRun) -> None:
    if run.returncode is None:
        run.proc.send_signal(signal.SIGTERM)
        run.returncode = run.proc.wait(timeout=60)
        assert run.proc.stderr is not None
        run.stderr = run.proc.stderr.read()


@pytest.mark.slow
def test_keep_running_serves_the_estate_to_ordinary_clients(demo_run: DemoRun) -> None:
    env = demo_run.exports
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{demo_run.port}"
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_SECRET_ACCESS_KEY"] == "testing"
    kms = boto3.client(
        "kms",
        region_name=env["AWS_DEFAULT_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    aliases = {a["AliasName"] for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]}
    assert "alias/production-encryption-2026" in aliases


@pytest.mark.slow
def test_reports_are_written(demo_run: DemoRun) -> None:
    report = json.loads((demo_run.output_dir / "kmsguard-demo.json").read_text())
    assert report["accounts"] == ["123456789012", "210987654321"]
    assert report["regions"] == ["eu-west-1", "us-east-1"]
    assert report["findings"] == demo_run.report["findings"]  # the file is what was printed

    sarif = json.loads((demo_run.output_dir / "kmsguard-demo.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    results = sarif["runs"][0]["results"]
    assert results, "the demo estate has failing findings; SARIF must carry them"


@pytest.mark.slow
def test_demo_shows_every_check_failing_and_passing(demo_run: DemoRun) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for f in demo_run.report["findings"]:
        seen[f["check_id"]].add(f["status"])
    missing = {c: sorted({"FAIL", "PASS"} - seen.get(c, set())) for c in sorted(SHOWCASED_CHECKS)}
    assert {c: m for c, m in missing.items() if m} == {}
    errors = [f for f in demo_run.report["findings"] if f["status"] == "ERROR"]
    assert errors == [], "the demo estate is fully readable: an ERROR finding is a collector or emulator bug"


@pytest.mark.slow
def test_sigterm_stops_cleanly(demo_run: DemoRun) -> None:
    _stop(demo_run)
    assert demo_run.returncode == 0, demo_run.stderr
    assert "kmsguard-demo.sarif" in demo_run.stderr and "Summary" in demo_run.stderr
    with socket.socket() as s:  # the emulator is gone
        assert s.connect_ex(("127.0.0.1", demo_run.port)) != 0


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", "from kmsguard.cli.main import main; main()", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in proc.stderr


@pytest.mark.slow
def test_scan_of_the_estate_matches_what_the_estate_expects(aws) -> None:  # type: ignore[no-untyped-def]
    """Every part of the estate trips (or passes) the check it was built for: finding by finding."""
    from kmsguard.aws.options import AwsOptions
    from kmsguard.cli.demo import scoped_aws_env
    from kmsguard.collect.snapshot import collect_snapshot
    from kmsguard.demo.estate import seed_estate
    from kmsguard.pipeline import judge

    info = seed_estate(aws.endpoint_url)
    with scoped_aws_env(aws.endpoint_url, "us-east-1"):
        options = AwsOptions(endpoint_url=aws.endpoint_url, regions=info.regions, accounts=info.accounts)
        result = judge(collect_snapshot(options))
    got: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in result.findings:
        got[(f.check_id, f.resource_arn)].add(f.status.value)
    wrong = [
        (check_id, status, arn, sorted(got.get((check_id, arn), set())))
        for check_id, by_status in sorted(info.expect.items())
        for status, arns in by_status.items()
        for arn in arns
        if (status not in got.get((check_id, arn), set()) if status != "NONE" else got.get((check_id, arn)))
    ]
    assert wrong == [], "\n".join(map(str, wrong))
