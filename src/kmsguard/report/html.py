"""`kmsguard report --format html`: one self-contained HTML file an assessor can open offline and print.

Self-contained means nothing is fetched at view time: the CSS is inline, the charts are inline SVG
(report/svg_charts.py), fonts are the reader's own (a system font stack), there is no script and no image URL.
A Content-Security-Policy meta tag (``default-src 'none'``) makes a viewer refuse any fetch that slipped in.

Print: A4 portrait margins, each control section avoids breaking inside its header, the summary is its own
page, links show no URL noise, and colours are kept (``print-color-adjust: exact``) so status badges print.
Every status is also written as a word, so greyscale print loses nothing. All text from the estate (tags,
policy fragments, messages) is HTML-escaped.

The access controls (CMMC AC.L2-3.1.1 / 3.1.5 and their NIST equivalents) show who can decrypt each key: one
row per key with the allowed and conditional counts and the principals with how they get there (the first
control that has the table shows it, the others link to it; long lists are cut, the JSON report has all).
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from kmsguard.compliance.assess import (
    STATUS_ORDER,
    ControlAssessment,
    ControlStatus,
    DecryptAccess,
    Evidence,
    FrameworkReport,
)
from kmsguard.model.usage import TrailUsage
from kmsguard.report._common import compact_json, short_resource
from kmsguard.report._time import iso_z
from kmsguard.report.svg_charts import USAGE_COLOUR, daily_strips, stacked_bars

STATUS_COLOURS = {
    ControlStatus.NOT_MET.value: "#c62828",
    ControlStatus.PARTLY_MET.value: "#ef8f00",
    ControlStatus.MET.value: "#2e7d32",
    ControlStatus.NOT_ASSESSED.value: "#9e9e9e",
}
SEVERITY_COLOURS = {"critical": "#8e0000", "high": "#c62828", "medium": "#ef8f00", "low": "#1565c0", "info": "#9e9e9e"}
FINDING_COLOURS = {"FAIL": "#c62828", "MUTED": "#7e57c2", "ERROR": "#6d4c41", "PASS": "#2e7d32"}
MAX_PASSING_LISTED = 40
DECRYPT_KEYS_SHOWN = 200  # keys in the who-can-decrypt table (the JSON report has every key)
DECRYPT_PRINCIPALS_SHOWN = 15  # principals per key
USAGE_SHOWN = 10  # keys and principals in the usage section (the JSON report has the summary's 25)

CSS = """
:root{--fg:#1b1b1b;--muted:#555;--line:#d0d0d0;--bg:#fff}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1100px;padding:24px;font-size:14px;line-height:1.45}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid var(--fg)}
h3{font-size:16px;margin:0}
.meta{color:var(--muted);margin:0 0 16px}
.score{font-size:40px;font-weight:700;margin:0}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:22px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;font-size:12px;
white-space:nowrap}
.st-not-met{background:#c62828}.st-partly-met{background:#ef8f00;color:#1b1b1b}.st-met{background:#2e7d32}
.st-not-assessed{background:#9e9e9e;color:#1b1b1b}
table{border-collapse:collapse;width:100%;margin:8px 0 12px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right}td.id{white-space:nowrap}
figure{margin:6px 0;break-inside:avoid}
table.findings{table-layout:fixed}table.findings code{word-break:break-all}
.fix{margin-top:4px;font-size:12px}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.control{border:1px solid var(--line);border-radius:6px;padding:10px 14px;margin:14px 0}
.control header{display:flex;justify-content:space-between;gap:12px;align-items:baseline;break-after:avoid}
.reason{color:var(--muted);margin:4px 0 8px}
.evidence{font-size:11px;color:#333;background:#f7f7f7;padding:3px 5px;border-radius:3px;margin-top:3px;
white-space:pre-wrap;word-break:break-all}
.charts{display:grid;grid-template-columns:1fr;gap:8px}
svg.chart{max-width:100%;height:auto;font-size:11px;font-family:inherit}
svg.chart text{fill:#1b1b1b}svg.chart text.in{fill:#fff;font-weight:600}svg.chart .legend{font-size:11px}
.small{font-size:12px;color:var(--muted)}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .summary,.usage{break-after:page}
 .control{break-inside:auto}
 .control header,tr{break-inside:avoid}
 h2{break-after:avoid}
 a{color:inherit;text-decoration:none}
}
"""


def _badge(status: str) -> str:
    return f'<span class="badge st-{status.replace(" ", "-")}">{escape(status)}</span>'


def _facts(e: Evidence) -> str:
    f = e.finding
    data: dict[str, Any] = {}
    if f.evidence:
        data["evidence"] = f.evidence
    if e.facts:
        data["facts"] = e.facts
    if not data:
        return ""
    text = compact_json(data)
    if len(text) > 1500:  # a whole policy: keep the report readable; the JSON report has everything
        text = text[:1500] + " …"
    return f'<div class="evidence">{escape(text)}</div>'


def _finding_rows(rows: list[Evidence], with_fix: bool) -> str:
    out = []
    for e in rows:
        f = e.finding
        fix = f'<div class="fix">fix: <code>{escape(e.fix_command)}</code></div>' if with_fix and e.fix_command else ""
        reason = f"<br><i>muted: {escape(f.mute_reason)}</i>" if f.mute_reason else ""
        out.append(
            f"<tr><td><code>{escape(f.check_id)}</code><br>{escape(f.severity.value)}</td>"
            f'<td><span class="mono">{escape(f.resource_arn)}</span><br><span class="small">'
            f"{escape(f.account)} · {escape(f.region)}</span></td>"
            f"<td>{escape(f.message)}{reason}{_facts(e)}{fix}</td></tr>"
        )
    return "".join(out)


def _table(rows: list[Evidence], caption: str, with_fix: bool) -> str:
    if not rows:
        return ""
    return (
        f'<p><b>{escape(caption)}</b></p><table class="findings"><colgroup><col style="width:20%">'
        '<col style="width:28%"><col style="width:52%"></colgroup><thead><tr><th>Check / severity</th>'
        f"<th>Resource</th><th>Finding, evidence{' and fix' if with_fix else ''}</th></tr></thead>"
        f"<tbody>{_finding_rows(rows, with_fix)}</tbody></table>"
    )


def _decrypt_table(table: DecryptAccess) -> str:
    """Who can decrypt each key: counts, then each principal with its kinds of path (the first path in words
    as a tooltip)."""
    rows = []
    for r in table.rows[:DECRYPT_KEYS_SHOWN]:
        key = f'<span class="mono">{escape(r.key_arn)}</span>{_alias(r.alias)}'
        if r.error is not None:
            rows.append(f'<tr><td>{key}</td><td colspan="3">not judged: {escape(r.error)}</td></tr>')
            continue
        shown = r.principals[:DECRYPT_PRINCIPALS_SHOWN]
        who = "<br>".join(
            f'<span class="mono" title="{escape(p.path)}">{escape(p.principal)}</span> '
            f'<span class="small">via {escape(", ".join(p.via))}'
            f"{' · conditional' if p.decision == 'conditional' else ''}</span>"
            for p in shown
        )
        more = len(r.principals) - len(shown)
        who += f'<br><span class="small">and {more} more (see the JSON report)</span>' if more > 0 else ""
        rows.append(
            f'<tr><td>{key}</td><td class="num">{r.allowed}</td><td class="num">{r.conditional}</td>'
            f"<td>{who or 'nobody'}</td></tr>"
        )
    hidden = len(table.rows) - DECRYPT_KEYS_SHOWN
    tail = f'<p class="small">{hidden} more key(s) in the JSON report.</p>' if hidden > 0 else ""
    incomplete = "" if table.complete else " <b>Incomplete:</b>"
    return (
        f'<div class="who-can-decrypt"><p><b>Who can decrypt each key</b> ({escape(table.source)})</p>'
        f'<p class="small">{incomplete} {escape(table.note)}.</p>'
        '<table class="findings"><colgroup><col style="width:34%"><col style="width:8%"><col style="width:10%">'
        '<col style="width:48%"></colgroup><thead><tr><th>Key</th><th>Allowed</th><th>Conditional</th>'
        f"<th>Principals (via)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{tail}</div>"
    )


def _control(a: ControlAssessment, decrypt_at: str | None = None) -> str:
    """One control's section; ``decrypt_at``: the control that already shows the who-can-decrypt table."""
    c = a.control
    checks = ", ".join(f"<code>{escape(x)}</code>" for x in a.checks) or "none"
    parts = [
        f'<section class="control" id="control-{escape(c.id)}"><header><h3>{escape(c.id)} — {escape(c.title)}</h3>'
        f"{_badge(a.status.value)}</header>",
        f'<p class="reason">{escape(a.reason)} · family: {escape(a.family)}</p>',
        f"<p>Checks: {checks}</p>",
    ]
    parts.append(_table([*a.failing], "What is wrong", with_fix=True))
    if a.remediation:
        items = "".join(f"<li><code>{escape(k)}</code>: {escape(v)}</li>" for k, v in a.remediation.items())
        parts.append(f"<p><b>Remedy</b></p><ul>{items}</ul>")
    parts.append(_table(a.muted, "Accepted exceptions (MUTED)", with_fix=False))
    parts.append(_table(a.errors, "Could not be judged (ERROR)", with_fix=False))
    if a.passing:
        shown = a.passing[:MAX_PASSING_LISTED]
        items = ", ".join(
            f'<span class="mono" title="{escape(e.finding.resource_arn)}">{escape(short_resource(e.finding))}</span>'
            f" ({escape(e.finding.check_id)})"
            for e in shown
        )
        more = f" and {len(a.passing) - len(shown)} more (see the JSON report)" if len(a.passing) > len(shown) else ""
        parts.append(f'<p><b>Passing ({len(a.passing)})</b></p><p class="small">{items}{more}</p>')
    if a.who_can_decrypt is not None:
        if decrypt_at is None:
            parts.append(_decrypt_table(a.who_can_decrypt))
        else:
            parts.append(
                f'<p><b>Who can decrypt each key</b>: see <a href="#control-{escape(decrypt_at)}">'
                f"{escape(decrypt_at)}</a>.</p>"
            )
    parts.append("</section>")
    return "".join(parts)


def _controls(rep: FrameworkReport) -> str:
    first = next((a.control.id for a in rep.controls if a.who_can_decrypt is not None), None)
    return "".join(_control(a, None if a.control.id == first else first) for a in rep.controls)


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption><b>{escape(caption)}</b></figcaption>{svg}</figure>"


def _when(t: datetime | None) -> str:
    return iso_z(t, seconds=True) if t is not None else "—"


def _usage_section(u: TrailUsage | None) -> str:
    """The scan's CloudTrail key usage: calls per day of the busiest keys, top keys and top principals.

    Charts are inline SVG from report/svg_charts.py, not trail/charts.py's PNGs as data: URIs: vectors print
    sharp in the PDF, their text (key names, counts) stays selectable and searchable, the file stays small,
    and rendering a report does not import matplotlib.
    """
    if u is None:
        return ""
    head = (
        '<section class="usage" id="trail-usage"><h2>Key usage (CloudTrail)</h2>'
        f'<p class="meta">{u.events} KMS event(s) analysed, {_when(u.window_start)} to {_when(u.window_end)}; '
        f"{u.keys_seen} key(s), {u.principals_seen} principal(s).</p>"
    )
    if not u.events:
        return head + "<p>No KMS events in the analysed logs.</p></section>"
    parts = [head]
    if u.daily and u.days:
        span = f"{u.days[0].isoformat()} to {u.days[-1].isoformat()}"
        rows = [(s.label, s.calls) for s in u.daily[:USAGE_SHOWN]]
        parts.append(
            _figure(f"Cryptographic calls per UTC day, busiest keys ({span})", daily_strips(span, u.days, rows))
        )
    else:
        parts.append("<p>No cryptographic calls in the last days of the window.</p>")
    keys = u.top_keys[:USAGE_SHOWN]
    principals = u.top_principals[:USAGE_SHOWN]
    parts.append(
        _figure("Top keys by calls", stacked_bars("Top keys", [(k.label, {"calls": k.calls}) for k in keys], _CALLS))
    )
    parts.append(
        "<table><thead><tr><th>Key</th><th>Calls</th><th>Cryptographic</th><th>Errors</th>"
        "<th>Principals</th><th>Last use</th></tr></thead><tbody>"
        + "".join(
            f'<tr><td><span class="mono">{escape(k.key_arn)}</span>{_alias(k.alias)}</td><td class="num">{k.calls}'
            f'</td><td class="num">{k.crypto_calls}</td><td class="num">{k.errors}</td><td class="num">'
            f"{k.principals}</td><td>{escape(_when(k.last_use))}</td></tr>"
            for k in keys
        )
        + "</tbody></table>"
    )
    bars = [(p.label, {"calls": p.calls}) for p in principals]
    parts.append(_figure("Top principals by calls", stacked_bars("Top principals", bars, _CALLS)))
    parts.append(
        "<table><thead><tr><th>Principal</th><th>Calls</th><th>Keys</th></tr></thead><tbody>"
        + "".join(
            f'<tr><td><span class="mono">{escape(p.principal)}</span></td><td class="num">{p.calls}</td>'
            f'<td class="num">{p.keys}</td></tr>'
            for p in principals
        )
        + "</tbody></table>"
    )
    parts.append(
        '<p class="small">Principals: the role of an assumed-role session; <code>service:…</code> is an AWS service '
        "acting on its own (CloudTrail encrypting its logs), listed but not counted in a key's principals.</p>"
    )
    return "".join(parts) + "</section>"


_CALLS = {"calls": USAGE_COLOUR}


def _alias(alias: str | None) -> str:
    return f"<br>{escape(alias)}" if alias else ""


def render_report_html(rep: FrameworkReport) -> str:
    counts = rep.counts()
    score = rep.score()
    assessed = len(rep.controls) - counts[ControlStatus.NOT_ASSESSED.value]
    title = f"{rep.name} ({rep.version}) — kmsguard compliance report"
    kpis = "".join(
        f'<div class="kpi">{_badge(s)}<b>{counts[s]}</b>controls</div>' for s in (st.value for st in STATUS_ORDER)
    )
    status_chart = stacked_bars("Controls by status", [("controls", counts)], STATUS_COLOURS)
    sev_chart = stacked_bars(
        "Failing findings by severity",
        [(s, {s: n}) for s, n in rep.failing_by_severity().items()],
        SEVERITY_COLOURS,
    )
    family_chart = stacked_bars("Controls by family and status", list(rep.by_family().items()), STATUS_COLOURS)
    acct_chart = stacked_bars("Findings by account and region", list(rep.by_account_region().items()), FINDING_COLOURS)
    overview = "".join(
        f'<tr><td class="id"><a href="#control-{escape(a.control.id)}">{escape(a.control.id)}</a></td>'
        f"<td>{escape(a.control.title)}</td><td>{escape(a.family)}</td><td>{_badge(a.status.value)}</td>"
        f'<td class="num">{a.counts["FAIL"]}</td><td class="num">{a.counts["MUTED"]}</td>'
        f'<td class="num">{a.counts["PASS"]}</td></tr>'
        for a in rep.controls
    )
    score_text = "n/a" if score is None else f"{score}%"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body>
<div class="summary">
<h1>{escape(title)}</h1>
<p class="meta">Scanned {escape(iso_z(rep.scanned_at, seconds=True))} · kmsguard {escape(rep.kmsguard_version)} ·
account(s): {escape(", ".join(rep.accounts) or "none")} · region(s): {escape(", ".join(rep.regions) or "none")}</p>
<p class="score">Score: {escape(score_text)}</p>
<p class="small">(met + ½ × partly met) ÷ assessed controls; {assessed} of {len(rep.controls)} KMS-relevant controls
assessed. Controls not assessed are never counted as passing.</p>
<div class="kpis">{kpis}</div>
<h2>Summary</h2>
<div class="charts">{_figure("Controls by status", status_chart)}{_figure("Failing findings by severity", sev_chart)}
{_figure("Controls by family and status", family_chart)}{_figure("Findings by account and region", acct_chart)}</div>
<h2>Controls</h2>
<table><thead><tr><th>Control</th><th>Title</th><th>Family</th><th>Status</th><th>Failing</th><th>Muted</th>
<th>Passing</th></tr></thead><tbody>{overview}</tbody></table>
</div>
{_usage_section(rep.trail_usage)}
<h2>Evidence per control</h2>
{_controls(rep)}
<p class="small">Status rules: <b>not met</b> = a high or critical failure, or failures and nothing passing;
<b>partly met</b> = medium or lower failures beside passing subjects, or unreadable subjects (ERROR) and no failure;
<b>met</b> = passing (or muted, with the reason listed) and nothing failing or unreadable; <b>not assessed</b> = no
kmsguard check produced evidence for the control.</p>
</body></html>
"""
