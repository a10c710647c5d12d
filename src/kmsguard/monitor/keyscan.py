"""Re-reading and re-judging one key after an event.

The re-read itself is ``kmsguard.collect.single_key.collect_key`` (collection, with the scan's per-key
call budget).

``judge_key`` judges the key inside the rest of its region as last collected (resources, trails, ...) so
checks that look at what uses the key see the same context as in a full scan, and keeps only the findings
about the key itself: those are the rows a key-event scan replaces.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kmsguard.arn import partition_in
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot

KEY_TYPE = "AWS::KMS::Key"


def replace_key(base: Snapshot | None, key: Key, kmsguard_version: str) -> Snapshot:
    """``base`` with ``key`` put in its region (added or replaced); a minimal snapshot when there is no base."""
    snap = (
        base.model_copy(deep=True)
        if base is not None
        else Snapshot(kmsguard_version=kmsguard_version, collected_at=key.creation_date or datetime.now(UTC))
    )
    acct = next((a for a in snap.accounts if a.account_id == key.account), None)
    if acct is None:
        acct = AccountSnapshot(account_id=key.account, partition=partition_in(key.arn))
        snap.accounts.append(acct)
    reg = next((r for r in acct.regions if r.region == key.region), None)
    if reg is None:
        reg = RegionSnapshot(region=key.region)
        acct.regions.append(reg)
    reg.keys = [k for k in reg.keys if k.arn != key.arn] + [key]
    return snap


def region_only(snap: Snapshot, key: Key) -> Snapshot:
    """The key's account and region with only that key (the other keys are not re-judged)."""
    out = Snapshot(kmsguard_version=snap.kmsguard_version, collected_at=snap.collected_at, source=snap.source)
    for a in snap.accounts:
        if a.account_id != key.account:
            continue
        acct = a.model_copy(update={"regions": []})
        for r in a.regions:
            if r.region == key.region:
                acct.regions.append(r.model_copy(update={"keys": [key]}))
        out.accounts.append(acct)
    return out


def judge_key(base: Snapshot | None, key: Key, config: ScanConfig) -> list[Finding]:
    from kmsguard import __version__
    from kmsguard.pipeline import judge

    whole = replace_key(base, key, __version__)
    result = judge(region_only(whole, key), config, warn=lambda _m: None)
    return [f for f in result.findings if f.resource_type == KEY_TYPE and f.resource_arn == key.arn]
