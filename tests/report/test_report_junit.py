from __future__ import annotations

import xml.etree.ElementTree as ET

from report_sample import BUCKET, KEY_A, KEY_B, KEY_C, UNKNOWN_CHECK, make_result, sample_findings

from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report import render


def _parse(result: ScanResult) -> ET.Element:
    return ET.fromstring(render(result, "junit").encode("utf-8"))


def _suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.iter("testsuite")}


def _cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in suite.iter("testcase")}


def test_junit_one_suite_per_check_one_case_per_resource(result: ScanResult) -> None:
    root = _parse(result)
    assert root.tag == "testsuites"
    suites = _suites(root)
    assert list(suites) == sorted({f.check_id for f in result.findings})
    rotation = _cases(suites["key_rotation_disabled"])
    assert set(rotation) == {KEY_A, KEY_B, KEY_C}
    assert {c.get("classname") for c in rotation.values()} == {"key_rotation_disabled"}


def test_junit_outcomes(result: ScanResult) -> None:
    suites = _suites(_parse(result))
    rotation = _cases(suites["key_rotation_disabled"])
    failure = rotation[KEY_A].find("failure")
    assert failure is not None
    assert failure.get("type") == "medium"
    assert failure.get("message", "").startswith("Rotation is off | enabled=false\nsecond line")
    assert '"period_days":null' in (failure.text or "")  # evidence in the body
    assert "remediation: Fix key_rotation_disabled." in (failure.text or "")
    assert list(rotation[KEY_B]) == []  # PASS: a plain testcase
    skipped = rotation[KEY_C].find("skipped")
    assert skipped is not None and skipped.get("message") == "Accepted risk | ticket SEC-42"
    error = _cases(suites["scan_collection_error"])[KEY_B].find("error")
    assert error is not None and "AccessDeniedException" in error.get("message", "")
    crit = _cases(suites["resource_key_pending_deletion"])[BUCKET].find("failure")
    assert crit is not None and crit.get("type") == "critical"
    assert crit.get("message", "").startswith('Bucket "payroll-exports"')
    assert _cases(suites[UNKNOWN_CHECK])["arn:aws:::111122223333:us-east-1"].find("failure") is not None


def test_junit_counts_match_the_testcases(result: ScanResult) -> None:
    root = _parse(result)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        counted = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": sum(c.find("error") is not None for c in cases),
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        assert {k: int(suite.get(k, "-1")) for k in counted} == counted
        for k, v in counted.items():
            totals[k] += v
    assert {k: int(root.get(k, "-1")) for k in totals} == totals
    assert totals == {"tests": 8, "failures": 5, "errors": 1, "skipped": 1}


def test_junit_several_findings_on_one_resource_share_a_testcase() -> None:
    base = next(f for f in sample_findings() if f.status is Status.ERROR)
    second = base.model_copy(update={"message": "could not read grants: kms:ListGrants failed"})
    root = _parse(make_result([base, second]))
    (case,) = root.iter("testcase")
    error = case.find("error")
    assert error is not None
    assert error.get("message", "").endswith("(and 1 more)")
    assert "kms:ListGrants" in (error.text or "") and "GetKeyPolicy" in (error.text or "")
    assert root.get("errors") == "1" and root.get("tests") == "1"


def test_junit_control_characters_do_not_break_the_xml() -> None:
    base = sample_findings()[0]
    nasty = base.model_copy(update={"message": "tag value \x1b[31mred\x00 end", "mute_reason": None})
    root = _parse(make_result([nasty]))  # would raise on an invalid character
    failure = next(root.iter("failure"))
    assert failure.get("message") == "tag value \\x1b[31mred\\x00 end"
