"""Fixtures for the fix tests: a typer app with the fix command, and keys seeded over HTTP in moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from kmsguard.cli import fix as fix_cli
from kmsguard.demo.emulator import Emulator
from kmsguard.fix.journal import KEY_ENV

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
APP = f"arn:aws:iam::{ACCOUNT}:role/app"
OUTSIDER = "arn:aws:iam::999988887777:root"


@pytest.fixture(autouse=True)
def journal_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own journal key (created on first use), never the user's ~/.config/kmsguard/journal.key."""
    path = tmp_path_factory.mktemp("config") / "kmsguard" / "journal.key"
    monkeypatch.setenv(KEY_ENV, str(path))
    return path


def cli_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """A group, so that commands are named as in kmsguard."""

    app.command("fix")(fix_cli.fix)
    return app


@pytest.fixture
def run(aws: Emulator) -> Callable[..., Result]:
    """Invoke `kmsguard fix ...` against the test's moto server (endpoint and region preset)."""

    def invoke(*args: str, endpoint: str | None = None) -> Result:
        base = ["fix", "--endpoint-url", endpoint or aws.endpoint_url, "--regions", "us-east-1", "--quiet"]
        return CliRunner().invoke(cli_app(), base + list(args))

    return invoke


def messy_policy(*statements: dict[str, Any]) -> str:
    """A policy written the way people write them by hand: odd spacing, so byte-for-byte restores show."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(" ,", ":  "))


def root_statement() -> dict[str, Any]:
    return {
        "Sid": "EnableIAMUserPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
    }


def make_key(kms: Any, *, policy: str | None = None, rotation_days: int | None = None, alias: str | None = None) -> str:
    """A symmetric CMK (rotation off unless ``rotation_days``); returns its ARN."""
    kwargs: dict[str, Any] = {"Description": "test key"}
    if policy is not None:
        kwargs["Policy"] = policy
    arn: str = kms.create_key(**kwargs)["KeyMetadata"]["Arn"]
    if rotation_days is not None:
        kms.enable_key_rotation(KeyId=arn, RotationPeriodInDays=rotation_days)
    if alias is not None:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn
