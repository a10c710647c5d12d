"""The terminal table: what a person at a terminal needs first, not every finding.

FAIL, ERROR and MUTED findings are listed (worst severity first; a muted one shows its mute reason, so
nobody mistakes an accepted risk for a fixed one); PASS findings are only counted, with a hint to use
``--format json`` for everything. A summary panel follows: failing findings per severity, findings per
status, the accounts and regions scanned.

Degrading: all text goes in as ``rich.text.Text`` (never markup), so a ``[bold]`` in a tag value prints as
typed. Colour comes from rich's Console, which already honours ``NO_COLOR`` and dumb terminals; status and
severity are words, so nothing is carried by colour alone. Below ``WIDE`` columns the table folds check,
resource, region and message into one column instead of squeezing six columns into slivers. At most
``max_rows`` rows are printed: a terminal is no place for 100,000 findings, and rendering them would take
longer than the scan.
"""

from __future__ import annotations

from io import StringIO

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kmsguard.model.finding import Finding, Severity, Status, is_region_arn
from kmsguard.model.result import ScanResult
from kmsguard.report._common import SEVERITIES_DESC, name_list, short_resource
from kmsguard.report._time import iso_z

WIDE = 140
MAX_ROWS = 500
STATUS_STYLE = {Status.FAIL: "bold red", Status.ERROR: "bold magenta", Status.MUTED: "dim", Status.PASS: "green"}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_LISTED = (Status.FAIL, Status.ERROR, Status.MUTED)


def _status(f: Finding) -> Text:
    return Text(f.status.value, style=STATUS_STYLE[f.status])


def _severity(f: Finding) -> Text:
    return Text(f.severity.value, style=SEVERITY_STYLE[f.severity])


def _message(f: Finding) -> Text:
    text = Text(f.message)
    if f.status is Status.MUTED:
        text.append(f"\nmuted: {f.mute_reason or 'no reason given'}", style="dim")
    return text


def _findings_table(rows: list[Finding], width: int, several_accounts: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    if width >= WIDE:
        table.add_column("Check", overflow="fold")
        table.add_column("Resource", overflow="fold", max_width=40)
        if several_accounts:
            table.add_column("Account", no_wrap=True)
        table.add_column("Region", no_wrap=True)
        table.add_column("Message", overflow="fold", ratio=1)
        for f in rows:
            cells = [_status(f), _severity(f), Text(f.check_id), Text(short_resource(f))]
            if several_accounts:
                cells.append(Text(f.account))
            cells += [Text(f.region), _message(f)]
            table.add_row(*cells)
    else:
        table.add_column("Finding", overflow="fold", ratio=1)
        for f in rows:
            # Check id, then where, then what: three short lines read better than one folded one.
            if is_region_arn(f.resource_arn):  # an account/region finding: where it is, is what it is about
                resource = f"account {f.account} · {f.region}"
            else:
                where = f"{f.account} {f.region}" if several_accounts else f.region
                resource = f"{short_resource(f)} · {where}"
            text = Text(f.check_id, style="bold")
            text.append(f"\n{resource}\n")
            text.append_text(_message(f))
            table.add_row(_status(f), _severity(f), text)
    return table


def _summary_panel(result: ScanResult, listed: int, shown: int) -> Panel:
    summary = result.summary()
    by_status: dict[str, int] = summary["by_status"]
    sev_line = Text("Failing: ")
    for i, sev in enumerate(SEVERITIES_DESC):
        if i:
            sev_line.append(" · ")
        sev_line.append(f"{sev.value} {summary['failing_by_severity'][sev.value]}", style=SEVERITY_STYLE[sev])
    status_line = Text("Findings: ")
    for i, st in enumerate((Status.FAIL, Status.ERROR, Status.MUTED, Status.PASS)):
        if i:
            status_line.append(" · ")
        status_line.append(f"{st.value} {by_status[st.value]}", style=STATUS_STYLE[st])
    files = sorted({f.location.file for f in result.findings if f.location is not None})
    scope = Text(
        f"Judged {len(files)} template file(s) as deployed to account {name_list(result.accounts)}, "
        f"region {name_list(result.regions)}; at {iso_z(result.scanned_at, seconds=True)}"
        if files
        else f"Scanned {len(result.accounts)} account(s): {name_list(result.accounts)}; "
        f"{len(result.regions)} region(s): {name_list(result.regions)}; at {iso_z(result.scanned_at, seconds=True)}"
    )
    lines = [sev_line, status_line, scope]
    hidden = by_status[Status.PASS.value]
    if shown < listed:
        lines.append(Text(f"Showing the first {shown} of {listed} failing, errored or muted findings.", style="yellow"))
    if hidden or shown < listed:
        lines.append(
            Text(
                "PASS findings are counted, not listed: --format json shows every finding.",
                style="dim",
            )
        )
    title = "kmsguard iac scan" if files else "kmsguard scan"
    return Panel(Group(*lines), title=title, title_align="left", box=box.ROUNDED, expand=False)


def print_table(result: ScanResult, console: Console | None = None, max_rows: int = MAX_ROWS) -> None:
    console = console or Console()
    listed_all = [f for f in result.sorted_findings() if f.status in _LISTED]
    rows = listed_all[:max_rows]
    several_accounts = len({f.account for f in rows}) > 1 or len(result.accounts) > 1
    if rows:
        console.print(_findings_table(rows, console.width, several_accounts))
    else:
        console.print(Text("No failing or errored findings.", style="green"))
    console.print(_summary_panel(result, len(listed_all), len(rows)))


def render_table(result: ScanResult, width: int = 120) -> str:
    """The same table as plain text (no colour, no terminal control codes), e.g. for a log file."""
    buf = StringIO()
    console = Console(file=buf, width=width, no_color=True, color_system=None, force_terminal=False, highlight=False)
    print_table(result, console)
    return buf.getvalue()
