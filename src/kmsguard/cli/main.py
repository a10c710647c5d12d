"""Entry point of the `kmsguard` command."""

from __future__ import annotations

import typer

from kmsguard import __version__
from kmsguard.cli import access, checks_cmd, demo, export, fix, iac, monitoring, policy, provision, report, scan, trail
from kmsguard.cli import monitor as monitor_cmd
from kmsguard.cli import serve as serve_cmd

app = typer.Typer(
    name="kmsguard",
    help="Find, explain, fix and watch AWS KMS misconfigurations; prove it to an assessor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("scan")(scan.scan)
app.command("checks")(checks_cmd.checks)
app.command("demo")(demo.demo)
app.add_typer(policy.app, name="policy")
app.add_typer(access.app, name="access")
app.command("report")(report.report)
app.add_typer(export.app, name="export")
app.command("fix")(fix.fix)
app.add_typer(provision.app, name="provision")
app.add_typer(monitoring.app, name="monitoring")
app.command("monitor")(monitor_cmd.monitor)
app.command("serve")(serve_cmd.serve)
app.add_typer(trail.app, name="trail")
app.add_typer(iac.app, name="iac")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kmsguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """kmsguard: are our encryption keys under control, and can we prove it?"""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
