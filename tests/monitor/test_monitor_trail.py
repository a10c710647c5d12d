"""`kmsguard monitor --trail`: each full cycle analyses the CloudTrail logs too, merges their findings like
`scan --trail` and stores the key usage summary with the scan, on SQLite and PostgreSQL. The estate is a real
moto server; the logs are synthetic trail files naming its keys."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kmsguard.aws.options import AwsOptions
from kmsguard.cli.main import app
from kmsguard.demo.emulator import Emulator
from kmsguard.monitor.service import Monitor, MonitorSettings, TrailError
from kmsguard.store import open_store
from kmsguard.store.queries import latest_scan, trail_usage
from kmsguard.store.schema import DriftRow, FindingRow, ScanRow
from kmsguard.trail.synth import event, write_trail_files

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = datetime(2025, 3, 1, tzinfo=UTC)
APP = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
PROBER = f"arn:aws:iam::{ACCOUNT}:user/prober"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trail cache defaults to ~/.cache: keep each test's in its own directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def day_of_use(arn: str, day: int) -> list[dict[str, Any]]:
    t = T0 + timedelta(days=day)
    out = [event("Decrypt", arn, APP, t + timedelta(hours=h)) for h in range(24)]
    # By alias, with no resources block: the snapshot resolves it to the same key.
    out += [
        event("GenerateDataKey", "alias/orders", APP, t + timedelta(hours=h), recipient=ACCOUNT, with_resources=False)
        for h in (1, 2)
    ]
    return out


def probing(arn: str) -> list[dict[str, Any]]:
    t = T0 + timedelta(days=1, hours=12)
    return [event("Decrypt", arn, PROBER, t + timedelta(seconds=10 * i), error="AccessDenied") for i in range(8)]


@pytest.fixture
def orders(client: Callable[..., Any]) -> dict[str, str]:
    kms = client("kms", REGION)
    arn = kms.create_key(Description="orders")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/orders", TargetKeyId=arn)
    idle = kms.create_key(Description="idle")["KeyMetadata"]["Arn"]
    return {"orders": arn, "idle": idle}


def settings(aws: Emulator, db_url: str, trail: list[str]) -> MonitorSettings:
    options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
    return MonitorSettings(db_url=db_url, options=options, trail=trail, retry_attempts=2, retry_base=0.05)


def test_each_cycle_merges_trail_findings_and_stores_usage(
    aws: Emulator, orders: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    write_trail_files(
        logs, day_of_use(orders["orders"], 0) + day_of_use(orders["orders"], 1) + probing(orders["orders"])
    )
    mon = Monitor(settings(aws, db_url, [str(logs)]))
    first = mon.full_cycle()

    with mon.store.session() as s:
        burst = s.scalars(
            select(FindingRow).where(
                FindingRow.scan_id == first.scan_id, FindingRow.check_id == "trail_decrypt_failure_burst"
            )
        ).all()
        assert [f.resource_arn for f in burst] == [orders["orders"]]
        assert burst[0].key_arn == orders["orders"]  # a key finding: on the key's page like any other
        stored = trail_usage(s, first.scan_id)
        assert stored is not None and stored.scan_id == first.scan_id
        u = stored.usage
        top = u.top_keys[0]
        # 48 Decrypt + 4 GenerateDataKey by alias (merged into the key) + 8 refused Decrypt.
        assert (top.key_arn, top.alias, top.calls, top.errors) == (orders["orders"], "alias/orders", 60, 8)
        assert u.keys_seen == 1 and u.totals_for(orders["idle"]) is None
        series = u.series_for(orders["orders"])
        assert series is not None and series.calls == [26, 26 + 8]

    # New logs arrive: the next cycle reads them (incrementally) and stores a newer summary.
    write_trail_files(logs, day_of_use(orders["orders"], 2))
    second = mon.full_cycle()
    with mon.store.session() as s:
        stored = trail_usage(s, second.scan_id)
        assert stored is not None and stored.scan_id == second.scan_id
        assert stored.usage.top_keys[0].calls == 60 + 26 and len(stored.usage.days) == 3
        # The trail finding is the same finding in both scans: no drift, so no second alert about it.
        kinds = s.scalars(select(DriftRow.kind).where(DriftRow.scan_id == second.scan_id)).all()
        assert "resolved_finding" not in kinds and "new_finding" not in kinds


def test_a_cycle_whose_logs_are_gone_is_skipped_not_stored_half(
    aws: Emulator, orders: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    write_trail_files(logs, day_of_use(orders["orders"], 0))
    mon = Monitor(settings(aws, db_url, [str(logs)]))
    mon.full_cycle()
    shutil.rmtree(logs)
    with pytest.raises(TrailError, match="no such file or directory"):
        mon.full_cycle()
    with mon.store.session() as s:
        assert len(s.scalars(select(ScanRow.id)).all()) == 1  # no scan without its trail findings


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_monitor_once_with_trail_from_the_command_line(
    aws: Emulator, orders: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    write_trail_files(logs, day_of_use(orders["orders"], 0))
    base = ["monitor", "--once", "--db", db_url, "--endpoint-url", aws.endpoint_url, "--region", REGION, "-q"]
    res = CliRunner().invoke(app, [*base, "--trail", str(logs)])
    assert res.exit_code == 0, res.output
    store = open_store(db_url)
    with store.session() as s:
        scan = latest_scan(s)
        assert scan is not None
        stored = trail_usage(s, scan.id)
        assert stored is not None and stored.usage.top_keys[0].key_arn == orders["orders"]
    store.close()
    missing = CliRunner().invoke(app, [*base, "--trail", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "--trail" in missing.output and "no such file" in missing.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_monitor_once_with_trail_stores_a_corrupt_file_as_an_error_finding(
    aws: Emulator, orders: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    """One good and one corrupt trail file: the cycle is stored, with the corrupt file as an ERROR finding (issue 13,
    section 3), and the good file's usage."""
    logs = tmp_path / "logs"
    (good,) = write_trail_files(logs, day_of_use(orders["orders"], 0)[:1])
    corrupt = good.with_name(good.name.replace(".json.gz", "-corrupt.json.gz"))
    corrupt.write_bytes(b"\x1f\x8b\x08\x00 cut short")
    base = ["monitor", "--once", "--db", db_url, "--endpoint-url", aws.endpoint_url, "--region", REGION, "-q"]
    res = CliRunner().invoke(app, [*base, "--trail", str(logs)])
    assert res.exit_code in (0, 1), res.output  # the cycle ran and was stored (an ERROR finding may fail --once)
    store = open_store(db_url)
    with store.session() as s:
        scan = latest_scan(s)
        assert scan is not None
        (f,) = s.scalars(
            select(FindingRow).where(FindingRow.scan_id == scan.id, FindingRow.check_id == "trail_logs_unreadable")
        ).all()
        assert f.status == "ERROR" and f.resource_arn == str(corrupt) and (f.account, f.region) == (ACCOUNT, REGION)
        assert "truncated or corrupt gzip" in f.message
        stored = trail_usage(s, scan.id)
        assert stored is not None and stored.usage.events == 1
    store.close()
