"""Many templates on every core (iac.run): the pool gives exactly what one process gives, and a template that
cannot be read stops the run naming the first such file in order, whichever worker met it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kmsguard.config import ScanConfig
from kmsguard.iac.declared import IacContext, IacError
from kmsguard.iac.discover import sources
from kmsguard.iac.judge import iac_checks
from kmsguard.iac.run import judge_sources

DATA = Path(__file__).parent / "data"
CTX = IacContext()


def _fingerprints(findings: list) -> list[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    return sorted((f.check_id, f.resource_arn, f.status.value, f.message) for f in findings)


def test_a_pool_of_two_workers_finds_what_one_process_finds() -> None:
    found = sources([DATA / "cli" / "repo", DATA / "deploy", DATA / "terraform"], DATA)
    assert len(found) >= 8
    one = judge_sources(found, CTX, ScanConfig(), iac_checks(), workers=1)
    two = judge_sources(found, CTX, ScanConfig(), iac_checks(), workers=2)
    assert one.units == two.units and one.units >= 8
    assert _fingerprints(one.findings) == _fingerprints(two.findings) and one.findings


def test_the_first_unreadable_template_in_order_stops_the_run(tmp_path: Path) -> None:
    for i in range(12):
        shutil.copy(DATA / "deploy" / "keys.yaml", tmp_path / f"t{i:02}.yaml")
    (tmp_path / "t05.yaml").write_text("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  K: [unclosed\n")
    (tmp_path / "t09.yaml").write_text("AWSTemplateFormatVersion: '2010-09-09'\nResources: {K: {Type: 7}}\n")
    found = sources([tmp_path], tmp_path)
    with pytest.raises(IacError) as err:
        judge_sources(found, CTX, ScanConfig(), iac_checks(), workers=2)
    assert err.value.file == "t05.yaml"
