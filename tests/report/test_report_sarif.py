from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_sample import BUCKET, KEY_A, KEY_B, KEY_C, UNKNOWN_CHECK, make_result, sample_findings

from kmsguard.checks.registry import load_builtin_checks
from kmsguard.model.finding import Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.report import render
from kmsguard.report.sarif import FINGERPRINT_KEY, render_sarif

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _sarif(result: ScanResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render(result, "sarif"))
    return doc


def _results_by(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    run = doc["runs"][0]
    return {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]): r for r in run["results"]}


def test_sarif_validates_against_the_2_1_0_schema(result: ScanResult) -> None:
    doc = _sarif(result)
    errors = sorted(_validator().iter_errors(doc), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1


def test_sarif_schema_catches_a_broken_document(result: ScanResult) -> None:
    # Guard against a validator that accepts anything: a wrong level must be rejected.
    doc = _sarif(result)
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert list(_validator().iter_errors(doc))


def test_sarif_driver_and_rules(result: ScanResult) -> None:
    run = _sarif(result)["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kmsguard"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == sorted({f.check_id for f in result.findings})
    specs = load_builtin_checks()
    by_id = {r["id"]: r for r in rules}
    for rule_id in ("key_rotation_disabled", "resource_key_pending_deletion"):
        spec, rule = specs[rule_id], by_id[rule_id]
        assert rule["shortDescription"]["text"] == spec.title
        assert rule["fullDescription"]["text"] == spec.rationale
        assert rule["help"]["text"] == spec.remediation
        assert rule["properties"]["compliance"] == spec.compliance
    assert by_id["resource_key_pending_deletion"]["properties"]["security-severity"] == "9.5"
    assert by_id["key_pending_deletion"]["properties"]["security-severity"] == "8.0"
    assert by_id["key_rotation_disabled"]["properties"]["security-severity"] == "5.5"
    assert by_id["key_no_alias"]["properties"]["security-severity"] == "3.0"
    assert "cis/4.6" in by_id["key_rotation_disabled"]["properties"]["tags"]
    # A check the registry does not know still gets a rule, described from its findings.
    unknown = by_id[UNKNOWN_CHECK]
    assert unknown["shortDescription"]["text"] == UNKNOWN_CHECK
    assert unknown["help"]["text"] == f"Fix {UNKNOWN_CHECK}."
    assert unknown["properties"]["security-severity"] == "0.0"
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]


def test_sarif_levels_kinds_and_what_is_left_out(result: ScanResult) -> None:
    results = _results_by(_sarif(result))
    assert results[("resource_key_pending_deletion", BUCKET)]["level"] == "error"
    assert results[("key_pending_deletion", KEY_C)]["level"] == "error"
    assert results[("key_rotation_disabled", KEY_A)]["level"] == "warning"
    assert results[("key_no_alias", KEY_B)]["level"] == "note"
    assert results[(UNKNOWN_CHECK, "arn:aws:::111122223333:us-east-1")]["level"] == "note"
    assert all(r["kind"] == "fail" for (cid, _), r in results.items() if cid != "scan_collection_error")
    # ERROR: the rule could not be decided -> kind "open", which SARIF requires to have level "none".
    err = results[("scan_collection_error", KEY_B)]
    assert (err["kind"], err["level"]) == ("open", "none")
    # PASS is counted in run.properties, not emitted as a result.
    assert ("key_rotation_disabled", KEY_B) not in results
    assert len(results) == 7


def test_sarif_muted_is_a_suppressed_result(result: ScanResult) -> None:
    muted = _results_by(_sarif(result))[("key_rotation_disabled", KEY_C)]
    assert muted["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "Accepted risk | ticket SEC-42"}
    ]
    assert muted["properties"]["status"] == "MUTED"
    unmuted = _results_by(_sarif(result))[("key_rotation_disabled", KEY_A)]
    assert "suppressions" not in unmuted


def test_sarif_locations_are_logical_resources(result: ScanResult) -> None:
    res = _results_by(_sarif(result))[("key_rotation_disabled", KEY_A)]
    (loc,) = res["locations"]
    assert "physicalLocation" not in loc
    assert loc["logicalLocations"] == [{"fullyQualifiedName": KEY_A, "name": "alias/prod-data", "kind": "resource"}]
    assert res["message"]["text"].startswith("Rotation is off | enabled=false\n")
    assert res["properties"]["evidence"]["rotation"] == {"enabled": False, "period_days": None}


def test_sarif_artifact_uri_adds_a_physical_location_and_stays_valid(result: ScanResult) -> None:
    doc = json.loads(render_sarif(result, artifact_uri="infra/kmsguard.yaml"))
    assert not list(_validator().iter_errors(doc))
    for res in doc["runs"][0]["results"]:
        assert res["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "infra/kmsguard.yaml"}}


def test_sarif_fingerprints_stable_across_runs_and_distinct_per_resource() -> None:
    findings = sample_findings()
    first = _results_by(_sarif(make_result(findings)))
    # A later scan: other time, other order, other message text -- same problems on the same resources.
    later = make_result([f.model_copy(update={"message": f.message + " (again)"}) for f in reversed(findings)])
    later = later.model_copy(update={"scanned_at": later.scanned_at.replace(year=2025)})
    second = _results_by(_sarif(later))
    assert first.keys() == second.keys()
    for key, res in first.items():
        assert res["partialFingerprints"] == second[key]["partialFingerprints"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in first.values()]
    assert len(set(prints)) == len(prints)
    same_check = [first[("key_rotation_disabled", arn)]["partialFingerprints"] for arn in (KEY_A, KEY_C)]
    assert same_check[0] != same_check[1]


@pytest.mark.parametrize("severity", list(Severity))
def test_sarif_rule_rated_by_worst_failing_finding(severity: Severity) -> None:
    findings = [f for f in sample_findings() if f.check_id == "key_no_alias"]
    findings.append(findings[0].model_copy(update={"severity": severity, "resource_arn": KEY_A}))
    rule = _sarif(make_result(findings))["runs"][0]["tool"]["driver"]["rules"][0]
    worst = max(Severity.LOW, severity, key=lambda s: s.rank)
    assert rule["properties"]["severity"] == worst.value


def test_sarif_empty_result_is_valid() -> None:
    doc = _sarif(make_result([]))
    assert not list(_validator().iter_errors(doc))
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["properties"]["summary"]["by_status"][Status.FAIL.value] == 0
