"""The assessor's evidence for the access controls (CMMC AC.L2-3.1.1 / 3.1.5 and their NIST equivalents): who can
decrypt each key, from effective access over the demo estate's snapshot, in the JSON, HTML and Markdown reports;
from the access findings when there is no snapshot; and keys that could not be judged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.checks.access import effective_access
from kmsguard.compliance.assess import ACCESS_CONTROLS, assess
from kmsguard.demo.estate import EstateInfo
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge
from kmsguard.report.framework_report import render_report_json, render_report_markdown
from kmsguard.report.html import render_report_html

MAIN = "123456789012"
DEPLOYER = f"arn:aws:iam::{MAIN}:role/Deployer"
CI_BOT = f"arn:aws:iam::{MAIN}:user/ci-bot"
ANALYTICS = f"arn:aws:iam::{MAIN}:role/AnalyticsJob"


def _doc(result: ScanResult, fw: str, snapshot: Snapshot | None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render_report_json(assess(result, fw, snapshot)))
    return doc


def _keys(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["key"]: k for k in table["keys"]}


@pytest.mark.parametrize("fw", sorted(ACCESS_CONTROLS))
def test_the_access_controls_list_who_can_decrypt_every_key_from_effective_access(
    fw: str, demo_result: ScanResult, demo_snapshot: Snapshot
) -> None:
    doc = _doc(demo_result, fw, demo_snapshot)
    with_table = {c["id"]: c["who_can_decrypt"] for c in doc["controls"] if "who_can_decrypt" in c}
    assert set(with_table) == ACCESS_CONTROLS[fw]
    expected = effective_access(demo_snapshot)
    for table in with_table.values():
        assert table["source"] == "effective access" and table["complete"] is True
        rows = _keys(table)
        assert set(rows) == set(expected)  # every customer managed key the access checks judged
        for arn, access in expected.items():
            assert not isinstance(access, str)
            want = {p.principal: p.decision for p in access.results["kms:Decrypt"]}
            got = {p["principal"]: p["decision"] for p in rows[arn]["principals"]}
            assert got == want
            assert rows[arn]["allowed"] + rows[arn]["conditional"] == len(want)
        assert table["assumptions"]


def test_the_rows_name_the_path_of_each_principal(
    demo_result: ScanResult, demo_snapshot: Snapshot, demo_estate: tuple[EstateInfo, Snapshot]
) -> None:
    info = demo_estate[0]
    doc = _doc(demo_result, "cmmc-l2", demo_snapshot)
    [table] = [c["who_can_decrypt"] for c in doc["controls"] if c["id"] == "AC.L2-3.1.1"]
    rows = _keys(table)
    named = {p["principal"]: p for p in rows[info.keys["access_named_only"]]["principals"]}
    assert set(named) == {DEPLOYER, CI_BOT}
    assert (
        named[DEPLOYER]["via"] == ["key_policy"] and named[DEPLOYER]["path"] == "key_policy (key policy: Sid KeyUsage)"
    )
    assert named[CI_BOT]["via"] == ["assume_role"] and named[CI_BOT]["path"].startswith(
        "assume_role (chain: role/Deployer; trust: role/Deployer; key policy: Sid KeyUsage"
    )
    # The role whose identity policy decrypts every key reaches the standard key through the account delegation.
    analytics = {p["principal"]: p for p in rows[info.keys["standard"]]["principals"]}[ANALYTICS]
    assert "key_policy+iam" in analytics["via"] and "iam: policy/AnalyticsDecryptEverything" in analytics["path"]
    # Controls beyond the access ones carry no table.
    assert all("who_can_decrypt" not in c for c in doc["controls"] if c["id"] not in ACCESS_CONTROLS["cmmc-l2"])


def test_html_shows_the_table_once_and_links_to_it(
    demo_result: ScanResult, demo_snapshot: Snapshot, demo_estate: tuple[EstateInfo, Snapshot]
) -> None:
    info = demo_estate[0]
    html = render_report_html(assess(demo_result, "cmmc-l2", demo_snapshot))
    assert html.count('<div class="who-can-decrypt">') == 1
    section = html.split('id="control-AC.L2-3.1.1"')[1].split("</section>")[0]
    assert "Who can decrypt each key</b> (effective access)" in section
    table = section.split('<div class="who-can-decrypt">')[1]
    row = table.split(info.keys["access_named_only"])[1].split("</tr>")[0]
    assert DEPLOYER in row and CI_BOT in row and "via assume_role" in row and "via key_policy" in row
    assert 'title="assume_role (chain: role/Deployer; trust: role/Deployer; key policy: Sid KeyUsage' in row
    later = html.split('id="control-AC.L2-3.1.5"')[1].split("</section>")[0]
    assert 'Who can decrypt each key</b>: see <a href="#control-AC.L2-3.1.1">' in later
    # A framework without access controls has no table.
    assert "who-can-decrypt" not in render_report_html(assess(demo_result, "cis", demo_snapshot))


def test_markdown_shows_the_table_once(demo_result: ScanResult, demo_snapshot: Snapshot) -> None:
    md = render_report_markdown(assess(demo_result, "nist-800-171", demo_snapshot))
    section = md.split("\n## 3.1.1 ")[1].split("\n## ")[0]
    assert "| Key | Allowed | Conditional | Principals (via) |" in section
    assert f"`{DEPLOYER}` (key\\_policy)" in section and f"`{CI_BOT}` (assume\\_role)" in section
    assert "Who can decrypt each key: see 3.1.1." in md.split("\n## 3.1.5 ")[1].split("\n## ")[0]
    assert md.count("| Key | Allowed | Conditional | Principals (via) |") == 1


def test_without_a_snapshot_the_table_comes_from_the_access_findings_and_says_it_is_incomplete(
    demo_result: ScanResult,
) -> None:
    doc = _doc(demo_result, "cmmc-l2", None)
    [table] = [c["who_can_decrypt"] for c in doc["controls"] if c["id"] == "AC.L2-3.1.5"]
    assert table["source"] == "access findings" and table["complete"] is False
    assert "only the keys and principals that failing (or muted) access findings name" in table["note"]
    failing = [
        f
        for f in demo_result.findings
        if f.check_id in ("key_decrypt_via_broad_iam", "key_decryptable_by_unintended", "role_chain_to_decrypt")
        and f.failing
    ]
    assert failing
    rows = _keys(table)
    assert set(rows) == {f.resource_arn for f in failing}
    for f in failing:
        listed = {p["principal"] for p in rows[f.resource_arn]["principals"]}
        assert {p["principal"] for p in f.evidence["principals"]} <= listed
    html = render_report_html(assess(demo_result, "cmmc-l2"))
    assert "<b>Incomplete:</b>" in html


def test_a_result_without_access_findings_has_no_table(demo_result: ScanResult) -> None:
    others = demo_result.model_copy(
        update={"findings": [f for f in demo_result.findings if not f.check_id.startswith(("key_decrypt", "role_"))]}
    )
    others = others.model_copy(
        update={"findings": [f for f in others.findings if f.check_id != "key_admin_can_grant_itself_use"]}
    )
    doc = _doc(others, "cmmc-l2", None)
    assert all("who_can_decrypt" not in c for c in doc["controls"])


def test_a_key_whose_account_iam_was_not_read_is_listed_as_not_judged(demo_snapshot: Snapshot) -> None:
    accounts = [a.model_copy(update={"iam": None}) if a.account_id == MAIN else a for a in demo_snapshot.accounts]
    snap = demo_snapshot.model_copy(update={"accounts": accounts})
    result = judge(snap, warn=lambda _m: None)
    doc = _doc(result, "cmmc-l2", snap)
    [table] = [c["who_can_decrypt"] for c in doc["controls"] if c["id"] == "AC.L2-3.1.1"]
    main = [k for k in table["keys"] if k["account"] == MAIN]
    assert main and all(k["error"].startswith(f"IAM of account {MAIN} was not read") for k in main)
    assert all(k["principals"] == [] for k in main)
    assert any("error" not in k for k in table["keys"])  # the other account's keys are still judged
    html = render_report_html(assess(result, "cmmc-l2", snap))
    assert f"not judged: IAM of account {MAIN} was not read" in html
