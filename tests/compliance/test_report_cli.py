"""`kmsguard report` and `kmsguard export securityhub` through a typer app that registers them, as main will."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import typer
from typer.testing import CliRunner

from kmsguard.cli import export, report
from kmsguard.demo.emulator import Emulator
from kmsguard.model.snapshot import Snapshot
from kmsguard.snapshot_io import save_snapshot


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report.report)
    app.add_typer(export.app, name="export")
    return app


@pytest.fixture(scope="module")
def snapshot_file(demo_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "estate.json"
    save_snapshot(demo_snapshot, path)
    return path


@pytest.mark.parametrize("fmt", ["json", "markdown", "csv", "html"])
def test_report_formats_from_a_snapshot(fmt: str, snapshot_file: Path, tmp_path: Path) -> None:
    out = tmp_path / f"r.{fmt}"
    res = CliRunner().invoke(
        _app(),
        ["report", "--framework", "nist-800-53", "--from-snapshot", str(snapshot_file), "-f", fmt, "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert "SC-12" in text
    if fmt == "json":
        assert json.loads(text)["framework"]["name"] == "NIST SP 800-53"


def test_report_usage_errors(snapshot_file: Path) -> None:
    runner = CliRunner()
    bad_fw = runner.invoke(_app(), ["report", "--framework", "iso27001", "--from-snapshot", str(snapshot_file)])
    assert bad_fw.exit_code == 2 and "iso27001" in bad_fw.output
    bad_fmt = runner.invoke(_app(), ["report", "--framework", "cis", "--from-snapshot", str(snapshot_file), "-f", "x"])
    assert bad_fmt.exit_code == 2
    mixed = runner.invoke(
        _app(), ["report", "--framework", "cis", "--from-snapshot", str(snapshot_file), "--region", "us-east-1"]
    )
    assert mixed.exit_code == 2 and "--from-snapshot" in mixed.output


def test_pdf_without_chromium_names_the_package(snapshot_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("KMSGUARD_CHROMIUM", raising=False)
    res = CliRunner().invoke(
        _app(), ["report", "--framework", "cis", "--from-snapshot", str(snapshot_file), "-f", "pdf", "-o", "x.pdf"]
    )
    assert res.exit_code == 2
    assert "apt-get install chromium" in res.output


def test_export_securityhub_round_trip(snapshot_file: Path, aws: Emulator, demo_snapshot: Snapshot) -> None:
    res = CliRunner().invoke(
        _app(),
        [
            "export",
            "securityhub",
            "--from-snapshot",
            str(snapshot_file),
            "--region",
            "eu-west-1",
            "--endpoint-url",
            aws.endpoint_url,
            "--include-passed",
        ],
    )
    assert res.exit_code == 0, res.output
    sh = boto3.client("securityhub", region_name="eu-west-1", endpoint_url=aws.endpoint_url)
    got = [f for page in sh.get_paginator("get_findings").paginate() for f in page["Findings"]]
    from kmsguard.pipeline import judge

    expected = judge(demo_snapshot).findings
    assert len(got) == len(expected) > 100  # several batches of 100
    assert f"sent {len(expected)} finding(s) in {-(-len(expected) // 100)} batch(es)" in res.output
    assert {g["Resources"][0]["Id"] for g in got} == {f.resource_arn for f in expected}
    assert all(g["ProductArn"].startswith("arn:aws:securityhub:eu-west-1:") for g in got)
    by_resource_check = {(g["Resources"][0]["Id"], g["GeneratorId"]): g for g in got}
    for f in expected:
        g = by_resource_check[(f.resource_arn, f"kmsguard/{f.check_id}")]
        assert g["Severity"]["Label"] == f.severity.value.upper().replace("INFO", "INFORMATIONAL")
        assert g["Compliance"]["Status"] == {"FAIL": "FAILED", "PASS": "PASSED"}[f.status.value]
        assert g["AwsAccountId"] == f.account
        assert g["Description"] == f.message[:1024]


def test_report_with_trail_has_the_usage_section(
    snapshot_file: Path, demo_snapshot: Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from kmsguard.trail.synth import event, write_trail_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    key = next(k for k in demo_snapshot.all_keys() if k.aliases and k.key_manager == "CUSTOMER")
    role = f"arn:aws:sts::{key.account}:assumed-role/app/s1"
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    write_trail_files(tmp_path / "logs", [event("Decrypt", key.arn, role, t0 + timedelta(hours=h)) for h in range(5)])
    out = tmp_path / "r.html"
    args = ["report", "--framework", "cmmc-l2", "--from-snapshot", str(snapshot_file), "-o", str(out)]
    res = CliRunner().invoke(_app(), [*args, "--trail", str(tmp_path / "logs")])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="trail-usage"') : html.index("<h2>Evidence per control")]
    assert key.arn in section and key.aliases[0] in section and "peak 5/day" in section
    assert CliRunner().invoke(_app(), args).exit_code == 0 and "Key usage" not in out.read_text(encoding="utf-8")
