"""Property: on small random estates, who_can equals brute force, i.e. asking the per-request evaluator
(``policy.evaluate``, held to AWS's documentation by tests/policy/corpus) about every principal one by one.

The estates mix same-account and cross-account principals, users and roles, key-policy statements that
name principals, accounts or everyone, Deny statements, and identity policies with Allow/Deny on
"*", kms:*, kms:Decrypt or s3:* over "*", the key or another key. Boundaries, SCPs, RCPs, grants and
role chains are covered case by case in the corpus; here the combination of key policy and IAM is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsguard.model.snapshot import AccountSnapshot, IamInventory, IamPrincipal, Key, RegionSnapshot, Snapshot
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.estate import build_estate
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import parse_and_normalize, request

A, B = "111122223333", "444455556666"
KEY = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:us-east-1:{A}:key/ffffffff-12ab-34cd-56ef-1234567890ab"
NAMES = [
    (A, "user", "u1"),
    (A, "user", "u2"),
    (A, "role", "r1"),
    (A, "role", "r2"),
    (B, "user", "x1"),
    (B, "role", "x2"),
]
ARNS = [f"arn:aws:iam::{acct}:{kind}/{name}" for acct, kind, name in NAMES]
ACTIONS = ["kms:Decrypt", "kms:PutKeyPolicy"]

identity_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Action": st.sampled_from(["*", "kms:*", "kms:Decrypt", "s3:*", ["kms:Decrypt", "kms:PutKeyPolicy"]]),
        "Resource": st.sampled_from(["*", KEY, OTHER_KEY, "arn:aws:kms:*:*:key/*"]),
    }
)
key_principal = st.sampled_from([f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root", "*", *ARNS])
key_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Allow", "Deny"]),
        "Principal": st.fixed_dictionaries({"AWS": st.lists(key_principal, min_size=1, max_size=2, unique=True)}),
        "Action": st.sampled_from(["kms:*", "kms:Decrypt", "kms:PutKeyPolicy", ["kms:Decrypt", "kms:Encrypt"]]),
        "Resource": st.just("*"),
    }
)
estates = st.tuples(
    st.lists(key_statement, min_size=1, max_size=4),
    st.lists(st.lists(identity_statement, max_size=3), min_size=len(NAMES), max_size=len(NAMES)),
)


def doc(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def build(key_sts: list[dict[str, Any]], identity: list[list[dict[str, Any]]]) -> tuple[Snapshot, Key]:
    key = Key(
        arn=KEY,
        key_id=KEY.rsplit("/", 1)[1],
        account=A,
        region="us-east-1",
        key_manager="CUSTOMER",
        policy=doc(key_sts),
    )
    trust = doc([{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}])
    principals: dict[str, list[IamPrincipal]] = {A: [], B: []}
    for (acct, kind, name), sts in zip(NAMES, identity, strict=True):
        principals[acct].append(
            IamPrincipal(
                arn=f"arn:aws:iam::{acct}:{kind}/{name}",
                name=name,
                kind=kind,  # type: ignore[arg-type]
                inline_policies={"p": doc(sts)} if sts else {},
                trust_policy=trust if kind == "role" else None,
            )
        )
    accounts = [
        AccountSnapshot(
            account_id=A,
            iam=IamInventory(principals=principals[A]),
            regions=[RegionSnapshot(region="us-east-1", keys=[key])],
        ),
        AccountSnapshot(account_id=B, iam=IamInventory(principals=principals[B])),
    ]
    return Snapshot(kmsguard_version="t", collected_at=datetime.now(UTC), source="test", accounts=accounts), key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(estates)
def test_who_can_equals_brute_force(estate: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]) -> None:
    key_sts, identity = estate
    snapshot, key = build(key_sts, identity)
    access = AccessEvaluator(build_estate(snapshot)).who_can(key, ACTIONS)
    key_policy = parse_and_normalize(doc(key_sts), strict=False)
    for action in ACTIONS:
        found = access.principals(action)
        for arn, sts in zip(ARNS, identity, strict=True):
            iam = [parse_and_normalize(doc(sts), kind="identity", strict=False)] if sts else []
            expected = evaluate(key_policy, request(arn, action, KEY), iam_policies=iam, key_account=A).decision
            got = found.get(arn)
            assert (got is not None) == (expected is Decision.ALLOW), (arn, action, key_sts, sts, got)
            assert got is None or got.decision == "allowed"  # no condition anywhere: nothing is conditional
        # The key account's root user: allowed exactly when a key-policy Allow names the account (or
        # everyone) and no Deny does.
        root = f"arn:aws:iam::{A}:root"
        expected = evaluate(key_policy, request(root, action, KEY), key_account=A).decision
        assert (root in found) == (expected is Decision.ALLOW), (action, key_sts)
