"""Entry point of the `kmsguard` command.

Commands are listed in ``COMMANDS`` and imported only when one runs (cli/lazy.py says why): `kmsguard
--version`, `--help` and `checks` start without boto3, SQLAlchemy or z3.
"""

from __future__ import annotations

import typer

from kmsguard import __version__
from kmsguard.cli.lazy import Lazy, LazyGroup

# name -> where the command lives and its line in `kmsguard --help`, in the order the help lists them.
# tests/cli/test_startup.py holds each line equal to the command's own help.
COMMANDS: dict[str, Lazy] = {
    "scan": Lazy(
        "kmsguard.cli.scan", "scan", "Scan KMS keys, key policies, the audit set-up and the resources that use KMS."
    ),
    "checks": Lazy(
        "kmsguard.cli.checks_cmd", "checks", "List every check with its id, severity, rationale and remediation."
    ),
    "demo": Lazy(
        "kmsguard.cli.demo",
        "demo",
        "Scan an embedded AWS emulator filled with a sample estate (two regions, about 30 keys).",
    ),
    "report": Lazy(
        "kmsguard.cli.report",
        "report",
        "Compliance evidence per control: status, checks, resources, what is wrong, the fix, the evidence.",
    ),
    "fix": Lazy(
        "kmsguard.cli.fix",
        "fix",
        "Fix failing findings: show the plan, then --apply it; --apply --resume JOURNAL carries on an interrupted\n"
        "apply; --rollback JOURNAL undoes an apply.",
    ),
    "monitor": Lazy(
        "kmsguard.cli.monitor",
        "monitor",
        "Watch the estate: scan on a schedule and on KMS events, store history, alert on drift.",
    ),
    "serve": Lazy(
        "kmsguard.cli.serve", "serve", "Serve the dashboard: posture, keys, findings (mute/unmute), compliance."
    ),
    "policy": Lazy("kmsguard.cli.policy", "app", "Analyse, simulate, diff and generate KMS key policies."),
    "access": Lazy(
        "kmsguard.cli.access", "app", "Effective access: who can decrypt or administer each key, and by which path."
    ),
    "export": Lazy("kmsguard.cli.export", "app", "Send findings to other tools."),
    "provision": Lazy("kmsguard.cli.provision", "app", "Create KMS keys to standard."),
    "monitoring": Lazy("kmsguard.cli.monitoring", "app", "Set up the monitoring the audit checks look for."),
    "trail": Lazy("kmsguard.cli.trail", "app", "Key usage and attacks from CloudTrail logs."),
    "iac": Lazy("kmsguard.cli.iac", "app", "Judge CloudFormation, CDK output and Terraform before deploying."),
}


class _Kmsguard(LazyGroup):
    table = COMMANDS


app = typer.Typer(
    name="kmsguard",
    help="Find, explain, fix and watch AWS KMS misconfigurations; prove it to an assessor.",
    cls=_Kmsguard,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
