from __future__ import annotations

import pytest
from report_sample import make_result, sample_findings

from kmsguard.model.result import ScanResult


@pytest.fixture
def result() -> ScanResult:
    return make_result(sample_findings())
