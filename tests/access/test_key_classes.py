"""One evaluator judges many keys, sharing answers between keys of one class (policy/access_classes.py).
Sharing must never leak one key's answer into another's: these tests judge several keys with one evaluator
and hold every answer to what AWS's logic gives for that key alone.

- A property: on random estates of three keys (two sharing a key policy) and principals of which some
  share their identity policies, every (key, principal, action) equals the per-request evaluator
  (``policy.evaluate``), with identity statements that name one key, a pattern, or use NotResource.
- A property for what the per-request evaluator does not model (grants, role chains): one evaluator that
  judged every key, in any order, answers each key exactly as a fresh evaluator asked about that key alone.
- Cases: grants of one shape on two keys (each answer cites its own key's grant), a grant to one member
  of a group (the rest of the group does not inherit it), and an RCP that names one key (the other key of
  the same policy keeps its access).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsguard.model.snapshot import (
    AccountSnapshot,
    Grant,
    IamInventory,
    IamPrincipal,
    Key,
    Organization,
    OrgPolicy,
    OrgUnit,
    RegionSnapshot,
    Snapshot,
)
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.estate import build_estate
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import parse_and_normalize, request

A, B = "111122223333", "444455556666"
KEYS = [f"arn:aws:kms:us-east-1:{A}:key/{n}234abcd-12ab-34cd-56ef-1234567890ab" for n in (1, 2, 3)]
# u1 and u3, r1 and r3 get the same identity policy: they form groups judged once per key class.
NAMES = [(A, "user", "u1"), (A, "user", "u3"), (A, "user", "u2"), (A, "role", "r1"), (A, "role", "r3"),
         (B, "role", "x2")]  # fmt: skip
SAME_AS = {1: 0, 4: 3}
ARNS = [f"arn:aws:iam::{acct}:{kind}/{name}" for acct, kind, name in NAMES]
ACTIONS = ["kms:Decrypt", "kms:PutKeyPolicy"]


def doc(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


resource_field = st.sampled_from(
    [
        ("Resource", "*"),
        ("Resource", KEYS[0]),
        ("Resource", [KEYS[1], KEYS[2]]),
        ("Resource", "arn:aws:kms:*:*:key/2*"),
        ("NotResource", KEYS[2]),
    ]
)
identity_statement = st.builds(
    lambda effect, action, res: {"Effect": effect, "Action": action, res[0]: res[1]},
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.sampled_from(["kms:*", "kms:Decrypt", "s3:*", ["kms:Decrypt", "kms:PutKeyPolicy"]]),
    resource_field,
)
key_principal = st.sampled_from([f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root", ARNS[0], ARNS[3]])
key_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Principal": st.fixed_dictionaries({"AWS": st.lists(key_principal, min_size=1, max_size=2, unique=True)}),
        "Action": st.sampled_from(["kms:*", "kms:Decrypt", "kms:PutKeyPolicy"]),
        "Resource": st.just("*"),
    }
)
estates = st.tuples(
    st.lists(st.lists(key_statement, min_size=1, max_size=3), min_size=2, max_size=2),
    st.lists(st.lists(identity_statement, max_size=3), min_size=len(NAMES), max_size=len(NAMES)),
)


def snapshot(
    keys: list[Key],
    identity: list[str | None],
    org: Organization | None = None,
    trusts: dict[str, str | None] | None = None,
) -> Snapshot:
    """The estate; ``trusts``: role ARN -> the principal its trust policy lets in besides EC2."""

    def trust(role: str) -> str:
        who: dict[str, Any] = {"Service": "ec2.amazonaws.com"}
        if (trusts or {}).get(role):
            who["AWS"] = (trusts or {})[role]
        return doc([{"Effect": "Allow", "Principal": who, "Action": "sts:AssumeRole"}])

    principals: dict[str, list[IamPrincipal]] = {A: [], B: []}
    for (acct, kind, name), policy in zip(NAMES, identity, strict=True):
        principals[acct].append(
            IamPrincipal(
                arn=f"arn:aws:iam::{acct}:{kind}/{name}",
                name=name,
                kind=kind,  # type: ignore[arg-type]
                inline_policies={"p": policy} if policy else {},
                trust_policy=trust(f"arn:aws:iam::{acct}:{kind}/{name}") if kind == "role" else None,
            )
        )
    accounts = [
        AccountSnapshot(
            account_id=A,
            iam=IamInventory(principals=principals[A]),
            regions=[RegionSnapshot(region="us-east-1", keys=keys)],
        ),
        AccountSnapshot(account_id=B, iam=IamInventory(principals=principals[B])),
    ]
    return Snapshot(
        kmsguard_version="t", collected_at=datetime.now(UTC), source="test", accounts=accounts, organization=org
    )


def key(arn: str, policy: str, grants: list[Grant] | None = None) -> Key:
    return Key(
        arn=arn,
        key_id=arn.rsplit("/", 1)[1],
        account=A,
        region="us-east-1",
        key_manager="CUSTOMER",
        policy=policy,
        grants=grants or [],
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(estates)
def test_one_evaluator_for_many_keys_equals_brute_force(
    estate: tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]],
) -> None:
    key_docs, drawn = estate
    identity = [doc(drawn[SAME_AS.get(n, n)]) if drawn[SAME_AS.get(n, n)] else None for n in range(len(NAMES))]
    policies = [doc(key_docs[0]), doc(key_docs[0]), doc(key_docs[1])]  # keys 1 and 2 share a policy
    keys = [key(arn, pol) for arn, pol in zip(KEYS, policies, strict=True)]
    ev = AccessEvaluator(build_estate(snapshot(keys, identity)))
    for k in keys:
        found = ev.who_can(k, ACTIONS)
        key_policy = parse_and_normalize(k.policy or "", strict=False)
        for action in ACTIONS:
            got = found.principals(action)
            for arn, pol in zip(ARNS, identity, strict=True):
                iam = [parse_and_normalize(pol, kind="identity", strict=False)] if pol else []
                expected = evaluate(key_policy, request(arn, action, k.arn), iam_policies=iam, key_account=A)
                assert (arn in got) == (expected.decision is Decision.ALLOW), (k.arn, arn, action, pol)


grant = st.builds(
    lambda who, ops, ctx: (who, ops, ctx),
    st.sampled_from(ARNS),
    st.sampled_from([["Decrypt"], ["Decrypt", "CreateGrant"], ["PutKeyPolicy"]]),
    st.sampled_from([None, {"EncryptionContextSubset": {"app": "a"}}, {"EncryptionContextEquals": {"app": "b"}}]),
)
chained_estates = st.tuples(
    estates,
    st.lists(st.lists(grant, max_size=2), min_size=3, max_size=3),
    st.lists(st.sampled_from([None, ARNS[0], ARNS[2], ARNS[4]]), min_size=3, max_size=3),  # who assumes r1, r3, x2
    st.permutations([0, 1, 2]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chained_estates)
def test_shared_evaluator_answers_each_key_as_a_fresh_one(drawn: Any) -> None:
    (key_docs, identity_sts), grants, assumers, order = drawn
    identity = [doc(identity_sts[SAME_AS.get(n, n)]) if identity_sts[SAME_AS.get(n, n)] else None for n in range(6)]
    policies = [doc(key_docs[0]), doc(key_docs[0]), doc(key_docs[1])]
    keys = [
        key(
            arn,
            pol,
            [
                Grant(grant_id=f"g{n}{m}", grantee_principal=who, operations=ops, constraints=ctx)
                for m, (who, ops, ctx) in enumerate(key_grants)
            ],
        )
        for n, (arn, pol, key_grants) in enumerate(zip(KEYS, policies, grants, strict=True))
    ]
    snap = snapshot(keys, identity, trusts=dict(zip((ARNS[3], ARNS[4], ARNS[5]), assumers, strict=True)))
    estate = build_estate(snap)
    shared = AccessEvaluator(estate)
    answers = {keys[n].arn: shared.who_can(keys[n], ACTIONS).to_dict() for n in order}
    for k in keys:
        assert answers[k.arn] == AccessEvaluator(estate).who_can(k, ACTIONS).to_dict(), k.arn


def test_a_grant_to_one_member_of_a_group_is_not_the_groups() -> None:
    policy = doc(
        [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]
    )
    # r1 and r3 share an identity policy that allows nothing in KMS: one group. Only r1 holds a grant, on
    # the first key; the key judged first is the one with the grant.
    s3_only = doc([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    keys = [
        key(KEYS[0], policy, [Grant(grant_id="only-r1", grantee_principal=ARNS[3], operations=["Decrypt"])]),
        key(KEYS[1], policy),
    ]
    ev = AccessEvaluator(build_estate(snapshot(keys, [None, None, None, s3_only, s3_only, None])))
    with_grant, without = (ev.who_can(k, ["kms:Decrypt"]).principals("kms:Decrypt") for k in keys)
    assert ARNS[3] in with_grant and ARNS[4] not in with_grant
    assert ARNS[3] not in without and ARNS[4] not in without


def test_grants_of_one_shape_on_two_keys_each_cite_their_own_grant() -> None:
    policy = doc(
        [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]
    )
    allow_all = doc([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])
    keys = [
        key(
            arn,
            policy,
            [
                Grant(grant_id=f"role-grant-{n}", grantee_principal=ARNS[5], operations=["Decrypt"]),
                Grant(grant_id=f"acct-grant-{n}", grantee_principal=f"arn:aws:iam::{A}:root", operations=["Decrypt"]),
            ],
        )
        for n, arn in enumerate(KEYS[:2])
    ]
    # x2 (account B) has no identity policy: the grant to it is its only path. u1 and u3 (one group, not
    # named by the key) decrypt through the key policy with IAM and through the grant to their account.
    ev = AccessEvaluator(build_estate(snapshot(keys, [allow_all, allow_all, None, None, None, None])))
    for n, k in enumerate(keys):
        x2 = ev.who_can(k, ["kms:Decrypt"]).principals("kms:Decrypt")[ARNS[5]]
        assert [p.grants for p in x2.paths] == [(f"role-grant-{n}",)], x2
        for user in ARNS[:2]:
            answer = ev.who_can(k, ["kms:Decrypt"]).principals("kms:Decrypt")[user]
            assert {g for p in answer.paths for g in p.grants} == {f"acct-grant-{n}"}, answer


def test_an_rcp_naming_one_key_leaves_the_other_key_of_the_same_policy_alone() -> None:
    policy = doc(
        [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}]
    )
    allow_all = doc([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])
    # RCPFullAWSAccess sits on the root and every account (AWS attaches it); the RCP under test on the root.
    full = doc([{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}])
    rcp = doc([{"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": KEYS[0]}])
    org = Organization(
        id="o-abcdefghij",
        management_account="999999999999",
        units=[OrgUnit(id="r-root")],
        account_parents={A: "r-root", B: "r-root"},
        rcps_enabled=True,
        policies=[
            OrgPolicy(id="p-full", name="RCPFullAWSAccess", kind="RCP", document=full, targets=["r-root", A, B]),
            OrgPolicy(id="p-rcp", name="deny-one", kind="RCP", document=rcp, targets=["r-root"]),
        ],
    )
    keys = [key(arn, policy) for arn in KEYS[:2]]
    ev = AccessEvaluator(build_estate(snapshot(keys, [allow_all] * len(NAMES), org)))
    denied, allowed = (ev.who_can(k, ["kms:Decrypt"]).principals("kms:Decrypt") for k in keys)
    assert ARNS[0] not in denied and ARNS[0] in allowed
    assert ARNS[1] not in denied and ARNS[1] in allowed  # u3, judged as u1's group
