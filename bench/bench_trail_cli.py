"""Benchmark (issue 17): `kmsguard trail analyze` as a user runs it, against decompressing the same files.

    .venv/bin/python bench/bench_trail_cli.py [--events 1018439] [--per-file 1769] [--huge-files 4] [--spark]
                                              [--dir DIR --keep] [--workers 2]

Generates schema-faithful CloudTrail KMS events (bench_trail.generate) in two shapes: many small gzip files in the
``AWSLogs/`` layout (by default 576 files of 1,769 events, about 2.5 MB of JSON each, the shape a busy account's
trail delivers) and a few huge files (the same number of events in ``--huge-files`` files). Then, per shape, in
one run, each as a fresh process so start-up counts as it does for a user:

1. ``zcat`` over the files with ``--workers`` processes (xargs -P), output to /dev/null: the baseline;
2. ISA-L decompression of the same files in ``--workers`` fresh Python processes: the floor kmsguard's own reader
   sits on;
3. ``kmsguard trail analyze DIR`` with a fresh cache (the first run), ``--timings`` parsed into stages;
4. the same command again over the unchanged files (the re-run; the median of three);
5. with ``--spark``, the first run with ``--engine spark`` (local mode) on the many-files shape.

It checks that every run of a shape reports the same detections (check, key, message; the shapes' incidents differ,
as bench_trail plants them by file number) and prints the ratios: first run /
zcat (target <= 2), re-run seconds per million cached events (target < 1), Spark / DuckDB first run (target
<= 10). Results: bench/results/trail_cli.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_trail import generate

KMSGUARD = [sys.executable, "-m", "kmsguard.cli.main"]
ISAL_CHILD = (
    "import sys\nfrom isal import igzip\nn = 0\n"
    "for p in sys.argv[1:]:\n    with open(p, 'rb') as f:\n        n += len(igzip.decompress(f.read()))\n"
)


def _timed(cmd: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    return time.perf_counter() - t, res


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.json.gz"))


def zcat(root: Path, workers: int) -> float:
    files = _files(root)
    per = max(1, -(-len(files) // workers))
    t = time.perf_counter()
    procs = [
        subprocess.Popen(["zcat", *files[i : i + per]], stdout=subprocess.DEVNULL) for i in range(0, len(files), per)
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("zcat failed")
    return time.perf_counter() - t


def isal(root: Path, workers: int) -> float:
    files = _files(root)
    per = max(1, -(-len(files) // workers))
    t = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", ISAL_CHILD, *files[i : i + per]]) for i in range(0, len(files), per)
    ]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("ISA-L decompression failed")
    return time.perf_counter() - t


_STAGE = re.compile(r"^\s+(.+?)\s+([\d.]+) s(?:\s|$)")


def parse_timings(stderr: str) -> dict[str, float]:
    """The ``--timings`` block of stderr: stage -> seconds (and "total")."""
    text = stderr.split("timings:", 1)[1] if "timings:" in stderr else ""
    return {m[1]: float(m[2]) for m in map(_STAGE.match, text.splitlines()) if m}


def analyze(root: Path, cache: Path, out: Path, *extra: str) -> dict[str, Any]:
    cmd = [*KMSGUARD, "trail", "analyze", str(root), "--cache", str(cache), "-f", "json", "-o", str(out), "-q"]
    secs, res = _timed([*cmd, "--timings", "--fail-on", "never", *extra])
    if res.returncode != 0:
        raise SystemExit(f"kmsguard failed ({res.returncode}): {res.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    found = sorted({(f["check_id"], f["resource_arn"], f["message"]) for f in doc["findings"]})
    return {"seconds": secs, "stages": parse_timings(res.stderr), "findings": found}


def shape(name: str, root: Path, work: Path, workers: int, events: int, spark: bool) -> dict[str, Any]:
    files = _files(root)
    gz = sum(os.path.getsize(f) for f in files)
    print(f"\n== {name}: {len(files)} files, {gz / 1e6:.0f} MB gzip, {events:,} events, {workers} processes")
    out: dict[str, Any] = {"files": len(files), "gzip_bytes": gz, "events": events}
    out["zcat"] = zcat(root, workers)
    out["isal"] = isal(root, workers)
    cache = work / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    out["first"] = analyze(root, cache, work / f"{name}-first.json")
    # The re-run is short (well under a second), so one sample is mostly noise: the median of three.
    reruns = sorted((analyze(root, cache, work / f"{name}-rerun.json") for _ in range(3)), key=lambda r: r["seconds"])
    out["rerun"] = reruns[1]
    if spark:
        spark_cache = work / f"cache-{name}-spark"
        shutil.rmtree(spark_cache, ignore_errors=True)
        out["spark"] = analyze(root, spark_cache, work / f"{name}-spark.json", "--engine", "spark")
    for run in ("rerun", "spark"):
        if run in out and out[run]["findings"] != out["first"]["findings"]:
            raise SystemExit(f"{name}: the {run} reported other detections than the first run")
    first, z = out["first"]["seconds"], out["zcat"]
    print(f"  zcat {z:.2f} s   ISA-L {out['isal']:.2f} s   ({len(out['first']['findings'])} detections)")
    print(f"  kmsguard first run {first:.2f} s = {first / z:.2f}x zcat (target <= 2), {first / out['isal']:.2f}x ISA-L")
    for stage, secs in out["first"]["stages"].items():
        print(f"      {stage:<40} {secs:6.2f} s")
    rr = out["rerun"]["seconds"]
    print(f"  re-run {rr:.2f} s = {rr / (events / 1e6):.2f} s per million cached events (target < 1)")
    if "spark" in out:
        sp = out["spark"]["seconds"]
        print(f"  spark (local) first run {sp:.2f} s = {sp / first:.1f}x DuckDB's first run (target <= 10)")
        for stage, secs in out["spark"]["stages"].items():
            print(f"      {stage:<40} {secs:6.2f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_018_439)
    ap.add_argument("--per-file", type=int, default=1_769)
    ap.add_argument("--huge-files", type=int, default=4, help="the second shape: the events in this many files")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--spark", action="store_true", help="also the first run with --engine spark (local mode)")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "trail_cli.json")
    args = ap.parse_args()

    base = args.dir or Path(tempfile.mkdtemp(prefix="kmsguard-bench-trail-cli-"))
    base.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"events": args.events, "workers": args.workers}
    for name, per_file in (("many", args.per_file), ("huge", -(-args.events // args.huge_files))):
        root = base / name
        marker = base / f"{name}.generated.json"  # beside the logs: a file among them would be read as a log
        want = {"events": args.events, "per_file": per_file, "version": 2}
        if not (marker.exists() and json.loads(marker.read_text()) == want):
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            # A huge file spans its share of the 30 days, not a 5-minute delivery (254,610 events in 5 minutes
            # would make every hour a spike and every minute a burst).
            seconds = 300.0 if name == "many" else 30 * 86400 * per_file / args.events
            generate(root, args.events, per_file=per_file, file_seconds=seconds)
            marker.write_text(json.dumps(want))
            print(f"generated {name}: {args.events:,} events, {per_file:,} per file ({time.perf_counter() - t:.0f} s)")
        results[name] = shape(name, root, base, args.workers, args.events, args.spark and name == "many")
    print("\nevery run of a shape reported the same detections")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"results: {args.output}")
    if not args.keep and args.dir is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
