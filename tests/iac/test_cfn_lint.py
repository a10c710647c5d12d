"""cfn-lint accepts every well-formed test template: what the loader is tested on is what CloudFormation takes.

Warnings are allowed (hard-coded availability zones, parameters for secrets); errors are not. The broken and
hostile files (broken/) and the files that are no template (not_templates/, CDK's manifests) are left out:
the loader itself decides which files are templates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from iac.test_cfn_loader import CTX, DATA, GUIDE
from kmsguard.iac.cfn import load_cloudformation
from kmsguard.provision import templates

_EXCLUDED = ("broken", "not_templates")


def _templates() -> list[str]:
    found = []
    for path in sorted(DATA.rglob("*")):
        rel = path.relative_to(DATA).as_posix()
        if path.is_file() and rel.split("/")[0] not in _EXCLUDED and load_cloudformation(path, rel, CTX) is not None:
            found.append(rel)
    return found


def test_the_well_formed_templates_are_found() -> None:
    assert set(_templates()) >= {
        "intrinsics.yaml",
        "long_form.json",
        "resources.yaml",
        "worlds.yaml",
        "many_conditions.yaml",
        "short_forms.yaml",
        "cdk.out/KmsStack.template.json",
    }


def _errors(path: Path) -> list[str]:
    matches = lint_file(path, ManualArgs(regions=[CTX.region]))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches if m.rule.id.startswith("E")]


@pytest.mark.parametrize("rel", _templates())
def test_cfn_lint_finds_no_error(rel: str) -> None:
    assert _errors(DATA / rel) == []


def test_cfn_lint_finds_no_error_in_the_guides_key(tmp_path: Path) -> None:
    path = tmp_path / "guide.json"
    path.write_text(templates.cloudformation(GUIDE), encoding="utf-8")
    assert _errors(path) == []


def test_cfn_lint_sees_the_errors_the_loader_refuses() -> None:
    """The lint run is not vacuous: a template the loader refuses for an impossible Fn::Select fails it too."""
    assert any(e.startswith("E") for e in _errors(DATA / "broken" / "bad_intrinsic.yaml"))
