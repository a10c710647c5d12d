"""`kmsguard iac scan` at scale (issue 15, "Speed"): 1,000 mixed templates scanned in under 30 s on 2 cores.

Generates a corpus with ``bench/iac_corpus.py`` (or takes ``--corpus DIR``), then measures, each in a fresh
process so that its time and peak memory are its own:

1. the floor: merely parsing every file the way any scanner must read it (PyYAML's C loader with
   CloudFormation's tags, ``json``, python-hcl2's Lark parse tree -- what kmsguard's Terraform loader walks)
   -- nothing resolved or judged;
2. ``kmsguard iac scan DIR -f json -q`` as a user runs it: process start, imports and writing the report
   included (wall time and peak RSS from wait4);
3. the same work in-process, timed per stage: discovery, load (parse + resolve + worlds), judge (every world
   of every unit by the registered checks), render (the JSON report);

and prints templates/s, findings, peak RSS, the ratio to the floor, and the slowest units to load. Unless
``--no-checkov``, then runs ``bench/checkov-compare.py``'s comparison on the same corpus (skipped with a
message when Checkov is not installed). Results: stdout, and ``bench/results/iac.json``.

    .venv/bin/python bench/bench_iac.py                      # 1,000 templates
    .venv/bin/python bench/bench_iac.py --templates 200 --no-checkov
    .venv/bin/python bench/bench_iac.py --corpus /tmp/corpus   # an existing corpus (its truth beside it)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import iac_corpus  # noqa: E402 - bench/ is a folder of scripts

RESULTS = BENCH / "results"
TARGET_SECONDS = 30.0
TARGET_TEMPLATES = 1000
_SKIP_DIRS = {"node_modules", "__pycache__"}


def load_compare() -> ModuleType:
    """bench/checkov-compare.py (its name has a hyphen, so it is imported by path)."""
    spec = importlib.util.spec_from_file_location("kmsguard_bench_checkov_compare", BENCH / "checkov-compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _peak_rss() -> int:
    """This process's peak RSS since it started its program. ru_maxrss would include the parent's, carried over
    fork; /proc's VmHWM starts afresh at exec (Linux; elsewhere ru_maxrss is the best there is)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
    return int(kib) * 1024


# --- child processes ------------------------------------------------------------------------------------------


def template_files(root: Path) -> list[Path]:
    """What a scanner reads: every .tf, .yaml, .yml, .json and .template file (hidden directories skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        out += [
            Path(dirpath) / f
            for f in sorted(filenames)
            if Path(f).suffix in {".tf", ".yaml", ".yml", ".json", ".template"}
        ]
    return out


def child_floor(root: Path) -> dict[str, Any]:
    """Parse every file and nothing else: the floor of any scanner that reads these templates."""
    import yaml
    from hcl2.api import parses_to_tree  # the Lark parse alone: what kmsguard's loader starts from

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class CfnLoader(loader):  # type: ignore[misc,valid-type]
        """Any tag (!Ref, !Sub, ...) read as the plain node under it."""

    def any_tag(ld: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return ld.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return ld.construct_sequence(node)
        return ld.construct_mapping(node)

    CfnLoader.add_multi_constructor("!", any_tag)
    files = template_files(root)
    per_type: dict[str, float] = {}
    start = time.perf_counter()
    cpu = time.process_time()
    for path in files:
        t = time.perf_counter()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".tf":
            parses_to_tree(text)
        elif path.suffix in (".json", ".template") and text.lstrip().startswith("{"):
            json.loads(text)
        else:
            yaml.load(text, Loader=CfnLoader)
        per_type[path.suffix] = per_type.get(path.suffix, 0.0) + time.perf_counter() - t
    return {
        "files": len(files),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "per_type": per_type,
        "yaml_loader": loader.__name__,
        "peak_rss": _peak_rss(),
    }


def child_stages(root: Path) -> dict[str, Any]:
    """discover -> load -> judge -> render, timed per stage, in this (fresh) process."""
    t_import, c_import = time.perf_counter(), time.process_time()
    from kmsguard.config import ScanConfig
    from kmsguard.iac.declared import IacContext
    from kmsguard.iac.discover import load, sources
    from kmsguard.iac.judge import iac_checks, judge_units
    from kmsguard.report import render

    stages: dict[str, Any] = {"import": _stage(t_import, c_import)}
    ctx = IacContext()
    t, c = time.perf_counter(), time.process_time()
    found = sources([root], root)
    stages["discovery"] = _stage(t, c)
    t, c = time.perf_counter(), time.process_time()
    units, slow = [], []
    by_kind: dict[str, float] = {}
    for src in found:
        t_unit = time.perf_counter()
        unit = load(src, ctx)
        took = time.perf_counter() - t_unit
        slow.append((took, src.rel))
        by_kind[src.kind] = by_kind.get(src.kind, 0.0) + took
        if unit is not None:
            units.append(unit)
    stages["load"] = _stage(t, c)
    t, c = time.perf_counter(), time.process_time()
    result = judge_units(units, ctx, ScanConfig(trusted_org_ids=[iac_corpus.ORG_ID]), iac_checks())
    stages["judge"] = _stage(t, c)
    t, c = time.perf_counter(), time.process_time()
    text = render(result, "json")
    stages["render"] = _stage(t, c)
    worlds = [len(u.worlds) for u in units]
    return {
        "stages": stages,
        "sources": len(found),
        "units": len(units),
        "by_kind": {k: sum(1 for u in units if u.kind == k) for k in sorted({u.kind for u in units})},
        "worlds": sum(worlds),
        "max_worlds": max(worlds, default=0),
        "keys": sum(len(w.keys) for u in units for w in u.worlds),
        "resources": sum(len(w.resources) for u in units for w in u.worlds),
        "findings": len(result.findings),
        "fail": sum(1 for f in result.findings if f.status.value == "FAIL"),
        "report_bytes": len(text.encode()),
        "load_seconds_by_kind": by_kind,
        "slowest_loads": [{"unit": rel, "seconds": s} for s, rel in sorted(slow, reverse=True)[:5]],
        "peak_rss": _peak_rss(),
    }


def _stage(wall_start: float, cpu_start: float) -> dict[str, float]:
    return {
        "seconds": time.perf_counter() - wall_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "peak_rss": _peak_rss(),
    }


def run_child(mode: str, corpus: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--corpus", str(corpus)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


# --- the benchmark ---------------------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def summarize_report(report: dict[str, Any]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    by_check: dict[str, int] = {}
    for f in report.get("findings", []):
        by_status[f["status"]] = by_status.get(f["status"], 0) + 1
        if f["status"] == "FAIL":
            by_check[f["check_id"]] = by_check.get(f["check_id"], 0) + 1
    return {"findings": len(report.get("findings", [])), "by_status": by_status, "fail_by_check": by_check}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--templates", type=int, default=TARGET_TEMPLATES)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--corpus", type=Path, help="use this corpus (bench/iac_corpus.py) instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus (its path is printed)")
    ap.add_argument("--no-checkov", action="store_true", help="skip the Checkov comparison")
    ap.add_argument("--checkov", help="the checkov executable (see bench/checkov-compare.py)")
    ap.add_argument("--results", type=Path, default=RESULTS / "iac.json")
    ap.add_argument("--report", type=Path, help="keep kmsguard's JSON report here (default: discarded)")
    ap.add_argument("--child", choices=["floor", "stages"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        data = child_floor(args.corpus) if args.child == "floor" else child_stages(args.corpus)
        print(json.dumps(data))
        return 0
    with tempfile.TemporaryDirectory(prefix="kmsguard-bench-iac-") as tmp:
        corpus = args.corpus or (Path(tmp) / "corpus")
        if args.keep and args.corpus is None:
            corpus = Path(tempfile.mkdtemp(prefix="kmsguard-bench-iac-")) / "corpus"
        return bench(corpus, args, Path(tmp))


def bench(corpus: Path, args: argparse.Namespace, tmp: Path) -> int:
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
        f"{os.cpu_count()} CPUs"
    )
    if args.corpus is None:
        t = time.perf_counter()
        made = iac_corpus.generate(corpus, args.templates, args.seed)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(made.by_kind.items()))
        print(
            f"corpus: {made.templates} templates ({kinds}), {made.files} files, {made.bytes / 1e6:.1f} MB, "
            f"generated in {time.perf_counter() - t:.1f} s -> {corpus}"
        )
    templates = json.loads(iac_corpus.truth_path(corpus).read_text())["templates"]
    compare = load_compare()

    floor = run_child("floor", corpus)
    print(
        f"floor (parse only: {floor['yaml_loader']}, json, hcl2 parse tree): {floor['files']} files in "
        f"{floor['seconds']:.2f} s wall, {floor['cpu_seconds']:.2f} s CPU "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in sorted(floor['per_type'].items()))})"
    )

    report_path = args.report or tmp / "kmsguard-iac.json"
    cli = compare.run_kmsguard(corpus, report_path)
    report = json.loads(report_path.read_text())
    summary = summarize_report(report)
    print(
        f"kmsguard iac scan (CLI, end to end): {cli.seconds:.2f} s wall, {cli.cpu_seconds:.2f} s CPU, "
        f"peak RSS {_mib(cli.peak_rss)}, exit {cli.exit_code}; {templates / cli.seconds:.0f} templates/s; "
        f"{summary['findings']} findings {summary['by_status']}"
    )

    staged = run_child("stages", corpus)
    for name, st in staged["stages"].items():
        print(f"  {name:<9} {st['seconds']:7.2f} s wall {st['cpu_seconds']:7.2f} s CPU   RSS {_mib(st['peak_rss'])}")
    print(
        f"  units {staged['units']} {staged['by_kind']}, worlds {staged['worlds']} (max {staged['max_worlds']}), "
        f"keys judged {staged['keys']}, resources {staged['resources']}, findings {staged['findings']}"
    )
    print("  load by kind: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(staged["load_seconds_by_kind"].items())))
    print("  slowest loads: " + ", ".join(f"{s['unit']} {s['seconds']:.2f} s" for s in staged["slowest_loads"]))
    # CPU seconds: the machine is shared, and CPU time moves far less with its load than wall time does.
    ratio = cli.cpu_seconds / floor["cpu_seconds"] if floor["cpu_seconds"] else float("nan")
    met = cli.seconds < TARGET_SECONDS if templates >= TARGET_TEMPLATES else None
    verdict = {True: "met", False: "NOT met", None: f"not judged (the target is for {TARGET_TEMPLATES})"}[met]
    print(
        f"ratio CLI / parse floor (CPU): {ratio:.1f}; target {TARGET_TEMPLATES} templates in {TARGET_SECONDS:.0f} s: "
        f"{verdict}"
    )

    comparison = None
    if not args.no_checkov:
        comparison = compare.compare(corpus, report, compare.find_checkov(args.checkov), cli.seconds)
        print()
        print(comparison.text)
    results = {
        "templates": templates,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "floor": floor,
        "cli": {
            "seconds": cli.seconds,
            "cpu_seconds": cli.cpu_seconds,
            "peak_rss": cli.peak_rss,
            "exit_code": cli.exit_code,
            **summary,
        },
        "in_process": staged,
        "ratio_cli_floor": ratio,
        "target_met": met,
        "checkov": comparison.checkov if comparison else None,
        "comparison_rows": [vars(r) for r in comparison.score.rows] if comparison else None,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nresults: {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
