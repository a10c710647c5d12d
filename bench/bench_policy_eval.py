"""Single-request policy evaluations per second on one core, against baselines measured in the same process.

Run:  .venv/bin/python bench/bench_policy_eval.py [--requests 2000] [--repeat 5]

Policies: the guide's recommended key policy (root with kms:CallerAccount, named administrators, named users
with an encryption-context requirement, DenyInsecureTransport) and the default key policy. Requests: a fixed,
seeded mix of principals (admins, users, sessions, developers, external roles, the root user, a service),
actions and contexts. Figures are the best of --repeat runs (least disturbed by other load).

Baselines, so the figure is a ratio rather than a machine-dependent absolute:
- "json.loads + dict lookup": decode each request from JSON and look its action up in a dict: the cost of
  merely touching a request, a floor no real evaluator can beat.
- "cold (parse+normalise+evaluate)": the unoptimised path: parse and normalise the policy text for every
  request, so nothing compiled is re-used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.generate import ADMIN_ACTIONS
from kmsguard.policy.model import Request
from kmsguard.policy.normalize import parse_and_normalize, request

ACCT = "111122223333"
EXT = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

GUIDE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "EnableIAMUserPermissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": ACCT}},
        },
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {
                "AWS": [f"arn:aws:iam::{ACCT}:role/{n}" for n in ("security-lead", "kms-admin", "break-glass")]
            },
            "Action": list(ADMIN_ACTIONS),  # the guide's administrator actions, from their one home
            "Resource": "*",
        },
        {
            "Sid": "KeyUsageForEncryption",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{ACCT}:role/app", f"arn:aws:iam::{ACCT}:role/batch"]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:Environment": "Production"}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}
DEFAULT_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}

PRINCIPALS = [
    f"arn:aws:iam::{ACCT}:role/kms-admin",
    f"arn:aws:sts::{ACCT}:assumed-role/security-lead/alice",
    f"arn:aws:iam::{ACCT}:role/app",
    f"arn:aws:sts::{ACCT}:assumed-role/app/i-0abc",
    f"arn:aws:sts::{ACCT}:assumed-role/batch/job-7",
    f"arn:aws:iam::{ACCT}:role/developer",
    f"arn:aws:iam::{ACCT}:user/bob",
    f"arn:aws:iam::{ACCT}:root",
    f"arn:aws:iam::{EXT}:role/partner",
    "service:logs.us-east-1.amazonaws.com",
]
ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:DescribeKey",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:Sign",
]


def make_requests(n: int, seed: int = 7) -> list[Request]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        principal = rng.choice(PRINCIPALS)
        ctx: dict[str, str | list[str]] = {}
        if rng.random() < 0.9:
            ctx["aws:SecureTransport"] = "true" if rng.random() < 0.95 else "false"
        if rng.random() < 0.8:
            ctx["kms:CallerAccount"] = EXT if EXT in principal else ACCT
        if rng.random() < 0.6:
            ctx["kms:EncryptionContext:Environment"] = rng.choice(["Production", "Staging"])
        if rng.random() < 0.3:
            ctx["kms:EncryptionContextKeys"] = ["Environment", "App"]
        out.append(request(principal, rng.choice(ACTIONS), KEY, ctx))
    return out


def best_rate(fn: Callable[[], int], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    texts = [json.dumps(GUIDE_POLICY), json.dumps(DEFAULT_POLICY)]
    policies = [parse_and_normalize(t) for t in texts]
    reqs = make_requests(args.requests)
    pairs = [(policies[i % 2], r) for i, r in enumerate(reqs)]
    iam_flags = [i % 3 == 0 for i in range(len(reqs))]

    def warm() -> int:
        for (policy, req), assume in zip(pairs, iam_flags, strict=True):
            evaluate(policy, req, assume_iam_allows=assume)
        return len(pairs)

    encoded = [
        json.dumps({"principal": r.principal, "action": r.action, "resource": r.resource, "context": dict(r.context)})
        for r in reqs
    ]
    table = {a.lower(): True for a in ACTIONS}

    def floor() -> int:
        hits = 0
        for text in encoded:
            hits += table.get(json.loads(text)["action"].lower(), False)
        return len(encoded)

    cold_n = max(200, args.requests // 10)

    def cold() -> int:
        for i, req in enumerate(reqs[:cold_n]):
            evaluate(parse_and_normalize(texts[i % 2]), req, assume_iam_allows=iam_flags[i])
        return cold_n

    decisions: dict[str, int] = {}
    for (policy, req), assume in zip(pairs, iam_flags, strict=True):
        d = evaluate(policy, req, assume_iam_allows=assume).decision.value
        decisions[d] = decisions.get(d, 0) + 1

    rates = {"evaluate (compiled, cached)": best_rate(warm, args.repeat)}
    rates["json.loads + dict lookup (floor)"] = best_rate(floor, args.repeat)
    rates["cold: parse+normalise+evaluate"] = best_rate(cold, args.repeat)
    engine = rates["evaluate (compiled, cached)"]

    print(f"python {platform.python_version()} on {platform.machine()}, one core; {len(reqs)} requests, "
          f"best of {args.repeat}; decisions {decisions}")  # fmt: skip
    print(f"{'path':<36} {'evals/s':>12} {'engine / path':>14}")
    for name, rate in rates.items():
        print(f"{name:<36} {rate:>12,.0f} {engine / rate:>13.2f}x")
    print(f"\ncommand: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print("target: >= 50,000 evaluations/s on one core:", "met" if engine >= 50_000 else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
