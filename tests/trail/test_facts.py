"""trail/facts.py: the engines' time values read right, whatever the machine's time zone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from kmsguard.trail.facts import epoch, iso

T = 1_717_977_600  # 2024-06-10T00:00:00Z


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_spark_timestamp_is_the_drivers_local_time(new_york: None) -> None:
    # PySpark's collect() builds TimestampType values with datetime.fromtimestamp: naive, in the driver's local time.
    spark_value = datetime.fromtimestamp(T)
    assert spark_value.hour == 20  # 2024-06-09 20:00 in New York: read as UTC it would be four hours off
    assert epoch(spark_value) == T
    assert iso(spark_value) == "2024-06-10T00:00:00Z"


def test_integers_and_aware_datetimes_are_read_as_they_are(new_york: None) -> None:
    assert epoch(T) == T and iso(T) == "2024-06-10T00:00:00Z"
    assert epoch(datetime.fromtimestamp(T, UTC)) == T
    assert iso(None) is None
