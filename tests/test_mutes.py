"""Mutes: which findings they cover, expiry, and MUTED with its reason in every output format."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.mutes import Mute, apply_mutes
from kmsguard.report import render

ACCT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/legacy-0001"
OTHER_KEY = f"arn:aws:kms:eu-west-1:{ACCT}:key/prod-0002"
REASON = "Legacy keys retire in Q3 | SEC-42"


def _f(check: str, status: Status, arn: str = KEY, region: str = "us-east-1") -> Finding:
    return Finding(
        check_id=check,
        status=status,
        severity=Severity.MEDIUM,
        account=ACCT,
        region=region,
        resource_type="AWS::KMS::Key",
        resource_arn=arn,
        message=f"{check} on {arn}",
        remediation="do it",
        compliance={"cmmc-l2": ["SC.L2-3.13.10"]},
    )


def test_a_mute_covers_matching_fails_only() -> None:
    findings = [
        _f("key_rotation_disabled", Status.FAIL),
        _f("key_rotation_disabled", Status.FAIL, OTHER_KEY, "eu-west-1"),
        _f("key_rotation_disabled", Status.ERROR),
        _f("key_no_alias", Status.FAIL),
        _f("key_rotation_disabled", Status.PASS),
    ]
    mute = Mute(check="key_rotation_*", region="us-east-1", resource="arn:aws:kms:*:key/legacy-*", reason=REASON)
    out = apply_mutes(findings, [mute], date(2026, 1, 1))
    statuses = [f.status for f in out.findings]
    assert statuses == [Status.MUTED, Status.FAIL, Status.ERROR, Status.FAIL, Status.PASS]
    assert out.findings[0].mute_reason == REASON and out.muted == 1
    assert not out.warnings


def test_an_expired_mute_stops_muting_and_says_so() -> None:
    mute = Mute(check="key_rotation_disabled", reason=REASON, expires=date(2025, 6, 30))
    still = apply_mutes([_f("key_rotation_disabled", Status.FAIL)], [mute], date(2025, 6, 30))
    assert still.findings[0].status is Status.MUTED  # the expiry day itself is still covered
    out = apply_mutes([_f("key_rotation_disabled", Status.FAIL)], [mute], date(2025, 7, 1))
    [f] = out.findings
    assert f.status is Status.FAIL and f.mute_reason is None
    assert f.evidence["expired_mute"] == {"reason": REASON, "expired": "2025-06-30", "mute": 1}
    [warning] = out.warnings
    assert "expired on 2025-06-30" in warning and "1 finding(s)" in warning


def test_mute_needs_a_reason_and_a_real_account() -> None:
    with pytest.raises(ValueError):
        Mute(check="x", reason="  ")
    with pytest.raises(ValueError):
        Mute(check="x", account="prod", reason="r")


@pytest.fixture
def muted_result() -> ScanResult:
    from datetime import UTC, datetime

    findings = apply_mutes(
        [_f("key_rotation_disabled", Status.FAIL), _f("key_no_alias", Status.FAIL, OTHER_KEY, "eu-west-1")],
        [Mute(check="key_rotation_disabled", reason=REASON)],
        date(2026, 1, 1),
    ).findings
    return ScanResult(
        kmsguard_version="0.1.0",
        scanned_at=datetime(2026, 1, 1, tzinfo=UTC),
        accounts=[ACCT],
        regions=["eu-west-1", "us-east-1"],
        findings=findings,
    )


def test_muted_shows_with_its_reason_in_every_format(muted_result: ScanResult) -> None:
    doc = json.loads(render(muted_result, "json"))
    [m] = [f for f in doc["findings"] if f["status"] == "MUTED"]
    assert m["mute_reason"] == REASON
    sarif = json.loads(render(muted_result, "sarif"))
    [r] = [r for r in sarif["runs"][0]["results"] if "suppressions" in r]
    assert r["suppressions"][0]["justification"] == REASON
    rows = list(csv.DictReader(io.StringIO(render(muted_result, "csv"))))
    assert [(row["status"], row["mute_reason"]) for row in rows if row["mute_reason"]] == [("MUTED", REASON)]
    junit = ET.fromstring(render(muted_result, "junit"))
    [skipped] = junit.iter("skipped")
    assert skipped.get("message") == REASON
    assert "muted: Legacy keys retire in Q3 \\| SEC-42" in render(muted_result, "markdown")
    assert "MUTED 1" in render(muted_result, "table")
    [ev] = [e for e in json.loads(render(muted_result, "ocsf")) if e["status_code"] == "MUTED"]
    assert ev["status_detail"] == f"muted: {REASON}"
    [a] = [a for a in json.loads(render(muted_result, "asff")) if a["Workflow"]["Status"] == "SUPPRESSED"]
    assert a["Note"]["Text"] == f"muted: {REASON}"
    from kmsguard.compliance.assess import assess
    from kmsguard.report.html import render_report_html

    html = render_report_html(assess(muted_result, "cmmc-l2"))
    assert "muted: Legacy keys retire in Q3 | SEC-42" in html
