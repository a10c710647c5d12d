"""Keys collected from a real moto server over HTTP: metadata, aliases, tags, policy, rotation, grants."""

from __future__ import annotations

import json
from typing import Any

from faultproxy import FaultProxy  # tests/ is on sys.path: the shared HTTP fault proxy
from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.model.snapshot import Key, Snapshot

from .estate import ACCOUNT, EAST, WEST, Estate, build_keys

KEY_CALLS = ("DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "ListResourceTags", "ListGrants")


def scan(endpoint: str, regions: list[str], **kw: Any) -> Snapshot:
    return collect_snapshot(AwsOptions(endpoint_url=endpoint, regions=regions, **kw))


def by_description(snap: Snapshot) -> dict[str, Key]:
    return {k.description or k.key_id: k for k in snap.all_keys() if k.key_manager == "CUSTOMER"}


def test_every_customer_key_is_read_with_its_details(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    est: Estate = build_keys(client)
    snap = scan(proxy.endpoint_url, [EAST, WEST])

    assert [a.account_id for a in snap.accounts] == [ACCOUNT]
    assert [r.region for r in snap.accounts[0].regions] == sorted([EAST, WEST])
    keys = by_description(snap)
    assert set(keys) == set(est.keys)
    for name, md in est.keys.items():
        k = keys[name]
        assert (k.arn, k.key_id, k.account) == (md["Arn"], md["KeyId"], ACCOUNT)
        assert k.region == (WEST if name == "eu" else EAST)
        assert (k.key_spec, k.origin, k.key_usage) == (md["KeySpec"], md["Origin"], md.get("KeyUsage"))
        assert k.errors == []
        assert json.loads(k.policy or "{}")["Statement"], name  # the default key policy, verbatim

    assert keys["rotating"].aliases == ["alias/app-prod", "alias/app-prod-2026"]
    assert keys["rotating"].tags == {"Environment": "prod", "Owner": "sec"}
    assert keys["rotating"].rotation_enabled is True
    assert keys["rotating"].rotation_period_days == 365  # the default period when none is given
    assert keys["rotating"].next_rotation_date is not None
    [grant] = keys["rotating"].grants
    assert grant.grantee_principal == f"arn:aws:iam::{ACCOUNT}:role/app"
    assert sorted(grant.operations) == ["Decrypt", "Encrypt"]

    assert keys["not-rotating"].rotation_enabled is False
    assert keys["not-rotating"].aliases == ["alias/app-dev"]
    assert keys["disabled"].key_state == "Disabled"
    assert keys["disabled"].rotation_enabled is False  # still read: the status survives disabling
    assert keys["pending"].key_state == "PendingDeletion"
    assert keys["pending"].deletion_date is not None
    # Rotation does not apply: not asked, so None (neither "off" nor an error).
    for name in ("signing", "mac", "pending"):
        assert keys[name].rotation_enabled is None, name
    assert keys["eu"].aliases == ["alias/eu-data"]
    assert keys["eu"].rotation_enabled is True

    # Only the keys where rotation applies were asked about it.
    assert proxy.count("GetKeyRotationStatus") == 4  # rotating, not-rotating, disabled, eu


def test_call_budget_is_five_per_key_plus_a_constant_per_region(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    """Counted at the server: per-key calls grow by at most 5 per key; the rest does not grow at all."""
    kms = client("kms", EAST)

    def add_keys(n: int) -> None:
        for i in range(n):
            key_id = kms.create_key(Description=f"k{i}", Tags=[{"TagKey": "Owner", "TagValue": "x"}])["KeyMetadata"][
                "KeyId"
            ]
            kms.enable_key_rotation(KeyId=key_id)
            kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/app", Operations=["Decrypt"])

    def measure() -> tuple[int, int, dict[str, int]]:
        before = proxy.counts()
        snap = scan(proxy.endpoint_url, [EAST])
        calls = proxy.counts() - before
        per_key = sum(calls[op] for op in KEY_CALLS)
        return len(snap.all_keys()), per_key, {op: n for op, n in calls.items() if op not in KEY_CALLS}

    add_keys(4)
    n1, key_calls1, other1 = measure()
    add_keys(8)
    n2, key_calls2, other2 = measure()

    assert n2 - n1 == 8
    aws_managed = sum(1 for k in scan(proxy.endpoint_url, [EAST]).all_keys() if k.key_manager == "AWS")
    customer1 = n1 - aws_managed
    assert key_calls1 == 5 * customer1 + 3 * aws_managed  # AWS managed keys: no rotation, no tags
    assert key_calls2 - key_calls1 == 5 * 8
    assert other1 == other2, "per-region calls must not depend on the number of keys"
    assert other1["ListKeys"] == other1["ListAliases"] == 1
    assert sum(other1.values()) <= 40  # the per-region and per-account constant, for every service


def test_aws_managed_keys_are_identified_and_read_with_three_calls(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    # Using the default key of a service makes AWS create its AWS managed key (alias/aws/secretsmanager).
    client("secretsmanager", EAST).create_secret(Name="uses-default-key", SecretString="x")
    snap = scan(proxy.endpoint_url, [EAST])
    managed = [k for k in snap.all_keys() if k.key_manager == "AWS"]
    # moto alone has no AWS managed keys; the emulator layer (kmsguard.demo.patches) adds them. Without them
    # this test would judge nothing.
    assert managed, "no AWS managed key: the emulator layer did not create alias/aws/secretsmanager's key"
    [key] = [k for k in managed if "alias/aws/secretsmanager" in k.aliases]
    assert key.is_aws_managed and key.policy and key.errors == []
    assert key.tags == {} and key.rotation_enabled is None
    [secret] = snap.accounts[0].regions[0].resources
    assert secret.key_ref == "alias/aws/secretsmanager" and secret.key_arn == key.arn


def test_a_multi_region_key_and_its_replica_are_read_with_their_regions(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    # The locality check (key_data_locality) reads these: the primary's Region and the replicas' Regions.
    kms = client("kms", EAST)
    primary = kms.create_key(
        Description="global-cui", MultiRegion=True, Tags=[{"TagKey": "DataClassification", "TagValue": "CUI"}]
    )["KeyMetadata"]
    kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=WEST)
    single = kms.create_key(Description="local-cui")["KeyMetadata"]
    snap = scan(proxy.endpoint_url, [EAST, WEST])
    keys = {(k.region, k.description): k for k in snap.all_keys() if k.key_manager == "CUSTOMER"}
    p = keys[(EAST, "global-cui")]
    assert (p.multi_region, p.multi_region_key_type, p.primary_region, p.replica_regions) == (
        True,
        "PRIMARY",
        EAST,
        [WEST],
    )
    r = keys[(WEST, "global-cui")]
    assert (r.multi_region, r.multi_region_key_type, r.primary_region) == (True, "REPLICA", EAST)
    s = keys[(EAST, "local-cui")]
    # (moto leaves MultiRegion out of a single-Region key's metadata; AWS says false: either is not multi-Region)
    assert (bool(s.multi_region), s.multi_region_key_type, s.primary_region, s.replica_regions) == (
        False,
        None,
        None,
        [],
    )
    assert s.key_id == single["KeyId"]

    from kmsguard.config import LocalityRule, ScanConfig
    from kmsguard.pipeline import judge

    cfg = ScanConfig(data_locality={"cui": LocalityRule(single_region=True, regions=[EAST])})
    found = {
        (f.region, f.status.value)
        for f in judge(snap, cfg, only=["key_data_locality"]).findings
        if "global-cui" in f.message or f.resource_arn == p.arn or f.resource_arn == r.arn
    }
    assert found == {(EAST, "FAIL"), (WEST, "FAIL")}
