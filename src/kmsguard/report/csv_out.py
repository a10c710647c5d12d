"""``--format csv``: one row per finding, for spreadsheets and data tools.

Columns are the JSON contract's finding keys in the same order, then ``mute_reason`` (empty unless MUTED).
``evidence`` and ``compliance`` are compact JSON strings (sorted keys). Quoting is the ``csv`` module's
(RFC 4180 style: fields with commas, quotes or newlines are quoted, quotes doubled), rows in the JSON order.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some,
a tab or carriage return) as a formula, and messages carry text from the scanned estate -- tag values,
descriptions, policy fragments -- that someone else controls. Such a cell is written with a leading single
quote (``'=HYPERLINK(...)``), which spreadsheets show as text. A program reading the CSV sees that quote:
strip one leading ``'`` from a cell whose next character is one of those to get the original value back.
"""

from __future__ import annotations

import csv
import io
from typing import TextIO

from kmsguard.model.finding import Finding
from kmsguard.model.result import Judged
from kmsguard.report._common import compact_json

COLUMNS = [
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
    "mute_reason",
]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def defuse(cell: str) -> str:
    """Make a cell that a spreadsheet would evaluate display as text instead."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _row(f: Finding) -> list[str]:
    cells = [
        f.check_id,
        f.status.value,
        f.severity.value,
        f.account,
        f.region,
        f.resource_type,
        f.resource_arn,
        f.message,
        compact_json(f.evidence),
        f.remediation,
        compact_json(f.compliance),
        f.mute_reason or "",
    ]
    return [defuse(c) for c in cells]


def render_csv(result: Judged) -> str:
    buf = io.StringIO()
    write_csv(result, buf)
    return buf.getvalue()


def write_csv(result: Judged, out: TextIO) -> None:
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(_row(f) for f in result.iter_sorted())
