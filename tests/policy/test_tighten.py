"""tighten_policy on realistic policies: the rewrite is valid, analyses clean and reports what it removes."""

from __future__ import annotations

import json

from kmsguard.fix.simulate import change_impact, legitimate_context
from kmsguard.policy.actions import canonical_action
from kmsguard.policy.parse import parse_policy
from kmsguard.policy.questions import analyze_key_policy
from kmsguard.policy.tighten import TightenOptions, tighten_policy, to_text

A = "123456789012"
ROOT = f"arn:aws:iam::{A}:root"
OPS = f"arn:aws:iam::{A}:role/ops"
KEY = f"arn:aws:kms:us-east-1:{A}:key/k"


def test_an_administrator_with_use_in_a_second_statement_loses_only_the_use() -> None:
    # ops administers the key in one statement and uses it in another: the use statement has no
    # administration actions to keep, so it must go, not become a statement with an empty Action.
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": OPS},
                    "Action": ["kms:PutKeyPolicy", "kms:Describe*"],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": OPS},
                    "Action": ["kms:Encrypt", "kms:Decrypt"],
                    "Resource": "*",
                },
            ],
        }
    )
    result = tighten_policy(text, A, TightenOptions(trusted_accounts=frozenset({A})))
    new = to_text(result.document)
    parse_policy(new)  # valid: no statement with an empty Action
    assert all(st.get("Action") != [] for st in result.document["Statement"])
    analysis = analyze_key_policy(new, A)
    assert not analysis.wildcard_statements and analysis.denies_insecure_transport
    assert not tighten_policy(new, A, TightenOptions(trusted_accounts=frozenset({A}))).changed  # idempotent
    change = change_impact(text, new, KEY, A, "key policy alone", result.removals, legitimate_context({}))
    lost = {(c.subject, canonical_action(c.action)) for c in change.key_policy.lost}
    assert lost == {(OPS, "kms:Encrypt"), (OPS, "kms:Decrypt")}
    assert change.unintended() == []


def test_a_service_given_a_wildcard_gets_the_usage_actions_and_keeps_its_conditions() -> None:
    trail = "cloudtrail.amazonaws.com"
    cond = {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{A}:trail/*"}}
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {
                    "Sid": "Trail",
                    "Effect": "Allow",
                    "Principal": {"Service": trail, "AWS": f"arn:aws:iam::{A}:role/app"},
                    "Action": "kms:*",
                    "Resource": "*",
                    "Condition": cond,
                },
            ],
        }
    )
    result = tighten_policy(text, A, TightenOptions(trusted_accounts=frozenset({A})))
    new = to_text(result.document)
    parse_policy(new)
    assert not analyze_key_policy(new, A).wildcard_statements
    service = [st for st in result.document["Statement"] if st["Principal"] == {"Service": trail}]
    assert len(service) == 1 and service[0]["Sid"] == "Trail" and service[0]["Condition"] == cond
    assert set(service[0]["Action"]) == {
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
    }
    # The plan says what the service loses: administration, never its cryptographic use.
    lost = {a for r in result.removals if r.principal == trail for a in r.actions}
    assert "kms:PutKeyPolicy" in lost and "kms:ScheduleKeyDeletion" in lost and "kms:Decrypt" not in lost
    # The role in the same statement is split out as a user, as before.
    assert any(st["Principal"] == {"AWS": f"arn:aws:iam::{A}:role/app"} for st in result.document["Statement"])
    assert not tighten_policy(new, A, TightenOptions(trusted_accounts=frozenset({A}))).changed  # idempotent


def test_a_service_with_named_actions_is_left_alone() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "logs.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                    "Resource": "*",
                },
            ],
        }
    )
    result = tighten_policy(text, A, TightenOptions(trusted_accounts=frozenset({A})))
    assert result.document["Statement"][1] == json.loads(text)["Statement"][1]
    assert not [r for r in result.removals if r.principal == "logs.amazonaws.com"]
