from __future__ import annotations

from report_sample import MSG_PIPES

from kmsguard.compliance.assess import assess
from kmsguard.model.result import ScanResult
from kmsguard.report.framework_report import render_report_markdown
from kmsguard.report.html import render_report_html


def test_html_escapes_estate_text_and_shows_mutes(result: ScanResult) -> None:
    html = render_report_html(assess(result, "cmmc-l2"))
    assert "[bold]not markup[/bold]" in html  # text as typed
    assert "<bold>" not in html
    assert MSG_PIPES.split("\n")[0].replace('"', "&quot;") in html or "Rotation is off | enabled=false" in html
    for f in result.findings:
        if f.mute_reason and "SC.L2-3.13.10" in f.compliance.get("cmmc-l2", []):
            assert "muted:" in html


def test_markdown_report_lists_muted_with_reason(result: ScanResult) -> None:
    md = render_report_markdown(assess(result, "cmmc-l2"))
    muted = [f for f in result.findings if f.mute_reason]
    assert muted
    assert "Accepted exceptions (MUTED)" in md
