"""Effective access: the full who-can matrix over a generated estate, against brute force in the same run.

    python bench/bench_access.py --principals 5000 --keys 2000 --policies 200
    python bench/bench_access.py --principals 500 --keys 100 --policies 200      # quick
    python bench/bench_access.py --principals 5000 --keys 2000 --grants 1        # a grant of its own per key

The estate: users and roles in two accounts, each holding 1-3 of ``--policies`` distinct customer managed
identity policies (some allow kms:* or kms:Decrypt on "*", some on named keys, some s3 only, some deny),
every tenth role trusted by a user (role chains); keys with one of a few key policies (root delegation,
named users, a cross-account statement, a conditioned statement). Brute force is the per-request
evaluator (``policy.evaluate``) asked about every (principal, key, action), timed on a sample and
projected to the whole matrix; the ratio is brute force / kmsguard in the same process.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from datetime import UTC, datetime

from kmsguard.model.snapshot import (
    AccountSnapshot,
    Grant,
    IamInventory,
    IamPrincipal,
    Key,
    ManagedPolicy,
    RegionSnapshot,
    Snapshot,
)
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.actions import WHO_CAN_ACTIONS
from kmsguard.policy.estate import build_estate
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.normalize import parse_and_normalize, request, with_implicit_context

# The seven actions of the figures in BENCHMARKS.md (kms:DisableKey joined the default list later).
DEFAULT_ACTIONS = tuple(a for a in WHO_CAN_ACTIONS if a != "kms:DisableKey")
A, B = "111122223333", "444455556666"


def doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def estate(
    n_principals: int, n_keys: int, n_policies: int, n_profiles: int, seed: int = 7, grants: int = 0
) -> tuple[Snapshot, list[Key]]:
    rng = random.Random(seed)
    keys = [f"arn:aws:kms:us-east-1:{A}:key/{i:08d}-0000-0000-0000-000000000000" for i in range(n_keys)]
    shapes = [
        lambda: {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        lambda: {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": rng.sample(keys, 3)},
        lambda: {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        lambda: {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
        lambda: {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
        },
    ]
    policies = {
        f"arn:aws:iam::{A}:policy/p{i}": doc(
            shapes[i % len(shapes)](), {"Effect": "Allow", "Action": "ec2:*", "Resource": f"arn:aws:ec2:::{i}"}
        )
        for i in range(n_policies)
    }
    arns = list(policies)
    # Principals made from templates share their policy sets: each takes one of n_profiles sets of 1-3 policies.
    profiles = [rng.sample(arns, rng.randint(1, 3)) for _ in range(n_profiles)]
    by_account: dict[str, list[IamPrincipal]] = {A: [], B: []}
    users: list[str] = []
    for i in range(n_principals):
        acct = A if i % 5 else B
        kind = "user" if i % 2 else "role"
        name = f"{kind}{i}"
        trust = None
        if kind == "role":
            who = rng.choice(users) if users and i % 10 == 0 else None
            principal = {"AWS": who} if who else {"Service": "ec2.amazonaws.com"}
            trust = doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})
        elif acct == A:
            users.append(f"arn:aws:iam::{A}:user/{name}")
        attached = rng.choice(profiles) if acct == A else []
        by_account[acct].append(
            IamPrincipal(
                arn=f"arn:aws:iam::{acct}:{kind}/{name}",
                name=name,
                kind=kind,
                managed_policies=attached,
                trust_policy=trust,
            )
        )
    roles = [p.arn for p in by_account[A] if p.kind == "role"]
    key_policies = [
        doc(
            {
                "Sid": "EnableIAM",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ),
        doc(
            {
                "Sid": "EnableIAM",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": A}},
            },
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ),
        doc(
            {
                "Sid": "Users",
                "Effect": "Allow",
                "Principal": {"AWS": users[:3] or f"arn:aws:iam::{A}:root"},
                "Action": ["kms:Decrypt", "kms:Encrypt"],
                "Resource": "*",
            },
            {
                "Sid": "Admins",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
        ),
    ]
    key_objs = [
        Key(
            arn=k,
            key_id=k.rsplit("/", 1)[1],
            account=A,
            region="us-east-1",
            key_manager="CUSTOMER",
            policy=key_policies[i % len(key_policies)],
            # As AWS services leave them (an EBS volume attached, an RDS instance): a grant of its own per key.
            grants=[
                Grant(
                    grant_id=f"{i:08d}{g:056d}",
                    grantee_principal=rng.choice(roles),
                    operations=["Decrypt", "GenerateDataKey", "CreateGrant"],
                    constraints={"EncryptionContextSubset": {"aws:ebs:id": f"vol-{i:08d}{g}"}},
                )
                for g in range(grants)
            ],
        )
        for i, k in enumerate(keys)
    ]
    inv_a = IamInventory(
        principals=by_account[A],
        policies=[ManagedPolicy(arn=a, name=a.rsplit("/", 1)[1], document=d) for a, d in policies.items()],
    )
    accounts = [
        AccountSnapshot(account_id=A, iam=inv_a, regions=[RegionSnapshot(region="us-east-1", keys=key_objs)]),
        AccountSnapshot(account_id=B, iam=IamInventory(principals=by_account[B])),
    ]
    return Snapshot(
        kmsguard_version="bench", collected_at=datetime.now(UTC), source="test", accounts=accounts
    ), key_objs


def brute_force_per_call(snapshot: Snapshot, keys: list[Key], samples: int, seed: int = 3) -> float:
    """Seconds per (principal, key, action) for the per-request evaluator, on a random sample."""
    rng = random.Random(seed)
    inv = snapshot.accounts[0].iam
    assert inv is not None
    managed = {p.arn: parse_and_normalize(p.document or "{}", kind="identity", strict=False) for p in inv.policies}
    principals = [p for a in snapshot.accounts if a.iam for p in a.iam.principals]
    key_pols = {k.arn: parse_and_normalize(k.policy or "{}", strict=False) for k in keys}
    cases = [(rng.choice(principals), rng.choice(keys), rng.choice(DEFAULT_ACTIONS)) for _ in range(samples)]
    start = time.perf_counter()
    for p, k, action in cases:
        iam = [managed[a] for a in p.managed_policies]
        req = with_implicit_context(request(p.arn, action, k.arn))  # kms:CallerAccount etc., as AWS sets them
        evaluate(key_pols[k.arn], req, iam_policies=iam, key_account=A)
    return (time.perf_counter() - start) / samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--principals", type=int, default=500)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--policies", type=int, default=200)
    ap.add_argument("--profiles", type=int, default=400, help="distinct policy sets the principals draw from")
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--grants", type=int, default=0, help="grants of its own on every key (to a random role)")
    args = ap.parse_args()
    snapshot, keys = estate(args.principals, args.keys, args.policies, args.profiles, grants=args.grants)
    n_principals = sum(len(a.iam.principals) for a in snapshot.accounts if a.iam)
    per_call = brute_force_per_call(snapshot, keys, args.samples)
    cells = n_principals * len(keys) * len(DEFAULT_ACTIONS)
    start = time.perf_counter()
    ev = AccessEvaluator(build_estate(snapshot))
    # The matrix: every principal's answer for every key and action (counted, not expanded into objects).
    answers = sum(ev.who_can(k).count(a) for k in keys for a in DEFAULT_ACTIONS)
    took = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    brute = per_call * cells
    print(
        f"estate: {n_principals} principals, {len(keys)} keys, {args.policies} identity policies in "
        f"{args.profiles} sets, {len(DEFAULT_ACTIONS)} actions = {cells:,} cells"
    )
    print(
        f"kmsguard who-can matrix: {took:.2f} s ({answers:,} principal answers, role chains included), "
        f"peak RSS {peak_mb:.0f} MB"
    )
    print(
        f"brute force (per-request evaluator, no chains): {per_call * 1e6:.1f} us/cell x {cells:,} = {brute:.1f} s "
        f"(projected from {args.samples:,} samples)"
    )
    print(f"ratio brute force / kmsguard: {brute / took:.2f}")


if __name__ == "__main__":
    main()
