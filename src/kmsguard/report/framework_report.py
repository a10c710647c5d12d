"""`kmsguard report --framework ...`: a FrameworkReport as JSON, CSV or Markdown (HTML and PDF: html.py, pdf.py).

- **json**: the whole report -- framework, scan, summary (score, counts, chart data) and per control its
  status, reason, checks, and every finding behind it with its evidence, facts and `kmsguard fix` command;
  `trail_usage` (the scan's ``TrailUsage``) when the scan analysed CloudTrail logs (`report --trail`).
- **csv**: one row per control and finding (a control with no finding gets one row), so a spreadsheet can
  filter by control, status, account or resource; cells defused against formula injection as in csv_out.
- **markdown**: summary tables, then one section per control: status, checks, what is wrong (each failing
  resource with its fix command), accepted exceptions, and how many subjects pass.

The access controls (``assess.ACCESS_CONTROLS``: CMMC AC.L2-3.1.1 / 3.1.5 and their NIST equivalents) carry
``who_can_decrypt`` in JSON (every key: allowed and conditional counts, each principal with its decision, the
kinds of path and the first path in words; ``source`` and ``complete`` say where it comes from) and a compact
table in Markdown (the first control that has it; the others point to it).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from kmsguard.compliance.assess import ControlAssessment, DecryptAccess, Evidence, FrameworkReport
from kmsguard.report._common import compact_json, dumps_pretty, short_resource
from kmsguard.report._time import iso_z
from kmsguard.report.csv_out import defuse
from kmsguard.report.markdown import code_cell, escape_cell

REPORT_FORMATS = ["html", "markdown", "csv", "json", "pdf"]


def _evidence_dict(e: Evidence) -> dict[str, Any]:
    f = e.finding
    out: dict[str, Any] = {
        "check_id": f.check_id,
        "status": f.status.value,
        "severity": f.severity.value,
        "account": f.account,
        "region": f.region,
        "resource_type": f.resource_type,
        "resource_arn": f.resource_arn,
        "message": f.message,
        "evidence": f.evidence,
    }
    if e.facts:
        out["facts"] = e.facts
    if f.status.value in ("FAIL", "MUTED"):
        out["fix_command"] = e.fix_command
    if f.mute_reason:
        out["mute_reason"] = f.mute_reason
    return out


def summary_dict(rep: FrameworkReport) -> dict[str, Any]:
    return {
        "score": rep.score(),
        "controls": len(rep.controls),
        "controls_by_status": rep.counts(),
        "failing_by_severity": rep.failing_by_severity(),
        "by_family": rep.by_family(),
        "by_account_region": rep.by_account_region(),
    }


def report_dict(rep: FrameworkReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "framework": {"id": rep.framework, "name": rep.name, "version": rep.version},
        "kmsguard_version": rep.kmsguard_version,
        "scanned_at": iso_z(rep.scanned_at),
        "accounts": rep.accounts,
        "regions": rep.regions,
        "summary": summary_dict(rep),
        "controls": [_control_dict(a) for a in rep.controls],
    }
    if rep.trail_usage is not None:
        out["trail_usage"] = rep.trail_usage.model_dump(mode="json")
    return out


def _control_dict(a: ControlAssessment) -> dict[str, Any]:
    out = {
        "id": a.control.id,
        "title": a.control.title,
        "family": a.family,
        "status": a.status.value,
        "reason": a.reason,
        "checks": a.checks,
        "findings_by_status": a.counts,
        "remediation": a.remediation,
        "failing": [_evidence_dict(e) for e in a.failing],
        "muted": [_evidence_dict(e) for e in a.muted],
        "errors": [_evidence_dict(e) for e in a.errors],
        "passing": [_evidence_dict(e) for e in a.passing],
    }
    if a.who_can_decrypt is not None:
        out["who_can_decrypt"] = a.who_can_decrypt.to_dict()
    return out


def render_report_json(rep: FrameworkReport) -> str:
    return dumps_pretty(
        report_dict(rep), inline_depth=4, one_per_line=frozenset({"failing", "muted", "passing", "keys"})
    )


CSV_COLUMNS = [
    "framework",
    "control_id",
    "control_title",
    "family",
    "control_status",
    "check_id",
    "finding_status",
    "severity",
    "account",
    "region",
    "resource_arn",
    "message",
    "evidence",
    "fix_command",
    "mute_reason",
    "scanned_at",
]


def render_report_csv(rep: FrameworkReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    scanned = iso_z(rep.scanned_at)
    for a in rep.controls:
        head = [rep.framework, a.control.id, a.control.title, a.family, a.status.value]
        rows = [*a.failing, *a.muted, *a.errors, *a.passing]
        if not rows:
            w.writerow(
                [defuse(c) for c in [*head, ", ".join(a.checks), "", "", "", "", "", a.reason, "", "", ""]] + [scanned]
            )
            continue
        for e in rows:
            f = e.finding
            fix = e.fix_command if f.status.value in ("FAIL", "MUTED") else ""
            cells = [
                *head,
                f.check_id,
                f.status.value,
                f.severity.value,
                f.account,
                f.region,
                f.resource_arn,
                f.message,
                compact_json({**f.evidence, **({"facts": e.facts} if e.facts else {})}),
                fix,
                f.mute_reason or "",
                scanned,
            ]
            w.writerow([defuse(c) for c in cells])
    return buf.getvalue()


MD_KEYS_LISTED = 100
MD_PRINCIPALS_LISTED = 10


def _decrypt_markdown(table: DecryptAccess) -> str:
    complete = "" if table.complete else " (incomplete: only what failing findings name)"
    out = [
        f"\nWho can decrypt each key ({escape_cell(table.source)}{complete}): {escape_cell(table.note)}.\n\n",
        "| Key | Allowed | Conditional | Principals (via) |\n| --- | ---: | ---: | --- |\n",
    ]
    for row in table.rows[:MD_KEYS_LISTED]:
        name = code_cell(row.key_arn) + (f" {escape_cell(row.alias)}" if row.alias else "")
        if row.error is not None:
            out.append(f"| {name} | | | not judged: {escape_cell(row.error)} |\n")
            continue
        shown = row.principals[:MD_PRINCIPALS_LISTED]
        who = "; ".join(
            f"{code_cell(p.principal)} ({escape_cell(', '.join(p.via))}"
            f"{', conditional' if p.decision == 'conditional' else ''})"
            for p in shown
        )
        more = f"; and {len(row.principals) - len(shown)} more" if len(row.principals) > len(shown) else ""
        out.append(f"| {name} | {row.allowed} | {row.conditional} | {who or 'nobody'}{more} |\n")
    if len(table.rows) > MD_KEYS_LISTED:
        out.append(f"\n{len(table.rows) - MD_KEYS_LISTED} more key(s) in the JSON report.\n")
    return "".join(out)


def render_report_markdown(rep: FrameworkReport) -> str:
    counts = rep.counts()
    score = rep.score()
    out = [
        f"# {escape_cell(rep.name)} ({escape_cell(rep.version)}) — kmsguard compliance report\n\n",
        f"Scanned {iso_z(rep.scanned_at, seconds=True)} · kmsguard {escape_cell(rep.kmsguard_version)} · "
        f"account(s): {escape_cell(', '.join(rep.accounts) or 'none')} · "
        f"region(s): {escape_cell(', '.join(rep.regions) or 'none')}\n\n",
        f"**Score: {'n/a' if score is None else f'{score}%'}** · "
        + " · ".join(f"{n} {s}" for s, n in counts.items())
        + f" (of {len(rep.controls)} controls)\n\n",
        "| Control | Title | Status | Failing | Muted | Passing |\n| --- | --- | --- | ---: | ---: | ---: |\n",
    ]
    for a in rep.controls:
        out.append(
            f"| {code_cell(a.control.id)} | {escape_cell(a.control.title)} | **{a.status.value}** "
            f"| {a.counts['FAIL']} | {a.counts['MUTED']} | {a.counts['PASS']} |\n"
        )
    decrypt_at: str | None = None  # the control whose section has the who-can-decrypt table
    for a in rep.controls:
        out.append(f"\n## {escape_cell(a.control.id)} {escape_cell(a.control.title)}\n\n")
        out.append(f"**Status: {a.status.value}** — {escape_cell(a.reason)}. Family: {escape_cell(a.family)}.\n\n")
        out.append(f"Checks: {', '.join(code_cell(c) for c in a.checks) or 'none'}\n\n")
        if a.failing:
            out.append("What is wrong:\n\n| Check | Severity | Resource | Account / region | Finding | Fix |\n")
            out.append("| --- | --- | --- | --- | --- | --- |\n")
            for e in a.failing:
                f = e.finding
                out.append(
                    f"| {code_cell(f.check_id)} | {f.severity.value} | {code_cell(f.resource_arn)} "
                    f"| {escape_cell(f.account)} / {escape_cell(f.region)} | {escape_cell(f.message)} "
                    f"| {code_cell(e.fix_command)} |\n"
                )
            out.append("\nRemedy:\n\n")
            for cid, text in a.remediation.items():
                out.append(f"- {code_cell(cid)}: {escape_cell(text)}\n")
        if a.muted:
            out.append("\nAccepted exceptions (MUTED):\n\n")
            for e in a.muted:
                out.append(
                    f"- {code_cell(e.finding.check_id)} on {code_cell(e.finding.resource_arn)}: "
                    f"{escape_cell(e.finding.mute_reason or '')}\n"
                )
        if a.errors:
            out.append(f"\nCould not be judged (ERROR): {len(a.errors)}\n")
        if a.passing:
            names = ", ".join(escape_cell(short_resource(e.finding)) for e in a.passing[:20])
            more = f" and {len(a.passing) - 20} more" if len(a.passing) > 20 else ""
            out.append(f"\nPassing ({len(a.passing)}): {names}{more}\n")
        if a.who_can_decrypt is not None:
            if decrypt_at is None:
                decrypt_at = a.control.id
                out.append(_decrypt_markdown(a.who_can_decrypt))
            else:
                out.append(f"\nWho can decrypt each key: see {escape_cell(decrypt_at)}.\n")
    return "".join(out)
