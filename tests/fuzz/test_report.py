"""`kmsguard fix --from-report REPORT` on hostile JSON reports: exit 2 naming the file, or a plan. A report that
loads is planned against the real moto server over HTTP (empty: nothing in it is found again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmsguard.demo.emulator import Emulator

from . import seeds
from .harness import Tally, budget, run
from .mutations import byte_mutants, json_text, tree_mutants, tree_mutated, written


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `scan -f json` report: the findings of the seed snapshot with keys in every state."""
    work = tmp_path_factory.mktemp("report")
    (work / "snapshot.json").write_bytes(seeds.snapshot_files()[1])
    args: list[str | Path] = [
        "scan",
        "--from-snapshot",
        work / "snapshot.json",
        "-f",
        "json",
        "-o",
        work / "report.json",
        "-q",
    ]
    run(Tally("report"), args, [work / "snapshot.json"])
    return work / "report.json"  # a path, not its text: hypothesis prints its arguments with every failure


def plan(tally: Tally, aws: Emulator, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    run(
        tally,
        ["fix", "--from-report", path, "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "-q"],
        [path],
    )


@budget(40)
@given(data=st.data())
def test_byte_mutated_reports(aws: Emulator, tmp_path: Path, report: Path, tally: Tally, data: st.DataObject) -> None:
    plan(tally, aws, tmp_path / "report.json", data.draw(byte_mutants([report.read_bytes()]), label="report"))


@budget(40)
@given(data=st.data())
def test_reports_with_wrong_types_and_hostile_values(
    aws: Emulator, tmp_path: Path, report: Path, tally: Tally, data: st.DataObject
) -> None:
    doc = json.loads(report.read_text())
    # Mostly inside one finding: what a report's loader validates field by field.
    finding = tree_mutated([doc["findings"][:3]]).map(lambda fs: {**doc, "findings": fs})
    mutant = data.draw(st.one_of(tree_mutants([doc], json_text), finding.map(lambda d: written(d, json_text))))
    plan(tally, aws, tmp_path / "report.json", mutant)
