"""The Organization benchmark (issue 16): ``kmsguard scan --org`` at AWS's pace, against the floor it can reach.

One command, one process tree: emulators in child processes (``seed_org.py --serve-only``, so the scanners do not
share their GIL), each seeded by seed_org.py with its AWS time paused, then

a. the estate: an Organization of ``--accounts`` member accounts x ``--regions`` x ``--keys`` customer keys (seed.py's
   mix, resources, audit set-up) on a server answering after 30 ms, at AWS's default KMS request quotas;
b. ``kmsguard scan --org`` as a subprocess (after one untimed warm-up): wall time, its CPU (user + system) and peak
   RSS (``os.wait4``), the server's CPU (from /proc), calls per operation and throttled calls, and calls per
   (account, Region) from seed_org.py's counter;
c. the floor, every term printed (see ``Floor``): per account-Region the quota-bound time (max over quotas of calls
   / rate) and the latency-bound time at its share of the concurrency; the largest of those (the issue's floor);
   the whole run's latency bound (calls x latency / concurrency) and its critical path (the collector's sequential
   chain x latency); and the CPU floors on this machine (client and server CPU seconds per call x calls, per core);
d. latency hiding: a second Organization (10 x 2 x 20 by default, no quotas) scanned with instant answers and with
   every answer delayed 400 ms (the same server: its latency is changed at run time when the emulator allows it,
   else a second server is seeded identically);
e. memory: peak RSS of the scan at 5, 10 and all member accounts (``--accounts`` subsets of the same Organization),
   at ``--memory-concurrency`` (default 8: two accounts read at a time, fewer than any point has), so the slope is
   what each account leaves behind and not the number of accounts being read at once;
f. peers on the main server (``--no-peers`` skips): Prowler run once per account as its users run it across an
   Organization (``--role`` per member; a measured sample of accounts, extrapolated linearly and labelled so), and
   c7n-org with bench/custodian-kms.yml over every account;
g. the projection on paper to 1,000 accounts x 17 Regions x 200 keys from the measured per-call costs;

then prints a table and writes bench/results/org.json.

``--kmsguard-ref REF`` runs kmsguard from ``git archive REF src`` (a "before" baseline while the working tree
changes); by default the working tree's kmsguard runs. ``--concurrency N`` is passed to ``kmsguard scan`` only when
its ``--help`` offers the option.

Usage:
    .venv/bin/python bench/bench_org.py                       # everything (about 25 minutes on 2 cores)
    .venv/bin/python bench/bench_org.py --no-peers
    .venv/bin/python bench/bench_org.py --quick --no-peers    # a small estate: checks the script in minutes
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import functools
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import bench_scan
import seed_org

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"

# Targets from issue 16.
TARGET_FLOOR = 1.5
TARGET_THROTTLED_PCT = 1.0
TARGET_HIDING = 1.5
TARGET_PROWLER = 5.0

# The projection's estate and budget (issue 16).
PROJECT_ACCOUNTS, PROJECT_REGIONS, PROJECT_KEYS, PROJECT_BUDGET = 1000, 17, 200, 1800.0

# Calls made once per account (kmsguard.collect: the account's set-up) and once per scan (the caller and the
# Organization); every other call belongs to a Region. The per-key ones are bench_scan.PER_KEY_OPERATIONS.
PER_ACCOUNT_OPERATIONS = {
    "sts:AssumeRole",
    "ec2:DescribeRegions",
    "iam:GetAccountAuthorizationDetails",
    "s3:ListBuckets",
}
PER_SCAN_SERVICES = ("organizations:",)
PER_SCAN_OPERATIONS = {"sts:GetCallerIdentity"}


# --- servers and kmsguard ------------------------------------------------------------------------------------------


class OrgServer(bench_scan.Server):
    """An emulator child (seed_org.py --serve-only) with AWS's time as asked and the per-account-Region counter."""

    def __init__(self, latency: str | None, quotas: str | None) -> None:
        command = [sys.executable, str(BENCH / "seed_org.py"), "--serve-only"]
        command += ["--aws-latency", latency] if latency is not None else []
        command += ["--aws-quotas", quotas] if quotas is not None else []
        super().__init__(command)
        self.latency, self.quotas = latency, quotas

    def throttled(self) -> dict[str, int]:
        return dict(seed_org.get_json(f"{self.endpoint_url}/moto-api/kmsguard/requests")["throttled"])

    def set_latency(self, latency: str) -> bool:
        """Change this server's latency at run time; False when the emulator does not offer it (yet)."""
        status, state = seed_org.post_json(self.endpoint_url + seed_org.AWS_TIME, {"latency": latency})
        wanted = float(latency.partition(":")[0])
        ok = status == 200 and isinstance(state, dict) and float(state.get("latency_ms", -1)) == wanted
        if ok:
            self.latency = latency
        return ok


class Kmsguard:
    """The kmsguard CLI to measure: the working tree's, or ``git archive REF src`` on PYTHONPATH."""

    def __init__(self, ref: str | None, work: Path) -> None:
        self.ref = ref
        self.pythonpath: str | None = None
        if ref is not None:
            src = work / f"kmsguard-{ref.replace('/', '_')}"
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
            self.pythonpath = str(src / "src")
            self.commit = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True, check=True
            ).stdout.strip()
        else:
            self.commit = "working tree"
        help_text = self._run_python(
            "import sys; from kmsguard.cli.main import main; sys.argv=['kmsguard','scan','--help']; main()"
        )
        self.options = {o for o in ("--concurrency", "--quotas") if o in help_text}
        self.default_concurrency = self._default_concurrency()

    def env(self, region: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMSGUARD_"))}
        env.update({**bench_scan.FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": region, "COLUMNS": "200"})
        if self.pythonpath is not None:
            env["PYTHONPATH"] = self.pythonpath
        return env

    def _run_python(self, code: str) -> str:
        proc = subprocess.run([sys.executable, "-c", code], env=self.env("us-east-1"), capture_output=True, text=True)
        return proc.stdout + proc.stderr

    def _default_concurrency(self) -> int:
        """Requests in flight when --concurrency is not given: the scanned code's own default."""
        out = self._run_python(
            "from kmsguard.aws.options import AwsOptions; o = AwsOptions(); "
            "print(getattr(o, 'concurrency', None) or o.max_workers)"
        )
        try:
            return int(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 16

    def command(
        self, endpoint_url: str, regions: list[str], accounts: list[str] | None, out: Path, concurrency: int | None
    ) -> list[str]:
        cmd = [sys.executable, "-c", "import sys; from kmsguard.cli.main import main; sys.exit(main())"]
        cmd += ["scan", "--org", "--endpoint-url", endpoint_url, "--regions", ",".join(regions)]
        cmd += ["--format", "json", "-o", str(out), "--quiet", "--fail-on", "never"]
        if accounts is not None:
            cmd += ["--accounts", ",".join(accounts)]
        if concurrency is not None and "--concurrency" in self.options:
            cmd += ["--concurrency", str(concurrency)]
        return cmd

    def concurrency_used(self, asked: int | None) -> int:
        return asked if asked is not None and "--concurrency" in self.options else self.default_concurrency


@dataclass
class Process:
    seconds: float
    cpu_seconds: float  # user + system of the process and the children it waited for
    peak_rss_mib: float
    returncode: int


def run_process(cmd: list[str], env: dict[str, str], log: Path) -> Process:
    """Run cmd to the end; wall time and CPU from wait4 (this process's own rusage, not all children's), peak RSS
    from the child's VmHWM.

    Not wait4's ru_maxrss: Linux keeps a process's high-water mark across exec, and a child started with vfork (as
    subprocess does) execs out of this process's memory, so ru_maxrss reads this benchmark's own size whenever the
    child stays below it. VmHWM in /proc/PID/status belongs to the memory the child execs into; it is read every
    50 ms until the child exits (it only grows, so the last reading misses at most the final 50 ms)."""
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = [0.0]
        watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Process(seconds, usage.ru_utime + usage.ru_stime, peak[0], proc.returncode)


def _watch_hwm(pid: int, peak: list[float]) -> None:
    """Keep ``peak[0]`` at the largest VmHWM (MiB) of ``pid`` seen, until it has exited."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        if "\nState:\tZ" in text:  # exited, not yet reaped: its memory is gone
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        time.sleep(0.05)


@dataclass
class Measured:
    """One run against a server: the process, and what the server saw meanwhile."""

    process: Process
    server_cpu: float
    calls: dict[str, int]  # "service:Operation" -> requests answered (throttled ones included)
    throttled: dict[str, int]
    scopes: dict[tuple[str, str, str, str], int]  # (account, region, service, operation) -> requests
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def throttled_pct(self) -> float:
        return 100 * sum(self.throttled.values()) / max(1, self.total_calls)


def measured(server: OrgServer, fn: Callable[[], Process]) -> Measured:
    server.reset_counts()
    seed_org.reset_scope_counts(server.endpoint_url)
    cpu = server.cpu_seconds()
    process = fn()
    server_cpu = server.cpu_seconds() - cpu
    return Measured(
        process, server_cpu, server.counts(), server.throttled(), seed_org.scope_counts(server.endpoint_url)
    )


def scan(
    server: OrgServer,
    kg: Kmsguard,
    regions: list[str],
    work: Path,
    name: str,
    accounts: list[str] | None = None,
    concurrency: int | None = None,
) -> Measured:
    """``kmsguard scan --org`` once, measured; its report is read back for what it found."""
    out = work / f"{name}.json"
    cmd = kg.command(server.endpoint_url, regions, accounts, out, concurrency)
    m = measured(server, lambda: run_process(cmd, kg.env(regions[0]), work / f"{name}.log"))
    if m.process.returncode != 0:
        log = (work / f"{name}.log").read_text()[-2000:]
        raise RuntimeError(f"kmsguard scan ({name}) exited {m.process.returncode}: {log}")
    report = json.loads(out.read_text())
    statuses = Counter(f["status"] for f in report["findings"])
    m.extra = {
        "command": " ".join(cmd[3:]),
        "accounts": len(report["accounts"]),
        "keys": m.calls.get("kms:DescribeKey", 0),
        "findings": len(report["findings"]),
        "error_findings": statuses.get("ERROR", 0),
    }
    print(
        f"  {name}: {m.process.seconds:.1f} s wall, client CPU {m.process.cpu_seconds:.1f} s, "
        f"peak RSS {m.process.peak_rss_mib:.0f} MiB, server CPU {m.server_cpu:.1f} s, {m.total_calls} calls "
        f"({m.throttled_pct:.2f}% throttled), {m.extra['keys']} keys, {m.extra['error_findings']} ERROR findings",
        flush=True,
    )
    return m


# --- the floor -----------------------------------------------------------------------------------------------------


def load_quota_table(spec: str) -> Any:
    """The quota table the emulator throttles by (its home moves from kmsguard.demo to kmsguard.aws)."""
    for module in ("kmsguard.aws.quotas", "kmsguard.demo.quotas"):
        with contextlib.suppress(ModuleNotFoundError):
            return importlib.import_module(module).load_quotas(spec)
    raise RuntimeError("no quota table: neither kmsguard.aws.quotas nor kmsguard.demo.quotas")


@dataclass
class AccountRegionFloor:
    account: str
    region: str
    calls: int
    quota_bound: float
    binding_quota: str | None  # the quota that sets quota_bound, with its calls and rate
    latency_bound: float  # calls x latency / this account-Region's share of the concurrency

    @property
    def floor(self) -> float:
        return max(self.quota_bound, self.latency_bound)


def account_region_floors(
    scopes: dict[tuple[str, str, str, str], int], quotas: Any, latency: float, concurrency: int
) -> list[AccountRegionFloor]:
    """Each account-Region's quota-bound and latency-bound times. The scan runs every account-Region at once on one
    pool of ``concurrency`` requests, so each gets an equal share of it: concurrency / number of account-Regions."""
    calls: Counter[tuple[str, str]] = Counter()
    by_quota: dict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    known: dict[tuple[str, str], Any] = {}  # (service, quota name) -> Quota (unhashable: it holds a dict)
    for (account, region, service, operation), n in scopes.items():
        calls[(account, region)] += n
        quota = quotas.quota_for(service, operation) if quotas is not None else None
        if quota is not None:
            known[(service, quota.name)] = quota
            by_quota[(account, region)][(service, quota.name)] += n
    share = concurrency / max(1, len(calls))
    floors = []
    for (account, region), n in sorted(calls.items()):
        bound, binding = 0.0, None
        for name, k in by_quota[(account, region)].items():
            quota = known[name]
            t = k / quota.rate_in(region)
            if t > bound:
                bound, binding = t, f"{quota.service}:{quota.name} {k} calls / {quota.rate_in(region):g} per s"
        floors.append(AccountRegionFloor(account, region, n, bound, binding, n * latency / share))
    return floors


def critical_path(m: Measured) -> tuple[int, list[str]]:
    """The longest chain of calls the collector makes one after another (collect/snapshot.py, kms.py): the caller,
    the Organization and its account list, the role, the Regions, the key list and aliases of an account-Region
    (pages as counted), then one key's calls in order."""
    ar_pages: Counter[str] = Counter()
    for (_a, _r, service, op), n in m.scopes.items():
        if service == "kms" and op in ("ListKeys", "ListAliases"):
            ar_pages[op] = max(ar_pages[op], n)
    chain = [
        ("sts:GetCallerIdentity", 1),
        ("organizations:DescribeOrganization", 1),
        ("organizations:ListAccounts (pages)", m.calls.get("organizations:ListAccounts", 1)),
        ("sts:AssumeRole", 1),
        ("ec2:DescribeRegions", 1 if m.calls.get("ec2:DescribeRegions") else 0),
        ("kms:ListKeys (pages)", ar_pages["ListKeys"] or 1),
        ("kms:ListAliases (pages)", ar_pages["ListAliases"] or 1),
        ("one key's calls", len(bench_scan.PER_KEY_OPERATIONS)),
    ]
    return sum(n for _, n in chain), [f"{name} x{n}" for name, n in chain if n]


@dataclass
class Floor:
    latency_s: float
    concurrency: int
    cores: int
    total_calls: int
    account_regions: int
    largest: AccountRegionFloor  # the account-Region with the largest floor
    largest_quota: AccountRegionFloor  # ... and with the largest quota-bound time
    whole_run_latency_bound: float  # total calls x latency / concurrency
    critical_path_calls: int
    critical_path_chain: list[str]
    client_cpu_per_call_ms: float
    server_cpu_per_call_ms: float

    @property
    def critical_path(self) -> float:
        return self.critical_path_calls * self.latency_s

    @property
    def issue_floor(self) -> float:
        """The issue's definition: the largest account-Region floor when all run in parallel."""
        return max(self.largest.floor, self.critical_path)

    @property
    def network_floor(self) -> float:
        """The tightest bound the network allows at this concurrency: a pool that never idles is bound by all calls
        over its width, not by the busiest account-Region's equal share of it."""
        return max(self.largest_quota.quota_bound, self.whole_run_latency_bound, self.critical_path)

    # CPU floors on this machine: each Python process runs its Python on one core at a time (the GIL), and the two
    # share the machine's cores.
    @property
    def client_cpu_floor(self) -> float:
        return self.client_cpu_per_call_ms * self.total_calls / 1000

    @property
    def server_cpu_floor(self) -> float:
        return self.server_cpu_per_call_ms * self.total_calls / 1000

    @property
    def shared_cpu_floor(self) -> float:
        return (self.client_cpu_floor + self.server_cpu_floor) / self.cores

    @property
    def cpu_floor(self) -> float:
        return max(self.client_cpu_floor, self.server_cpu_floor, self.shared_cpu_floor)

    @property
    def reachable_floor(self) -> float:
        return max(self.network_floor, self.issue_floor, self.cpu_floor)


def floor_of(m: Measured, quotas: Any, latency_s: float, concurrency: int) -> Floor:
    ars = account_region_floors(m.scopes, quotas, latency_s, concurrency)
    chain_calls, chain = critical_path(m)
    calls = m.total_calls
    return Floor(
        latency_s=latency_s,
        concurrency=concurrency,
        cores=len(os.sched_getaffinity(0)),
        total_calls=calls,
        account_regions=len(ars),
        largest=max(ars, key=lambda f: f.floor),
        largest_quota=max(ars, key=lambda f: f.quota_bound),
        whole_run_latency_bound=calls * latency_s / concurrency,
        critical_path_calls=chain_calls,
        critical_path_chain=chain,
        client_cpu_per_call_ms=1000 * m.process.cpu_seconds / max(1, calls),
        server_cpu_per_call_ms=1000 * m.server_cpu / max(1, calls),
    )


# --- the projection on paper ---------------------------------------------------------------------------------------


def call_model(m: Measured, members: int, regions: int, customer_keys: int, keys_listed: int) -> dict[str, float]:
    """The scan's calls split by what they scale with, from the server's per-operation counts."""
    per_key = sum(n for op, n in m.calls.items() if op in bench_scan.PER_KEY_OPERATIONS)
    per_account = sum(n for op, n in m.calls.items() if op in PER_ACCOUNT_OPERATIONS)
    per_scan = sum(n for op, n in m.calls.items() if op.startswith(PER_SCAN_SERVICES) or op in PER_SCAN_OPERATIONS)
    scanned_accounts = members + 1  # the management account is scanned too
    account_regions = scanned_accounts * regions
    return {
        "calls_per_key": per_key / max(1, keys_listed),
        "aws_managed_keys_per_account_region": (keys_listed - members * regions * customer_keys)
        / max(1, members * regions),
        "calls_per_account": per_account / scanned_accounts,
        "calls_per_account_region": (m.total_calls - per_key - per_account - per_scan) / account_regions,
        "calls_per_scan": per_scan,
    }


def projection(model: dict[str, float], f: Floor, m: Measured, quotas: Any, scale: dict[str, Any]) -> dict[str, Any]:
    """1,000 accounts x 17 Regions x 200 keys: calls, the time each bound allows, memory, and what keeping it under
    30 minutes asks for. CPU and memory grow as the measured lines do (``scaling``)."""
    ars = PROJECT_ACCOUNTS * PROJECT_REGIONS
    keys_per_ar = PROJECT_KEYS + model["aws_managed_keys_per_account_region"]
    calls_per_ar = model["calls_per_account_region"] + model["calls_per_key"] * keys_per_ar
    calls = ars * calls_per_ar + PROJECT_ACCOUNTS * model["calls_per_account"] + model["calls_per_scan"]
    # Each quota's calls in one account-Region, scaled with its keys (the list calls, per page, are counted as if per
    # key too: an overestimate, and none of them is near its quota).
    keys_measured = max(1, m.extra["keys"])
    per_quota: Counter[tuple[str, str]] = Counter()
    rates: dict[tuple[str, str], float] = {}
    for op, n in m.calls.items():
        service, _, operation = op.partition(":")
        quota = quotas.quota_for(service, operation) if quotas is not None else None
        if quota is not None:
            rates[(service, quota.name)] = quota.rate
            per_quota[(service, quota.name)] += n / keys_measured * keys_per_ar
    quota_bound, binding = max(((n / rates[q], ":".join(q)) for q, n in per_quota.items()), default=(0.0, None))
    latency_bound = calls * f.latency_s / f.concurrency
    cpu_per_call_ms = scale["client_cpu_ms_per_call"] or f.client_cpu_per_call_ms
    client_cpu = scale["client_cpu_seconds_at_no_calls"] + calls * cpu_per_call_ms / 1000
    # Accounts and keys grew together here, so the measured slope cannot say which one memory follows: both readings.
    memory_by_keys = scale["mib_at_no_keys"] + (scale["mib_per_key"] or 0) * ars * keys_per_ar
    memory_by_accounts = scale["mib_at_no_members"] + (scale["mib_per_account"] or 0) * PROJECT_ACCOUNTS
    return {
        "estate": f"{PROJECT_ACCOUNTS} accounts x {PROJECT_REGIONS} Regions x {PROJECT_KEYS} keys",
        "keys": ars * keys_per_ar,
        "calls": calls,
        "calls_per_account_region": calls_per_ar,
        "quota_bound_seconds": quota_bound,
        "binding_quota": binding,
        "latency_bound_seconds": latency_bound,
        "client_cpu_ms_per_call": cpu_per_call_ms,
        "client_cpu_seconds": client_cpu,
        "peak_rss_mib_if_it_follows_keys": memory_by_keys,
        "peak_rss_mib_if_it_follows_accounts": memory_by_accounts,
        "to_stay_under_30_min": {
            "requests_in_flight": calls * f.latency_s / PROJECT_BUDGET,
            "client_cores_at_measured_cpu_per_call": client_cpu / PROJECT_BUDGET,
            "client_cpu_ms_per_call_on_one_core": 1000 * PROJECT_BUDGET / calls,
        },
    }


# --- latency hiding ------------------------------------------------------------------------------------------------


def latency_hiding(args: argparse.Namespace, kg: Kmsguard, work: Path) -> dict[str, Any]:
    members, regions, keys = args.hiding_shape
    print(
        f"latency hiding: {members} x {len(regions)} x {keys}, no quotas, latency 0 then {args.hiding_ms} ms",
        flush=True,
    )
    with started(OrgServer("0", None)) as server:
        seeded = seed_org.seed_org(server.endpoint_url, members, regions, keys)
        scan(server, kg, regions, work, "hiding-warmup", concurrency=args.concurrency)
        instant = scan(server, kg, regions, work, "hiding-0ms", concurrency=args.concurrency)
        same_server = server.set_latency(str(args.hiding_ms))
        if same_server:
            slow = scan(server, kg, regions, work, f"hiding-{args.hiding_ms}ms", concurrency=args.concurrency)
    if not same_server:
        print("  the emulator cannot change its latency at run time: a second server, seeded the same way", flush=True)
        with started(OrgServer(str(args.hiding_ms), None)) as server:
            seed_org.seed_org(server.endpoint_url, members, regions, keys)
            slow = scan(server, kg, regions, work, f"hiding-{args.hiding_ms}ms", concurrency=args.concurrency)
    ratio = slow.process.seconds / instant.process.seconds
    return {
        "shape": {"members": members, "regions": regions, "keys_per_region": keys, "keys": seeded.total_keys},
        "same_server": same_server,
        "delayed_ms": args.hiding_ms,
        "instant": summary(instant),
        "delayed": summary(slow),
        "ratio": ratio,
        # At C requests in flight and L per answer, calls x L / C is the least the delayed scan can take.
        "delayed_latency_bound_seconds": slow.total_calls
        * args.hiding_ms
        / 1000
        / kg.concurrency_used(args.concurrency),
    }


@contextmanager
def started(server: OrgServer) -> Iterator[OrgServer]:
    try:
        yield server
    finally:
        server.stop()


def summary(m: Measured) -> dict[str, Any]:
    return {
        "seconds": m.process.seconds,
        "client_cpu_seconds": m.process.cpu_seconds,
        "peak_rss_mib": m.process.peak_rss_mib,
        "server_cpu_seconds": m.server_cpu,
        "calls": m.total_calls,
        "throttled": sum(m.throttled.values()),
        "throttled_pct": m.throttled_pct,
        **m.extra,
    }


# --- peers ---------------------------------------------------------------------------------------------------------


def prowler_accounts(
    server: OrgServer, org: seed_org.OrgSeedReport, regions: list[str], sample: int, work: Path
) -> dict[str, Any]:
    """Prowler once per account, as its users run it for an Organization; a sample of members, extrapolated."""
    bin_dir = bench_scan.ensure_venv("prowler", "prowler", "prowler")
    runs = []
    for account in [org.management_account, *org.members[:sample]]:
        out = work / f"prowler-{account}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [str(bin_dir / "prowler"), "aws", "--service", "kms", "--region", *regions]
        if account != org.management_account:  # the management account is the caller's own
            cmd += ["--role", f"arn:aws:iam::{account}:role/{seed_org.ROLE}"]
        cmd += ["--no-banner", "--no-color", "--output-formats", "csv", "--output-directory", str(out), "-z"]
        env = bench_scan.peer_env(server.endpoint_url, regions[0])
        log_file = work / f"prowler-{account}.log"
        m = measured(server, functools.partial(run_process, cmd, env, log_file))
        if m.process.returncode != 0:
            log = log_file.read_text()[-1500:]
            raise RuntimeError(f"prowler ({account}) exited {m.process.returncode}: {log}")
        # Prowler's CSV separates fields with ';' and some fields span lines: count records, not lines.
        findings = sum(len(list(csv.DictReader(p.open(), delimiter=";"))) for p in out.rglob("*.csv"))
        runs.append({"account": account, **summary(m), "findings": findings, "command": " ".join(cmd)})
        print(f"  prowler {account}: {m.process.seconds:.1f} s, {m.total_calls} calls, {findings} findings", flush=True)
    members = runs[1:]
    per_member = statistics.mean(r["seconds"] for r in members)
    return {
        "version": bench_scan._version(bin_dir, "prowler"),
        "runs": runs,
        "sampled_members": len(members),
        "seconds_per_member_mean": per_member,
        # Not measured: the management account's run plus the sample's mean for every member.
        "extrapolated_seconds": runs[0]["seconds"] + per_member * len(org.members),
        "extrapolated_calls": runs[0]["calls"] + statistics.mean(r["calls"] for r in members) * len(org.members),
    }


def c7n_org(server: OrgServer, org: seed_org.OrgSeedReport, regions: list[str], work: Path) -> dict[str, Any]:
    """c7n-org over every account, a role per account (the management account's too: c7n-org assumes one in each)."""
    bin_dir = bench_scan.ensure_venv("c7n-org", "c7n-org", "c7n-org")
    config = work / "accounts.yml"
    accounts = [
        {
            "account_id": a,
            "name": f"account-{a}",
            "regions": regions,
            "role": f"arn:aws:iam::{a}:role/{seed_org.ROLE}",
        }
        for a in [org.management_account, *org.members]
    ]
    config.write_text(json.dumps({"accounts": accounts}, indent=2))  # JSON is YAML
    out = work / "c7n-org"
    shutil.rmtree(out, ignore_errors=True)
    cache = work / "c7n-org-cache"  # a fresh cache: c7n otherwise reuses resources fetched in the last 15 minutes
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    cmd = [str(bin_dir / "c7n-org"), "run", "-c", str(config), "-s", str(out), "-u", str(BENCH / "custodian-kms.yml")]
    cmd += ["--cache-path", str(cache)]
    # c7n assumes each role through the global STS endpoint (unless C7N_USE_STS_REGIONAL), which AWS_ENDPOINT_URL
    # points at the emulator.
    env = bench_scan.peer_env(server.endpoint_url, regions[0])
    m = measured(server, lambda: run_process(cmd, env, work / "c7n-org.log"))
    if m.process.returncode != 0:
        raise RuntimeError(f"c7n-org exited {m.process.returncode}: {(work / 'c7n-org.log').read_text()[-1500:]}")
    matched = {str(p.parent.relative_to(out)): len(json.loads(p.read_text())) for p in out.rglob("resources.json")}
    print(f"  c7n-org: {m.process.seconds:.1f} s, {m.total_calls} calls, {sum(matched.values())} resources matched")
    return {
        "version": bench_scan._version(bin_dir, "c7n-org"),
        **summary(m),
        "resources_matched": sum(matched.values()),
        "policy_runs_with_output": len(matched),
        "command": " ".join(cmd),
    }


def peer(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"{name} ...", flush=True)
    try:
        return fn()
    except Exception as e:  # a peer that cannot run is reported, never faked
        print(f"  could not run: {e}", flush=True)
        return {"error": f"{type(e).__name__}: {e}"}


# --- the run -------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=20, help="member accounts (default 20)")
    ap.add_argument("--regions", default=",".join(seed_org.DEFAULT_REGIONS))
    ap.add_argument("--keys", type=int, default=50, help="customer keys per member account and Region (default 50)")
    ap.add_argument("--latency", default="30", help="the main server's latency, MS[:JITTER] (default 30)")
    ap.add_argument("--quotas", default="default", help="the main server's quotas (default: AWS's defaults)")
    ap.add_argument("--concurrency", type=int, help="passed to kmsguard scan when it offers --concurrency")
    ap.add_argument("--kmsguard-ref", help="run kmsguard from `git archive REF src` (e.g. HEAD) instead of the tree")
    ap.add_argument("--memory-accounts", default="5,10", help="member counts for the memory slope (plus --accounts)")
    ap.add_argument(
        "--memory-concurrency",
        type=int,
        default=8,
        help="--concurrency of the memory scans (default 8: 2 accounts in flight, fewer than any point's accounts)",
    )
    ap.add_argument("--hiding-ms", type=int, default=400)
    ap.add_argument("--prowler-sample", type=int, default=3, help="member accounts Prowler runs on (extrapolated)")
    ap.add_argument("--no-peers", action="store_true", help="skip Prowler and c7n-org")
    ap.add_argument("--no-hiding", action="store_true", help="skip the latency-hiding runs")
    ap.add_argument("--quick", action="store_true", help="a small estate everywhere, to check the script")
    ap.add_argument("--output", type=Path, default=RESULTS / "org.json")
    args = ap.parse_args(argv)
    regions = args.regions.split(",")
    args.hiding_shape = (10, regions[:2], 20)
    memory_members = [int(n) for n in args.memory_accounts.split(",") if n]
    if args.quick:
        args.accounts, args.keys, regions = 4, 10, regions[:2]
        args.hiding_shape, memory_members, args.prowler_sample = (3, regions[:2], 5), [1, 2], 1

    # Reports and logs of every run, beside the results (bench/results/org-work is gitignored); a run writing elsewhere
    # (--output) keeps its own, so checking the script never wipes the recorded run's.
    work = args.output.with_name(args.output.stem + "-work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-org-"))  # the archived kmsguard, with --kmsguard-ref
    atexit.register(shutil.rmtree, tmp, True)
    kg = Kmsguard(args.kmsguard_ref, tmp)
    concurrency = kg.concurrency_used(args.concurrency)
    latency_s = float(args.latency.partition(":")[0]) / 1000
    quotas = load_quota_table(args.quotas) if args.quotas else None
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "versions": {d: metadata.version(d) for d in ("moto", "boto3", "botocore")},
        "kmsguard": {"code": kg.commit, "options": sorted(kg.options), "concurrency": concurrency},
        "server": {"latency": args.latency, "quotas": args.quotas},
    }
    print(
        f"kmsguard from {kg.commit}; scan options {sorted(kg.options) or 'none of --concurrency/--quotas'}; "
        f"{concurrency} requests in flight",
        flush=True,
    )

    with started(OrgServer(args.latency, args.quotas)) as server:
        print(
            f"emulator at {server.endpoint_url} (latency {args.latency} ms, quotas {args.quotas}); seeding "
            f"{args.accounts} members x {len(regions)} Regions x {args.keys} keys ...",
            flush=True,
        )
        org = seed_org.seed_org(server.endpoint_url, args.accounts, regions, args.keys)
        results["estate"] = {
            "members": args.accounts,
            "regions": regions,
            "customer_keys_per_account_region": args.keys,
            "keys_listed": org.total_keys,
            "seed_seconds": org.seconds,
            "seed_calls": org.calls,
            "warnings": org.warnings,
        }
        print(f"  {org.total_keys} keys in {len(org.members)} members in {org.seconds:.0f} s", flush=True)
        for w in org.warnings[:10]:
            print(f"  seed warning: {w}")

        print("kmsguard scan --org: warm-up (untimed), then timed", flush=True)
        scan(server, kg, regions, work, "warmup", concurrency=args.concurrency)
        main_run = scan(server, kg, regions, work, "org", concurrency=args.concurrency)
        f = floor_of(main_run, quotas, latency_s, concurrency)
        results["scan"] = summary(main_run)
        results["scan"]["calls_by_operation"] = dict(sorted(main_run.calls.items()))
        results["scan"]["throttled_by_operation"] = main_run.throttled
        results["floor"] = {
            **asdict(f),
            "critical_path": f.critical_path,
            "issue_floor": f.issue_floor,
            "network_floor": f.network_floor,
            "client_cpu_floor": f.client_cpu_floor,
            "server_cpu_floor": f.server_cpu_floor,
            "shared_cpu_floor": f.shared_cpu_floor,
            "cpu_floor": f.cpu_floor,
            "reachable_floor": f.reachable_floor,
            "account_regions_detail": [
                {**asdict(a), "floor": a.floor}
                for a in account_region_floors(main_run.scopes, quotas, latency_s, concurrency)
            ],
        }

        # Accounts are read a quarter of the requests in flight at a time: a series whose every point has more
        # accounts than that measures what each account leaves behind, not how many are being read at once.
        mc = args.memory_concurrency
        print(f"memory: scans of {memory_members} and all {args.accounts} members at --concurrency {mc}", flush=True)
        memory = {}
        for n in [*memory_members, args.accounts]:
            subset = [org.management_account, *org.members[:n]]
            memory[n] = scan(server, kg, regions, work, f"memory-{n}", subset, mc)
        results["memory"] = {**scaling(memory), "concurrency": mc, "accounts_in_flight": max(2, mc // 4)}
        results["memory"]["main_run_peak_rss_mib"] = main_run.process.peak_rss_mib

        peers: dict[str, Any] = {}
        if not args.no_peers:
            peers["prowler"] = peer(
                "Prowler, once per account", lambda: prowler_accounts(server, org, regions, args.prowler_sample, work)
            )
            peers["c7n_org"] = peer("c7n-org", lambda: c7n_org(server, org, regions, work))
            # The machine is shared: a kmsguard scan right after the peers, averaged with the main one, is what the
            # peers are compared with.
            after = scan(server, kg, regions, work, "after-peers", concurrency=args.concurrency)
            peers["kmsguard_adjacent_seconds"] = [main_run.process.seconds, after.process.seconds]
        results["peers"] = peers

    if not args.no_hiding:
        results["latency_hiding"] = latency_hiding(args, kg, work)

    model = call_model(main_run, args.accounts, len(regions), args.keys, main_run.extra["keys"])
    results["call_model"] = model
    results["projection"] = projection(model, f, main_run, quotas, results["memory"])
    results["ratios"] = ratios(results, main_run, f)
    results["machine"]["load_after"] = os.getloadavg()
    print_table(results, f)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {args.output}")
    return 0


def scaling(runs: dict[int, Measured]) -> dict[str, Any]:
    """Peak RSS against member accounts and keys, and the scan's CPU against its calls: least-squares lines, so
    what a scan costs per account, key or call is told apart from what every scan pays once (start-up, imports)."""
    points = [
        {
            "members": n,
            "keys": m.extra["keys"],
            "calls": m.total_calls,
            "peak_rss_mib": m.process.peak_rss_mib,
            "client_cpu_seconds": m.process.cpu_seconds,
        }
        for n, m in sorted(runs.items())
    ]
    rss_per_key, rss_at_0 = _line([p["keys"] for p in points], [p["peak_rss_mib"] for p in points])
    rss_per_account, rss_at_no_account = _line([p["members"] for p in points], [p["peak_rss_mib"] for p in points])
    cpu_per_call, cpu_at_0 = _line([p["calls"] for p in points], [p["client_cpu_seconds"] for p in points])
    return {
        "points": points,
        "mib_per_account": rss_per_account,
        "mib_at_no_members": rss_at_no_account,
        "mib_per_key": rss_per_key,
        "mib_at_no_keys": rss_at_0,
        "client_cpu_ms_per_call": None if cpu_per_call is None else 1000 * cpu_per_call,
        "client_cpu_seconds_at_no_calls": cpu_at_0,
    }


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float | None, float]:
    """(slope, intercept) of the least-squares line; (None, mean y) when the xs do not vary."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    if len(set(xs)) < 2:
        return None, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def ratios(r: dict[str, Any], main_run: Measured, f: Floor) -> dict[str, Any]:
    seconds = main_run.process.seconds
    peers = r.get("peers", {})
    adjacent = statistics.mean(peers.get("kmsguard_adjacent_seconds") or [seconds])
    prowler_s = peers.get("prowler", {}).get("extrapolated_seconds")
    c7n_s = peers.get("c7n_org", {}).get("seconds")
    hiding = r.get("latency_hiding", {})
    return {
        "kmsguard_over_issue_floor": seconds / f.issue_floor,
        "kmsguard_over_network_floor": seconds / f.network_floor,
        "kmsguard_over_reachable_floor": seconds / f.reachable_floor,
        "throttled_pct": main_run.throttled_pct,
        "latency_hiding": hiding.get("ratio"),
        "prowler_over_kmsguard": prowler_s / adjacent if prowler_s else None,
        "c7n_org_over_kmsguard": c7n_s / adjacent if c7n_s else None,
    }


def print_table(r: dict[str, Any], f: Floor) -> None:
    s, est = r["scan"], r["estate"]
    print(
        f"\n== kmsguard scan --org: {est['members']} members x {len(est['regions'])} Regions x "
        f"{est['customer_keys_per_account_region']} keys ({s['keys']} keys read), latency {r['server']['latency']} ms, "
        f"quotas {r['server']['quotas']}; kmsguard {r['kmsguard']['code']}, {f.concurrency} in flight =="
    )
    print(
        f"wall {s['seconds']:.1f} s; client CPU {s['client_cpu_seconds']:.1f} s; peak RSS {s['peak_rss_mib']:.0f} MiB; "
        f"server CPU {s['server_cpu_seconds']:.1f} s; {s['calls']} calls, {s['throttled']} throttled "
        f"({s['throttled_pct']:.2f}%); {s['error_findings']} ERROR findings"
    )
    lg, lq = f.largest, f.largest_quota
    print(
        f"\nthe floor ({f.account_regions} account-Regions, {f.total_calls} calls, latency {f.latency_s * 1000:g} ms)"
    )
    rows = [
        (f"largest account-Region floor ({lg.account} {lg.region}, {lg.calls} calls)", lg.floor),
        (
            f"  its latency bound: {lg.calls} x {f.latency_s * 1000:g} ms / ({f.concurrency}/{f.account_regions})",
            lg.latency_bound,
        ),
        (f"  its quota bound: {lg.binding_quota}", lg.quota_bound),
        (f"largest quota bound ({lq.account} {lq.region}: {lq.binding_quota})", lq.quota_bound),
        (
            f"whole run, latency bound: {f.total_calls} x {f.latency_s * 1000:g} ms / {f.concurrency}",
            f.whole_run_latency_bound,
        ),
        (f"critical path: {f.critical_path_calls} calls in a row", f.critical_path),
        ("FLOOR, the issue's (largest account-Region floor, critical path)", f.issue_floor),
        ("floor, network (max of largest quota bound, whole-run latency, critical path)", f.network_floor),
        (f"client CPU floor: {f.client_cpu_per_call_ms:.2f} ms/call x {f.total_calls} / 1 core", f.client_cpu_floor),
        (f"server CPU floor: {f.server_cpu_per_call_ms:.2f} ms/call x {f.total_calls} / 1 core", f.server_cpu_floor),
        (f"both on {f.cores} cores: (client + server CPU) / {f.cores}", f.shared_cpu_floor),
        ("floor reachable here: max(network floors, CPU floors)", f.reachable_floor),
    ]
    for name, value in rows:
        print(f"  {name:<86} {value:>8.2f} s")
    print(f"  critical path: {' -> '.join(f.critical_path_chain)}")

    ra = r["ratios"]
    print("\nratios")
    lines = [
        ("kmsguard / the issue's floor", ra["kmsguard_over_issue_floor"], f"<= {TARGET_FLOOR}"),
        ("kmsguard / network floor", ra["kmsguard_over_network_floor"], f"<= {TARGET_FLOOR}"),
        ("kmsguard / floor reachable here (CPU included)", ra["kmsguard_over_reachable_floor"], f"<= {TARGET_FLOOR}"),
        ("throttled calls, %", ra["throttled_pct"], f"< {TARGET_THROTTLED_PCT}"),
        ("latency hiding: delayed / instant", ra["latency_hiding"], f"<= {TARGET_HIDING}"),
        ("Prowler (extrapolated) / kmsguard", ra["prowler_over_kmsguard"], f">= {TARGET_PROWLER}"),
        ("c7n-org / kmsguard", ra["c7n_org_over_kmsguard"], "kmsguard fastest: > 1"),
    ]
    for name, value, target in lines:
        print(f"  {name:<50} {bench_scan.fmt(value):>8}   target {target}")

    mem = r["memory"]
    print(
        f"\nmemory (peak RSS of kmsguard scan --org at --concurrency {mem.get('concurrency')}, "
        f"{mem.get('accounts_in_flight')} accounts in flight; "
        f"the main run: {mem.get('main_run_peak_rss_mib', 0):.0f} MiB)"
    )
    for p in mem["points"]:
        print(
            f"  {p['members']:>4} members, {p['keys']:>6} keys, {p['calls']:>6} calls: {p['peak_rss_mib']:>7.0f} MiB, "
            f"client CPU {p['client_cpu_seconds']:.1f} s"
        )
    print(
        f"  slope: {bench_scan.fmt(mem['mib_per_account'])} MiB per member account, "
        f"{bench_scan.fmt(mem['mib_per_key'], 3)} MiB per key, {mem['mib_at_no_keys']:.0f} MiB at no keys; client CPU "
        f"{bench_scan.fmt(mem['client_cpu_ms_per_call'])} ms per call + {mem['client_cpu_seconds_at_no_calls']:.1f} s"
    )

    h = r.get("latency_hiding")
    if h:
        print(
            f"\nlatency hiding ({h['shape']['members']} x {len(h['shape']['regions'])} x "
            f"{h['shape']['keys_per_region']}"
            f", {'one server' if h['same_server'] else 'two servers'}): instant {h['instant']['seconds']:.1f} s, "
            f"{h['delayed_ms']} ms {h['delayed']['seconds']:.1f} s (its latency bound "
            f"{h['delayed_latency_bound_seconds']:.1f} s) -> {h['ratio']:.2f}x"
        )
    peers = r.get("peers", {})
    if peers:
        print("\npeers (same server)")
        p = peers.get("prowler", {})
        if "error" in p:
            print(f"  Prowler: could not run: {p['error'][:300]}")
        elif p:
            print(
                f"  Prowler {p['version']}: {p['sampled_members']} members measured, "
                f"{p['seconds_per_member_mean']:.1f} s "
                f"each; management {p['runs'][0]['seconds']:.1f} s; EXTRAPOLATED to every account "
                f"{p['extrapolated_seconds']:.0f} s"
            )
        c = peers.get("c7n_org", {})
        if "error" in c:
            print(f"  c7n-org: could not run: {c['error'][:300]}")
        elif c:
            print(f"  c7n-org {c['version']}: {c['seconds']:.1f} s, {c['calls']} calls")
        print(f"  kmsguard next to them: {', '.join(f'{x:.1f} s' for x in peers['kmsguard_adjacent_seconds'])}")

    pr, cm = r["projection"], r["call_model"]
    print(f"\nprojection on paper: {pr['estate']} (not measured)")
    print(
        f"  calls: {cm['calls_per_key']:.2f}/key, {cm['calls_per_account_region']:.1f}/account-Region, "
        f"{cm['calls_per_account']:.1f}/account -> {pr['calls'] / 1e6:.1f} M calls"
    )
    print(
        f"  quota bound {pr['quota_bound_seconds']:.1f} s ({pr['binding_quota']}); "
        f"latency bound at {f.concurrency} in flight "
        f"{pr['latency_bound_seconds'] / 3600:.1f} h; client CPU {pr['client_cpu_seconds'] / 3600:.1f} h; "
        f"peak RSS {pr['peak_rss_mib_if_it_follows_accounts'] / 1024:.0f} GiB (following accounts) to "
        f"{pr['peak_rss_mib_if_it_follows_keys'] / 1024:.0f} GiB (following keys)"
    )
    need = pr["to_stay_under_30_min"]
    print(
        f"  under 30 min needs {need['requests_in_flight']:.0f} requests in flight and "
        f"{need['client_cores_at_measured_cpu_per_call']:.1f} cores at today's CPU per call "
        f"(or {need['client_cpu_ms_per_call_on_one_core']:.3f} ms per call on one core)"
    )


if __name__ == "__main__":
    sys.exit(main())
