from __future__ import annotations

import csv
import io
import json

from report_sample import KEY_A, KEY_C, MSG_AT, MSG_FORMULA, MSG_MINUS, MSG_PIPES, MSG_QUOTES

from kmsguard.model.result import ScanResult
from kmsguard.report import render
from kmsguard.report.csv_out import COLUMNS, defuse


def _rows(result: ScanResult) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render(result, "csv"), newline="")))


def test_csv_header_in_json_order_and_one_row_per_finding(result: ScanResult) -> None:
    text = render(result, "csv")
    header = next(csv.reader(io.StringIO(text)))
    assert header == COLUMNS
    assert header[:11] == list(json.loads(render(result, "json"))["findings"][0])
    rows = _rows(result)
    assert len(rows) == len(result.findings)
    json_order = [(f["check_id"], f["resource_arn"]) for f in json.loads(render(result, "json"))["findings"]]
    assert [(r["check_id"], r["resource_arn"]) for r in rows] == json_order


def test_csv_round_trips_quotes_commas_newlines_unicode(result: ScanResult) -> None:
    rows = {(r["check_id"], r["resource_arn"]): r for r in _rows(result)}
    assert rows[("key_rotation_disabled", KEY_A)]["message"] == MSG_PIPES
    assert rows[("resource_key_pending_deletion", "arn:aws:s3:::payroll-exports")]["message"] == MSG_QUOTES
    evidence = json.loads(rows[("key_rotation_disabled", KEY_A)]["evidence"])
    assert evidence == {"alias": "alias/prod-data", "rotation": {"enabled": False, "period_days": None}, "n": [1, 2]}
    assert "\n" not in rows[("key_rotation_disabled", KEY_A)]["evidence"]  # compact: one line
    assert json.loads(rows[("key_rotation_disabled", KEY_A)]["compliance"]) == {
        "cmmc-l2": ["SC.L2-3.13.10"],
        "nist-800-171": ["3.13.10"],
    }
    assert rows[("key_rotation_disabled", KEY_C)]["mute_reason"] == "Accepted risk | ticket SEC-42"
    assert rows[("key_rotation_disabled", KEY_A)]["mute_reason"] == ""


def test_csv_defuses_formula_cells(result: ScanResult) -> None:
    by_msg = {r["message"] for r in _rows(result)}
    for original in (MSG_FORMULA, MSG_AT, MSG_MINUS):
        assert "'" + original in by_msg
        assert original not in by_msg
    # Nothing that a spreadsheet would evaluate survives anywhere in the file.
    for row in _rows(result):
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_defuse_leaves_ordinary_text_alone() -> None:
    assert defuse("Rotation is off") == "Rotation is off"
    assert defuse("") == ""
    assert defuse("+44 20") == "'+44 20"
    assert defuse("\tx") == "'\tx"
