from __future__ import annotations

from io import StringIO

import pytest
from report_sample import make_result, sample_findings
from rich.console import Console

from kmsguard.model.finding import Status
from kmsguard.model.result import ScanResult
from kmsguard.report import render
from kmsguard.report.table import print_table


def _render(result: ScanResult, width: int = 80) -> str:
    console = Console(record=True, width=width, file=StringIO())
    print_table(result, console)
    return console.export_text()


def test_table_lists_fail_and_error_and_summarises(result: ScanResult) -> None:
    text = _render(result)
    for shown in ("resource_key_pending_deletion", "key_pending_deletion", "scan_collection_error", "key_no_alias"):
        assert shown in text
    assert "alias/prod-data" in text  # a key is named by its alias
    assert "payroll-exports" in text  # the resource part of an ARN, not the whole ARN
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "custom_future_check" in line)
    # An account/region finding is named by where it is, not by its pseudo-ARN.
    assert "account 111122223333 · us-east-1" in lines[at + 1]
    assert "arn:aws:::" not in text
    assert "Rotation is enabled" not in text  # PASS is counted, not listed
    # A muted finding is listed with its reason: an accepted risk must not read as a fixed one.
    muted_at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("MUTED"))
    assert "muted: Accepted risk | ticket SEC-42" in " ".join(x.strip() for x in lines[muted_at : muted_at + 6])
    assert "[bold]not markup[/bold]" in text  # user text is not rich markup
    assert "FAIL 5" in text and "ERROR 1" in text and "MUTED 1" in text and "PASS 1" in text
    assert "critical 1" in text and "info 1" in text
    assert "--format json shows every finding" in text
    assert "444455556666" in text and "eu-west-1" in text


def test_wide_table_has_columns_and_sorts_by_severity(result: ScanResult) -> None:
    text = _render(result, width=160)
    header = text.splitlines()[0].split()
    assert header == ["Status", "Severity", "Check", "Resource", "Account", "Region", "Message"]
    assert "account 111122223333" in text  # the account/region pseudo-ARN
    order = [text.index(cid) for cid in ("resource_key_pending_deletion", "key_pending_deletion ", "key_no_alias")]
    assert order == sorted(order)


@pytest.mark.parametrize("width", [40, 80, 160])
def test_table_fits_the_terminal(result: ScanResult, width: int) -> None:
    text = _render(result, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "FAIL" in text and "critical" in text


def test_table_no_color_emits_no_escape_codes(result: ScanResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    buf = StringIO()
    print_table(result, Console(file=buf, width=100, force_terminal=True))
    assert "\x1b[3" not in buf.getvalue()  # no foreground colour codes
    assert "FAIL" in buf.getvalue()
    colored = StringIO()
    monkeypatch.delenv("NO_COLOR")
    print_table(result, Console(file=colored, width=100, force_terminal=True, color_system="standard"))
    assert "\x1b[" in colored.getvalue()  # the same console without NO_COLOR does colour


def test_table_caps_rows_and_says_how_many() -> None:
    base = next(f for f in sample_findings() if f.status is Status.FAIL)
    many = [base.model_copy(update={"resource_arn": f"{base.resource_arn}-{i}"}) for i in range(30)]
    console = Console(record=True, width=120, file=StringIO())
    print_table(make_result(many), console, max_rows=10)
    text = console.export_text()
    assert "Showing the first 10 of 30" in text


def test_table_with_nothing_failing_and_plain_render() -> None:
    passing = make_result([f for f in sample_findings() if f.status is Status.PASS])
    text = render(passing, "table")
    assert "No failing or errored findings." in text
    assert "PASS 1" in text
    assert "\x1b" not in text
