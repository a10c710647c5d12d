"""Broken and hostile Terraform: one IacError naming the file and (where there is one) the line; no traceback.

Every case is written to tmp_path by the test itself (a 21 MB file, invalid UTF-8 and mutated copies of the
test data are not kept in the repository). Terraform itself cannot be installed here; where it would refuse a
file (a reference cycle, a resource declared twice), the loader refuses it too.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from kmsguard.iac.declared import IacContext, IacError, Unit, unknowns_in
from kmsguard.iac.terraform import load_terraform_dir, load_terraform_plan

DATA = Path(__file__).parent / "data" / "terraform"
CTX = IacContext()


def _dir(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return tmp_path


def _error(tmp_path: Path, files: dict[str, str | bytes]) -> IacError:
    with pytest.raises(IacError) as e:
        load_terraform_dir(_dir(tmp_path, files), "mod", CTX)
    return e.value


def test_bad_hcl_names_the_file_and_line(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        {"a.tf": 'resource "aws_kms_key" "ok" {}\n', "b.tf": 'resource "aws_kms_key" "k" {\n  description = \n}\n'},
    )
    assert (err.file, err.line) == ("mod/b.tf", 2)
    assert err.message.startswith("not valid HCL: unexpected")
    assert "\n" not in str(err)


def test_a_file_cut_off_is_an_unexpected_end(tmp_path: Path) -> None:
    err = _error(
        tmp_path, {"main.tf": 'resource "aws_kms_key" "k" {\n  policy = jsonencode({\n    Version = "2012-10-17"\n'}
    )
    assert err.file == "mod/main.tf" and err.message == "not valid HCL: unexpected end of file"


def test_a_file_over_20_mb_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.tf"
    with big.open("wb") as fh:
        fh.truncate(21 * 1024 * 1024)  # sparse: 21 MB on paper, nothing to read
    start = time.monotonic()
    with pytest.raises(IacError) as e:
        load_terraform_dir(tmp_path, ".", CTX)
    assert time.monotonic() - start < 1
    assert e.value.file == "big.tf" and "larger than 20 MB" in e.value.message


def test_invalid_utf8_names_the_line_and_byte(tmp_path: Path) -> None:
    err = _error(
        tmp_path, {"main.tf": b'resource "aws_kms_key" "k" {\n  description = "ok"\n  tags = { A = "\xff" }\n}\n'}
    )
    assert (err.file, err.line) == ("mod/main.tf", 3)
    assert err.message.startswith("not UTF-8 text") and "0xff" in err.message


def test_self_referencing_locals_are_a_cycle_not_a_recursion(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        {
            "main.tf": 'locals {\n  a = local.b\n  b = "x-${local.a}"\n}\n\n'
            'resource "aws_kms_key" "k" {\n  description = local.a\n}\n'
        },
    )
    assert err.file == "mod/main.tf" and err.line in (2, 3)
    assert err.message == "a reference cycle: local.a -> local.b -> local.a"


def test_a_resource_referring_to_itself_is_a_cycle(tmp_path: Path) -> None:
    err = _error(tmp_path, {"main.tf": 'resource "aws_kms_key" "k" {\n  description = aws_kms_key.k.description\n}\n'})
    assert (err.file, err.line) == ("mod/main.tf", 2)
    assert "aws_kms_key.k.description -> aws_kms_key.k.description" in err.message


@pytest.mark.parametrize("kind", ["list", "string"])
def test_exponential_locals_stop_at_the_budget(tmp_path: Path, kind: str) -> None:
    levels = 60
    seed, step = (
        ('["x", "x"]', "[local.l{p}, local.l{p}]")
        if kind == "list"
        else ('"xxxxxxxx"', '"${{local.l{p}}}${{local.l{p}}}"')
    )
    lines = [f"  l0 = {seed}"] + [f"  l{i} = " + step.format(p=i - 1) for i in range(1, levels)]
    text = "locals {\n" + "\n".join(lines) + "\n}\n"
    text += f'resource "aws_kms_key" "k" {{\n  policy = jsonencode(local.l{levels - 1})\n}}\n'
    start = time.monotonic()
    err = _error(tmp_path, {"main.tf": text})
    assert time.monotonic() - start < 20
    assert err.file == "mod/main.tf" and err.line is not None
    assert "more than 1,000,000 steps" in err.message


def test_deeply_nested_expressions_are_refused(tmp_path: Path) -> None:
    depth = 5000
    err = _error(
        tmp_path, {"main.tf": f'resource "aws_kms_key" "k" {{\n  description = {"[" * depth}{"]" * depth}\n}}\n'}
    )
    assert (err.file, err.line) == ("mod/main.tf", 2) and "nested deeper than" in err.message


def test_a_long_operator_chain_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    err = _error(
        tmp_path, {"main.tf": 'resource "aws_kms_key" "k" {\n  description = ' + " + ".join(["1"] * 5000) + "\n}\n"}
    )
    assert err.file == "mod/main.tf" and "nested deeper than" in err.message


def test_deeply_nested_blocks_are_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, {"main.tf": "a {\n" * 100 + "}\n" * 100})
    assert err.file == "mod/main.tf" and err.message == "blocks nested deeper than 64 levels"


def test_a_long_traversal_is_evaluated_without_recursing(tmp_path: Path) -> None:
    files = {"main.tf": f'resource "aws_kms_key" "k" {{\n  description = var.x{".b" * 20000}\n}}\n'}
    world = load_terraform_dir(_dir(tmp_path, files), ".", CTX).worlds[0]
    assert world.keys[0].description is not None and "var.x (not declared)" in world.keys[0].description


def test_a_heredoc_interpolation_left_open_names_its_line(tmp_path: Path) -> None:
    err = _error(
        tmp_path, {"main.tf": 'resource "aws_kms_key" "k" {\n  policy = <<EOT\n{\n  "a": "${var.x"\n}\nEOT\n}\n'}
    )
    assert (err.file, err.line) == ("mod/main.tf", 4) and "without its closing brace" in err.message


def test_a_resource_declared_twice_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, {"a.tf": 'resource "aws_kms_key" "k" {}\n', "b.tf": '\n\nresource "aws_kms_key" "k" {}\n'})
    assert (err.file, err.line, err.message) == ("mod/b.tf", 3, "aws_kms_key.k is declared twice")


def test_arguments_outside_blocks_and_wrong_labels_are_refused(tmp_path: Path) -> None:
    assert _error(tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path, {"main.tf": "\nx = 1\n"}).line == 2
    (tmp_path / "b").mkdir()
    err = _error(tmp_path / "b", {"main.tf": 'resource "aws_kms_key" {}\n'})
    assert err.message == "a resource block with 1 labels (expected 2)"


def test_an_override_of_nothing_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, {"main.tf": "", "override.tf": '\nresource "aws_kms_key" "k" {}\n'})
    assert (err.file, err.line) == ("mod/override.tf", 2)
    assert err.message == "aws_kms_key.k is overridden but declared in no other file"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        # Found by review: an OverflowError (int(inf)) and an AttributeError ("abc".items()) escaped the loader.
        ("local.a[1e400]", "index inf is not a whole number"),
        ('[for x in "abc" : x]', "for over a string (only a list, set, map or object)"),
    ],
)
def test_a_value_terraform_refuses_is_an_unknown_naming_it(tmp_path: Path, expression: str, reason: str) -> None:
    files = {"main.tf": f'locals {{\n  a = [1]\n}}\nresource "aws_sqs_queue" "q" {{\n  name = {expression}\n}}\n'}
    [world] = load_terraform_dir(_dir(tmp_path, files), "mod", CTX).worlds
    assert unknowns_in(world.resources[0].name) == [f"aws_sqs_queue.q.name ({reason})"]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  statement = 5\n", 5, "statement must be statement blocks, not a number"),
        ("  statement = [5]\n", 5, "statement must be statement blocks, not a list holding a number"),
        ("  statement {\n    principals = 5\n  }\n", 6, "principals must be principals blocks, not a number"),
        (
            '  statement {\n    principals = ["a"]\n  }\n',
            6,
            "principals must be principals blocks, not a list holding a string",
        ),
        (
            "  statement {\n    condition = [1]\n  }\n",
            6,
            "condition must be condition blocks, not a list holding a number",
        ),
    ],
)
def test_a_policy_document_with_an_argument_where_blocks_belong_is_refused(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    # Terraform refuses these too ("An argument named ... is not expected here"); they crashed the loader.
    main = (
        'resource "aws_kms_key" "k" {\n  policy = data.aws_iam_policy_document.p.json\n}\n'
        f'data "aws_iam_policy_document" "p" {{\n{body}}}\n'
    )
    err = _error(tmp_path, {"main.tf": main})
    assert (err.file, err.line, err.message) == ("mod/main.tf", line, f"data.aws_iam_policy_document.p: {message}")


def test_a_broken_tfvars_file_is_an_error_naming_it(tmp_path: Path) -> None:
    err = _error(tmp_path, {"main.tf": 'variable "x" {}\n', "terraform.tfvars": 'x = "unterminated\n'})
    assert err.file == "mod/terraform.tfvars" and err.line == 1
    (tmp_path / "terraform.tfvars").unlink()
    err = _error(tmp_path, {"prod.auto.tfvars.json": "[1, 2]"})
    assert err.file == "mod/prod.auto.tfvars.json" and "one JSON object" in err.message


def _mutants(text: str, rng: random.Random, count: int) -> list[str]:
    """Cut-off copies and copies with a few characters replaced by HCL's own punctuation."""
    out = [text[: rng.randrange(len(text))] for _ in range(count // 2)]
    for _ in range(count - len(out)):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice('{}[]()"=$%<>?:.,\n#\\')
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("case", ["refs", "policydoc", "worlds", "resources"])
def test_mutated_modules_load_or_fail_with_an_iac_error_only(tmp_path: Path, case: str) -> None:
    rng = random.Random(f"kmsguard-{case}")  # fixed seed: the same mutants on every run
    sources = sorted((DATA / case).glob("*.tf"))
    outcomes = {"loaded": 0, "refused": 0}
    for i, mutant in enumerate(_mutants(sources[0].read_text(), rng, 40)):
        work = tmp_path / str(i)
        shutil.copytree(DATA / case, work)
        (work / sources[0].name).write_text(mutant)
        try:
            unit = load_terraform_dir(work, case, CTX)
        except IacError as e:
            assert e.file.startswith(f"{case}/") and "\n" not in e.message
            outcomes["refused"] += 1
        else:
            assert isinstance(unit, Unit) and unit.worlds
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 0  # the mutants do break files; each break is an IacError


def test_mutated_plans_load_or_fail_with_an_iac_error_only(tmp_path: Path) -> None:
    rng = random.Random("kmsguard-plan")
    doc = json.loads((DATA / "plan" / "plan.json").read_text())
    path = tmp_path / "plan.json"
    for i in range(60):
        mutant = json.loads(json.dumps(doc))
        _replace_somewhere(mutant, rng, rng.choice([None, 1, "x", [], {}, True, [{"address": 2}]]))
        path.write_text(json.dumps(mutant))
        for side in ("after", "before"):
            try:
                unit = load_terraform_plan(path, "p.json", CTX, side)  # type: ignore[arg-type]
            except IacError as e:
                assert e.file == "p.json", i
            else:
                assert len(unit.worlds) == 1


def _replace_somewhere(doc: object, rng: random.Random, value: object) -> None:
    """Replace one randomly chosen value inside ``doc`` (a dict or list) by ``value``."""
    node = doc
    while True:
        keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            return
        k = rng.choice(keys)
        child = node[k]  # type: ignore[index]
        if not isinstance(child, dict | list) or not child or rng.random() < 0.3:
            node[k] = value  # type: ignore[index]
            return
        node = child
