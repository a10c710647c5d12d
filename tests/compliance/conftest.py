"""The demo estate, collected once per test worker over HTTP from the moto server, for the report tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import Emulator
from kmsguard.demo.estate import EstateInfo, seed_estate
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge


@pytest.fixture(scope="session")
def demo_estate(moto_server: Emulator) -> Iterator[tuple[EstateInfo, Snapshot]]:
    moto_server.reset()
    info = seed_estate(moto_server.endpoint_url)
    url = moto_server.endpoint_url
    options = AwsOptions(endpoint_url=url, regions=list(info.regions), accounts=list(info.accounts))
    yield info, collect_snapshot(options)


@pytest.fixture(scope="session")
def demo_snapshot(demo_estate: tuple[EstateInfo, Snapshot]) -> Snapshot:
    return demo_estate[1]


@pytest.fixture(scope="session")
def demo_result(demo_snapshot: Snapshot) -> ScanResult:
    return judge(demo_snapshot)
