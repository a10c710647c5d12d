"""Checks declare their fixer in the registry (``@check(fixer=...)``); fix keeps the table of fixers by name.

Neither side can be orphaned: a check naming a fixer fix does not have would leave its findings silently unfixed,
and a fixer no check names is dead code (or a check that was renamed away from it).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from kmsguard.checks.registry import load_builtin_checks
from kmsguard.cli.main import app
from kmsguard.fix.planner import FIXERS, fixable_checks


def test_every_check_that_declares_a_fixer_names_one_fix_has() -> None:
    declared = {cid: s.fixer for cid, s in load_builtin_checks().items() if s.fixer is not None}
    assert declared, "no check declares a fixer"
    assert {cid: name for cid, name in declared.items() if name not in FIXERS} == {}
    assert fixable_checks() == declared


def test_every_fixer_is_named_by_at_least_one_check() -> None:
    named = {s.fixer for s in load_builtin_checks().values()}
    assert sorted(set(FIXERS) - named) == []


def test_each_fixer_acts_on_keys_or_on_resources() -> None:
    assert all((f.on_key is None) != (f.on_resource is None) for f in FIXERS.values())
    assert all(f.unless is None or f.unless in FIXERS for f in FIXERS.values())


def test_a_check_naming_an_unknown_fixer_is_refused_naming_it() -> None:
    registry = dict(load_builtin_checks())
    registry["key_rotation_disabled"] = replace(registry["key_rotation_disabled"], fixer="rotate")
    with pytest.raises(ValueError, match="key_rotation_disabled -> rotate"):
        fixable_checks(registry)


def test_the_checks_catalogue_names_each_checks_fixer() -> None:
    res = CliRunner().invoke(app, ["checks", "-f", "json"], catch_exceptions=False)
    assert res.exit_code == 0
    listed = {c["id"]: c["fixer"] for c in json.loads(res.stdout)}
    assert listed == {cid: s.fixer for cid, s in load_builtin_checks().items()}
    assert listed["key_rotation_disabled"] == "rotation" and listed["key_disabled"] is None
