"""The fix benchmark (issue 16 §3, "Fix at the quota"): `kmsguard fix --apply` on 500 keys against AWS's time.

A moto server with kmsguard's emulator layer runs in its own process with AWS's time switched on: 30 ms per
request and the default request quotas (``kmsguard/aws/quotas.yaml``: a request beyond its (account, Region,
operation) quota gets AWS's throttling answer and is counted). The estate is seeded with the server's time paused:
N customer managed keys without rotation. Then ``kmsguard fix --apply --yes --checks key_rotation_disabled`` runs
as a subprocess, end to end (the scan that plans, the changes, the verification's re-read and re-scan).

Measured, per variant (one Region; and the same keys spread over several Regions):

- the wall time of the command, and the change phase alone: from the first EnableKeyRotation the server answered
  to the last (the server's request counter, polled every 50 ms);
- the floor: the changes cannot go faster than the quota of their operation, per account and Region, so
  floor = max over Regions of (actions in the Region / EnableKeyRotation's quota there); the ratios are the
  change phase / floor (the target: within 1.2x) and the whole command / floor;
- throttled answers at the server (each one retried by the client: the target is 0 throttling failures, i.e.
  no action failed for it; the throttled answers themselves say whether the client paced itself under the quota).

``--baseline REF`` runs each variant a second time with the code of a git ref (``git archive REF src`` on
PYTHONPATH), e.g. the apply before it ran concurrently, for a before/after ratio measured in the same run.

Usage:
    .venv/bin/python bench/bench_fix.py                     # 500 keys in one Region, then 2 x 250
    .venv/bin/python bench/bench_fix.py --baseline HEAD     # and the same with the committed code
    .venv/bin/python bench/bench_fix.py --keys 100 --regions us-east-1,eu-west-1,ap-southeast-2
Results: a table on stdout, and bench/results/fix.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

import bench_scan
import seed_org

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
CHECK = "key_rotation_disabled"
OPERATION = "EnableKeyRotation"  # the mutation the check's fix makes, once per key
TARGET = 1.2  # issue 16: within 1.2x of the quota's floor


# --- the server, in its own process ---------------------------------------------------------------------------


class Server(bench_scan.Server):
    """An emulator child (seed_org.py --serve-only) with AWS's time: ``latency`` and AWS's default quotas."""

    def __init__(self, latency: str) -> None:
        # Without AWS managed IAM policies: they cost the scan seconds and have nothing to do with fixing rotation.
        serve = [sys.executable, str(BENCH / "seed_org.py"), "--serve-only", "--no-aws-managed-policies"]
        super().__init__([*serve, "--aws-latency", latency, "--aws-quotas", "default"])

    def requests(self) -> dict[str, Any]:
        """{"total", "requests": {"kms:Op": n}, "throttled_total", "throttled": {...}} since the last reset."""
        return dict(seed_org.get_json(f"{self.endpoint_url}/moto-api/kmsguard/requests"))


def seed(server: Server, regions: list[str], keys_per_region: int) -> None:
    """Customer managed keys without rotation, made with the server's time paused (CreateKey's quota is 5/s)."""
    with seed_org.aws_time_paused(server.endpoint_url):
        for region in regions:
            kms = boto3.client(
                "kms",
                region_name=region,
                endpoint_url=server.endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(_create_key, [kms] * keys_per_region))


def _create_key(kms: Any) -> None:
    kms.create_key(Description="kmsguard bench_fix: rotation off")


# --- one run --------------------------------------------------------------------------------------------------


class Poller:
    """The times at which the server's count of ``kms:OPERATION`` first moved and last reached ``target``."""

    def __init__(self, server: Server, target: int) -> None:
        self.server, self.target = server, target
        self.first: float | None = None
        self.last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.perf_counter()
            count = self.server.requests()["requests"].get(f"kms:{OPERATION}", 0)
            if count and self.first is None:
                self.first = now
            if count >= self.target and self.last is None:
                self.last = now
            self._stop.wait(0.05)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return None if self.first is None or self.last is None else self.last - self.first


@dataclass
class Variant:
    name: str
    regions: list[str]
    keys_per_region: int
    code: str = "this tree"  # or a git ref: the code that ran
    command: str = ""
    exit_code: int = 0
    wall_seconds: float = 0.0
    change_seconds: float | None = None
    floor_seconds: float = 0.0
    quota_per_second: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    throttling_failures: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)

    @property
    def actions(self) -> int:
        return len(self.regions) * self.keys_per_region

    @property
    def change_ratio(self) -> float | None:
        return None if self.change_seconds is None else self.change_seconds / self.floor_seconds

    @property
    def wall_ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds


def floor_seconds(regions: list[str], keys_per_region: int) -> tuple[float, dict[str, float]]:
    """The quota's floor: the slowest Region's actions over its quota of the mutating operation."""
    from kmsguard.aws.quotas import load_quotas

    quota = load_quotas("default").quota_for("kms", OPERATION)
    if quota is None:
        raise RuntimeError(f"the default quota table has no quota for kms:{OPERATION}")
    rates = {r: quota.rate_in(r) for r in regions}
    return max(keys_per_region / rate for rate in rates.values()), rates


def run_variant(server: Server, variant: Variant, work: Path, pythonpath: Path | None) -> Variant:
    seed(server, variant.regions, variant.keys_per_region)
    variant.floor_seconds, variant.quota_per_second = floor_seconds(variant.regions, variant.keys_per_region)
    journal = work / f"{variant.name} {variant.code}.journal.json".replace(" ", "-")
    cmd = ["kmsguard", "fix", "--apply", "--yes", "--checks", CHECK, "--endpoint-url", server.endpoint_url]
    cmd += ["--regions", ",".join(variant.regions), "--journal", str(journal), "--format", "json", "--quiet"]
    variant.command = " ".join(cmd)
    # This benchmark's own journal key: never the user's ~/.config/kmsguard/journal.key.
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": variant.regions[0]}
    env["KMSGUARD_JOURNAL_KEY"] = str(work / "journal.key")
    env.pop("AWS_ENDPOINT_URL", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    cmd[0:1] = [sys.executable, "-m", "kmsguard.cli.main"]
    server.reset_counts()
    poller = Poller(server, variant.actions)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    variant.wall_seconds = time.perf_counter() - start
    variant.change_seconds = poller.stop()
    variant.exit_code = proc.returncode
    counts = server.requests()
    variant.requests = {k: v for k, v in counts["requests"].items() if k.startswith("kms:")}
    variant.throttled = dict(counts.get("throttled", {}))
    try:
        results = json.loads(proc.stdout)["results"]
    except (ValueError, KeyError):
        raise RuntimeError(f"kmsguard fix exited {proc.returncode}: {proc.stderr.strip()[-2000:]}") from None
    variant.outcomes = dict(Counter(r["status"] for r in results))
    variant.throttling_failures = sum(
        1 for r in results if r["status"] == "failed" and "throttl" in r["message"].lower()
    )
    return variant


# --- the report -----------------------------------------------------------------------------------------------


def table(variants: list[Variant]) -> str:
    head = (
        "| variant | code | actions | floor s | change phase s | change / floor | whole command s | whole / floor "
        "| throttled answers | throttling failures | outcomes |"
    )
    rows = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for v in variants:
        ratio = "n/a" if v.change_ratio is None else f"{v.change_ratio:.2f}"
        change = "n/a" if v.change_seconds is None else f"{v.change_seconds:.1f}"
        throttled = sum(v.throttled.values())
        outcomes = ", ".join(f"{n} {s}" for s, n in sorted(v.outcomes.items()))
        rows.append(
            f"| {v.name} | {v.code} | {v.actions} | {v.floor_seconds:.1f} | {change} | {ratio} | "
            f"{v.wall_seconds:.1f} | {v.wall_ratio:.2f} | {throttled} | {v.throttling_failures} | {outcomes} |"
        )
    return "\n".join(rows)


def checkout(ref: str, work: Path) -> Path:
    """``src`` of a git ref, for PYTHONPATH (ahead of the editable install of this tree)."""
    root = BENCH.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
    return work / "src"


def commit_of(ref: str) -> str:
    return subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=500, help="keys in all (default 500)")
    ap.add_argument("--region", default="us-east-1", help="the one-Region variant's Region")
    ap.add_argument("--regions", default="us-east-1,eu-west-1", help="the spread variant's Regions ('' skips it)")
    ap.add_argument("--latency", default="30", help="the server's latency, MS[:JITTER] (default 30)")
    ap.add_argument("--output", type=Path, default=RESULTS / "fix.json")
    ap.add_argument("--baseline", metavar="REF", help="also run each variant with this git ref's code (e.g. HEAD)")
    args = ap.parse_args(argv)
    spread = [r for r in args.regions.split(",") if r]
    variants = [Variant("one Region", [args.region], args.keys)]
    if spread:
        variants.append(Variant(f"{len(spread)} Regions", spread, args.keys // len(spread)))
    if args.baseline:
        variants += [replace(v, code=args.baseline) for v in variants]
    load_before = os.getloadavg()
    done: list[Variant] = []
    with tempfile.TemporaryDirectory(prefix="kmsguard-bench-fix-") as tmp:
        baseline = checkout(args.baseline, Path(tmp)) if args.baseline else None
        for variant in variants:
            server = Server(args.latency)  # a fresh server per variant: no keys or buckets left from the last
            try:
                print(f"{variant.name} ({variant.code}): {variant.actions} keys ...", flush=True)
                code = None if variant.code == "this tree" else baseline
                done.append(run_variant(server, variant, Path(tmp), code))
            finally:
                server.stop()
    print()
    print(table(done))
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "latency_ms": args.latency,
        "quotas": "default (src/kmsguard/aws/quotas.yaml)",
        "target_ratio": TARGET,
        "baseline": None if not args.baseline else {"ref": args.baseline, "commit": commit_of(args.baseline)},
        "variants": [
            asdict(v) | {"actions": v.actions, "change_ratio": v.change_ratio, "wall_ratio": v.wall_ratio} for v in done
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten: {args.output}")
    return 0 if all(v.exit_code == 0 for v in done) else 1


if __name__ == "__main__":
    sys.exit(main())
