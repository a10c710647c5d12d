"""Start fast (issue 16, section 4): `kmsguard --version`, `--help` and `checks` import only what they need.

Each run is a fresh interpreter (a test process has long since imported everything), and the test reads that
interpreter's ``sys.modules`` after the command finished. No test asserts a time: BENCHMARKS.md has the figures.
"""

from __future__ import annotations

import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import kmsguard.cli
from kmsguard.cli.lazy import load
from kmsguard.cli.main import COMMANDS, app

# What start-up must not pay for: AWS SDK, store, policy solver, dashboard, trail engines.
HEAVY = {"boto3", "botocore", "sqlalchemy", "z3", "fastapi", "duckdb", "pyarrow"}
# Modules of kmsguard.cli that hold no command of their own.
NOT_COMMANDS = {"kmsguard.cli.common", "kmsguard.cli.source", "kmsguard.cli.lazy", "kmsguard.cli.main"}

RUN = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["kmsguard", *sys.argv[2:]]
try:
    runpy.run_module("kmsguard.cli.main", run_name="__main__")
    code = 0
except SystemExit as e:
    code = e.code or 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def run_fresh(tmp_path: Path, *args: str) -> tuple[int, str, set[str]]:
    """(exit code, stdout, modules imported) of `kmsguard ARGS` in a new interpreter."""
    record = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "300"}  # wide enough that a table keeps each check id on one line
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(record), *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(record.read_text())
    return got["code"], proc.stdout, set(got["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def command_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("kmsguard.cli.")} - NOT_COMMANDS


def test_version_imports_no_command_and_nothing_heavy(tmp_path: Path) -> None:
    code, out, modules = run_fresh(tmp_path, "--version")
    assert (code, out.strip()) == (0, f"kmsguard {kmsguard.__version__}")
    assert heavy(modules) == []
    assert command_modules(modules) == set()


def test_help_lists_every_command_without_importing_one(tmp_path: Path) -> None:
    code, out, modules = run_fresh(tmp_path, "--help")
    assert code == 0
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("│ ") and line.split()[1] in COMMANDS]
    assert listed == list(COMMANDS)
    assert heavy(modules) == []
    assert command_modules(modules) == set()


@pytest.mark.parametrize("args", [("checks", "-f", "json"), ("checks",)], ids=["json", "table"])
def test_checks_imports_its_own_module_and_nothing_heavy(tmp_path: Path, args: tuple[str, ...]) -> None:
    from kmsguard.checks.registry import load_builtin_checks

    code, out, modules = run_fresh(tmp_path, *args)
    assert code == 0
    if args[-1] == "json":
        assert sorted(c["id"] for c in json.loads(out)) == sorted(load_builtin_checks())
    else:
        assert "key_policy_public" in out
    assert heavy(modules) == []
    assert command_modules(modules) == {"kmsguard.cli.checks_cmd"}
    # The registry is complete, yet the policy engine's solver was never loaded: it loads when a check runs; nor
    # were the Snapshot models, which the checks name only in annotations.
    assert "kmsguard.policy.solver" not in modules
    assert "kmsguard.model.snapshot" not in modules


def test_a_command_is_imported_when_it_runs(tmp_path: Path) -> None:
    """The other side of laziness: `policy --help` loads the policy command (and not its neighbours)."""
    code, out, modules = run_fresh(tmp_path, "policy", "--help")
    assert code == 0
    assert "analyze" in out
    assert "kmsguard.cli.policy" in modules
    assert "kmsguard.cli.scan" not in modules


@pytest.mark.parametrize("name", list(COMMANDS))
def test_table_line_is_the_commands_own_help(name: str) -> None:
    """The static table cannot drift from the commands: its line is the first paragraph of each one's help,
    as typer would list it, and each entry builds a command of that name."""
    command = load(name, COMMANDS[name])
    assert command.name == name
    assert inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0] == COMMANDS[name].help
    target = getattr(__import__(COMMANDS[name].module, fromlist=["_"]), COMMANDS[name].attribute)
    assert isinstance(command, typer.core.TyperGroup) == isinstance(target, typer.Typer)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_is_reachable(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"Usage: kmsguard {name} [OPTIONS]" in result.output
    assert COMMANDS[name].help.split(":")[0] in " ".join(result.output.split())


def test_every_command_module_is_in_the_table() -> None:
    """A new command module left out of the table would be unreachable: every kmsguard.cli module but the
    shared ones must be named by an entry."""
    modules = {f"kmsguard.cli.{m.name}" for m in pkgutil.iter_modules(kmsguard.cli.__path__)}
    assert modules - NOT_COMMANDS == {entry.module for entry in COMMANDS.values()}


def test_an_unknown_command_is_a_usage_error_naming_the_nearest() -> None:
    result = CliRunner().invoke(app, ["scna"])
    assert result.exit_code == 2
    assert "No such command 'scna'" in result.output
    assert "'scan'" in result.output
