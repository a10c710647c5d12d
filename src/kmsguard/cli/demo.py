"""`kmsguard demo` (placeholder until the demo lands)."""

import typer


def demo() -> None:
    """Scan an embedded AWS emulator filled with a sample estate."""
    raise typer.Exit(0)
