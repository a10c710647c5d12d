"""``--format markdown``: a GitHub-flavoured Markdown report for a PR comment or a job's step summary.

A header line, a summary (failing findings by severity, every check's counts by status), then the FAIL,
ERROR and MUTED findings in tables grouped by severity, worst first. PASS findings are counted, not listed.

Cell text comes from the scanned estate (tag values, descriptions, policy fragments), so it is escaped
rather than trusted: a backslash before every character GFM could act on (``|`` would split the row, ``<``
start HTML, ``@`` mention someone, ``$`` start maths ...), and line breaks become ``<br>``. A GitHub comment
holds 65,536 characters, so rows stop at ``max_chars`` with a note pointing at the full reports.
"""

from __future__ import annotations

import re
from collections import Counter

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.report._common import SEVERITIES_DESC, is_shown, name_list
from kmsguard.report._time import iso_z

MAX_CHARS = 60_000
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~@&$])")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_ICON = {
    Severity.CRITICAL: "🔴",
    Severity.HIGH: "🟠",
    Severity.MEDIUM: "🟡",
    Severity.LOW: "🔵",
    Severity.INFO: "⚪",
}
_STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.MUTED, Status.PASS)
_ROW_HEADER = "| Status | Check | Resource | Account | Region | Message |\n| --- | --- | --- | --- | --- | --- |\n"


def escape_cell(text: str) -> str:
    """Text safe inside a GFM table cell: shown literally, on one row."""
    return _NEWLINES.sub("<br>", _SPECIAL.sub(r"\\\1", text.strip()))


def code_cell(text: str) -> str:
    """An identifier (check id, ARN) as inline code when it can be; escaped text otherwise."""
    if "`" in text or "\n" in text or "\r" in text or not text:
        return escape_cell(text)
    # Inside a table even a code span needs its pipes escaped: GFM splits the row before parsing spans.
    return "`" + text.replace("|", "\\|") + "`"


def _row(f: Finding) -> str:
    message = escape_cell(f.message)
    if f.status is Status.MUTED:
        message += f"<br>*muted: {escape_cell(f.mute_reason or 'no reason given')}*"
    return (
        f"| {f.status.value} | {code_cell(f.check_id)} | {code_cell(f.resource_arn)} | {escape_cell(f.account)} "
        f"| {escape_cell(f.region)} | {message} |\n"
    )


def _summary(result: ScanResult) -> list[str]:
    summary = result.summary()
    by_status = summary["by_status"]
    out = [
        "## kmsguard scan\n\n",
        f"Scanned {iso_z(result.scanned_at, seconds=True)} · kmsguard {escape_cell(result.kmsguard_version)} · "
        f"{len(result.accounts)} account(s): {escape_cell(name_list(result.accounts))} · "
        f"{len(result.regions)} region(s): {escape_cell(name_list(result.regions))}\n\n",
        f"**{by_status['FAIL']} failing** · {by_status['PASS']} passing · {by_status['ERROR']} could not be judged "
        f"(ERROR) · {by_status['MUTED']} muted\n\n",
        "### Failing findings by severity\n\n| Severity | Failing |\n| --- | ---: |\n",
    ]
    for sev in SEVERITIES_DESC:
        out.append(f"| {_ICON[sev]} {sev.value} | {summary['failing_by_severity'][sev.value]} |\n")
    counts: dict[str, Counter[Status]] = {}
    worst: dict[str, Severity] = {}
    for f in result.findings:
        counts.setdefault(f.check_id, Counter())[f.status] += 1
        if f.status is not Status.PASS and (f.check_id not in worst or f.severity.rank > worst[f.check_id].rank):
            worst[f.check_id] = f.severity
    if counts:
        out.append("\n### By check\n\n| Check | Worst severity | FAIL | ERROR | MUTED | PASS |\n")
        out.append("| --- | --- | ---: | ---: | ---: | ---: |\n")
        for check_id in sorted(counts):
            c = counts[check_id]
            worst_label = worst[check_id].value if check_id in worst else "—"
            cells = " | ".join(str(c[s]) for s in _STATUS_ORDER)
            out.append(f"| {code_cell(check_id)} | {worst_label} | {cells} |\n")
    return out


def render_markdown(result: ScanResult, max_chars: int = MAX_CHARS) -> str:
    parts = _summary(result)
    size = sum(len(p) for p in parts)
    groups: dict[Severity, list[Finding]] = {}
    for f in result.sorted_findings():
        if is_shown(f):
            groups.setdefault(f.severity, []).append(f)
    shown_total = sum(len(g) for g in groups.values())
    if not shown_total:
        parts.append("\nNo failing, erroneous or muted findings.\n")
        return "".join(parts)
    parts.append("\n### Findings\n")
    written = 0
    for sev in SEVERITIES_DESC:
        rows = groups.get(sev)
        if not rows:
            continue
        head = f"\n#### {_ICON[sev]} {sev.value.capitalize()} ({len(rows)})\n\n{_ROW_HEADER}"
        first = _row(rows[0])
        if size + len(head) + len(first) > max_chars:
            break
        parts.append(head)
        size += len(head)
        for f in rows:
            row = first if f is rows[0] else _row(f)
            if size + len(row) > max_chars:
                break
            parts.append(row)
            size += len(row)
            written += 1
        else:
            continue
        break
    if written < shown_total:
        parts.append(
            f"\n*{shown_total - written} more findings not shown here (size limit); "
            "see the JSON, SARIF or CSV report for all of them.*\n"
        )
    return "".join(parts)
