"""Fixtures for the collector tests: the fault-injecting proxy in front of the moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kmsguard.demo.emulator import Emulator

from .faultproxy import FaultProxy


@pytest.fixture
def proxy(aws: Emulator) -> Iterator[FaultProxy]:
    """A proxy to the test's moto server: counts calls per operation and injects chosen faults."""
    p = FaultProxy(aws.endpoint_url).start()
    yield p
    p.stop()
