"""Smoke test of the IaC benchmark (bench/iac_corpus.py, bench/bench_iac.py, bench/checkov-compare.py) on 16 templates.

The benchmark itself is too slow for the suite, and Checkov is not installed here; this shows that the generator
writes valid templates of every kind, deterministically; that the benchmark runs end to end against the real
`kmsguard iac scan`; and that its scoring joins kmsguard's findings to the generator's truth (every declared
object found again, the condition-bounded ``Principal: "*"`` trap not reported as public). It never asserts a time.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hcl2.api import parses_to_tree

BENCH = Path(__file__).resolve().parents[2] / "bench"
TEMPLATES = 16  # the first 16 of seed 2026 hold every kind of template, a trail and every trap of the key policies
KINDS = {"cloudformation-yaml", "cloudformation-json", "cdk", "terraform", "terraform-plan"}
PUBLIC = "key policy lets anyone use the key"


def _load(name: str, filename: str | None = None) -> ModuleType:
    """Import a bench/ script by path: bench/ is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location(f"kmsguard_bench_{name}", BENCH / (filename or f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


corpus_mod = _load("iac_corpus")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return corpus_mod.generate(tmp_path_factory.mktemp("iac") / "corpus", TEMPLATES)


def test_corpus_is_deterministic_and_holds_every_kind_of_template(corpus: Any, tmp_path: Path) -> None:
    again = corpus_mod.generate(tmp_path / "again", TEMPLATES)
    assert _tree(again.root) == _tree(corpus.root)
    assert corpus_mod.truth_path(again.root).read_text() == corpus_mod.truth_path(corpus.root).read_text()
    assert set(corpus.by_kind) == KINDS and sum(corpus.by_kind.values()) == TEMPLATES
    # Unit i depends on the seed and i alone: a smaller corpus is the start of a bigger one.
    smaller = corpus_mod.generate(tmp_path / "smaller", 8)
    assert [u.objects for u in smaller.units] == [u.objects for u in corpus.units[: len(smaller.units)]]


def test_corpus_templates_are_valid(corpus: Any) -> None:
    """cfn-lint passes every CloudFormation template (CDK stacks included); every .tf file parses; every plan
    is `terraform show -json` shaped. A benchmark on broken templates would measure error paths."""
    root = corpus.root
    cfn = sorted(u.unit for u in corpus.units if u.kind == "cloudformation")
    assert any(c.endswith(".template.json") for c in cfn) and any(c.endswith(".yaml") for c in cfn)
    exe = Path(sysconfig.get_path("scripts")) / "cfn-lint"
    done = subprocess.run([str(exe), "--regions", "us-east-1", "--", *cfn], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    tf_files = sorted(root.glob("terraform/*/*.tf"))
    assert tf_files
    for path in tf_files:
        parses_to_tree(path.read_text())
    for u in corpus.units:
        if u.kind == "terraform-plan":
            plan = json.loads((root / u.unit).read_text())
            assert plan["planned_values"]["root_module"]["resources"] and plan["resource_changes"]


@pytest.mark.slow
def test_benchmark_runs_and_scores_kmsguard_against_the_truth(corpus: Any, tmp_path: Path, capsys: Any) -> None:
    bench = _load("bench_iac")
    results_path, report_path = tmp_path / "iac.json", tmp_path / "report.json"
    args = ["--corpus", str(corpus.root), "--no-checkov", "--results", str(results_path), "--report", str(report_path)]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "kmsguard iac scan (CLI, end to end)" in out and "floor" in out
    results = json.loads(results_path.read_text())
    assert results["templates"] == TEMPLATES
    assert results["cli"]["exit_code"] == 1  # the corpus holds failing findings
    # The CLI and the staged in-process run judge the same units into the same findings.
    assert results["in_process"]["units"] == len(corpus.units)
    assert results["cli"]["findings"] == results["in_process"]["findings"] > 0
    assert results["floor"]["files"] == len(bench.template_files(corpus.root))

    compare = bench.load_compare()
    report = json.loads(report_path.read_text())
    truth = compare.load_truth(corpus.root)
    named = {(compare.unit_of(f["location"]["file"]), f["location"]["resource"]) for f in report["findings"]}
    every_kind = compare.scored_objects(truth, ("cloudformation", "terraform", "terraform-plan"))
    assert set(every_kind) <= named, "objects the generator declared that no finding names"

    comparison = compare.compare(corpus.root, report, None)
    assert "the Checkov side is skipped" in comparison.text
    rows = {(r.question, r.cls): r for r in comparison.score.rows}
    trap = rows[(PUBLIC, "star_bounded")]
    assert trap.objects > 0 and trap.kmsguard == 0 and trap.checkov is None
    conditioned = rows[(PUBLIC, "public_cond")]
    assert conditioned.objects > 0 and conditioned.kmsguard == conditioned.objects
