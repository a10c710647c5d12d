"""`kmsguard checks`: the catalogue of checks."""

from __future__ import annotations

import json

import typer

from kmsguard.checks.registry import load_builtin_checks
from kmsguard.compliance.mapping import FRAMEWORKS, framework_controls, supporting_checks
from kmsguard.compliance.mapping import family as control_family

NO_CHECK = "not assessed (no kmsguard check supports it)"


def checks(
    fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    family: str | None = typer.Option(None, "--family", help="Only this family (key, policy, resource, audit ...)."),
    severity: list[str] | None = typer.Option(
        None, "--severity", help="Only checks of these severities (critical, high, medium, low, info)."
    ),
    framework: str | None = typer.Option(
        None,
        "--framework",
        help=f"List this framework's controls and the checks behind each ({', '.join(FRAMEWORKS)}).",
    ),
) -> None:
    """List every check with its id, severity, rationale and remediation."""
    if framework is not None:
        _framework(framework, fmt)
        return
    catalogue = load_builtin_checks()
    families = sorted({s.family for s in catalogue.values()})
    if family is not None and family not in families:
        # cli.common (rich's console, the progress bar, the result model) is imported where it is used, not at
        # the top: a plain listing never needs it.
        from kmsguard.cli.common import fail

        fail(f"--family: {family!r} is not one of {', '.join(families)}")
    sevs = None
    if severity:
        from kmsguard.cli.common import severities

        sevs = severities(severity)
    specs = [
        s
        for _, s in sorted(catalogue.items())
        if (family is None or s.family == family) and (sevs is None or s.severity in sevs)
    ]
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "title": s.title,
                        "severity": s.severity.value,
                        "family": s.family,
                        "rationale": s.rationale,
                        "remediation": s.remediation,
                        "compliance": s.compliance,
                        "live_only": s.live_only,
                        "fixer": s.fixer,
                    }
                    for s in specs
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console  # tables only: `-f json` has no use for rich's tables
    from rich.table import Table

    table = Table(show_lines=True)
    for col in ("id", "severity", "family", "title / rationale", "remediation"):
        table.add_column(col, overflow="fold")
    for s in specs:
        table.add_row(s.id, s.severity.value, s.family, f"[bold]{s.title}[/]\n{s.rationale}", s.remediation)
    Console().print(table)


def _framework(framework: str, fmt: str) -> None:
    """The mapping for one framework: each KMS-relevant control and the checks that give evidence for it.

    A control no check supports is listed as not assessed: the catalogue never implies it passes.
    """
    if framework not in FRAMEWORKS:
        from kmsguard.cli.common import fail

        fail(f"--framework: {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    topics = {cid: s.topics for cid, s in load_builtin_checks().items()}
    rows = [(c, control_family(framework, c.id), supporting_checks(c, topics)) for c in framework_controls(framework)]
    if fmt == "json":
        name, version = FRAMEWORKS[framework]
        doc = {
            "framework": {"id": framework, "name": name, "version": version},
            "controls": [
                {"id": c.id, "title": c.title, "family": fam, "checks": ids, "assessed": bool(ids)}
                for c, fam, ids in rows
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    name, version = FRAMEWORKS[framework]
    table = Table(title=f"{name} ({version}): KMS-relevant controls and kmsguard checks", show_lines=True)
    for col in ("control", "title", "family", "checks"):
        table.add_column(col, overflow="fold")
    for c, fam, ids in rows:
        table.add_row(c.id, c.title, fam, "\n".join(ids) or NO_CHECK)
    Console().print(table)
