"""Benchmark: kmsguard trail end to end against the floors, on generated schema-faithful CloudTrail KMS events.

    .venv/bin/python bench/bench_trail.py --events 2000000 [--workers N] [--dir DIR] [--keep]

Generates N events (gzipped trail files in the AWSLogs layout), then measures in the same run:
  1. decompression alone of every file, in the same number of processes (the floor);
  2. kmsguard end to end: ingest (decode + Parquet cache) plus every detection (DuckDB);
  3. the detections alone over the warm cache;
  4. DuckDB read_json over the same files (a count per key and action);
  5. an orjson loop doing that same aggregation, in the same number of processes;
and the peak memory (RSS high-water mark) of each. Ratios matter more than seconds on a shared machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGIONS = ("us-east-1", "eu-west-1")
ACTIONS = (("Decrypt", 0.55), ("GenerateDataKey", 0.3), ("Encrypt", 0.1), ("DescribeKey", 0.05))
EVENTS_PER_FILE = 2000  # a busy account's 5-minute delivery


SPIKE_FILE = 600
OUTSIDER = "arn:aws:sts::444455556666:assumed-role/partner/session"
NEWCOMER = f"arn:aws:sts::{ACCOUNT}:assumed-role/app-new/session"


def incidents(file_no: int, keys: list[str], t0: datetime) -> list[dict[str, Any]]:
    """A few attacks spread over the logs (they replace ordinary events, so the count stays N): the detections
    must find them, so the benchmark also pays for evidence queries and findings, as a real run does."""
    from kmsguard.trail.synth import event

    k = keys[file_no % len(keys)]
    out: list[dict[str, Any]] = []
    if file_no % 50 == 7:  # a failed-decrypt burst from another account
        denied = "AccessDeniedException"
        out += [event("Decrypt", k, OUTSIDER, t0 + timedelta(seconds=s), error=denied) for s in range(8)]
    if file_no % 100 == 13:  # a destructive administrative call
        name = "ScheduleKeyDeletion" if file_no % 200 == 13 else "DisableKey"
        out.append(event(name, k, f"arn:aws:iam::{ACCOUNT}:user/user-0", t0 + timedelta(seconds=30)))
    if file_no % 40 == 21 and file_no > 500:  # late in the logs: a new principal, and an outside account's use
        out.append(event("Decrypt", k, NEWCOMER, t0 + timedelta(seconds=60)))
        out.append(event("Decrypt", k, OUTSIDER, t0 + timedelta(seconds=90)))
    return out


def generate(
    root: Path,
    n_events: int,
    n_keys: int = 200,
    seed: int = 7,
    per_file: int = EVENTS_PER_FILE,
    file_seconds: float = 300.0,
) -> tuple[list[Path], int]:
    """``n_events`` over 30 days in files of ``per_file`` events, each spanning ``file_seconds`` (a trail delivers
    every 5 minutes; a huge export file spans its share of the 30 days)."""
    from kmsguard.trail.synth import event, key_arn

    rng = random.Random(seed)
    keys = [key_arn(ACCOUNT, REGIONS[i % len(REGIONS)], i + 1) for i in range(n_keys)]
    principals = [f"arn:aws:sts::{ACCOUNT}:assumed-role/app-{i}/session-{i}" for i in range(40)]
    principals += [f"arn:aws:iam::{ACCOUNT}:user/user-{i}" for i in range(10)] + ["service:cloudtrail.amazonaws.com"]
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    start = datetime(2024, 3, 1, tzinfo=UTC)
    span = timedelta(days=30).total_seconds()
    # One template per (key, principal, action) re-stamped per event: generation must not dominate the run.
    paths: list[Path] = []
    made = 0
    file_no = 0
    total_bytes = 0
    while made < n_events:
        count = min(per_file, n_events - made)
        t0 = start + timedelta(seconds=span * made / n_events)
        region = REGIONS[file_no % len(REGIONS)]
        recs = []
        for i in range(count):
            k = keys[rng.randrange(n_keys)]
            p = principals[rng.randrange(len(principals))]
            name = rng.choices(names, weights)[0]
            if file_no == SPIKE_FILE:  # one key hammered for five minutes: a usage spike
                k, p, name = keys[0], principals[1], "Decrypt"
            t = t0 + timedelta(seconds=i * file_seconds / count)
            recs.append(
                event(name, k, p, t, context_arn=f"arn:aws:s3:::bucket-{k[-4:]}/obj/{uuid.uuid4().hex[:12]}")
                if name != "DescribeKey"
                else event(name, k, p, t)
            )
        inc = incidents(file_no, keys, t0)
        recs[: len(inc)] = inc
        d = root / "AWSLogs" / ACCOUNT / "CloudTrail" / region / t0.strftime("%Y/%m/%d")
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{ACCOUNT}_CloudTrail_{region}_{t0.strftime('%Y%m%dT%H%MZ')}_{file_no:016d}.json.gz"
        data = gzip.compress(json.dumps({"Records": recs}).encode(), compresslevel=6)
        path.write_bytes(data)
        total_bytes += len(data)
        paths.append(path)
        made += count
        file_no += 1
    return paths, total_bytes


def _decompress(paths: list[str]) -> int:
    from isal import igzip

    n = 0
    for p in paths:
        with open(p, "rb") as f:
            n += len(igzip.decompress(f.read()))
    return n


def _orjson_agg(paths: list[str]) -> Counter[tuple[str, str]]:
    import orjson
    from isal import igzip

    c: Counter[tuple[str, str]] = Counter()
    for p in paths:
        with open(p, "rb") as f:
            doc = orjson.loads(igzip.decompress(f.read()))
        for r in doc["Records"]:
            if r.get("eventSource") == "kms.amazonaws.com":
                key = None
                for res in r.get("resources") or ():
                    key = res.get("ARN")
                c[(key or "", r["eventName"])] += 1
    return c


def _split(paths: list[Path], n: int) -> list[list[str]]:
    return [[str(p) for p in paths[i::n]] for i in range(n)]


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_child(mode: str, root: str, workers: int, cache: str) -> dict[str, Any]:
    """One measurement in a fresh process, so its peak memory is its own."""
    paths = sorted(Path(root).rglob("*.json.gz"))
    t = time.perf_counter()
    out: dict[str, Any] = {}
    if mode == "decompress":
        with _pool(workers) as pool:
            out["bytes"] = sum(pool.map(_decompress, _split(paths, workers)))
    elif mode == "kmsguard":
        from kmsguard.trail.analyze import TrailOptions, analyze

        rep = analyze([root], None, TrailOptions(cache_dir=Path(cache), workers=workers))
        out["events"] = rep.events
        out["findings"] = len(rep.findings)
    elif mode == "detections":
        from kmsguard.trail.analyze import TrailOptions, analyze

        rep = analyze([root], None, TrailOptions(cache_dir=Path(cache), workers=workers))
        out["events"] = rep.events
        out["files_read"] = rep.ingest.files_read
    elif mode == "duckdb_read_json":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {workers}")
        q = (
            "SELECT r.resources[1].ARN AS key, r.eventName, count(*) FROM "
            f"(SELECT unnest(Records) AS r FROM read_json('{root}/**/*.json.gz', format='auto', "
            "maximum_object_size=1000000000)) WHERE r.eventSource = 'kms.amazonaws.com' GROUP BY 1, 2"
        )
        out["groups"] = len(con.execute(q).fetchall())
    elif mode == "orjson":
        with _pool(workers) as pool:
            total: Counter[tuple[str, str]] = Counter()
            for c in pool.map(_orjson_agg, _split(paths, workers)):
                total.update(c)
        out["groups"] = len(total)
    out["seconds"] = time.perf_counter() - t
    out["peak_mb"] = _peak_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temp dir)")
    ap.add_argument(
        "--keep", action="store_true", help="keep the generated files (a later run with the same --dir reuses them)"
    )
    ap.add_argument("--skip", default="", help="comma-separated measurements to skip (e.g. duckdb_read_json)")
    ap.add_argument("--child", nargs=4, metavar=("MODE", "ROOT", "WORKERS", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, root, workers, cache = args.child
        print(json.dumps(run_child(mode, root, int(workers), cache)))
        return

    import subprocess

    base = args.dir or Path(tempfile.mkdtemp(prefix="kmsguard-bench-trail-"))
    root = base / "logs"
    cache = base / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    t = time.perf_counter()
    marker = root / "generated.json"
    try:
        done = json.loads(marker.read_text())
    except (OSError, ValueError):
        done = {}
    if args.dir is not None and done.get("events") == args.events:  # --dir --keep: reuse the same logs
        paths, nbytes = sorted(root.rglob("*.json.gz")), int(done["bytes"])
        print(f"reusing {args.events:,} events in {len(paths)} files, {nbytes / 1e6:.0f} MB gzip")
    else:
        shutil.rmtree(root, ignore_errors=True)
        paths, nbytes = generate(root, args.events)
        marker.write_text(json.dumps({"events": args.events, "bytes": nbytes}))
        print(
            f"generated {args.events:,} events in {len(paths)} files, {nbytes / 1e6:.0f} MB gzip "
            f"({time.perf_counter() - t:.0f} s)"
        )
    print(f"workers={args.workers}")

    def child(mode: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(root), str(args.workers), str(cache)],
            check=True,
            capture_output=True,
            text=True,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, dict[str, Any]] = {}
    for mode in ("decompress", "kmsguard", "detections", "orjson", "duckdb_read_json"):
        if mode in skip:
            continue
        results[mode] = r = child(mode)
        rate = args.events / r["seconds"]
        print(
            f"{mode:>18}: {r['seconds']:8.2f} s  {rate:>12,.0f} events/s  "
            f"{rate / args.workers:>10,.0f} /s/core  peak {r['peak_mb']:,.0f} MB"
        )
    if "decompress" in results and "kmsguard" in results:
        ratio = results["decompress"]["seconds"] / results["kmsguard"]["seconds"]
        print(f"kmsguard end to end / decompression alone: {ratio:.2f} (target >= 0.33)")
    for other in ("orjson", "duckdb_read_json"):
        if other in results and "kmsguard" in results:
            print(f"kmsguard vs {other}: {results[other]['seconds'] / results['kmsguard']['seconds']:.1f}x faster")
    if not args.keep and args.dir is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
