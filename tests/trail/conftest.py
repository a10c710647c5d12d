"""Trail test helpers: where the real samples are, identities, and one SparkSession."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kmsguard.trail import fastpath
from shared_data import shared_data  # tests/ is on sys.path (no __init__.py at its top)

# The real samples the repository may carry (tests/data/cloudtrail/README.md: sources and licences).
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "cloudtrail"
INVICTUS = SAMPLES / "invictus_ir_aws_dataset"
DEVGUIDE = SAMPLES / "kms_devguide_examples.json"
ACCT = "111122223333"
OTHER = "444455556666"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def user(name: str, account: str = ACCT) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


@pytest.fixture(scope="session")
def native_scanner() -> None:
    """For the tests of the C scanner: without it they would compare nothing, so they fail, saying why."""
    if not fastpath.AVAILABLE:
        pytest.fail(
            "kmsguard.trail._fastdecode is not built (no C compiler or Python headers when `pip install -e .` ran):"
            " ./scripts/test installs gcc and the headers, then builds it",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def sans_lab() -> Path:
    """The SANS SEC504 S3 ransomware lab's trail (3,872 files): no licence, so only in ../shared."""
    return shared_data("cloudtrail", "sans504_s3_ransomware_lab")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession for every Spark test (starting one costs seconds)."""
    import os
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("kmsguard-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    yield session
    session.stop()
