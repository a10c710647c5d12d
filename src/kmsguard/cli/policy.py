"""`kmsguard policy ...` (placeholder until the policy engine lands)."""

import typer

app = typer.Typer(help="Analyse, simulate, diff and generate KMS key policies.", no_args_is_help=True)


@app.command("validate")
def validate() -> None:
    """Validate a key policy."""
