from __future__ import annotations

import re

from report_sample import KEY_A, make_result, sample_findings

from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report import render
from kmsguard.report.markdown import code_cell, escape_cell, render_markdown

# A table row's cell separators: pipes not preceded by a backslash.
_SEPARATOR = re.compile(r"(?<!\\)\|")


def _finding_rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("| FAIL") or line.startswith(("| ERROR", "| MUTED"))]


def test_markdown_summary_tables(result: ScanResult) -> None:
    md = render(result, "markdown")
    assert md.startswith("## kmsguard scan\n")
    assert "**5 failing** · 1 passing · 1 could not be judged (ERROR) · 1 muted" in md
    assert "| 🔴 critical | 1 |" in md
    assert "| ⚪ info | 1 |" in md
    # By check: FAIL, ERROR, MUTED, PASS counts per check.
    assert "| `key_rotation_disabled` | medium | 1 | 0 | 1 | 1 |" in md
    assert "| `scan_collection_error` | medium | 0 | 1 | 0 | 0 |" in md


def test_markdown_findings_grouped_by_severity_with_fixed_columns(result: ScanResult) -> None:
    md = render(result, "markdown")
    headings = re.findall(r"^#### \S+ (\w+) \((\d+)\)$", md, flags=re.M)
    assert headings == [("Critical", "1"), ("High", "1"), ("Medium", "3"), ("Low", "1"), ("Info", "1")]
    rows = _finding_rows(md)
    assert len(rows) == 7  # every FAIL, ERROR and MUTED finding; PASS is only counted
    for row in rows:
        # 6 cells -> 7 unescaped pipes, whatever the message contained.
        assert len(_SEPARATOR.findall(row)) == 7, row


def test_markdown_escapes_pipes_newlines_and_markup(result: ScanResult) -> None:
    md = render(result, "markdown")
    (row,) = [r for r in _finding_rows(md) if KEY_A in r]
    assert r"Rotation is off \| enabled=false<br>second line, with a comma — ключ ✓ \[bold\]not markup\[/bold\]" in row
    (muted,) = [r for r in _finding_rows(md) if r.startswith("| MUTED")]
    assert r"*muted: Accepted risk \| ticket SEC-42*" in muted
    assert escape_cell("<img src=x> @team $x$ a\\|b") == r"\<img src=x\> \@team \$x\$ a\\\|b"
    assert code_cell("arn:aws:s3:::a|b") == r"`arn:aws:s3:::a\|b`"
    assert code_cell("odd`name") == r"odd\`name"


def test_markdown_stops_at_the_size_budget_and_says_so() -> None:
    base = next(f for f in sample_findings() if f.status is Status.FAIL)
    many = [base.model_copy(update={"resource_arn": f"{base.resource_arn}-{i:05d}"}) for i in range(2000)]
    md = render_markdown(make_result(many), max_chars=20_000)
    assert len(md) < 21_000
    shown = len(_finding_rows(md))
    assert 0 < shown < 2000
    assert f"*{2000 - shown} more findings not shown here" in md


def test_markdown_with_nothing_to_list() -> None:
    passing = [f for f in sample_findings() if f.status is Status.PASS]
    md = render(make_result(passing), "markdown")
    assert "No failing, erroneous or muted findings." in md
    assert "#### " not in md
