"""A command group that lists its commands from a static table and imports each one only when it is used.

Importing every command up front (boto3, SQLAlchemy, z3, the monitor, the fix planner ...) made `kmsguard
--version` take over a second. The root group instead knows each command by name, module, attribute and
one-line help; `kmsguard --help` draws its list from that table, and a command's module is imported only when
the command runs or its own --help is asked. tests/cli/test_startup.py holds the table to the real commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer import _click as click  # typer's own copy of click: its commands and groups are these classes
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a command lives and the line `kmsguard --help` shows for it (the first paragraph of its help)."""

    module: str
    attribute: str  # a command function, or a typer.Typer sub-app
    help: str


def load(name: str, entry: Lazy) -> click.Command:
    """Import the command ``name`` and build it exactly as ``app.command(name)`` / ``app.add_typer`` would."""
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's ``commands``: every name of the table, each imported on first access."""

    def __init__(self, table: Mapping[str, Lazy]) -> None:
        self._table = table
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._table:
                raise KeyError(name)
            self._loaded[name] = load(name, self._table[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("the command table is static")

    def __iter__(self) -> Iterator[str]:
        yield from self._table
        yield from (name for name in self._loaded if name not in self._table)

    def __len__(self) -> int:
        return len(self._table.keys() | self._loaded.keys())


class LazyGroup(TyperGroup):
    """A TyperGroup over ``table`` (set by a subclass: ``typer.Typer(cls=...)`` takes a class)."""

    table: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.table)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the names alone: TyperGroup's version would import every command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in self.table:
            # Drawing this group's help: a stand-in with the table's line is all the list needs.
            return TyperCommand(name=cmd_name, help=self.table[cmd_name].help)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
