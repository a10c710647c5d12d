"""Charts (real PNGs, embedded in HTML) and the `kmsguard trail analyze` command."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from kmsguard.cli import trail as trail_cli

from . import scenario as sc


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(trail_cli.app, name="trail")

    @app.callback()
    def _root() -> None:
        """Root (so that `trail` stays a sub-command)."""

    return app


def test_cli_json_sarif_summary_and_charts(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    sc.write_logs(logs)
    snap = tmp_path / "snap.json"
    snap.write_text(sc.snapshot().model_dump_json())
    runner = CliRunner()
    args = ["trail", "analyze", str(logs), "--snapshot", str(snap), "--cache", str(tmp_path / "c"), "--workers", "1"]
    res = runner.invoke(
        _app(), [*args, "-f", "json", "--summary-out", str(tmp_path / "s.json"), "--charts", str(tmp_path / "charts")]
    )
    assert res.exit_code == 1, res.output  # failing findings at or above --fail-on low
    doc = json.loads(res.stdout)
    assert {f["check_id"] for f in doc["findings"]} >= {"trail_key_deletion_scheduled", "key_unused"}
    assert all(f["resource_arn"] and "window" in f["evidence"] for f in doc["findings"])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["files"]["read"] > 0 and summary["records"]["skipped"] == 0
    for name in ("usage_over_time", "top_keys", "top_principals"):
        assert (tmp_path / "charts" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (tmp_path / "charts" / "index.html").read_text()
    # Second run: everything from the cache; the summary line on stderr says so.
    res2 = runner.invoke(_app(), [*args, "-f", "sarif", "--fail-on", "never"])
    assert res2.exit_code == 0 and json.loads(res2.stdout)["version"] == "2.1.0"
    assert " 0 read," in res2.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(_app(), ["trail", "analyze"]).exit_code == 2
    assert runner.invoke(_app(), ["trail", "analyze", str(tmp_path / "missing")]).exit_code == 2
    bad = runner.invoke(_app(), ["trail", "analyze", str(tmp_path), "--since", "yesterday-ish"])
    assert bad.exit_code == 2 and "--since" in bad.stderr
    bad = runner.invoke(_app(), ["trail", "analyze", str(tmp_path), "--account", "12", "--cache", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "12-digit" in bad.stderr
