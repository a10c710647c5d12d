"""Every option of every command says what it does, in a whole sentence (`--burst-threshold` once read
"Errors per key per 5 minutes above which.")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from kmsguard.cli.main import app

# A help text that stops mid-sentence stops on a word; a finished one on one of these.
SENTENCE_ENDS = (".", ")", "?", "!")


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, f"{path} {name}")


def _options() -> list[tuple[str, str, str]]:
    """(command path, option, help) for every option of every command and group."""
    root = typer.main.get_command(app)
    return [
        (path, "/".join(p.opts), (p.help or "").strip())
        for path, command in _commands(root, "kmsguard")
        for p in command.params
        if getattr(p, "param_type_name", "") == "option"
    ]


def test_the_walk_reaches_every_command() -> None:
    commands = {path for path, _, _ in _options()}
    assert {"kmsguard scan", "kmsguard trail analyze", "kmsguard export securityhub", "kmsguard access who-can"} <= (
        commands
    )
    assert len(_options()) > 200


def test_every_option_has_help_that_ends_a_sentence() -> None:
    unfinished = [
        f"{path} {opt}: {text!r}" for path, opt, text in _options() if not text or not text.endswith(SENTENCE_ENDS)
    ]
    assert unfinished == []


def test_burst_threshold_says_what_happens_above_it() -> None:
    [text] = [t for path, opt, t in _options() if opt == "--burst-threshold"]
    assert text.endswith("a burst is reported.")
