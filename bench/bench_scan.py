"""The scan benchmark (issue 2, "Speed"): kmsguard against the floor, Prowler, Cloud Custodian and the guide's script.

Everything runs in one invocation against one moto server (with kmsguard's emulator layer), started in its
own process so that the scanners measured here do not share its GIL, and seeded by seed.py
(2 regions x 500 customer keys, plus the AWS managed keys the seeded resources bring in: 1,008 keys).
The machine is shared and noisy, so what counts are the ratios measured in the same run.

Measured, after one untimed warm-up of each (moto loads a service's backend on its first request):

- kmsguard in-process: collect_snapshot() then judge(), timed apart; and the CLI end to end as a subprocess
  (``kmsguard scan --endpoint-url ... --format json -o /dev/null``). ``--repeat`` rounds, interleaved with
- the floor (floor_boto3.py: the same calls, the same max_workers, bare boto3); the median of each is kept.
- AWS calls counted at the server (its request counter), per operation; calls per key = the per-key KMS
  operations / keys, and the rest is the constant (per region, the account-level calls included).
  The floor's per-operation counts are compared with kmsguard's: any difference is printed, since it means
  the floor no longer mirrors the collector.
- Prowler's KMS checks (``prowler aws --service kms``) and Cloud Custodian (custodian-kms.yml), each installed
  into its own venv under bench/.venvs/, pointed at the server with AWS_ENDPOINT_URL and fake credentials.
- The guide's validation script (guide_validate.sh, the aws CLI from its own venv) on a sample of keys of
  the first region, extrapolated per key: the full walk takes more than 10 minutes.

Usage:
    .venv/bin/python bench/bench_scan.py                       # everything (about 10 minutes here)
    .venv/bin/python bench/bench_scan.py --no-peers            # kmsguard, floor and calls only
    .venv/bin/python bench/bench_scan.py --keys-per-region 50 --repeat 1
Results: a table on stdout, and bench/results/scan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import floor_boto3
import seed

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# KMS operations kmsguard makes once per key (kmsguard.collect.kms); every other call is part of the constant.
PER_KEY_OPERATIONS = {
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:ListGrants",
}

# Targets from issue 2.
TARGET_FLOOR = 1.3
TARGET_PROWLER = 5.0
TARGET_CUSTODIAN = 3.0
TARGET_GUIDE = 100.0
TARGET_CALLS_PER_KEY = 5.0


# --- the server ---------------------------------------------------------------------------------------------


class Server:
    """A moto server with kmsguard's emulator layer in a child process (seed.py --serve-only)."""

    def __init__(self, command: list[str] | None = None) -> None:
        """``command``: another server that prints {"endpoint_url": ...} and serves until stdin closes."""
        self.proc = subprocess.Popen(
            command or [sys.executable, str(BENCH / "seed.py"), "--serve-only"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process exited before printing its endpoint")
        self.endpoint_url: str = json.loads(line)["endpoint_url"]

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system), from /proc; 0 where there is none."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/kmsguard/requests", timeout=10) as r:
            return dict(json.load(r)["requests"])

    def reset_counts(self) -> None:
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/kmsguard/requests", method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the child serves until its stdin closes
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@dataclass
class Timed:
    seconds: float
    calls: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # CPU seconds the server spent meanwhile: close to ``seconds`` means the run was bound by the emulator
    # (one Python process answering every request), not by the scanner.
    server_cpu: float = 0.0


def measured(server: Server, fn: Callable[[], dict[str, Any]]) -> Timed:
    """Run fn with the server's counter reset; its wall time and the calls the server answered meanwhile."""
    server.reset_counts()
    cpu = server.cpu_seconds()
    start = time.perf_counter()
    extra = fn()
    seconds = time.perf_counter() - start
    return Timed(seconds, server.counts(), extra, server.cpu_seconds() - cpu)


# --- kmsguard and the floor ---------------------------------------------------------------------------------


def kmsguard_in_process(endpoint_url: str, regions: list[str]) -> dict[str, Any]:
    from kmsguard.aws.options import AwsOptions
    from kmsguard.collect.snapshot import collect_snapshot
    from kmsguard.pipeline import judge

    t0 = time.perf_counter()
    snapshot = collect_snapshot(AwsOptions(regions=regions, endpoint_url=endpoint_url))
    t1 = time.perf_counter()
    result = judge(snapshot)
    t2 = time.perf_counter()
    errors = sum(len(k.errors) for k in snapshot.all_keys()) + sum(
        len(r.errors) for a in snapshot.accounts for r in a.regions
    )
    return {
        "collect_seconds": t1 - t0,
        "judge_seconds": t2 - t1,
        "keys": len(snapshot.all_keys()),
        "findings": len(result.findings),
        "collection_errors": errors,
    }


def kmsguard_cli(endpoint_url: str, regions: list[str]) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("kmsguard")
    cmd = [str(exe), "scan", "--endpoint-url", endpoint_url, "--regions", ",".join(regions)]
    cmd += ["--format", "json", "-o", "/dev/null", "--quiet", "--fail-on", "never"]
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": regions[0]}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kmsguard scan exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return {"command": " ".join(cmd)}


def floor(endpoint_url: str, regions: list[str], max_workers: int) -> dict[str, Any]:
    r = floor_boto3.run_floor(endpoint_url, regions, max_workers)
    return {"keys": r.keys, "errors": dict(r.errors)}


# --- peers, each in its own venv ------------------------------------------------------------------------------


def ensure_venv(name: str, package: str, probe: str) -> Path:
    """bench/.venvs/<name> with ``package`` installed; returns its bin/. Installs on first use."""
    venv = VENVS / name
    bin_dir = venv / "bin"
    if not (bin_dir / probe).exists():
        print(f"  installing {package} into {venv} (first run only) ...", flush=True)
        VENVS.mkdir(parents=True, exist_ok=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        log = VENVS / f"{name}-install.log"
        with log.open("w") as out:
            subprocess.run(
                [str(bin_dir / "pip"), "install", "--disable-pip-version-check", package],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
    return bin_dir


def _version(bin_dir: Path, dist: str) -> str:
    proc = subprocess.run(
        [str(bin_dir / "python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or "?"


def peer_env(endpoint_url: str, region: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update({"AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region})
    return env


def prowler(endpoint_url: str, regions: list[str], work: Path) -> dict[str, Any]:
    bin_dir = ensure_venv("prowler", "prowler", "prowler")
    out = work / "prowler"
    cmd = [str(bin_dir / "prowler"), "aws", "--service", "kms", "--region", *regions]
    cmd += ["--no-banner", "--no-color", "--output-formats", "csv", "--output-directory", str(out), "-z"]
    proc = subprocess.run(cmd, env=peer_env(endpoint_url, regions[0]), capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    (work / "prowler.log").write_text(text)
    if proc.returncode != 0:
        raise RuntimeError(f"prowler exited {proc.returncode}: {text.strip()[-1500:]}")
    # Prowler's own figure for the checks alone, without its start-up: "Scan completed! ... in 39.1s", or
    # "in 1:55.4" past a minute.
    done = text.find("Scan completed")
    m = re.search(r"in (?:(\d+):)?([0-9.]+)", text[done:]) if done >= 0 else None
    checks_seconds = 60 * int(m.group(1) or 0) + float(m.group(2)) if m else None
    findings = sum(max(0, len(p.read_text().splitlines()) - 1) for p in out.rglob("*.csv"))
    return {
        "command": " ".join(cmd),
        "version": _version(bin_dir, "prowler"),
        "checks_seconds_reported": checks_seconds,
        "findings": findings,
    }


def custodian(endpoint_url: str, regions: list[str], work: Path) -> dict[str, Any]:
    bin_dir = ensure_venv("c7n", "c7n", "custodian")
    out = work / "custodian"
    # A fresh cache file per run: Custodian otherwise reuses resources fetched in the last 15 minutes.
    cmd = [str(bin_dir / "custodian"), "run", "-s", str(out), "--cache", str(work / "c7n.cache")]
    for r in regions:
        cmd += ["--region", r]
    cmd.append(str(BENCH / "custodian-kms.yml"))
    proc = subprocess.run(cmd, env=peer_env(endpoint_url, regions[0]), capture_output=True, text=True, check=False)
    (work / "custodian.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"custodian exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}")
    matched = {str(p.parent.relative_to(out)): len(json.loads(p.read_text())) for p in out.rglob("resources.json")}
    return {"command": " ".join(cmd), "version": _version(bin_dir, "c7n"), "matched": matched}


GuideRun = Callable[[int], Callable[[], dict[str, Any]]]


def guide_script(endpoint_url: str, region: str, sample: int, work: Path) -> tuple[GuideRun, dict[str, Any]]:
    """A maker of guide-script runs over the first n keys (timed by the caller), and what to record about it."""
    bin_dir = ensure_venv("awscli", "awscli", "aws")
    env = peer_env(endpoint_url, region)
    env["AWS_CLI"] = str(bin_dir / "aws")
    script = str(BENCH / "guide_validate.sh")

    def run(n: int) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            proc = subprocess.run(
                ["bash", script], env={**env, "MAX_KEYS": str(n)}, capture_output=True, text=True, check=False
            )
            (work / f"guide-{n}.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise RuntimeError(f"guide_validate.sh exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
            return {"lines": len(proc.stdout.splitlines())}

        return go

    info = {
        "command": f"AWS_CLI={env['AWS_CLI']} MAX_KEYS={sample} bash {script}",
        "version": _version(bin_dir, "awscli"),
    }
    return run, info


# --- reporting -------------------------------------------------------------------------------------------------


def split_calls(calls: dict[str, int], keys: int, regions: int) -> dict[str, Any]:
    per_key_total = sum(n for op, n in calls.items() if op in PER_KEY_OPERATIONS)
    total = sum(calls.values())
    constant = total - per_key_total
    return {
        "total": total,
        "per_key_operations": per_key_total,
        "per_key": per_key_total / keys if keys else None,
        "constant": constant,
        "constant_per_region": constant / regions if regions else None,
        "by_operation": dict(sorted(calls.items())),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return ("meets" if ok else "MISSES") + f" target {'>=' if higher_is_better else '<='} {target:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys-per-region", type=int, default=500)
    ap.add_argument("--regions", default=",".join(seed.DEFAULT_REGIONS))
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds of kmsguard / CLI / floor (median kept)")
    ap.add_argument("--no-peers", action="store_true", help="skip Prowler, Cloud Custodian and the guide's script")
    ap.add_argument("--no-prowler", action="store_true")
    ap.add_argument("--no-custodian", action="store_true")
    ap.add_argument("--guide-sample", type=int, default=30, help="keys the guide's script walks (0: skip it)")
    ap.add_argument("--output", type=Path, default=RESULTS / "scan.json")
    args = ap.parse_args(argv)
    regions = args.regions.split(",")

    from kmsguard.aws.options import AwsOptions

    max_workers = AwsOptions().max_workers  # the floor gets kmsguard's own default concurrency
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_DEFAULT_REGION"] = regions[0]
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)

    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "versions": {d: metadata.version(d) for d in ("kmsguard", "moto", "boto3", "botocore")},
        "max_workers": max_workers,
        "notes": [],
    }
    server = Server()
    # The peers' outputs and logs stay here (gitignored) for whoever wants to check what they did.
    work = RESULTS / "scan-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        print(
            f"emulator at {server.endpoint_url}; seeding {len(regions)} x {args.keys_per_region} keys ...", flush=True
        )
        report = seed.seed(server.endpoint_url, regions, args.keys_per_region)
        keys = report.total_keys
        results["seed"] = {
            "seconds": report.seconds,
            "keys": keys,
            "keys_by_region": report.listed_keys,
            "warnings": report.warnings,
        }
        print(f"  {keys} keys {report.listed_keys} in {report.seconds:.1f} s", flush=True)
        for w in report.warnings:
            print(f"  seed warning: {w}")

        print("warm-up (untimed): floor, kmsguard ...", flush=True)
        floor(server.endpoint_url, regions, max_workers)
        kmsguard_in_process(server.endpoint_url, regions)

        runs: dict[str, list[Timed]] = {"kmsguard": [], "cli": [], "floor": []}
        for i in range(args.repeat):
            runs["kmsguard"].append(measured(server, lambda: kmsguard_in_process(server.endpoint_url, regions)))
            runs["floor"].append(measured(server, lambda: floor(server.endpoint_url, regions, max_workers)))
            runs["cli"].append(measured(server, lambda: kmsguard_cli(server.endpoint_url, regions)))
            k, f, c = runs["kmsguard"][-1], runs["floor"][-1], runs["cli"][-1]
            print(
                f"  round {i + 1}: kmsguard {k.seconds:.2f} s (collect {k.extra['collect_seconds']:.2f}, "
                f"judge {k.extra['judge_seconds']:.2f}; server CPU {k.server_cpu:.1f} s), "
                f"floor {f.seconds:.2f} s (server CPU {f.server_cpu:.1f} s), CLI {c.seconds:.2f} s",
                flush=True,
            )

        def med(name: str, key: str | None = None) -> float:
            return statistics.median(t.extra[key] if key else t.seconds for t in runs[name])

        kg, kg_collect, kg_judge = med("kmsguard"), med("kmsguard", "collect_seconds"), med("kmsguard", "judge_seconds")
        fl, cli = med("floor"), med("cli")
        kg_keys = runs["kmsguard"][0].extra["keys"]
        fl_keys = runs["floor"][0].extra["keys"]
        kg_calls = split_calls(runs["kmsguard"][0].calls, kg_keys, len(regions))
        fl_calls = split_calls(runs["floor"][0].calls, fl_keys, len(regions))
        cli_calls = split_calls(runs["cli"][0].calls, kg_keys, len(regions))
        mirror = {
            op: (kg_calls["by_operation"].get(op, 0), fl_calls["by_operation"].get(op, 0))
            for op in sorted(set(kg_calls["by_operation"]) | set(fl_calls["by_operation"]))
            if kg_calls["by_operation"].get(op, 0) != fl_calls["by_operation"].get(op, 0)
        }
        results["kmsguard"] = {
            "seconds_median": kg,
            "collect_seconds_median": kg_collect,
            "judge_seconds_median": kg_judge,
            "runs": [{"seconds": t.seconds, "server_cpu_seconds": t.server_cpu, **t.extra} for t in runs["kmsguard"]],
            "calls": kg_calls,
        }
        results["kmsguard_cli"] = {
            "seconds_median": cli,
            "runs": [{"seconds": t.seconds, "server_cpu_seconds": t.server_cpu} for t in runs["cli"]],
            "command": runs["cli"][0].extra["command"],
            "calls": cli_calls,
        }
        results["floor"] = {
            "seconds_median": fl,
            "runs": [{"seconds": t.seconds, "server_cpu_seconds": t.server_cpu} for t in runs["floor"]],
            "keys": fl_keys,
            "errors": runs["floor"][0].extra["errors"],
            "calls": fl_calls,
        }
        results["floor_mirror_differences"] = {op: {"kmsguard": a, "floor": b} for op, (a, b) in mirror.items()}

        # Each peer is bracketed by a kmsguard CLI run just before and just after it, and its ratio is taken against
        # their mean: the load other processes put on this shared machine drifts over the minutes a peer takes.
        def cli_seconds() -> float:
            return measured(server, lambda: kmsguard_cli(server.endpoint_url, regions)).seconds

        def bracketed(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            before = cli_seconds()
            out = fn()
            after = cli_seconds()
            out["kmsguard_cli_adjacent_seconds"] = [before, after]
            print(f"  {name}: kmsguard CLI before {before:.2f} s, after {after:.2f} s", flush=True)
            return out

        peers: dict[str, Any] = {}
        if not args.no_peers and not args.no_prowler:
            print("Prowler (kms service) ...", flush=True)
            peers["prowler"] = bracketed(
                "prowler", lambda: _peer(server, lambda: prowler(server.endpoint_url, regions, work))
            )
        if not args.no_peers and not args.no_custodian:
            print("Cloud Custodian ...", flush=True)
            peers["custodian"] = bracketed(
                "custodian", lambda: _peer(server, lambda: custodian(server.endpoint_url, regions, work))
            )
        if not args.no_peers and args.guide_sample > 0:
            region_keys = report.listed_keys[regions[0]]
            sample = min(args.guide_sample, region_keys)
            print(f"guide's script ({sample} of {region_keys} keys in {regions[0]}, then 0 keys) ...", flush=True)

            def guide() -> dict[str, Any]:
                try:
                    run, info = guide_script(server.endpoint_url, regions[0], sample, work)
                    with_keys = measured(server, run(sample))
                    constant = measured(server, run(0))
                except Exception as e:  # a peer that cannot run is reported, never faked
                    return {"error": f"{type(e).__name__}: {e}"}
                per_key = (with_keys.seconds - constant.seconds) / sample
                return {
                    **info,
                    "sample_keys": sample,
                    "sample_seconds": with_keys.seconds,
                    "constant_seconds": constant.seconds,
                    "seconds_per_key": per_key,
                    "extrapolated_region_seconds": constant.seconds + per_key * region_keys,
                    "extrapolated_estate_seconds": len(regions) * constant.seconds + per_key * keys,
                    "calls_sample": sum(with_keys.calls.values()),
                    "calls_by_operation_sample": with_keys.calls,
                }

            peers["guide"] = bracketed("guide", guide)
        results["peers"] = peers
        results["keys"] = keys

        def kg_cli_near(name: str) -> float:
            adjacent = peers.get(name, {}).get("kmsguard_cli_adjacent_seconds")
            return statistics.mean(adjacent) if adjacent else cli

        # Ratios: tools run as processes are compared with kmsguard's CLI (both pay start-up), the one measured next
        # to them; the floor with the in-process scan (neither pays start-up).
        ratios = {
            "kmsguard_over_floor": ratio(kg, fl),
            "kmsguard_collect_over_floor": ratio(kg_collect, fl),
            "prowler_over_kmsguard": ratio(peers.get("prowler", {}).get("seconds"), kg_cli_near("prowler")),
            "prowler_checks_only_over_kmsguard": ratio(
                peers.get("prowler", {}).get("checks_seconds_reported"), kg_cli_near("prowler")
            ),
            "custodian_over_kmsguard": ratio(peers.get("custodian", {}).get("seconds"), kg_cli_near("custodian")),
            "guide_over_kmsguard_per_key": ratio(
                peers.get("guide", {}).get("seconds_per_key"), kg_cli_near("guide") / keys
            ),
            "calls_per_key": kg_calls["per_key"],
            # The same ratios for the floor: what any scanner that makes kmsguard's calls could reach on this server.
            "prowler_over_floor": ratio(peers.get("prowler", {}).get("seconds"), fl),
            "custodian_over_floor": ratio(peers.get("custodian", {}).get("seconds"), fl),
            "guide_over_floor_per_key": ratio(peers.get("guide", {}).get("seconds_per_key"), fl / keys),
        }
        floor_run = runs["floor"][0]
        results["emulator_cpu_ms_per_request"] = 1000 * floor_run.server_cpu / max(1, sum(floor_run.calls.values()))
        results["ratios"] = ratios
        results["machine"]["load_after"] = os.getloadavg()
        print_table(results, keys, len(regions))
    finally:
        server.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {args.output}")
    return 0


def _peer(server: Server, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        t = measured(server, fn)
    except Exception as e:  # a peer that cannot run is reported, never faked
        print(f"  could not run: {e}")
        return {"error": f"{type(e).__name__}: {e}"}
    return {
        "seconds": t.seconds,
        "server_cpu_seconds": t.server_cpu,
        "calls": sum(t.calls.values()),
        "calls_by_operation": t.calls,
        **t.extra,
    }


def print_table(r: dict[str, Any], keys: int, regions: int) -> None:
    kg, cli, fl = r["kmsguard"], r["kmsguard_cli"], r["floor"]
    peers, ratios = r["peers"], r["ratios"]
    print(f"\n== scan benchmark: {keys} keys in {regions} regions, max_workers {r['max_workers']} ==")
    print(f"{'run':<44} {'seconds':>9} {'calls':>7} {'calls/key':>9}")
    rows = [
        ("kmsguard in-process (collect + judge)", kg["seconds_median"], kg["calls"]),
        ("  of which collect_snapshot", kg["collect_seconds_median"], None),
        ("  of which judge", kg["judge_seconds_median"], None),
        ("kmsguard scan CLI (subprocess, end to end)", cli["seconds_median"], cli["calls"]),
        ("floor (bare boto3, same calls)", fl["seconds_median"], fl["calls"]),
    ]
    for name, secs, calls in rows:
        c = f"{calls['total']:>7} {fmt(calls['per_key']):>9}" if calls else ""
        print(f"{name:<44} {secs:>9.2f} {c}")
    for name, p in peers.items():
        if "error" in p:
            print(f"{name:<44} {'could not run':>9}: {p['error'][:300]}")
        elif name == "guide":
            print(
                f"{'guide script, ' + str(p['sample_keys']) + ' keys (sample)':<44} {p['sample_seconds']:>9.2f} "
                f"{p['calls_sample']:>7}\n"
                f"{'  per key (sample - constant) / n':<44} {p['seconds_per_key']:>9.3f}\n"
                f"{'  extrapolated: whole estate':<44} {p['extrapolated_estate_seconds']:>9.0f}   (not measured)"
            )
        else:
            label = {"prowler": "Prowler --service kms", "custodian": "Cloud Custodian (custodian-kms.yml)"}[name]
            print(f"{label:<44} {p['seconds']:>9.2f} {p['calls']:>7} {fmt(p['calls'] / keys):>9}")
            if name == "prowler" and p.get("checks_seconds_reported") is not None:
                print(f"{'  checks only, as Prowler reports it':<44} {p['checks_seconds_reported']:>9.2f}")
    c = kg["calls"]
    print(
        f"\ncalls counted at the server (kmsguard): {c['total']} = {c['per_key_operations']} per-key KMS calls "
        f"({fmt(c['per_key'])}/key) + {c['constant']} constant ({fmt(c['constant_per_region'], 1)}/region, "
        "account-level calls included)"
    )
    if r["floor_mirror_differences"]:
        print(f"WARNING: the floor no longer mirrors the collector: {r['floor_mirror_differences']}")
    else:
        print("the floor made exactly kmsguard's calls (per operation, counted at the server)")
    print("\nratios (same run)")
    lines = [
        ("kmsguard / floor", ratios["kmsguard_over_floor"], TARGET_FLOOR, False),
        ("  collect only / floor", ratios["kmsguard_collect_over_floor"], TARGET_FLOOR, False),
        ("Prowler / kmsguard CLI (run next to it)", ratios["prowler_over_kmsguard"], TARGET_PROWLER, True),
        ("  Prowler's reported checks time / kmsguard CLI", ratios["prowler_checks_only_over_kmsguard"],
         TARGET_PROWLER, True),
        ("Custodian / kmsguard CLI (run next to it)", ratios["custodian_over_kmsguard"], TARGET_CUSTODIAN, True),
        ("guide script / kmsguard CLI, per key", ratios["guide_over_kmsguard_per_key"], TARGET_GUIDE, True),
        ("AWS calls per key (kmsguard)", ratios["calls_per_key"], TARGET_CALLS_PER_KEY, False),
    ]  # fmt: skip
    for name, value, target, higher in lines:
        print(f"  {name:<48} {fmt(value):>8}   {verdict(value, target, higher)}")
    print("\nthe same for the floor (the best any scanner making kmsguard's calls can do on this server)")
    bounds = [
        ("Prowler / floor", ratios["prowler_over_floor"], TARGET_PROWLER),
        ("Custodian / floor", ratios["custodian_over_floor"], TARGET_CUSTODIAN),
        ("guide script / floor, per key", ratios["guide_over_floor_per_key"], TARGET_GUIDE),
    ]
    for name, value, target in bounds:
        print(f"  {name:<48} {fmt(value):>8}   {verdict(value, target, True)}")
    print(
        f"\nthe emulator spent {r['emulator_cpu_ms_per_request']:.1f} ms of CPU per request during the floor run "
        "(one Python process answers every request: it sets the pace for every tool measured here)"
    )


if __name__ == "__main__":
    sys.exit(main())
