from __future__ import annotations

import json

import pytest
from report_sample import KEY_A, KEY_B, make_result, sample_findings

from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report import FORMATS, render

TOP_KEYS = ["kmsguard_version", "scanned_at", "accounts", "regions", "summary", "findings"]
FINDING_KEYS = [
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
]


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == ["json", "sarif", "csv", "junit", "markdown", "ocsf", "asff"]


def test_unknown_format_is_a_value_error_naming_it(result: ScanResult) -> None:
    with pytest.raises(ValueError, match="'yaml'"):
        render(result, "yaml")


def test_json_contract_keys_and_order(result: ScanResult) -> None:
    doc = json.loads(render(result, "json"))
    assert list(doc) == TOP_KEYS
    assert doc["kmsguard_version"] == "0.1.0"
    assert doc["scanned_at"] == "2024-05-01T12:00:00+00:00"
    assert doc["accounts"] == ["111122223333", "444455556666"]
    for f in doc["findings"]:
        expected = [*FINDING_KEYS, "mute_reason"] if f["status"] == "MUTED" else FINDING_KEYS
        assert list(f) == expected
    assert doc["summary"]["by_status"] == {"FAIL": 5, "PASS": 1, "ERROR": 1, "MUTED": 1}
    assert doc["summary"]["failing_by_severity"] == {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1}


def test_json_findings_sorted_by_severity_then_check_then_resource(result: ScanResult) -> None:
    findings = json.loads(render(result, "json"))["findings"]
    assert [f["severity"] for f in findings] == [
        "critical",
        "high",
        "medium",
        "medium",
        "medium",
        "medium",
        "low",
        "info",
    ]
    mediums = [(f["check_id"], f["account"], f["resource_arn"]) for f in findings if f["severity"] == "medium"]
    assert mediums == sorted(mediums)
    assert mediums[0] == ("key_rotation_disabled", "111122223333", KEY_A)
    assert ("key_rotation_disabled", "111122223333", KEY_B) in mediums


def test_json_is_deterministic_whatever_the_input_order() -> None:
    findings = sample_findings()
    forward = render(make_result(findings), "json")
    assert render(make_result(list(reversed(findings))), "json") == forward


def test_json_keeps_nested_evidence_and_text_exactly(result: ScanResult) -> None:
    doc = json.loads(render(result, "json"))
    by_check = {(f["check_id"], f["status"]): f for f in doc["findings"]}
    rot = by_check[("key_rotation_disabled", "FAIL")]
    assert rot["evidence"]["rotation"] == {"enabled": False, "period_days": None}
    assert rot["message"].startswith("Rotation is off | enabled=false\nsecond line")
    assert "ключ ✓" in rot["message"]
    assert by_check[("key_rotation_disabled", "MUTED")]["mute_reason"] == "Accepted risk | ticket SEC-42"
    assert by_check[("scan_collection_error", "ERROR")]["status"] == Status.ERROR.value


def test_json_text_is_exactly_to_json_dict(result: ScanResult) -> None:
    # The hand-laid-out encoder must not change a value: parse back and compare with the contract dict.
    text = render(result, "json")
    assert json.loads(text) == result.to_json_dict()
    assert text.endswith("}\n")
    # One finding per line: the findings array has exactly one line per finding.
    lines = text.splitlines()
    start = lines.index('  "findings": [')
    assert all(line.startswith('    {"check_id":') for line in lines[start + 1 : start + 1 + len(result.findings)])


def test_json_of_an_empty_scan() -> None:
    doc = json.loads(render(make_result([]), "json"))
    assert doc["findings"] == []
    assert doc["summary"]["total"] == 0
