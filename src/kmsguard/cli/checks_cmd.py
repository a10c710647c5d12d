"""`kmsguard checks`: the catalogue of checks."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from kmsguard.checks.registry import load_builtin_checks


def checks(
    fmt: str = typer.Option("table", "--format", "-f", help="table or json"),
    family: str | None = typer.Option(None, "--family", help="Only this family (key, policy, resource, audit ...)."),
) -> None:
    """List every check with its id, severity, rationale and remediation."""
    specs = [s for _, s in sorted(load_builtin_checks().items()) if family is None or s.family == family]
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
                    }
                    for s in specs
                ],
                indent=2,
            )
        )
        return
    table = Table(show_lines=True)
    for col in ("id", "severity", "family", "title / rationale", "remediation"):
        table.add_column(col, overflow="fold")
    for s in specs:
        table.add_row(s.id, s.severity.value, s.family, f"[bold]{s.title}[/]\n{s.rationale}", s.remediation)
    Console().print(table)
