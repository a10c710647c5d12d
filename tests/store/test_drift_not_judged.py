"""A changed key policy the engine could not diff says "could not judge" with the reason, is high and is alerted
(issue 13, section 3): never "no access gained", which nobody knows then."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from kmsguard.model.result import ScanResult
from kmsguard.model.snapshot import IamInventory, Key, Snapshot
from kmsguard.store import drift as drift_mod
from kmsguard.store import open_store
from kmsguard.store.drift import DriftItem, compute_drift
from kmsguard.store.writer import insert_full_scan

from .test_store import ACCOUNT, T0, key, policy, scan

# JSON, but not a policy the engine accepts (policy.errors.PolicyParseError): an Effect AWS does not know.
UNJUDGEABLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Maybe",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def judged_scan(keys: list[Key], hours: int = 0) -> tuple[Snapshot, ScanResult]:
    """A scan whose IAM inventory was read (empty): effective access can be judged apart from the policy."""
    snap, res = scan(keys, [], T0 + timedelta(hours=hours))
    snap.accounts[0].iam = IamInventory()
    return snap, res


def policy_item(db_url: str, before: Key, after: Key) -> DriftItem:
    store = open_store(db_url)
    with store.session() as s:
        first = insert_full_scan(s, *judged_scan([before]))
        second = insert_full_scan(s, *judged_scan([after], hours=1))
        items = [d for d in compute_drift(s, first, second) if d.kind == "key_policy_changed"]
    store.close()
    (item,) = items
    return item


@pytest.mark.parametrize(
    "state",
    [
        "Enabled",  # effective access is evaluated too, and fails on the same policy
        "PendingDeletion",  # effective access is not evaluated: the policy diff is the only judgement
    ],
)
def test_a_policy_the_engine_cannot_diff_is_not_judged_and_alerts(db_url: str, state: str) -> None:
    item = policy_item(db_url, key(1, key_state=state), key(1, key_state=state, policy=UNJUDGEABLE))
    assert "could not judge what access it gives: the policy engine failed (" in item.summary
    assert 'Effect must be "Allow" or "Deny"' in item.summary and "no access gained" not in item.summary
    assert item.severity == "high" and item.alert
    assert 'Effect must be "Allow" or "Deny"' in item.detail["error"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_policy_left_undiffed_past_the_cap_is_not_judged_and_alerts(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift_mod, "MAX_POLICY_DIFFS", 0)
    renamed = policy(f"arn:aws:iam::{ACCOUNT}:role/App").replace('"Use"', '"UseRenamed"')  # no access changes
    item = policy_item(db_url, key(1), key(1, policy=renamed))
    assert "could not judge what access it gives: more than 0 policies changed" in item.summary
    assert item.severity == "high" and item.alert


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_judged_change_that_gains_nothing_stays_low_and_quiet(db_url: str) -> None:
    renamed = policy(f"arn:aws:iam::{ACCOUNT}:role/App").replace('"Use"', '"UseRenamed"')
    item = policy_item(db_url, key(1), key(1, policy=renamed))
    assert item.summary.endswith("changed: no access gained") and item.severity == "low" and not item.alert
