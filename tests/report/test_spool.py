"""The findings spool (kmsguard.spool): a scan's findings written to disk as they are judged, read back in report
order. A streamed report must be the report of the same findings held in memory, byte for byte, whatever the run
size; ties keep their order of addition (as ``sorted`` does); the spool's files go when it closes."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from report_sample import make_result, sample_findings

from checks.builders import key, resource, snapshot
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.mutes import Mute
from kmsguard.pipeline import judge, judge_stream, scanned
from kmsguard.report import STREAMED, render, write
from kmsguard.spool import FindingSpool, SpooledResult

OTHER_ACCOUNT = "444455556666"


def _estate_findings() -> ScanResult:
    """A judged snapshot with hundreds of findings over two accounts: every check's ordering in play."""
    keys = [key(rotation_enabled=i % 3 != 0, tags={} if i % 4 == 0 else {"Owner": "x"}) for i in range(40)]
    keys += [key(account=OTHER_ACCOUNT, aliases=[], rotation_enabled=False) for _ in range(20)]
    resources = [resource(f"bucket-{i}", uses=keys[i]) for i in range(0, 40, 5)]
    snap = snapshot(keys=keys, resources=resources)
    return judge(snap)


def _spooled(result: ScanResult, tmp_path: Path, run_size: int, max_runs: int = 64) -> SpooledResult:
    spool = FindingSpool(tmp_path, run_size=run_size, max_runs=max_runs)
    spool.extend(result.findings)
    meta = result.model_dump(include={"kmsguard_version", "scanned_at", "accounts", "regions"})
    return SpooledResult(spool, **meta, trail_usage=result.trail_usage)


@pytest.mark.parametrize(("run_size", "max_runs"), [(1, 64), (7, 64), (7, 3), (100_000, 64)])
@pytest.mark.parametrize("fmt", sorted(STREAMED))
def test_a_streamed_report_is_the_report_in_memory(tmp_path: Path, fmt: str, run_size: int, max_runs: int) -> None:
    result = _estate_findings()
    assert len(result.findings) > 200  # many runs at these sizes; (7, 3) merges runs together more than once
    spooled = _spooled(result, tmp_path, run_size, max_runs)
    out = io.StringIO()
    write(spooled, fmt, out)
    assert out.getvalue() == render(result, fmt)
    again = io.StringIO()  # the spool can be read more than once (SARIF reads it twice)
    write(spooled, fmt, again)
    assert again.getvalue() == out.getvalue()
    spooled.spool.close()


def test_the_sample_with_awkward_text_streams_to_the_same_bytes(tmp_path: Path) -> None:
    # Quotes, newlines, unicode, formula starts, a MUTED finding, an unknown check id, evidence with nesting.
    result = make_result(sample_findings())
    spooled = _spooled(result, tmp_path, run_size=2)
    for fmt in sorted(STREAMED):
        out = io.StringIO()
        write(spooled, fmt, out)
        assert out.getvalue() == render(result, fmt), fmt
    assert spooled.tally().summary() == result.summary()
    assert spooled.tally().worst_failing == result.worst_failing()
    assert spooled.materialize().findings == result.sorted_findings()


def test_findings_that_sort_equal_keep_their_order_across_runs(tmp_path: Path) -> None:
    # Same check, resource, status and message; only the evidence tells them apart.
    base = make_result(sample_findings()).findings[0]
    twins = [base.model_copy(update={"evidence": {"n": i}}) for i in range(25)]
    spool = FindingSpool(tmp_path, run_size=4, max_runs=2)
    spool.extend(twins)
    assert [f.evidence["n"] for f in spool.iter_sorted()] == list(range(25))
    spool.close()


def test_the_spool_leaves_no_file_behind_even_when_the_judging_fails(tmp_path: Path) -> None:
    def judged() -> list[Finding]:
        raise RuntimeError("a check crashed")

    with pytest.raises(RuntimeError), FindingSpool(tmp_path, run_size=1) as spool:
        spool.extend(_estate_findings().findings[:5])
        assert any(tmp_path.iterdir())
        judged()
    assert not any(tmp_path.iterdir())


def test_evidence_values_json_cannot_hold_come_back_as_the_json_report_writes_them(tmp_path: Path) -> None:
    odd = make_result(sample_findings()).findings[0].model_copy(update={"evidence": {"path": Path("/x"), "n": 1.5}})
    with FindingSpool(tmp_path) as spool:
        spool.add(odd)
        (back,) = spool.iter_sorted()
    assert back.evidence == {"path": "/x", "n": 1.5}
    assert json.loads(render(make_result([odd]), "json"))["findings"][0]["evidence"] == back.evidence


def test_judge_stream_gives_judge_s_findings_and_warns_once_at_the_end() -> None:
    snap = snapshot(keys=[key(rotation_enabled=False) for _ in range(3)])
    stale = Mute(check="key_rotation_disabled", reason="accepted until the migration", expires="2020-01-01")
    cfg = ScanConfig(mutes=[stale])
    warned: list[str] = []
    streamed = list(judge_stream(snap, cfg, warn=warned.append))
    assert len(warned) == 1 and "expired on 2020-01-01: its 3 finding(s)" in warned[0]
    assert ScanResult(**scanned(snap), findings=streamed) == judge(snap, cfg, warn=lambda _: None)
    rotation = [f for f in streamed if f.check_id == "key_rotation_disabled"]
    assert rotation and all(f.status is Status.FAIL and "expired_mute" in f.evidence for f in rotation)
    assert all(f.severity in Severity for f in streamed)


@pytest.mark.parametrize("fmt", sorted(STREAMED))
def test_scan_writes_the_spooled_report_and_leaves_no_spool_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from typer.testing import CliRunner

    from kmsguard.cli.main import app
    from kmsguard.snapshot_io import load_snapshot, save_snapshot

    spool_home = tmp_path / "tmp"
    spool_home.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool_home))
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read once per process: read it again
    snap_file = tmp_path / "snap.json"
    save_snapshot(snapshot(keys=[key(rotation_enabled=i % 2 == 0) for i in range(30)]), snap_file)
    out = tmp_path / f"report.{fmt}"
    res = CliRunner().invoke(app, ["scan", "--from-snapshot", str(snap_file), "-f", fmt, "-o", str(out)])
    assert res.exit_code == 1, res.output  # FAIL findings at the default --fail-on low
    expected = judge(load_snapshot(snap_file))
    assert out.read_bytes().decode("utf-8") == render(expected, fmt)  # bytes: a CSV keeps its \r\n
    assert expected.findings and not any(spool_home.iterdir())
