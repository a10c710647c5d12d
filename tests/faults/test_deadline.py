"""`--deadline`: an endpoint that accepts calls and never answers cannot keep a run going. When the deadline passes no
call starts, calls in flight end at their `--timeout`, what was read is judged and reported, what was not is an
ERROR finding saying the deadline passed, and the run exits 3.

The scans run as their own process (``kmsguard_process``), bounded by a subprocess timeout; the tests assert exit
codes and findings, never wall time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from faultproxy import FaultProxy
from kmsguard.store.db import open_store
from kmsguard.store.schema import FindingRow

from .conftest import EAST, kmsguard_process, make_keys

pytestmark = pytest.mark.timeout(120)

# The calls kmsguard makes per key after DescribeKey (collect/kms.py): hung, each costs a key one --timeout.
PER_KEY = ("GetKeyPolicy", "GetKeyRotationStatus", "ListResourceTags", "ListGrants")
# 40 keys x 4 hung calls of 1 s on 16 workers: ~10 s of work, twice the deadline.
KEYS = [f"k{i:02}" for i in range(40)]


def test_a_scan_past_its_deadline_judges_what_was_read_and_exits_3(proxy: FaultProxy, client: Any) -> None:
    estate = make_keys(client, *KEYS)
    for operation in PER_KEY:
        proxy.hang(operation)
    run = kmsguard_process(
        "scan", "--endpoint-url", proxy.endpoint_url, "--regions", EAST, "-f", "json", "-q", "--fail-on", "never",
        "--timeout", "1", "--max-attempts", "1", "--deadline", "5", "--concurrency", "16",
    )  # fmt: skip
    assert run.exit_code == 3, run.stderr
    assert "the --deadline of 5 s passed before AWS was read in full" in run.stderr
    # Nothing is lost: every key is reported, and each has the ERROR of what could not be read and why.
    cut = [f for f in run.errors() if f["evidence"].get("code") == "DeadlinePassed"]
    assert cut and all("--deadline of 5 s passed before this call was made" in f["message"] for f in cut)
    for arn in estate.arns.values():
        assert run.judged(arn), arn
        failed = run.read_errors(arn)
        assert failed and {code for _, code in failed} <= {"ReadTimeoutError", "DeadlinePassed"}, failed
        # DescribeKey was never hung: what it read (the key's state) was judged.
        assert any(f["resource_arn"] == arn and f["status"] in ("PASS", "FAIL") for f in run.findings), arn
    # The hung calls that were in flight ended at their timeout; those after the deadline never started.
    assert {code for arn in estate.arns.values() for _, code in run.read_errors(arn)} == {
        "ReadTimeoutError",
        "DeadlinePassed",
    }


def test_a_monitor_cycle_past_its_deadline_stores_what_was_read_and_exits_3(
    proxy: FaultProxy, client: Any, tmp_path: Path
) -> None:
    # 80 keys on 16 workers: five rounds of 1 s, past a 4 s deadline. The deadline leaves room for ListKeys on a
    # loaded machine (at 2 s a CI worker under load once ran out of it before anything was listed).
    estate = make_keys(client, *(f"m{i:02}" for i in range(80)))
    proxy.hang("DescribeKey")
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    run = kmsguard_process(
        "monitor", "--once", "--db", db, "--endpoint-url", proxy.endpoint_url, "--regions", EAST, "-q",
        "--timeout", "1", "--max-attempts", "1", "--deadline", "4", "--concurrency", "16",
    )  # fmt: skip
    assert run.exit_code == 3, run.stderr
    assert "the --deadline of 4 s passed" in run.stderr
    with open_store(db).session() as s:
        rows = s.execute(select(FindingRow.resource_arn, FindingRow.status, FindingRow.message)).all()
    assert {arn for arn, _, _ in rows} >= set(estate.arns.values())  # every key stored
    assert any(status == "ERROR" and "--deadline of 4 s passed" in message for _, status, message in rows)
