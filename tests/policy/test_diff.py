"""diff_policies: gained and lost access as confirmed requests, and the admin lock-out test."""

from __future__ import annotations

import json
from typing import Any

from kmsguard.policy.diff import diff_policies
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.generate import generate_key_policy
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import parse_and_normalize

K = "111122223333"
X = "444455556666"
ADMIN = f"arn:aws:iam::{K}:role/Admin"
APP = f"arn:aws:iam::{K}:role/App"
GUIDE = generate_key_policy(K, [ADMIN], [APP])


def with_statements(base: dict[str, Any], *extra: dict[str, Any], drop: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    doc = json.loads(json.dumps(base))
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") not in drop] + list(extra)
    return json.dumps(doc)


def decision(text: str, req: Any) -> Decision:
    return evaluate(parse_and_normalize(text), req, assume_iam_allows=True, key_account=K).decision


def test_new_external_grant_is_gained_access() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(GUIDE, {"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:Decrypt", "Resource": "*"})
    d = diff_policies(old, new, K)
    assert d.lost == []
    assert d.gained and all(r.principal_account == X for r in d.gained)
    for r in d.gained:
        assert decision(new, r) is Decision.ALLOW and decision(old, r) is not Decision.ALLOW
    assert d.admin_lockout is False


def test_removing_usage_is_lost_access() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(GUIDE, drop={"KeyUsageForEncryption"})
    # Nine actions are lost; the default reports 8 per class, in an order z3 picks: ask for all of them.
    d = diff_policies(old, new, K, per_class=32)
    assert d.gained == []
    assert {r.principal for r in d.lost} == {APP}
    assert "kms:decrypt" in {r.action.lower() for r in d.lost}


def test_lockout_when_no_one_can_put_the_policy_any_more() -> None:
    new = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": APP}, "Action": "kms:Decrypt", "Resource": "*"}],
        }
    )
    d = diff_policies(json.dumps(GUIDE), new, K)
    assert d.admin_lockout is True
    assert (d.administrable_before, d.administrable_after) == (True, False)


def test_no_lockout_while_root_delegation_allows_putkeypolicy() -> None:
    new = with_statements(GUIDE, drop={"KeyAdministration"})
    assert diff_policies(json.dumps(GUIDE), new, K).admin_lockout is False


def test_identical_policies_have_no_difference() -> None:
    d = diff_policies(json.dumps(GUIDE), json.dumps(GUIDE), K)
    assert (d.gained, d.lost, d.admin_lockout) == ([], [], False)
