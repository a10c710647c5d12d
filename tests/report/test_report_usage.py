"""The CloudTrail usage summary in the outputs: the scan JSON (round trip, with and without it), the other
formats (which ignore it), and the HTML report's "Key usage (CloudTrail)" section.

The usage comes from a real analysis (DuckDB over the cache) of synthetic logs naming the sample's keys."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from report_sample import ACCT, KEY_A, KEY_B, make_result, sample_findings

from kmsguard.cli.fix import load_report_findings
from kmsguard.compliance.assess import assess
from kmsguard.model.result import ScanResult
from kmsguard.model.usage import TrailUsage
from kmsguard.report import FORMATS, render
from kmsguard.report.framework_report import render_report_json
from kmsguard.report.html import render_report_html
from kmsguard.trail.analyze import TrailOptions, analyze
from kmsguard.trail.synth import event, write_trail_files
from kmsguard.trail.usage import summarise

T0 = datetime(2024, 4, 20, tzinfo=UTC)
APP = f"arn:aws:sts::{ACCT}:assumed-role/app/s1"
HOSTILE = f"arn:aws:iam::{ACCT}:user/<script>alert(1)</script>"  # a forged log is text like any other
# Key references as logged that spell the JSON renderer's placeholders (a failed call names any key id).
SPELLS_FINDINGS = "__kmsguard_findings__"
SPELLS_USAGE = "__kmsguard_trail_usage__"


def _records() -> list[dict]:
    out = [event("Decrypt", KEY_A, APP, T0 + timedelta(hours=h)) for h in range(0, 24 * 10, 2)]
    out += [event("Encrypt", KEY_B, HOSTILE, T0 + timedelta(days=3, minutes=m)) for m in range(4)]
    out += [
        event(
            "Encrypt", ref, HOSTILE, T0 + timedelta(days=9, seconds=10 * i), error="AccessDenied", with_resources=False
        )
        for ref in (SPELLS_FINDINGS, SPELLS_USAGE)
        for i in range(8)  # a failure burst: a finding whose resource is the ref
    ]
    return out


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrailUsage, list]:
    root = tmp_path_factory.mktemp("logs")
    write_trail_files(root, _records())
    report = analyze([str(root)], None, TrailOptions(cache_dir=root / ".cache", workers=1))
    return summarise(report), report.findings


@pytest.fixture
def with_usage(trail: tuple[TrailUsage, list]) -> ScanResult:
    usage, findings = trail
    result = make_result(sample_findings() + findings)
    result.trail_usage = usage
    return result


def test_json_round_trips_with_the_usage(with_usage: ScanResult) -> None:
    text = render(with_usage, "json")
    doc = json.loads(text)
    assert list(doc) == ["kmsguard_version", "scanned_at", "accounts", "regions", "summary", "findings", "trail_usage"]
    assert doc == with_usage.to_json_dict()  # the fast renderer and the documented contract agree
    back = ScanResult.model_validate({k: v for k, v in doc.items() if k != "summary"})
    assert back == with_usage.model_copy(update={"findings": with_usage.sorted_findings()})
    assert back.trail_usage is not None and back.trail_usage.top_keys[0].key_arn == KEY_A
    # Lists one entry a line, the day axis on one line: the file diffs entry by entry.
    assert '"days": ["2024-04-20", ' in text
    assert text.count(KEY_A) >= 2 and f'{{"key_arn": "{KEY_A}"' in text


def test_placeholders_spelled_by_the_logs_stay_text(with_usage: ScanResult) -> None:
    doc = json.loads(render(with_usage, "json"))
    refs = {k["key_arn"] for k in doc["trail_usage"]["top_keys"]}
    assert {SPELLS_FINDINGS, SPELLS_USAGE} <= refs
    bursts = {f["resource_arn"] for f in doc["findings"] if f["check_id"] == "trail_decrypt_failure_burst"}
    assert bursts == {SPELLS_FINDINGS, SPELLS_USAGE}
    assert len(doc["findings"]) == len(with_usage.findings)


def test_json_without_usage_is_the_old_contract_and_old_files_load() -> None:
    result = make_result(sample_findings())
    doc = json.loads(render(result, "json"))
    assert "trail_usage" not in doc
    back = ScanResult.model_validate({k: v for k, v in doc.items() if k != "summary"})
    assert back.trail_usage is None and back.findings == result.sorted_findings()


def test_a_report_with_usage_still_feeds_fix(with_usage: ScanResult, tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    path.write_text(render(with_usage, "json"))
    assert load_report_findings(path) == with_usage.sorted_findings()


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "json"])
def test_other_formats_ignore_the_usage(with_usage: ScanResult, fmt: str) -> None:
    plain = with_usage.model_copy(update={"trail_usage": None})
    assert render(with_usage, fmt) == render(plain, fmt)


def test_html_report_has_the_usage_section(with_usage: ScanResult) -> None:
    html = render_report_html(assess(with_usage, "cmmc-l2"))
    section = html[html.index('id="trail-usage"') : html.index("<h2>Evidence per control")]
    assert "<h2>Key usage (CloudTrail)</h2>" in section
    # Three charts: calls per day (one strip per key), top keys, top principals; all inline SVG.
    assert section.count("<svg") == 3 and html.count("<svg") == 4 + 3
    strips = re.search(r'<svg[^>]*class="chart usage".*?</svg>', section, re.S)
    assert strips is not None
    assert "key/1111aaaa…0001 us-east-1" in strips.group(0)
    assert "12 calls on 2024-04-20" in strips.group(0)  # one Decrypt every two hours
    assert KEY_A in section and "user/&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<script" not in html.lower() and not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)


def test_html_report_without_usage_has_no_section() -> None:
    html = render_report_html(assess(make_result(sample_findings()), "cmmc-l2"))
    assert "Key usage (CloudTrail)" not in html and html.count("<svg") == 4


def test_html_report_with_no_kms_events(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    report = analyze([str(tmp_path / "logs")], None, TrailOptions(cache_dir=tmp_path / "c", workers=1))
    result = make_result(sample_findings())
    result.trail_usage = summarise(report)
    html = render_report_html(assess(result, "cmmc-l2"))
    assert "Key usage (CloudTrail)" in html and "No KMS events in the analysed logs." in html
    assert html.count("<svg") == 4


def test_framework_json_report_carries_the_usage(with_usage: ScanResult) -> None:
    doc = json.loads(render_report_json(assess(with_usage, "pci-dss")))
    assert TrailUsage.model_validate(doc["trail_usage"]) == with_usage.trail_usage
    assert "trail_usage" not in json.loads(render_report_json(assess(make_result(sample_findings()), "pci-dss")))
