"""Output formats: each renders a ScanResult to text. ``render(result, fmt)`` is the one entry point.

One module per format, named with its functions in ``registry`` (the one list of formats); none of them judges
(status, severity and messages come from the checks), they only lay the findings out. Every format lists
findings in ``finding_sort_key`` order (worst severity first, then check id, account, region, resource ARN), so
two renders of the same result are byte-for-byte identical.

``STREAMED`` formats are also written by ``write(result, fmt, out)`` as their findings are read, so a scan
whose findings are spooled to disk (``kmsguard.spool``) never holds them whole; the others lay a report out as
a whole and take the findings in memory.

``table`` is not in FORMATS (it is in CHOICES): ``kmsguard scan`` prints it to the terminal with colour through
``report.table.print_table``; ``render(result, "table")`` gives the same table as plain text.
"""

from __future__ import annotations

from typing import TextIO

from kmsguard.model.result import Judged, ScanResult
from kmsguard.report.registry import CHOICES, FORMATS, STREAMED, get, not_streamed


def render(result: ScanResult, fmt: str) -> str:
    """``result`` as text in format ``fmt``; a ValueError names an unknown format."""
    return get(fmt).render(result)


def write(result: Judged, fmt: str, out: TextIO) -> None:
    """``render`` written to ``out`` piece by piece, for a format in STREAMED (a ValueError for any other)."""
    if fmt not in STREAMED:
        raise not_streamed(fmt)
    get(fmt).write(result, out)


__all__ = ["CHOICES", "FORMATS", "STREAMED", "render", "write"]
