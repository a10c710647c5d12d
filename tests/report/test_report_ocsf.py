from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report import FORMATS, render

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "schemas" / "ocsf-1.1.0-detection_finding.schema.json"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _events(result: ScanResult) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = json.loads(render(result, "ocsf"))
    return doc


def test_ocsf_events_validate_against_the_1_1_0_detection_finding_schema(result: ScanResult) -> None:
    assert "ocsf" in FORMATS
    events = _events(result)
    assert len(events) == len(result.findings)
    for ev in events:
        errors = sorted(_validator().iter_errors(ev), key=str)
        assert not errors, "\n".join(e.message for e in errors[:5])
        assert ev["class_uid"] == 2004 and ev["type_uid"] == 200401 and ev["metadata"]["version"] == "1.1.0"


def test_ocsf_schema_rejects_a_broken_event(result: ScanResult) -> None:
    ev = _events(result)[0]
    ev["severity_id"] = 42
    assert list(_validator().iter_errors(ev))
    ev = _events(result)[0]
    ev["not_an_ocsf_field"] = 1
    assert list(_validator().iter_errors(ev))


def test_ocsf_statuses_severity_and_mutes(result: ScanResult) -> None:
    by_status = {Status(ev["status_code"]): ev for ev in _events(result)}
    assert by_status[Status.FAIL]["status_id"] == 1
    assert by_status[Status.PASS]["status_id"] == 4
    muted = by_status[Status.MUTED]
    assert muted["status_id"] == 3 and muted["status"] == "Suppressed"
    src = next(f for f in result.findings if f.status is Status.MUTED)
    assert muted["status_detail"] == f"muted: {src.mute_reason}"
    assert muted["unmapped"]["mute_reason"] == src.mute_reason
    for ev in _events(result):
        uid, check = ev["resources"][0]["uid"], ev["metadata"]["event_code"]
        f = next(x for x in result.findings if x.resource_arn == uid and x.check_id == check)
        assert ev["severity"].lower().startswith(f.severity.value[:4])
        assert ev["cloud"]["account"]["uid"] == f.account
        assert ev["unmapped"]["compliance"] == f.compliance
