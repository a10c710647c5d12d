"""`monitor --once` and `export securityhub` against a misbehaving AWS: the same faults as `scan`, the same outcome
(ERROR findings naming the failure, nothing lost, no traceback), each with its command's exit code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from faultproxy import FaultProxy
from kmsguard.store.db import open_store
from kmsguard.store.schema import FindingRow

from .conftest import EAST, Estate, kmsguard

pytestmark = pytest.mark.timeout(60)


def test_monitor_once_stores_each_fault_as_an_error_on_its_key_and_exits_1(
    proxy: FaultProxy, estate: Estate, tmp_path: Path
) -> None:
    proxy.garbage("GetKeyPolicy", contains=estate.ids["hit"])
    proxy.reset("ListGrants", contains=estate.ids["hit"])
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    run = kmsguard("monitor", "--once", "--db", db, "--endpoint-url", proxy.endpoint_url, "--regions", EAST, "-q",
                   "--max-attempts", "1")  # fmt: skip
    assert run.exit_code == 1, run.stdout + run.stderr  # --once fails on ERROR findings
    assert re.search(r"\b[1-9]\d* error\(s\)", run.stdout), run.stdout
    with open_store(db).session() as s:
        rows = s.execute(select(FindingRow.resource_arn, FindingRow.check_id, FindingRow.evidence)).all()
    failed = sorted(
        (ev["operation"], ev["code"])
        for arn, check, ev in rows
        if check == "scan_collection_error" and arn == estate.arns["hit"]
    )
    assert failed == [("GetKeyPolicy", "ResponseParserError"), ("ListGrants", "ConnectionClosedError")]
    assert {arn for arn, _, _ in rows} >= set(estate.arns.values())
    assert not any(check == "scan_collection_error" and arn == estate.arns["fine"] for arn, check, _ in rows)


def _hub_findings(client: Any) -> list[dict[str, Any]]:
    hub = client("securityhub", EAST)
    return [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]]


def test_export_securityhub_sends_the_errors_of_a_faulted_scan(proxy: FaultProxy, estate: Estate, client: Any) -> None:
    proxy.garbage("GetKeyPolicy", contains=estate.ids["hit"])
    run = kmsguard("export", "securityhub", "--endpoint-url", proxy.endpoint_url, "--regions", EAST, "-q")
    assert run.exit_code == 0, run.stdout + run.stderr  # every finding imported, the ERROR ones included
    unreadable = [
        f
        for f in _hub_findings(client)
        if f["Resources"][0]["Id"] == estate.arns["hit"] and f["Compliance"]["Status"] == "NOT_AVAILABLE"
    ]
    assert any("ResponseParserError" in f["Description"] for f in unreadable), unreadable


def test_export_securityhub_that_never_answers_exits_3_within_its_timeout(proxy: FaultProxy, estate: Estate) -> None:
    import_findings = "POST /findings/import"  # BatchImportFindings: REST, so the proxy names it by method and path
    proxy.hang(import_findings)
    run = kmsguard("export", "securityhub", "--endpoint-url", proxy.endpoint_url, "--regions", EAST, "-q",
                   "--timeout", "2", "--max-attempts", "1")  # fmt: skip
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "Security Hub in us-east-1" in run.stderr and "Read timeout" in run.stderr
    assert proxy.count(import_findings) == 1
