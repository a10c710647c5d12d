"""The CloudTrail usage summary in the store (migration 2), on SQLite and PostgreSQL: written with a full
scan, read back exactly, found from key-event scans derived from it, and an upgrade from a version-1 store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import create_engine, inspect, select

from kmsguard.model.finding import Status
from kmsguard.model.usage import KeySeries, KeyTotals, PrincipalTotals, TrailUsage
from kmsguard.report._time import utc
from kmsguard.store import open_store
from kmsguard.store.db import normalize_url
from kmsguard.store.migrate import MIGRATIONS, VERSION_TABLE, _meta, current_version
from kmsguard.store.queries import keys_in_scan, trail_usage
from kmsguard.store.schema import ScanRow, TrailUsageRow
from kmsguard.store.writer import insert_full_scan, insert_key_scan

from .test_store import ACCOUNT, T0, finding, key, scan

ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k1"


def usage(calls: int) -> TrailUsage:
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(3)]
    return TrailUsage(
        window_start=datetime(2025, 1, 1, 0, 5, tzinfo=UTC),
        window_end=datetime(2025, 1, 3, 23, 0, tzinfo=UTC),
        events=calls + 2,
        keys_seen=2,
        principals_seen=1,
        days=days,
        daily=[KeySeries(key_arn=ARN, alias="alias/app-1", calls=[calls, 0, 1])],
        daily_complete=True,
        top_keys=[
            KeyTotals(
                key_arn=ARN, alias="alias/app-1", calls=calls + 1, crypto_calls=calls + 1, errors=0, principals=1
            ),
            KeyTotals(key_arn="alias/elsewhere", calls=1, crypto_calls=0, errors=1, principals=1),
        ],
        top_principals=[PrincipalTotals(principal=f"arn:aws:iam::{ACCOUNT}:role/App", calls=calls + 2, keys=2)],
    )


def test_usage_is_stored_with_its_scan_and_found_from_later_scans(db_url: str) -> None:
    store = open_store(db_url)
    k1, k2 = key(1), key(2)
    plain_snap, plain = scan([k1, k2], [finding(k1, "key_policy_public", Status.PASS)])
    snap, res = scan([k1, k2], [finding(k1, "key_policy_public", Status.PASS)], at=T0 + timedelta(hours=1))
    res.trail_usage = usage(40)
    with store.session() as s:
        before = insert_full_scan(s, plain_snap, plain)  # a scan without --trail
        with_usage = insert_full_scan(s, snap, res)
        derived = insert_key_scan(s, with_usage, k2.arn, k2, [], T0 + timedelta(hours=2))
    with store.session() as s:
        assert trail_usage(s, before) is None  # nothing at or before it
        got = trail_usage(s, with_usage)
        assert got is not None and got.scan_id == with_usage and got.usage == res.trail_usage
        from_derived = trail_usage(s, derived)  # a key-event scan analyses no logs: its parent's usage
        assert from_derived is not None and from_derived.scan_id == with_usage
        row = s.get(TrailUsageRow, with_usage)
        assert row is not None and row.events == 42 and row.window_end is not None
        assert utc(row.window_end) == datetime(2025, 1, 3, 23, 0, tzinfo=UTC)  # SQLite keeps it naive UTC
        # Linking from the overview: the snapshot's key, not the reference logged by alias only.
        assert keys_in_scan(s, derived, [ARN, "alias/elsewhere"]) == {ARN}
        assert keys_in_scan(s, derived, []) == set()
    # A newer full scan with other usage wins for itself and for what follows.
    snap3, res3 = scan([k1], [], at=T0 + timedelta(hours=3))
    res3.trail_usage = usage(7)
    with store.session() as s:
        latest = insert_full_scan(s, snap3, res3)
    with store.session() as s:
        got = trail_usage(s, latest)
        assert got is not None and got.usage.daily[0].calls == [7, 0, 1]
        # Deleting a scan takes its usage with it (ON DELETE CASCADE, as for keys and findings).
        s.delete(s.get(ScanRow, latest))
    with store.session() as s:
        assert s.get(TrailUsageRow, latest) is None
        again = trail_usage(s, latest)
        assert again is not None and again.scan_id == with_usage
    store.close()


def test_a_version_1_store_is_upgraded_and_keeps_its_scans(db_url: str) -> None:
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:  # what kmsguard wrote before migration 2 existed
        _meta.create_all(conn)
        version, description, v1 = MIGRATIONS[0]
        v1(conn)
        conn.execute(VERSION_TABLE.insert().values(version=version, description=description))
        conn.execute(
            ScanRow.__table__.insert().values(  # type: ignore[attr-defined]
                started_at=T0, finished_at=T0, kind="full", accounts=[], regions=[], failing_by_severity={}
            )
        )
        assert not inspect(conn).has_table("trail_usage")
    engine.dispose()
    store = open_store(db_url)
    with store.engine.connect() as c:
        assert current_version(c) == 2
        assert inspect(c).has_table("trail_usage")
    with store.session() as s:
        (old,) = s.scalars(select(ScanRow)).all()
        assert trail_usage(s, old.id) is None  # old scans read as "no trail data"
    store.close()


def test_the_migrated_table_is_the_one_the_code_maps(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as c:
        insp = inspect(c)
        columns = {col["name"]: col["nullable"] for col in insp.get_columns("trail_usage")}
        fks = insp.get_foreign_keys("trail_usage")
        pk = insp.get_pk_constraint("trail_usage")
    mapped = TrailUsageRow.__table__
    assert columns == {col.name: col.nullable for col in mapped.columns}  # type: ignore[attr-defined]
    assert pk["constrained_columns"] == ["scan_id"]
    assert [(fk["referred_table"], fk["constrained_columns"], fk["options"].get("ondelete")) for fk in fks] == [
        ("scans", ["scan_id"], "CASCADE")
    ]
    store.close()
