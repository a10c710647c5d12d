"""Benchmark: whole-policy analysis of real-shaped key policies, and solver question latency.

    .venv/bin/python bench/bench_policy_analyze.py [--count 10000] [--solver-questions 200]

Generates ``--count`` key policies in the shapes seen in real accounts (the default key policy, the
guide's recommended policy, public, organisation-bounded, cross-account, condition-heavy), each with its
own account and role names so no cache helps, and times on one core:

- baseline: ``json.loads`` of every policy plus one direct evaluation (parse + normalise + evaluate);
- analysis: ``analyze_key_policy`` (public, external principals, admins, who_can, secure transport ...);
- solver: ``prove`` of the public question on a sample, forcing the solver (median latency).

Prints the figures and the ratio analysis/baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from kmsguard.policy.actions import KMS_ACTIONS
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.generate import generate_key_policy
from kmsguard.policy.normalize import parse_and_normalize, request
from kmsguard.policy.questions import analyze_key_policy
from kmsguard.policy.solver import Identity, Question, prove

DENY_HTTP = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}  # fmt: skip


def _root(acct: str) -> dict[str, Any]:
    return {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
            "Action": "kms:*", "Resource": "*"}  # fmt: skip


def make_policy(i: int, rng: random.Random) -> tuple[str, str]:
    acct = f"{100000000000 + i:012d}"
    other = f"{900000000000 - i:012d}"
    role = f"arn:aws:iam::{acct}:role/app-{i}"
    admin = f"arn:aws:iam::{acct}:role/admin-{i}"
    shapes = ["default", "guide", "public", "org", "cross", "conditions", "except"]
    shape = rng.choices(shapes, [30, 25, 5, 15, 13, 10, 2])[0]
    if shape == "guide":
        return acct, json.dumps(generate_key_policy(acct, [admin], [role]))
    stmts: list[dict[str, Any]] = [_root(acct)]
    if shape == "public":
        stmts.append(
            {"Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
        )
    elif shape == "org":
        org = {"StringEquals": {"aws:PrincipalOrgID": f"o-{i:010d}"}}
        stmts.append({"Effect": "Allow", "Principal": "*", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                      "Resource": "*", "Condition": org})  # fmt: skip
    elif shape == "cross":
        stmts.append({"Effect": "Allow", "Principal": {"AWS": [other, f"arn:aws:iam::{other}:role/reader"]},
                      "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})  # fmt: skip
        stmts.append({"Effect": "Allow", "Principal": {"AWS": admin}, "Action": ["kms:Put*", "kms:Decrypt"],
                      "Resource": "*"})  # fmt: skip
    elif shape == "except":  # "deny everyone but the account and one role"
        stmts.append({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"})
        stmts.append({"Effect": "Deny", "NotPrincipal": {"AWS": [f"arn:aws:iam::{acct}:root", role]},
                      "Action": "kms:*", "Resource": "*"})  # fmt: skip
    elif shape == "conditions":
        stmts.append({"Effect": "Allow", "Principal": {"AWS": role}, "Action": ["kms:Encrypt", "kms:Decrypt"],
                      "Resource": "*", "Condition": {
                          "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com",
                                           "kms:EncryptionContext:env": "prod"},
                          "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["env", "aws:*"]}}})  # fmt: skip
        stmts.append({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                      "Condition": {"StringEquals": {"kms:CallerAccount": acct}}})  # fmt: skip
        stmts.append(DENY_HTTP)
    return acct, json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": stmts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--solver-questions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    policies = [make_policy(i, rng) for i in range(args.count)]

    t0 = time.perf_counter()
    for acct, text in policies:
        json.loads(text)
        p = parse_and_normalize(text)
        evaluate(p, request(f"arn:aws:iam::{acct}:role/x", "kms:Decrypt", f"arn:aws:kms:us-east-1:{acct}:key/k"))
    baseline = time.perf_counter() - t0

    t0 = time.perf_counter()
    solver_used = public = 0
    for acct, text in policies:
        a = analyze_key_policy(text, acct)
        solver_used += a.solver_questions
        public += a.public
    analysis = time.perf_counter() - t0

    latencies = []
    for acct, text in rng.sample(policies, min(args.solver_questions, len(policies))):
        p = parse_and_normalize(text)
        q = Question(KMS_ACTIONS, Identity(exclude_accounts=frozenset({acct})), acct)
        t = time.perf_counter()
        prove(p, q)
        latencies.append(time.perf_counter() - t)

    n = len(policies)
    print(f"policies: {n} ({public} public); solver questions during analysis: {solver_used}")
    print(f"baseline (json.loads + normalise + 1 evaluation): {baseline:.2f} s ({baseline / n * 1e6:.0f} us/policy)")
    print(
        f"analysis: {analysis:.2f} s ({analysis / n * 1e3:.2f} ms/policy); ratio to baseline {analysis / baseline:.1f}x"
    )
    print(f"solver: {len(latencies)} public questions, median {statistics.median(latencies) * 1e3:.1f} ms, "
          f"p90 {statistics.quantiles(latencies, n=10)[-1] * 1e3:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
