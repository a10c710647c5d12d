"""`kmsguard scan` as a user runs it: options, formats, exit codes, snapshots and bad input.

Everything that crosses the AWS boundary goes to the real moto server of tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app

runner = CliRunner()

PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
    ],
}


def scan(*args: str) -> Any:
    return runner.invoke(app, ["scan", *args], catch_exceptions=False)


@pytest.fixture
def estate(client, aws):  # type: ignore[no-untyped-def]
    """One public key (critical) and one key with rotation on, in us-east-1."""
    kms = client("kms")
    public = kms.create_key(Description="public", Policy=json.dumps(PUBLIC_POLICY))["KeyMetadata"]
    kms.create_alias(AliasName="alias/public", TargetKeyId=public["KeyId"])
    good = kms.create_key(Description="good")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=good["KeyId"])
    return {"public": public["Arn"], "good": good["Arn"], "endpoint": aws.endpoint_url}


def test_json_report_has_the_contract_and_exit_code_follows_fail_on(estate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    res = scan("--endpoint-url", estate["endpoint"], "--regions", "us-east-1", "-f", "json", "-o", str(out), "-q")
    assert res.exit_code == 1, res.output  # a critical failing finding, default --fail-on low
    doc = json.loads(out.read_text())
    assert list(doc) == ["kmsguard_version", "scanned_at", "accounts", "regions", "summary", "findings"]
    assert doc["accounts"] == ["123456789012"] and doc["regions"] == ["us-east-1"]
    public = [f for f in doc["findings"] if f["check_id"] == "key_policy_public" and f["status"] == "FAIL"]
    assert [f["resource_arn"] for f in public] == [estate["public"]]
    assert public[0]["severity"] == "critical"
    assert set(public[0]) == {
        "check_id",
        "status",
        "severity",
        "account",
        "region",
        "resource_type",
        "resource_arn",
        "message",
        "evidence",
        "remediation",
        "compliance",
    }
    rotation = {f["resource_arn"]: f["status"] for f in doc["findings"] if f["check_id"] == "key_rotation_disabled"}
    assert rotation == {estate["public"]: "FAIL", estate["good"]: "PASS"}

    def exit_code(*options: str) -> int:
        live = ("--endpoint-url", estate["endpoint"], "--regions", "us-east-1", "-f", "json", "-o", str(out), "-q")
        return scan(*live, *options).exit_code

    assert exit_code("--fail-on", "never") == 0
    # Only the public-policy check, and its finding is critical: --fail-on critical still fails ...
    assert exit_code("--fail-on", "critical", "--checks", "key_policy_public") == 1
    # ... while a check that only finds medium problems passes at --fail-on high.
    assert exit_code("--fail-on", "high", "--checks", "key_rotation_disabled") == 0


def test_snapshot_round_trip_gives_the_same_findings(estate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    snap, live, offline = tmp_path / "s.json.gz", tmp_path / "live.json", tmp_path / "offline.json"
    endpoint = ("--endpoint-url", estate["endpoint"], "--regions", "us-east-1")
    scan(*endpoint, "-f", "json", "-o", str(live), "-q", "--snapshot-out", str(snap))
    res = scan("--from-snapshot", str(snap), "-f", "json", "-o", str(offline))
    assert res.exit_code == 1
    assert json.loads(live.read_text()) == json.loads(offline.read_text())


@pytest.mark.parametrize("fmt", ["sarif", "csv", "junit", "markdown"])
def test_every_format_renders_the_findings(estate, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / f"r.{fmt}"
    res = scan("--endpoint-url", estate["endpoint"], "--regions", "us-east-1", "-f", fmt, "-o", str(out), "-q")
    assert res.exit_code == 1
    assert estate["public"].split("/")[-1] in out.read_text()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON at line 1"),
        ('{"Records": []}', "not a kmsguard snapshot"),
        ('{"schema_version": 99, "accounts": []}', "schema_version 99"),
        (
            '{"schema_version": 1, "kmsguard_version": "x", "collected_at": "2026-01-01T00:00:00Z", '
            '"accounts": [{"account_id": "1", "regions": [{"region": "us-east-1", "keys": [{"arn": 5}]}]}]}',
            "accounts.0.regions.0.keys.0",
        ),
    ],
)
def test_bad_snapshot_files_are_named_and_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    bad = _write(tmp_path / "bad.json", content)
    res = scan("--from-snapshot", str(bad))
    assert res.exit_code == 2
    assert str(bad) in res.output and expected in res.output


def test_missing_snapshot_file(tmp_path: Path) -> None:
    res = scan("--from-snapshot", str(tmp_path / "nope.json"))
    assert res.exit_code == 2 and "no such file" in res.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--checks", "key_rotation_disabled,no_such_check"], "unknown check id(s): no_such_check"),
        (["--fail-on", "severe"], "--fail-on"),
        (["--format", "xml"], "--format"),
        (["--accounts", "12345"], "12-digit"),
        (["--rotation-max-days", "30"], "between 90 and 2560"),
        (["--trusted-org-id", "acme"], "Organization id"),
    ],
)
def test_usage_errors_exit_2(args: list[str], expected: str, aws) -> None:  # type: ignore[no-untyped-def]
    res = scan("--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "-q", *args)
    assert res.exit_code == 2
    assert expected in res.output


def test_from_snapshot_refuses_aws_options(tmp_path: Path) -> None:
    res = scan("--from-snapshot", str(tmp_path / "s.json"), "--region", "us-east-1")
    assert res.exit_code == 2 and "drop the AWS options" in res.output


def test_config_file_error_names_the_line(tmp_path: Path, aws) -> None:  # type: ignore[no-untyped-def]
    cfg = _write(tmp_path / "kmsguard.yaml", "required_tags: [Owner]\nmax_rotation_days: soon\n")
    res = scan("--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "--config", str(cfg), "-q")
    assert res.exit_code == 2
    assert "line 2" in res.output and "max_rotation_days" in res.output


def test_config_file_settings_are_used(estate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = _write(tmp_path / "kmsguard.yaml", "required_tags: [Team]\n")
    out = tmp_path / "r.json"
    scan(
        "--endpoint-url",
        estate["endpoint"],
        "--regions",
        "us-east-1",
        "--config",
        str(cfg),
        "-q",
        "-f",
        "json",
        "-o",
        str(out),
        "--checks",
        "key_missing_tags",
    )
    evidence = [f["evidence"] for f in json.loads(out.read_text())["findings"] if f["status"] == "FAIL"]
    assert evidence and all("Team" in json.dumps(e) for e in evidence)


def _run_cli(args: list[str], env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the real `kmsguard` entry point in a clean environment (no ~/.aws, no inherited credentials)."""
    empty = tmp_path / "empty"
    empty.write_text("")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        **env_extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "kmsguard.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_no_credentials_exits_3_with_a_clear_message(tmp_path: Path, aws) -> None:  # type: ignore[no-untyped-def]
    res = _run_cli(["scan", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1"], {}, tmp_path)
    assert res.returncode == 3, res.stderr
    assert "credentials" in res.stderr.lower()


def test_unreachable_endpoint_exits_3_naming_it(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    res = _run_cli(["scan", "--endpoint-url", "http://127.0.0.1:9", "--regions", "us-east-1"], creds, tmp_path)
    assert res.returncode == 3, res.stderr
    assert "http://127.0.0.1:9" in res.stderr


def test_scan_with_trail_merges_findings_and_keeps_the_usage(  # type: ignore[no-untyped-def]
    estate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from kmsguard.model.usage import TrailUsage
    from kmsguard.trail.synth import event, write_trail_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the trail cache, out of the user's home
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    role = "arn:aws:sts::123456789012:assumed-role/app/s1"
    records = [event("Decrypt", estate["public"], role, t0 + timedelta(hours=h)) for h in range(30)]
    records.append(event("ScheduleKeyDeletion", estate["good"], role, t0 + timedelta(hours=2)))
    write_trail_files(tmp_path / "logs", records)
    out = tmp_path / "r.json"
    base = ("--endpoint-url", estate["endpoint"], "--regions", "us-east-1", "-f", "json", "-o", str(out), "-q")
    res = scan(*base, "--trail", str(tmp_path / "logs"))
    assert res.exit_code == 1, res.output
    doc = json.loads(out.read_text())
    deletion = [f["resource_arn"] for f in doc["findings"] if f["check_id"] == "trail_key_deletion_scheduled"]
    assert deletion == [estate["good"]]
    usage = TrailUsage.model_validate(doc["trail_usage"])
    top = usage.top_keys[0]
    assert (top.key_arn, top.alias, top.calls) == (estate["public"], "alias/public", 30)  # alias from the scan
    assert usage.series_for(estate["public"]).calls == [24, 6]  # type: ignore[union-attr]
    # Without --trail the JSON is exactly the old contract.
    assert scan(*base).exit_code == 1 and "trail_usage" not in json.loads(out.read_text())
    bad = scan(*base, "--trail", str(tmp_path / "nowhere"))
    assert bad.exit_code == 2 and "--trail" in bad.output
