"""Every framework's report generated from the demo estate, and its contents checked against the estate."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.checks.registry import load_builtin_checks
from kmsguard.cli.main import app
from kmsguard.compliance.assess import ControlStatus, assess
from kmsguard.compliance.mapping import FRAMEWORKS, framework_controls
from kmsguard.config import ScanConfig
from kmsguard.demo.estate import EstateInfo
from kmsguard.model.finding import Severity
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.mutes import Mute
from kmsguard.pipeline import judge
from kmsguard.report.framework_report import render_report_csv, render_report_json, render_report_markdown

ALL = list(FRAMEWORKS)
ROTATION_FRAMEWORKS = ["cmmc-l2", "nist-800-171", "nist-800-171r3", "nist-800-53", "cis", "fsbp", "pci-dss", "hipaa"]


def _report(result: ScanResult, fw: str, snapshot: Snapshot | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render_report_json(assess(result, fw, snapshot)))
    return doc


@pytest.mark.parametrize("fw", ALL)
def test_every_framework_lists_its_controls_with_statuses_that_follow_the_rules(
    fw: str, demo_result: ScanResult, demo_snapshot: Snapshot
) -> None:
    doc = _report(demo_result, fw, demo_snapshot)
    assert doc["framework"]["id"] == fw
    assert doc["accounts"] == demo_result.accounts
    assert [c["id"] for c in doc["controls"]] == [c.id for c in framework_controls(fw)]
    assert doc["controls"], f"{fw}: no controls"
    for c in doc["controls"]:
        fails = c["failing"]
        assert c["findings_by_status"]["FAIL"] == len(fails)
        if any(f["severity"] in ("high", "critical") for f in fails):
            assert c["status"] == "not met", c["id"]
        elif fails:
            assert c["status"] in ("partly met", "not met"), c["id"]
        if c["status"] == "met":
            assert not fails and not c["errors"]
        # Every failing finding carries its fix command and the control's remedy text for its check.
        # A fix command only where a fixer acts on the check (CheckSpec.fixer); the remedy text always.
        for f in fails:
            if load_builtin_checks()[f["check_id"]].fixer is None:
                assert f["fix_command"] == ""
            else:
                assert f["fix_command"].startswith(f"kmsguard fix --checks {f['check_id']} ")
                assert f["resource_arn"] in f["fix_command"] or f["account"] in f["fix_command"]
            assert c["remediation"][f["check_id"]]
    # The demo estate is built to fail somewhere in every framework's scope: a 100% score would be a lie.
    assert doc["summary"]["score"] is not None and 0 <= doc["summary"]["score"] < 100
    counts = doc["summary"]["controls_by_status"]
    assert sum(counts.values()) == len(doc["controls"])


@pytest.mark.parametrize("fw", ROTATION_FRAMEWORKS)
def test_the_rotation_control_lists_the_keys_without_rotation(
    fw: str, demo_result: ScanResult, demo_snapshot: Snapshot, demo_estate: tuple[EstateInfo, Snapshot]
) -> None:
    info = demo_estate[0]
    expected = set(info.expect["key_rotation_disabled"]["FAIL"])
    assert expected, "the demo estate has keys with rotation off"
    doc = _report(demo_result, fw, demo_snapshot)
    rotation = [c for c in doc["controls"] if "key_rotation_disabled" in c["checks"]]
    assert rotation, f"{fw}: no control is backed by key_rotation_disabled"
    for c in rotation:
        assert c["status"] in ("not met", "partly met"), c
        listed = {f["resource_arn"] for f in c["failing"] if f["check_id"] == "key_rotation_disabled"}
        # Exactly the keys the scan failed, and among them every key the estate switched rotation off for.
        scanned = {f.resource_arn for f in demo_result.findings if f.check_id == "key_rotation_disabled" and f.failing}
        assert listed == scanned
        assert expected <= listed
        for f in c["failing"]:
            if f["check_id"] == "key_rotation_disabled":
                assert f["fix_command"] == f"kmsguard fix --checks key_rotation_disabled --key {f['resource_arn']}"
                assert f["facts"]["rotation_enabled"] is False  # evidence from the snapshot, not just the message
                assert f["evidence"]["rotation_enabled"] is False


def test_markdown_and_csv_reports_carry_every_control_and_status(demo_result: ScanResult) -> None:
    rep = assess(demo_result, "cmmc-l2")
    md = render_report_markdown(rep)
    assert md.startswith("# CMMC (2.0 Level 2)")
    rows = list(csv.DictReader(io.StringIO(render_report_csv(rep))))
    for a in rep.controls:
        assert f"## {a.control.id} " in md
        mine = [r for r in rows if r["control_id"] == a.control.id]
        assert mine and {r["control_status"] for r in mine} == {a.status.value}
        assert sum(r["finding_status"] == "FAIL" for r in mine) == a.counts["FAIL"]
    assert all(r["scanned_at"].endswith("Z") for r in rows)


def test_a_control_without_evidence_is_not_assessed_and_not_scored(demo_snapshot: Snapshot) -> None:
    # Skip every check behind CIS 4.6 (rotation): the control has no evidence left.
    result = judge(demo_snapshot, skip=["key_rotation_disabled"])
    rep = assess(result, "cis")
    [rot] = [a for a in rep.controls if a.control.id == "4.6"]
    assert rot.status is ControlStatus.NOT_ASSESSED
    assert "not run" in rot.reason
    others = [a for a in rep.controls if a is not rot]
    score = rep.score()
    assert score is not None
    met = sum(a.status is ControlStatus.MET for a in others)
    partly = sum(a.status is ControlStatus.PARTLY_MET for a in others)
    assert score == round(100 * (met + partly / 2) / len(others), 1)
    # With no check at all, nothing is assessed and there is no score -- never "passing".
    empty = assess(result, "cis", specs={})
    assert {a.status for a in empty.controls} == {ControlStatus.NOT_ASSESSED}
    assert empty.score() is None


def test_muting_every_failure_of_a_control_makes_it_met_with_the_exceptions_listed(demo_snapshot: Snapshot) -> None:
    cfg = ScanConfig(mutes=[Mute(check="key_rotation_disabled", reason="rotation handled by re-keying (SEC-9)")])
    rep = assess(judge(demo_snapshot, cfg), "fsbp")
    [kms4] = [a for a in rep.controls if a.control.id == "KMS.4"]
    assert kms4.status is ControlStatus.MET
    assert kms4.muted and all(e.finding.mute_reason == "rotation handled by re-keying (SEC-9)" for e in kms4.muted)
    assert "accepted exception" in kms4.reason


def test_checks_framework_lists_the_mapping(demo_result: ScanResult) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["checks", "--framework", "cmmc-l2", "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    ids = [c["id"] for c in doc["controls"]]
    assert ids == [c.id for c in framework_controls("cmmc-l2")]
    by_id = {c["id"]: c for c in doc["controls"]}
    assert "key_rotation_disabled" in by_id["SC.L2-3.13.10"]["checks"]
    specs = load_builtin_checks()
    for c in doc["controls"]:
        # A check is listed under a control exactly when its findings cite that control.
        for cid in c["checks"]:
            assert c["id"] in specs[cid].compliance["cmmc-l2"]
        assert c["assessed"] == bool(c["checks"])
    table = runner.invoke(app, ["checks", "--framework", "cmmc-l2"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "SC.L2-3.13.10" in table.output
    bad = runner.invoke(app, ["checks", "--framework", "sox"])
    assert bad.exit_code == 2


def test_every_check_except_the_scan_error_one_cites_controls() -> None:
    for cid, spec in load_builtin_checks().items():
        if cid == "scan_collection_error":
            continue
        assert spec.compliance.get("nist-800-53"), cid
        assert spec.compliance.get("cmmc-l2") or spec.compliance.get("nist-800-171"), cid
    assert Severity.HIGH.rank > Severity.MEDIUM.rank  # the not-met rule leans on this order


def test_every_offered_fix_command_names_only_options_kmsguard_fix_has(demo_result: ScanResult) -> None:
    # A report once offered `kmsguard fix --resource ARN` (no such option: exit 2) and fix commands for checks no
    # fixer acts on. Every command a report prints must be one `kmsguard fix` accepts.
    help_text = CliRunner().invoke(app, ["fix", "--help"], terminal_width=200).output
    commands = {
        e.fix_command for fw in ALL for a in assess(demo_result, fw).controls for e in a.failing if e.fix_command
    }
    assert commands, "the demo estate has fixable findings"
    for command in commands:
        for option in (t for t in command.split() if t.startswith("--")):
            assert option in help_text, f"{command}: `kmsguard fix` has no {option}"
