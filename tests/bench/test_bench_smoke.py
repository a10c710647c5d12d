"""Smoke test of the scan benchmark's parts (bench/seed.py, bench/floor_boto3.py) on a handful of keys.

The benchmark itself is too slow for the suite; this only shows that its seeding runs against the test
server, that the floor and kmsguard's collector see the same keys, and that the floor still makes exactly
the collector's calls (what makes it a fair floor). It never asserts a time.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo import patches

BENCH = Path(__file__).resolve().parents[2] / "bench"
REGIONS = ["us-east-1", "eu-west-1"]


def _load(name: str) -> ModuleType:
    """Import a bench/ script by path: bench/ is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location(f"kmsguard_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_seed_floor_and_collector_see_the_same_keys(aws) -> None:  # type: ignore[no-untyped-def]
    seed, floor = _load("seed"), _load("floor_boto3")
    report = seed.seed(aws.endpoint_url, REGIONS, keys_per_region=3, workers=4)
    # Three customer keys per region, plus the AWS managed keys the seeded resources brought in.
    assert all(report.listed_keys[r] >= 3 for r in REGIONS)

    patches.reset_request_counts()
    floor_result = floor.run_floor(aws.endpoint_url, REGIONS, max_workers=4)
    floor_calls = patches.request_counts()

    patches.reset_request_counts()
    snapshot = collect_snapshot(AwsOptions(regions=REGIONS, endpoint_url=aws.endpoint_url, max_workers=4))
    kmsguard_calls = patches.request_counts()

    keys_by_region = {r.region: len(r.keys) for a in snapshot.accounts for r in a.regions}
    assert floor_result.keys_by_region == keys_by_region == report.listed_keys
    assert floor_result.keys == len(snapshot.all_keys()) == report.total_keys
    assert floor_calls == kmsguard_calls, "bench/floor_boto3.py no longer mirrors the collector's calls: update it"


def test_access_benchmark_runs_and_its_estate_is_judged_as_brute_force_judges_it(capsys) -> None:  # type: ignore[no-untyped-def]
    """bench/bench_access.py on a small estate with a grant per key: it runs end to end, and its kmsguard
    answers agree with the per-request evaluator it compares against (on the key-policy + IAM paths)."""
    bench = _load("bench_access")
    sys.argv = ["bench_access.py", "--principals", "60", "--keys", "12", "--policies", "20", "--profiles", "15",
                "--samples", "50", "--grants", "1"]  # fmt: skip
    bench.main()
    out = capsys.readouterr().out
    assert "ratio brute force / kmsguard" in out and "principal answers" in out

    from kmsguard.policy.access import AccessEvaluator
    from kmsguard.policy.estate import build_estate
    from kmsguard.policy.evaluate import evaluate
    from kmsguard.policy.model import Decision
    from kmsguard.policy.normalize import parse_and_normalize, request, with_implicit_context

    snapshot, keys = bench.estate(60, 12, 20, 15, grants=0)
    inv = snapshot.accounts[0].iam
    managed = {p.arn: parse_and_normalize(p.document or "{}", kind="identity", strict=False) for p in inv.policies}
    ev = AccessEvaluator(build_estate(snapshot))
    for key in keys:
        found = ev.who_can(key, ["kms:Decrypt"]).principals("kms:Decrypt")
        policy = parse_and_normalize(key.policy or "{}", strict=False)
        for p in (p for a in snapshot.accounts if a.iam for p in a.iam.principals):
            iam = [managed[m] for m in p.managed_policies]
            # What AWS fills in for every request (kms:CallerAccount, aws:PrincipalArn, ...).
            req = with_implicit_context(request(p.arn, "kms:Decrypt", key.arn))
            verdict = evaluate(policy, req, iam_policies=iam, key_account=key.account).decision
            direct = found.get(p.arn)
            via_chain = direct is not None and direct.paths[0].via == "assume_role"
            # Allowed by the evaluator <=> found other than through a role chain (which it does not model);
            # a conditional answer is the evaluator's "allowed when the request meets the conditions".
            assert (verdict is Decision.ALLOW) == (direct is not None and not via_chain) or (
                direct is not None and direct.decision == "conditional"
            ), (key.arn, p.arn, verdict, direct)


@pytest.mark.slow
def test_the_organization_benchmark_seeds_members_the_org_scan_reads(aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """bench/seed_org.py (bench_org.py's estate) on two members and one Region: every member holds the keys it was
    given, and `scan --org`'s collector reads them all through the assumed role."""
    monkeypatch.syspath_prepend(str(BENCH))  # seed_org imports seed as a sibling script
    seed_org = _load("seed_org")
    report = seed_org.seed_org(aws.endpoint_url, 2, ["us-east-1"], keys_per_region=2, parallel_accounts=2, workers=2)
    snapshot = collect_snapshot(
        AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url, org=True, max_workers=8)
    )
    members = [a for a in snapshot.accounts if a.account_id != seed_org.MANAGEMENT]
    assert len(members) == 2 and all(a.errors == [] for a in snapshot.accounts)
    for acct in members:
        customer = [k for r in acct.regions for k in r.keys if k.key_manager == "CUSTOMER"]
        assert len(customer) == 2, acct.account_id
    assert sorted(a.account_id for a in members) == sorted(report.members)
    listed = {a.account_id: {r.region: len(r.keys) for r in a.regions} for a in members}
    assert listed == {m: report.listed_keys[m] for m in report.members}
