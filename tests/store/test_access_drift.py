"""Effective-access drift between two scans stored in the database (SQLite, and PostgreSQL where marked): who can
now, or can no longer, decrypt or administer a key through the key policy, IAM, grants and role chains."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import (
    AccountSnapshot,
    IamInventory,
    IamPrincipal,
    Key,
    ManagedPolicy,
    RegionSnapshot,
    Snapshot,
)
from kmsguard.policy.actions import ACCESS_PROBES
from kmsguard.store import access_drift as ad
from kmsguard.store import open_store
from kmsguard.store.drift import DriftItem, compute_drift
from kmsguard.store.writer import insert_full_scan, insert_key_scan

ACCOUNT = "111122223333"
PARTNER = "999988887777"
REGION = "eu-west-1"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
READER = f"arn:aws:iam::{ACCOUNT}:role/Reader"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: str | dict[str, Any], actions: str | list[str], sid: str, **extra: Any) -> dict[str, Any]:
    p = principal if isinstance(principal, dict) else {"AWS": principal}
    return {"Sid": sid, "Effect": "Allow", "Principal": p, "Action": actions, "Resource": "*", **extra}


ROOT_STATEMENT = allow(ROOT, "kms:*", "Root")


def key(n: int = 1, policy: str | None = None, **kw: Any) -> Key:
    fields: dict[str, Any] = {
        "arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k{n}",
        "key_id": f"k{n}",
        "account": ACCOUNT,
        "region": REGION,
        "key_manager": "CUSTOMER",
        "key_state": "Enabled",
        "aliases": [f"alias/app-{n}"],
        "policy": policy or doc(ROOT_STATEMENT),
        "rotation_enabled": True,
    }
    fields.update(kw)
    return Key.model_validate(fields)


def identity(actions: str | list[str], **condition: Any) -> str:
    st: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    if condition:
        st["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


EC2_TRUST = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


def role(
    name: str, inline: dict[str, str] | None = None, managed: list[str] | None = None, trust: str | None = None
) -> IamPrincipal:
    return IamPrincipal(
        arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
        name=name,
        kind="role",
        inline_policies=inline or {},
        managed_policies=managed or [],
        trust_policy=trust,
    )


def snapshot(
    keys: list[Key], principals: list[IamPrincipal] | None, policies: list[ManagedPolicy] | None = None
) -> Snapshot:
    iam = None if principals is None else IamInventory(principals=principals, policies=policies or [])
    return Snapshot(
        kmsguard_version="t",
        collected_at=T0,
        accounts=[AccountSnapshot(account_id=ACCOUNT, regions=[RegionSnapshot(region=REGION, keys=keys)], iam=iam)],
    )


def store_two(db_url: str, first: Snapshot, second: Snapshot) -> list[DriftItem]:
    store = open_store(db_url)
    with store.session() as s:
        a = insert_full_scan(s, first, result(first))
        b = insert_full_scan(s, second, result(second, T0 + timedelta(hours=1)))
        return compute_drift(s, a, b)


def result(snap: Snapshot, at: datetime = T0) -> ScanResult:
    return ScanResult(kmsguard_version="t", scanned_at=at, accounts=[ACCOUNT], regions=[REGION], findings=[])


def of(items: list[DriftItem], kind: str) -> list[DriftItem]:
    return [i for i in items if i.kind == kind]


def test_an_iam_policy_that_starts_allowing_decrypt_is_drift_on_every_delegating_key(db_url: str) -> None:
    """The key policies do not change: only the role's identity policy does. The key-policy diff sees nothing;
    effective access sees the role gain kms:Decrypt through the account delegation."""
    k1, k2 = key(1), key(2)
    before = snapshot([k1, k2], [role("Reader")])
    after = snapshot([k1, k2], [role("Reader", {"ReadAll": identity("kms:Decrypt")})])
    items = store_two(db_url, before, after)
    assert not of(items, "key_policy_changed")
    gained = of(items, "access_gained")
    assert {i.resource_arn for i in gained} == {k1.arn, k2.arn}
    first = next(i for i in gained if i.resource_arn == k1.arn)
    assert first.summary == (
        f"{READER} can now decrypt alias/app-1 ({k1.arn}) via key_policy+iam (key policy: Sid Root; "
        "iam: role/Reader inline ReadAll: Statement[0])"
    )
    assert first.alert and first.severity == "medium"  # a principal of the key's own account
    assert first.detail["principal"] == READER and first.detail["actions"] == ["kms:Decrypt"]
    assert first.detail["decisions"] == {"kms:Decrypt": {"before": None, "after": "allowed"}}
    assert first.detail["paths"][0]["via"] == "key_policy+iam"
    assert first.detail["outside_account"] is False

    # And back: the loss is recorded, not alerted.
    items = store_two(db_url, after, before)
    lost = of(items, "access_lost")
    assert {i.resource_arn for i in lost} == {k1.arn, k2.arn}
    assert all(not i.alert and i.severity == "low" for i in lost)
    assert lost[0].summary.startswith(f"{READER} can no longer decrypt alias/app-")
    assert (
        "(before: via key_policy+iam (key policy: Sid Root; iam: role/Reader inline ReadAll: Statement[0]))"
        in lost[0].summary
    )
    assert not of(items, "access_gained")


@SQLITE
def test_admin_actions_from_an_aws_managed_policy_are_named_with_decrypt(db_url: str) -> None:
    admin_access = ManagedPolicy(
        arn="arn:aws:iam::aws:policy/AdministratorAccess",
        name="AdministratorAccess",
        document=identity("*"),
        aws_managed=True,
    )
    k = key(1)
    # EC2 instances get the role: their gain follows from the role's and is named on its item.
    before = snapshot([k], [role("KeyAdmin", trust=EC2_TRUST)], [admin_access])
    after = snapshot([k], [role("KeyAdmin", managed=[admin_access.arn], trust=EC2_TRUST)], [admin_access])
    [item] = of(store_two(db_url, before, after), "access_gained")
    assert item.detail["assumed_by"] == ["service:ec2.amazonaws.com"]
    assert item.summary.endswith("; the same for 1 principal(s) that can assume it (service:ec2.amazonaws.com)")
    assert item.detail["actions"] == ["kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"]
    assert item.summary.startswith(
        f"{ADMIN} can now decrypt alias/app-1 ({k.arn}) and call kms:PutKeyPolicy, kms:ScheduleKeyDeletion, "
        "kms:CreateGrant on it via key_policy+iam (key policy: Sid Root; "
        "iam: AWS managed AdministratorAccess: Statement[0])"
    )


def test_another_account_gaining_decrypt_is_high_and_sits_beside_the_key_policy_item(db_url: str) -> None:
    k = key(1)
    opened = key(1, policy=doc(ROOT_STATEMENT, allow(f"arn:aws:iam::{PARTNER}:root", "kms:Decrypt", "Partner")))
    items = store_two(db_url, snapshot([k], [role("Reader")]), snapshot([opened], [role("Reader")]))
    assert [i.kind for i in of(items, "key_policy_changed")] == ["key_policy_changed"]  # the existing diff stays
    [gained] = of(items, "access_gained")
    assert gained.summary == (
        f"account:{PARTNER} can now decrypt alias/app-1 ({k.arn}) via key_policy+iam (key policy: Sid Partner; "
        "iam: not scanned (assumed to allow))"
    )
    assert gained.severity == "high" and gained.alert and gained.detail["outside_account"] is True


@SQLITE
def test_anyone_gaining_decrypt_is_critical(db_url: str) -> None:
    k = key(1)
    public = key(1, policy=doc(ROOT_STATEMENT, allow("*", "kms:Decrypt", "Oops")))
    items = store_two(db_url, snapshot([k], []), snapshot([public], []))
    star = [i for i in of(items, "access_gained") if i.detail["principal"] == "*"]
    assert star and star[0].severity == "critical" and star[0].alert


@SQLITE
def test_a_condition_dropped_from_the_identity_policy_makes_access_unconditional(db_url: str) -> None:
    k = key(1)
    scoped = identity("kms:Decrypt", StringEquals={"kms:EncryptionContext:app": "orders"})
    before = snapshot([k], [role("Reader", {"Scoped": scoped})])
    after = snapshot([k], [role("Reader", {"Scoped": identity("kms:Decrypt")})])
    items = store_two(db_url, before, after)
    [wider] = of(items, "access_unconditional")
    assert wider.alert and wider.severity == "medium"
    assert wider.detail["decisions"] == {"kms:Decrypt": {"before": "conditional", "after": "allowed"}}
    assert "can now decrypt alias/app-1" in wider.summary and "before: only under conditions" in wider.summary
    [narrower] = of(store_two(db_url, after, before), "access_conditional")
    assert not narrower.alert and "only under conditions" in narrower.summary


@SQLITE
def test_nobody_left_to_change_the_key_policy_is_a_critical_lockout(db_url: str) -> None:
    admin_only = key(1, policy=doc(allow(ADMIN, "kms:*", "Admin")))
    users_only = key(1, policy=doc(allow(ADMIN, "kms:Decrypt", "Admin")))
    items = store_two(db_url, snapshot([admin_only], [role("KeyAdmin")]), snapshot([users_only], [role("KeyAdmin")]))
    [lock] = of(items, "access_lockout")
    assert lock.severity == "critical" and lock.alert and lock.detail["before"] == [ADMIN]
    lost = of(items, "access_lost")
    assert lost and set(lost[0].detail["actions"]) == {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"}


@SQLITE
def test_unchanged_scans_have_no_access_drift_and_reuse_the_answers(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = key(1)
    snap = snapshot([k], [role("Reader", {"ReadAll": identity("kms:Decrypt")})])
    calls: list[str] = []
    real = ad.AccessEvaluator.who_can

    def counting(self: ad.AccessEvaluator, key: Key, actions: Any = ACCESS_PROBES) -> ad.KeyAccess:
        calls.append(key.arn)
        return real(self, key, actions)

    monkeypatch.setattr(ad.AccessEvaluator, "who_can", counting)
    assert store_two(db_url, snap, snap) == []
    assert calls == []  # same estate, same key: nothing to evaluate
    # A rotation change is not an access change either.
    rotation_off = snapshot([key(1, rotation_enabled=False)], [role("Reader", {"ReadAll": identity("kms:Decrypt")})])
    assert [i.kind for i in store_two(db_url, snap, rotation_off)] == ["rotation_disabled"]
    assert calls == []
    # A changed IAM inventory makes every key worth asking about; the second time round the answers are reused.
    wider = snapshot([k], [role("Reader", {"ReadAll": identity(["kms:Decrypt", "kms:CreateGrant"])})])
    assert [i.kind for i in store_two(db_url, snap, wider)] == ["access_gained"]
    assert calls == [k.arn, k.arn]
    assert [i.kind for i in store_two(db_url, snap, wider)] == ["access_gained"]
    assert calls == [k.arn, k.arn]


@SQLITE
def test_an_old_scan_without_the_iam_inventory_is_not_judged_and_alerted(db_url: str) -> None:
    k = key(1)
    opened = key(1, policy=doc(ROOT_STATEMENT, allow(READER, "kms:Decrypt", "Reader")))
    old = snapshot([k], None)  # schema 1: no IAM inventory
    new = snapshot([opened], [role("Reader")])
    items = store_two(db_url, old, new)
    [policy_item] = of(items, "key_policy_changed")
    # The key policy gained a named reader, so the diff says so; effective access could not be compared.
    assert policy_item.alert and "could not be judged" in policy_item.summary
    assert policy_item.detail["effective_access"]["judged"] is False
    assert "no IAM inventory of account 111122223333" in policy_item.detail["effective_access"]["reason"]
    [notice] = of(items, "access_not_judged")
    assert notice.alert and notice.resource_arn == k.arn
    assert "could not be compared with the previous scan" in notice.summary
    assert not of(items, "access_gained")


@SQLITE
def test_a_policy_change_without_gain_says_not_judged_rather_than_no_access_gained(db_url: str) -> None:
    k = key(1, policy=doc(ROOT_STATEMENT, allow(READER, "kms:Decrypt", "Reader")))
    narrowed = key(1, policy=doc(ROOT_STATEMENT))
    items = store_two(db_url, snapshot([k], None), snapshot([narrowed], None))
    [policy_item] = of(items, "key_policy_changed")
    assert "no access gained" not in policy_item.summary.replace("no access gained in the key policy", "")
    assert (
        "no access gained in the key policy; who can decrypt it through IAM, grants or role chains could not be "
        "judged" in policy_item.summary
    )
    assert policy_item.alert and policy_item.severity == "medium"
    # Both scans lack the inventory: said on the changed key, no repeated account-level notice.
    assert not of(items, "access_not_judged")


def test_a_key_event_scan_is_judged_against_its_full_scan_inventory(db_url: str) -> None:
    k1, k2 = key(1), key(2)
    snap = snapshot([k1, k2], [role("Reader", {"ReadAll": identity("kms:Decrypt")})])
    store = open_store(db_url)
    with store.session() as s:
        first = insert_full_scan(s, snap, result(snap))
        # The event: key 2's policy now names the partner account.
        opened = key(2, policy=doc(ROOT_STATEMENT, allow(f"arn:aws:iam::{PARTNER}:root", "kms:Decrypt", "Partner")))
        second = insert_key_scan(s, first, opened.arn, opened, [], T0 + timedelta(minutes=5))
        items = compute_drift(s, first, second, opened.arn)
        # A second event on the same key that takes the partner away again: judged against the same full scan.
        third = insert_key_scan(s, second, k2.arn, k2, [], T0 + timedelta(minutes=6))
        back = compute_drift(s, second, third, k2.arn)
    assert {i.resource_arn for i in items} == {opened.arn}
    [gained] = of(items, "access_gained")
    assert gained.detail["principal"] == f"account:{PARTNER}" and gained.severity == "high"
    [lost] = of(back, "access_lost")
    assert lost.detail["principal"] == f"account:{PARTNER}"


@SQLITE
def test_a_scan_stored_without_its_snapshot_cannot_be_judged(db_url: str) -> None:
    k = key(1)
    granted = key(
        1,
        grants=[{"grant_id": "g1", "grantee_principal": READER, "operations": ["Decrypt"]}],
    )
    store = open_store(db_url)
    with store.session() as s:
        a = insert_full_scan(s, snapshot([k], [role("Reader")]), result(snapshot([k], [])), keep_snapshot=False)
        b = insert_full_scan(s, snapshot([granted], [role("Reader")]), result(snapshot([k], [])))
        items = compute_drift(s, a, b)
    kinds = {i.kind for i in items}
    assert "access_gained" not in kinds
    notices = of(items, "access_not_judged")
    assert notices and all(n.alert for n in notices)
    assert any(
        "grants or tags of alias/app-1" in n.summary and "did not keep its snapshot" in n.summary for n in notices
    )


@SQLITE
def test_a_grant_gives_decrypt_and_is_drift(db_url: str) -> None:
    k = key(1)
    granted = key(1, grants=[{"grant_id": "g1234567890abcdef", "grantee_principal": READER, "operations": ["Decrypt"]}])
    items = store_two(db_url, snapshot([k], [role("Reader")]), snapshot([granted], [role("Reader")]))
    [gained] = of(items, "access_gained")
    assert gained.summary == f"{READER} can now decrypt alias/app-1 ({k.arn}) via grant (grant g1234567890a)"


@SQLITE
def test_more_changes_than_the_cap_are_summed_up_in_one_item(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ad, "MAX_ITEMS", 3)
    keys = [key(i) for i in range(4)]
    items = store_two(
        db_url, snapshot(keys, [role("Reader")]), snapshot(keys, [role("Reader", {"R": identity("kms:Decrypt")})])
    )
    access = [i for i in items if i.kind.startswith("access_")]
    assert [i.kind for i in access] == ["access_gained", "access_gained", "access_more"]
    more = access[-1]
    assert more.alert and more.detail["count"] == 2 and more.detail["by_kind"] == {"access_gained": 2}


@SQLITE
def test_a_trust_policy_that_lets_another_role_in_is_drift_through_the_role_chain(db_url: str) -> None:
    k = key(1)
    app = {"ReadAll": identity("kms:Decrypt")}
    ci = f"arn:aws:iam::{ACCOUNT}:role/Ci"
    trust_ci = doc({"Effect": "Allow", "Principal": {"AWS": ci}, "Action": "sts:AssumeRole"})
    before = snapshot([k], [role("App", app), role("Ci")])
    after = snapshot([k], [role("App", app, trust=trust_ci), role("Ci")])
    [gained] = of(store_two(db_url, before, after), "access_gained")
    assert gained.detail["principal"] == ci and gained.severity == "medium"
    assert gained.summary.startswith(f"{ci} can now decrypt alias/app-1 ({k.arn}) via assume_role (chain: role/App; ")
    assert gained.detail["paths"][0]["chain"] == [f"arn:aws:iam::{ACCOUNT}:role/App"]


@SQLITE
def test_an_engine_failure_is_reported_not_raised(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ad.AccessEvaluator, key: Key, actions: Any = ACCESS_PROBES) -> ad.KeyAccess:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(ad.AccessEvaluator, "who_can", broken)
    monkeypatch.setattr(ad, "MEMO", ad._Memo())  # no answer from an earlier test
    k = key(1)
    granted = key(1, grants=[{"grant_id": "g1", "grantee_principal": READER, "operations": ["Decrypt"]}])
    reworded = key(2, policy=doc(ROOT_STATEMENT, allow(READER, "kms:Decrypt", "Reader")))
    items = store_two(db_url, snapshot([k, key(2)], [role("Reader")]), snapshot([granted, reworded], [role("Reader")]))
    [notice] = of(items, "access_not_judged")
    assert notice.resource_arn == k.arn and notice.alert
    assert "may have changed" in notice.summary and "solver exploded" in notice.summary
    [policy_item] = of(items, "key_policy_changed")  # the other key: said on its policy item
    assert policy_item.resource_arn == reworded.arn and "solver exploded" in policy_item.summary


@SQLITE
def test_a_failing_comparison_leaves_the_rest_of_the_drift_intact(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(s: Any, scan_id: int) -> ad.ScanView:
        raise ValueError("bad snapshot")

    monkeypatch.setattr(ad, "scan_view", unreadable)
    k = key(1)
    reworded = key(1, policy=doc(ROOT_STATEMENT, allow(READER, "kms:Decrypt", "Reader")), rotation_enabled=False)
    items = store_two(db_url, snapshot([k], [role("Reader")]), snapshot([reworded], [role("Reader")]))
    assert {i.kind for i in items} == {"key_policy_changed", "rotation_disabled"}
    [policy_item] = of(items, "key_policy_changed")
    assert policy_item.alert and "the comparison failed: bad snapshot" in policy_item.summary
