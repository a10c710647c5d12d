"""Shared fixtures: a real moto server over HTTP (with kmsguard's emulator layer), per test worker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest

from faultproxy import FaultProxy  # tests/ is on sys.path (no __init__.py at its top)
from kmsguard.demo.emulator import Emulator


@pytest.fixture(autouse=True, scope="session")
def _no_real_aws() -> Iterator[None]:
    """Tests never reach real AWS: fake credentials, no profile, a default region."""
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
        )
    }
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(k, None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Emulator]:
    """One moto server (with the emulator layer) for this test worker."""
    # Without AWS managed IAM policies: they make every reset ~3 s; tests that need them switch them on
    # for themselves (tests/access/test_access_moto.py).
    with Emulator(aws_managed_policies=False) as emu:
        yield emu


@pytest.fixture
def aws(moto_server: Emulator) -> Iterator[Emulator]:
    """The moto server, emptied before the test: every test starts from a blank AWS."""
    moto_server.reset()
    yield moto_server


@pytest.fixture
def client(aws: Emulator):  # type: ignore[no-untyped-def]
    """boto3 client factory bound to the test's moto server: client("kms", "eu-west-1")."""

    def make(service: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=aws.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


@pytest.fixture
def proxy(aws: Emulator) -> Iterator[FaultProxy]:
    """A real HTTP proxy to the test's moto server: counts calls per operation and injects chosen faults."""
    p = FaultProxy(aws.endpoint_url).start()
    yield p
    p.stop()
