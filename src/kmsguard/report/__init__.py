"""Output formats: each renders a ScanResult to text. ``render(result, fmt)`` is the one entry point.

One module per format; none of them judges (status, severity and messages come from the checks), they only
lay the findings out. Every format lists findings in ``finding_sort_key`` order (worst severity first, then
check id, account, region, resource ARN), so two renders of the same result are byte-for-byte identical.

``STREAMED`` formats are also written by ``write(result, fmt, out)`` as their findings are read, so a scan
whose findings are spooled to disk (``kmsguard.spool``) never holds them whole; the others lay a report out as
a whole and take the findings in memory.

``table`` is not in FORMATS: ``kmsguard scan`` prints it to the terminal with colour through
``report.table.print_table``; ``render(result, "table")`` gives the same table as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from kmsguard.model.result import Judged, ScanResult

FORMATS = ["json", "sarif", "csv", "junit", "markdown", "ocsf", "asff"]
STREAMED = frozenset({"json", "sarif", "csv"})


def _renderer(fmt: str) -> Callable[[ScanResult], str]:
    # Imported on demand: `kmsguard scan -f json` should not pay for rich tables or the check registry.
    if fmt == "json":
        from kmsguard.report.json_out import render_json

        return render_json
    if fmt == "sarif":
        from kmsguard.report.sarif import render_sarif

        return render_sarif
    if fmt == "csv":
        from kmsguard.report.csv_out import render_csv

        return render_csv
    if fmt == "junit":
        from kmsguard.report.junit import render_junit

        return render_junit
    if fmt == "markdown":
        from kmsguard.report.markdown import render_markdown

        return render_markdown
    if fmt == "ocsf":
        from kmsguard.report.ocsf import render_ocsf

        return render_ocsf
    if fmt == "asff":
        from kmsguard.report.asff import render_asff

        return render_asff
    if fmt == "table":
        from kmsguard.report.table import render_table

        return render_table
    raise ValueError(f"unknown format {fmt!r} (one of table, {', '.join(FORMATS)})")


def render(result: ScanResult, fmt: str) -> str:
    """``result`` as text in format ``fmt``; a ValueError names an unknown format."""
    return _renderer(fmt)(result)


def write(result: Judged, fmt: str, out: TextIO) -> None:
    """``render`` written to ``out`` piece by piece, for a format in STREAMED (a ValueError for any other)."""
    if fmt == "json":
        from kmsguard.report.json_out import write_json

        write_json(result, out)
    elif fmt == "sarif":
        from kmsguard.report.sarif import write_sarif

        write_sarif(result, out)
    elif fmt == "csv":
        from kmsguard.report.csv_out import write_csv

        write_csv(result, out)
    else:
        raise ValueError(f"format {fmt!r} is not written as a stream (one of {', '.join(sorted(STREAMED))})")


__all__ = ["FORMATS", "STREAMED", "render", "write"]
