"""Which files `iac` reads as which units, how their names are written, and that a loader's unexpected error is
still an exit-2 error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmsguard.iac import cfn
from kmsguard.iac.declared import IacContext, IacError
from kmsguard.iac.discover import Source, load, sources

TEMPLATE = 'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  K: {Type: AWS::KMS::Key}\n'


def test_units_are_found_by_kind_and_hidden_or_vendored_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(TEMPLATE)
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "main.tf").write_text('resource "aws_kms_key" "k" {}\n')
    (tmp_path / "mod" / "vars.tf").write_text("")
    plan = {"format_version": "1.2", "terraform_version": "1.9.5", "planned_values": {}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    for skipped in (".git", ".terraform", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.yaml").write_text(TEMPLATE)
        (tmp_path / skipped / "x.tf").write_text("")
    found = sources([tmp_path], tmp_path)
    assert [(s.kind, s.rel) for s in found] == [
        ("terraform", "mod"),
        ("terraform-plan", "plan.json"),
        ("cloudformation", "stack.yaml"),
    ]


def test_names_are_relative_to_the_root_or_else_to_the_path_given(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "k.yaml").write_text(TEMPLATE)
    assert [s.rel for s in sources([tmp_path / "infra"], tmp_path)] == ["infra/k.yaml"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert [s.rel for s in sources([tmp_path / "infra"], elsewhere)] == ["k.yaml"]


def test_a_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        sources([tmp_path / "nope"], tmp_path)


def test_an_error_no_loader_expected_is_still_an_iac_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loaders turn every known problem into an IacError with its line; this stands in for a shape they did not
    # foresee (a bug), which must still end as exit 2 naming the file rather than a traceback.
    def unforeseen(path: Path, rel: str, ctx: IacContext) -> None:
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(cfn, "load_cloudformation", unforeseen)
    (tmp_path / "k.yaml").write_text(TEMPLATE)
    with pytest.raises(IacError) as err:
        load(Source("cloudformation", tmp_path / "k.yaml", "k.yaml"), IacContext())
    assert err.value.file == "k.yaml" and "TypeError" in err.value.message
