"""A 10,000-key scan through the store: bulk-written, then listed with SQL filters and paging, on SQLite and
PostgreSQL. Correctness only (tests never assert time); the timings are in docs/monitor.md."""

from __future__ import annotations

from datetime import UTC, datetime

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot
from kmsguard.store import open_store
from kmsguard.store.queries import FindingFilter, KeyFilter, list_findings, list_keys
from kmsguard.store.writer import insert_full_scan, insert_key_scan

N = 10_000
ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["eu-west-1", "us-east-1"]
CHECKS = [
    ("key_rotation_disabled", Severity.MEDIUM),
    ("key_missing_tags", Severity.LOW),
    ("key_policy_public", Severity.CRITICAL),
]


def estate() -> tuple[Snapshot, ScanResult]:
    now = datetime(2025, 1, 6, tzinfo=UTC)
    regions: dict[tuple[str, str], RegionSnapshot] = {}
    findings = []
    for i in range(N):
        acct, region = ACCOUNTS[i % 2], REGIONS[(i // 2) % 2]
        arn = f"arn:aws:kms:{region}:{acct}:key/{i:08d}"
        key = Key(
            arn=arn,
            key_id=f"{i:08d}",
            account=acct,
            region=region,
            key_manager="CUSTOMER",
            key_state="Enabled",
            rotation_enabled=i % 3 != 0,
            aliases=[f"alias/k{i}"],
            policy="{}",
        )
        regions.setdefault((acct, region), RegionSnapshot(region=region)).keys.append(key)
        for j, (check, sev) in enumerate(CHECKS):
            failing = (
                (check == "key_rotation_disabled" and i % 3 == 0)
                or (j == 1 and i % 5 == 0)
                or (j == 2 and i % 1000 == 7)
            )
            findings.append(
                Finding(
                    check_id=check,
                    status=Status.FAIL if failing else Status.PASS,
                    severity=sev,
                    account=acct,
                    region=region,
                    resource_type="AWS::KMS::Key",
                    resource_arn=arn,
                    message=f"{check} {i}",
                )
            )
    accounts = [
        AccountSnapshot(account_id=a, regions=[r for (ra, _), r in regions.items() if ra == a]) for a in ACCOUNTS
    ]
    snap = Snapshot(kmsguard_version="t", collected_at=now, accounts=accounts)
    return snap, ScanResult(kmsguard_version="t", scanned_at=now, accounts=ACCOUNTS, regions=REGIONS, findings=findings)


def test_ten_thousand_keys_store_filter_and_page(db_url: str) -> None:
    snap, result = estate()
    store = open_store(db_url)
    with store.session() as s:
        scan_id = insert_full_scan(s, snap, result)
    with store.session() as s:
        rot = list_findings(
            s,
            scan_id,
            FindingFilter(check_id="key_rotation_disabled", status="FAIL", account="111111111111", region="us-east-1"),
            page=3,
        )
        expected = [i for i in range(N) if i % 3 == 0 and i % 2 == 0 and (i // 2) % 2 == 1]
        assert rot.total == len(expected)
        assert len(rot.rows) == 50
        public = list_findings(s, scan_id, FindingFilter(severity="critical", status="FAIL"))
        assert sorted(f.message for f, _ in public.rows) == sorted(f"key_policy_public {i}" for i in range(7, N, 1000))
        keys = list_keys(s, scan_id, KeyFilter(rotation="off", region="eu-west-1", failing=True), page=1)
        assert keys.total == sum(1 for i in range(N) if i % 3 == 0 and (i // 2) % 2 == 0)
        found = list_keys(s, scan_id, KeyFilter(q="alias/k4242"))
        assert [r.key_id for r in found.rows] == ["00004242"]
        # A key event on a 10,000-key scan: the derived scan is copied in SQL and stays complete.
        key = snap.all_keys()[0].model_copy(update={"rotation_enabled": True})
        derived = insert_key_scan(s, scan_id, key.arn, key, [], datetime.now(UTC))
        assert list_keys(s, derived, KeyFilter()).total == N
    store.close()
