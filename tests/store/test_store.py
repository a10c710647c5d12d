"""The store on SQLite and PostgreSQL: migrations, bulk writes, key-event scans derived in SQL, drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot
from kmsguard.store import StoreError, open_store
from kmsguard.store.drift import compute_drift
from kmsguard.store.migrate import LATEST, current_version
from kmsguard.store.schema import FindingRow, KeyRow, ScanRow
from kmsguard.store.writer import insert_full_scan, insert_key_scan

ACCOUNT = "111122223333"
REGION = "eu-west-1"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def policy(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Root",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "Use",
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": ["kms:Decrypt"],
                    "Resource": "*",
                },
            ],
        }
    )


def key(n: int, **kw: object) -> Key:
    fields: dict[str, object] = {
        "arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k{n}",
        "key_id": f"k{n}",
        "account": ACCOUNT,
        "region": REGION,
        "key_manager": "CUSTOMER",
        "key_state": "Enabled",
        "aliases": [f"alias/app-{n}"],
        "policy": policy(f"arn:aws:iam::{ACCOUNT}:role/App"),
        "rotation_enabled": True,
    }
    fields.update(kw)
    return Key.model_validate(fields)


def finding(k: Key, check: str, status: Status, sev: Severity = Severity.HIGH) -> Finding:
    return Finding(
        check_id=check,
        status=status,
        severity=sev,
        account=k.account,
        region=k.region,
        resource_type="AWS::KMS::Key",
        resource_arn=k.arn,
        message=f"{check} on {k.key_id}",
    )


def scan(keys: list[Key], findings: list[Finding], at: datetime = T0) -> tuple[Snapshot, ScanResult]:
    snap = Snapshot(
        kmsguard_version="t",
        collected_at=at,
        accounts=[AccountSnapshot(account_id=ACCOUNT, regions=[RegionSnapshot(region=REGION, keys=keys)])],
    )
    res = ScanResult(kmsguard_version="t", scanned_at=at, accounts=[ACCOUNT], regions=[REGION], findings=findings)
    return snap, res


def test_open_migrates_once_and_reopens(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as c:
        assert current_version(c) == LATEST
    store.close()
    again = open_store(db_url)  # second open: nothing to apply, same version, no error
    with again.engine.connect() as c:
        assert current_version(c) == LATEST
    again.close()


def test_bad_url_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("nonsense-url")
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def test_full_scan_round_trip_and_summary(db_url: str) -> None:
    store = open_store(db_url)
    k1, k2 = key(1), key(2, rotation_enabled=False)
    snap, res = scan(
        [k1, k2],
        [
            finding(k1, "key_policy_public", Status.PASS),
            finding(k2, "key_rotation_disabled", Status.FAIL, Severity.MEDIUM),
        ],
    )
    with store.session() as s:
        sid = insert_full_scan(s, snap, res)
    with store.session() as s:
        row = s.get(ScanRow, sid)
        assert row is not None
        assert (row.total, row.failing, row.key_count) == (2, 1, 2)
        assert row.failing_by_severity["medium"] == 1
        # one medium failure (weight 3) against one high pass (weight 5)
        assert row.score == pytest.approx(100 * 5 / 8, abs=0.1)
        stored = s.scalars(select(KeyRow).where(KeyRow.scan_id == sid).order_by(KeyRow.arn)).all()
        assert [Key.model_validate_json(r.data) for r in stored] == [k1, k2]
        assert [r.failing for r in stored] == [0, 1]


def test_key_scan_replaces_only_that_key_and_drift_sees_policy_change(db_url: str) -> None:
    store = open_store(db_url)
    keys = [key(i) for i in range(5)]
    findings = [finding(k, "key_policy_public", Status.PASS) for k in keys]
    snap, res = scan(keys, findings)
    with store.session() as s:
        first = insert_full_scan(s, snap, res)
    opened = key(3, policy=policy("*"))
    with store.session() as s:
        second = insert_key_scan(
            s,
            first,
            opened.arn,
            opened,
            [finding(opened, "key_policy_public", Status.FAIL, Severity.CRITICAL)],
            T0 + timedelta(minutes=5),
        )
        drift = compute_drift(s, first, second)
    with store.session() as s:
        counts = s.execute(
            select(FindingRow.status, func.count()).where(FindingRow.scan_id == second).group_by(FindingRow.status)
        ).all()
        assert dict(counts) == {"PASS": 4, "FAIL": 1}
        assert s.scalar(select(func.count()).select_from(KeyRow).where(KeyRow.scan_id == second)) == 5
    kinds = {d.kind: d for d in drift}
    assert set(kinds) == {"new_finding", "key_policy_changed"}
    changed = kinds["key_policy_changed"]
    assert changed.resource_arn == opened.arn and changed.alert
    gained = changed.detail["gained"]
    assert gained and all(g["action"] == "kms:Decrypt" for g in gained)


def test_drift_lifecycle_changes_and_new_and_gone_keys(db_url: str) -> None:
    store = open_store(db_url)
    a, b, c = key(1), key(2), key(3)
    with store.session() as s:
        first = insert_full_scan(s, *scan([a, b], []))
        later = [key(1, rotation_enabled=False, key_state="Disabled"), c]
        second = insert_full_scan(s, *scan(later, [], T0 + timedelta(hours=1)))
        drift = {(d.kind, d.resource_arn): d for d in compute_drift(s, first, second)}
    assert set(drift) == {
        ("rotation_disabled", a.arn),
        ("key_disabled", a.arn),
        ("key_gone", b.arn),
        ("key_created", c.arn),
    }
    assert drift[("key_disabled", a.arn)].alert and not drift[("key_created", c.arn)].alert


def test_pending_deletion_and_resolved_findings(db_url: str) -> None:
    store = open_store(db_url)
    a = key(1)
    with store.session() as s:
        first = insert_full_scan(s, *scan([a], [finding(a, "key_missing_tags", Status.FAIL)]))
        gone = key(1, key_state="PendingDeletion")
        second = insert_full_scan(s, *scan([gone], [finding(gone, "key_missing_tags", Status.PASS)]))
        kinds = sorted(d.kind for d in compute_drift(s, first, second))
    assert kinds == ["key_scheduled_for_deletion", "resolved_finding"]
