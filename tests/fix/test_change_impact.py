"""One answer to what a key-policy change takes away (``simulate.change_impact``): the key-policy diff, asked about
the requests a caller that follows the new policy makes, beside effective access; the lock-out guard from both.

Pure: policies in, the engine's answer out (no AWS).
"""

from __future__ import annotations

import json
from typing import Any

from kmsguard.fix.simulate import AccessImpact, ChangeImpact, change_impact, legitimate_context
from kmsguard.policy.diff import PolicyDiff, diff_policies
from kmsguard.policy.tighten import DENY_INSECURE_TRANSPORT, Removal

A = "123456789012"
ROOT = f"arn:aws:iam::{A}:root"
APP = f"arn:aws:iam::{A}:role/app"
PARTNER = "arn:aws:iam::999988887777:root"
KEY = f"arn:aws:kms:us-east-1:{A}:key/11111111-2222-3333-4444-555555555555"
NOT_JUDGED = "key policy alone"


def _policy(*statements: dict[str, Any]) -> str:
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})


def _allow(principal: str, *actions: str, **condition: Any) -> dict[str, Any]:
    st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": list(actions), "Resource": "*"}
    return st | ({"Condition": condition} if condition else {})


def test_refusing_plain_http_and_calls_without_the_required_context_is_not_a_loss() -> None:
    old = _policy(_allow(APP, "kms:Decrypt", "kms:Encrypt"))
    new = _policy(
        _allow(APP, "kms:Decrypt", "kms:Encrypt", StringEquals={"kms:EncryptionContext:dept": "x"}),
        DENY_INSECURE_TRANSPORT,
    )
    change = change_impact(old, new, KEY, A, NOT_JUDGED, (), legitimate_context({"dept": "x"}))
    assert change.key_policy.lost == [] and change.unintended() == []
    # Asked about any request, the same change takes plain HTTP away from everyone: what rollback shows.
    assert any(c.example.context.get("aws:securetransport") for c in diff_policies(old, new, A, key_arn=KEY).lost)


def test_a_loss_no_removal_explains_is_unintended_and_a_meant_one_is_not() -> None:
    old = _policy(_allow(APP, "kms:Decrypt", "kms:Encrypt"), _allow(PARTNER, "kms:Decrypt"))
    new = _policy(_allow(APP, "kms:Encrypt"))
    context = legitimate_context({})
    meant_partner = (Removal(PARTNER, ("*",), "external"),)
    change = change_impact(old, new, KEY, A, NOT_JUDGED, meant_partner, context)
    lost = {(c.subject, c.action) for c in change.key_policy.lost}
    assert lost == {(APP, "kms:decrypt"), ("account:999988887777", "kms:decrypt")}
    # The partner account's loss is explained by the removal of its root; the app's Decrypt by nothing.
    assert change.unintended() == [{"principal": APP, "action": "kms:Decrypt"}]
    meant_app = (*meant_partner, Removal(APP, ("kms:Decrypt",), "split"))
    assert change_impact(old, new, KEY, A, NOT_JUDGED, meant_app, context).unintended() == []


def test_without_effective_access_who_loses_what_is_the_key_policy_diff() -> None:
    old = _policy(_allow(APP, "kms:Decrypt"))
    change = change_impact(old, _policy(), KEY, A, NOT_JUDGED, (), legitimate_context({}))
    assert not change.judged and change.lost == change.key_policy.lost and change.gained == []
    assert change.effective_access() == {"judged": False, "reason": NOT_JUDGED}


def test_the_lock_out_guard_refuses_when_either_view_says_nobody_could_change_the_policy() -> None:
    app_only = json.dumps({"Version": "2012-10-17", "Statement": [_allow(APP, "kms:*")]})
    nobody = json.dumps({"Version": "2012-10-17", "Statement": [_allow(APP, "kms:Decrypt")]})
    by_key_policy = diff_policies(app_only, nobody, A, key_arn=KEY)
    assert ChangeImpact(by_key_policy, NOT_JUDGED).lockout
    kept = diff_policies(app_only, app_only, A, key_arn=KEY)
    assert not ChangeImpact(kept, NOT_JUDGED).lockout
    # The key policy keeps an administrator whom effective access sees cannot act (a boundary, an SCP): refused.
    stopped = AccessImpact(administrators_before=[APP], administrators_after=[])
    assert ChangeImpact(kept, stopped).lockout
    assert not ChangeImpact(kept, AccessImpact(administrators_before=[APP], administrators_after=[APP])).lockout


def test_a_loss_the_solver_could_not_rule_out_counts_as_unintended_unless_a_removal_explains_it() -> None:
    undecided = PolicyDiff(uncertain=[f"{APP}: kms:Sign lost: solver gave up"], uncertain_losses=[(APP, "kms:Sign")])
    assert ChangeImpact(undecided, NOT_JUDGED).unintended() == [
        {"principal": APP, "action": "kms:Sign", "undecided": "the solver could not decide it"}
    ]
    assert ChangeImpact(undecided, NOT_JUDGED, (Removal(APP, ("*",), "split"),)).unintended() == []


def test_removing_a_public_statement_does_not_hide_the_key_accounts_own_loss() -> None:
    # The old policy let everyone in, the key account too; the rewrite removes "*" on purpose and names only the
    # admin role. That "*" loses access is meant; that the key account's other principals lose it is not explained
    # by removing "*" (in effective access a removed "*" covers the account classes; in the key-policy view not).
    public = {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
    old = json.dumps({"Version": "2012-10-17", "Statement": [public]})
    new = json.dumps({"Version": "2012-10-17", "Statement": [_allow(APP, "kms:*")]})
    change = change_impact(old, new, KEY, A, NOT_JUDGED, (Removal("*", ("*",), "public"),), legitimate_context({}))
    lost_by = {c.subject for c in change.key_policy.lost}
    assert f"account:{A}" in lost_by and "*" in lost_by
    unintended = {u["principal"] for u in change.unintended()}
    assert f"account:{A}" in unintended and "*" not in unintended
