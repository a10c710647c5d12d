"""kmsguard iac and Checkov side by side on the same generated templates, scored against the corpus's truth.

Runs Checkov (pinned: 3.3.30, in its own venv -- never in kmsguard's) on a corpus written by
``bench/iac_corpus.py`` with its KMS rules (every AWS check whose title or source file names KMS or a CMK,
from ``checkov --list``) plus the rules that can fire on the same objects: encryption at rest of the stores
the corpus declares, IAM policy rules that flag ``kms:Decrypt`` on ``"*"``, and the trail rules. Then, for every
class of problem the corpus injects (``<DIR>.truth.json``), how many of the objects that have it each tool
reports, and how many it reports that do not have it -- above all the false "public" results a pattern rule
gives on a ``Principal: "*"`` bounded by ``kms:CallerAccount`` or ``aws:PrincipalOrgID``.

Checkov reads CloudFormation (CDK output included) and Terraform files, not plan JSON (another framework), so
both tools are scored on the CloudFormation and Terraform units only. Without Checkov the script says so and
exits 0: CI never needs it.

    python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov==3.3.30
    .venv/bin/python bench/checkov-compare.py --corpus DIR [--kmsguard-report REPORT.json] [--checkov PATH]
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import iac_corpus  # noqa: E402 - bench/ is a folder of scripts

CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = Path("/tmp/checkov-venv/bin/checkov")
# Rules that judge the same objects without naming KMS in their title (checkov 3.3.30 ids): encryption at
# rest of the corpus's stores, IAM rules that fire on kms:Decrypt on "*", trail log validation.
CHECKOV_ENCRYPTION = ("CKV_AWS_3", "CKV_AWS_16", "CKV_AWS_19", "CKV_AWS_26", "CKV_AWS_27")
CHECKOV_IAM = ("CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_111", "CKV_AWS_288", "CKV_AWS_289", "CKV_AWS_290", "CKV_AWS_355")
CHECKOV_TRAIL = ("CKV_AWS_36",)
CHECKOV_KMS_RE = re.compile(r"kms|cmk|customer.managed", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """One thing both tools can be asked about an object, and how each answers it."""

    title: str
    kind: str  # key | resource | iam | trail
    positives: frozenset[str]  # classes for which the answer is "yes"
    rows: tuple[str, ...]  # classes shown one per row (positives), then traps
    traps: tuple[str, ...]  # classes for which a "yes" is wrong
    kmsguard: frozenset[str]
    checkov: frozenset[str]
    ignore: frozenset[str]  # classes a "yes" is neither right nor wrong for (not counted as false)
    exclusive: bool  # a row counts the objects whose only class among the rows and traps is its own


def _q(
    title: str,
    kind: str,
    rows: Iterable[str],
    kmsguard: Iterable[str],
    checkov: Iterable[str] = (),
    traps: Iterable[str] = (),
    positives: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    exclusive: bool = False,
) -> Question:
    rows = tuple(rows)
    return Question(
        title,
        kind,
        frozenset(positives or rows),
        rows,
        tuple(traps),
        frozenset(kmsguard),
        frozenset(checkov),
        frozenset(ignore),
        exclusive,
    )


# Checkov's encryption rules ask "encrypted at all" or "under a customer managed key" depending on the
# service, so a store that is not under a customer managed key for any reason is not a false positive of
# either question; nor is one under a key the template imports (unknown).
NOT_CMK = ("unencrypted", "aws_owned", "aws_managed", "cmk_unknown")


ENCRYPTION_RULES = (
    *CHECKOV_ENCRYPTION,
    "CKV_AWS_119",
    "CKV_AWS_145",
    "CKV_AWS_149",
    "CKV_AWS_158",
    "CKV_AWS_189",
    "CKV2_AWS_73",
)
QUESTIONS = (
    _q(
        "key policy lets anyone use the key",
        "key",
        ("public", "public_cond", "unknown_principal"),
        ["key_policy_public"],
        ["CKV_AWS_33"],
        traps=["star_bounded"],
        exclusive=True,
    ),
    _q(
        "key policy grants access outside the account/organisation",
        "key",
        ("external",),
        ["key_policy_external_access"],
        positives=("external", "public", "public_cond", "unknown_principal"),
    ),
    _q("every action to a principal other than root", "key", ("wildcard",), ["key_policy_wildcard_actions"]),
    _q("administrators can also use the key", "key", ("admin_can_use",), ["key_policy_admin_can_use"]),
    _q("no Deny of requests without TLS", "key", ("no_tls_deny",), ["key_policy_no_secure_transport"]),
    _q(
        "policy only delegates to IAM",
        "key",
        ("iam_only", "policy_absent"),
        ["key_policy_iam_only"],
        ["CKV2_AWS_64"],
        positives=("iam_only",),
    ),
    _q(
        "rotation off",
        "key",
        ("rotation_off",),
        ["key_rotation_disabled"],
        ["CKV_AWS_7"],
        traps=["no_rotation_support"],
        ignore=["disabled"],
    ),
    _q("rotation period over 365 days", "key", ("rotation_period_long",), ["key_rotation_period_too_long"]),
    _q("key disabled", "key", ("disabled",), ["key_disabled"], ["CKV_AWS_227"]),
    _q("no alias", "key", ("no_alias",), ["key_no_alias"]),
    _q("required tags missing", "key", ("missing_tags",), ["key_missing_tags"]),
    _q("grant to another account or without constraint", "key", ("grant_broad",), ["key_grant_external_or_broad"]),
    _q("one key serves several environments", "key", ("shared_envs",), ["key_shared_across_environments"]),
    _q(
        "store not under a KMS key",
        "resource",
        ("unencrypted", "aws_owned"),
        ["resource_not_kms_encrypted"],
        ENCRYPTION_RULES,
        traps=["cmk"],
        ignore=NOT_CMK,
    ),
    _q(
        "store under an AWS managed key",
        "resource",
        ("aws_managed",),
        ["resource_uses_aws_managed_key"],
        ENCRYPTION_RULES,
        traps=["cmk"],
        ignore=NOT_CMK,
    ),
    _q("store under a disabled key", "resource", ("under_disabled_key",), ["resource_key_pending_deletion"]),
    _q(
        "identity policy decrypts with every key",
        "iam",
        ("iam_decrypt_all",),
        ["iam_policy_allows_decrypt_all_keys"],
        CHECKOV_IAM,
        traps=["iam_scoped"],
    ),
    _q(
        "trail log file validation off",
        "trail",
        ("trail_no_validation",),
        ["cloudtrail_log_validation_disabled"],
        CHECKOV_TRAIL,
    ),
    _q("trail logs not encrypted with KMS", "trail", ("trail_no_kms",), [], ["CKV_AWS_35"]),
)
CLASS_TEXT = {
    "public": 'Principal "*", no condition (the only reason)',
    "public_cond": 'Principal "*", condition the caller meets: TLS, its own encryption context (the only reason)',
    "unknown_principal": "principal from a parameter/variable without default (the only reason)",
    "star_bounded": 'trap: Principal "*" bounded by kms:CallerAccount or aws:PrincipalOrgID (not public)',
    "external": "another account's principal (also under a condition's branch)",
    "policy_absent": "of which: no policy declared (the default policy)",
    "no_rotation_support": "trap: HMAC/asymmetric key (no automatic rotation)",
    "unencrypted": "not encrypted",
    "aws_owned": "AWS owned key (SSE-S3, SQS managed SSE, DynamoDB default)",
    "cmk": "trap: under a customer managed key",
    "iam_scoped": "trap: decrypt scoped to one key ARN",
}


# --- findings as (unit, object) sets ------------------------------------------------------------------------


def unit_of(file: str) -> str:
    """The truth's unit for a file a tool names: a Terraform file's module directory, else the file."""
    file = file.lstrip("/")
    return file.rsplit("/", 1)[0] if file.endswith(".tf") and "/" in file else file


Flags = dict[str, set[tuple[str, str]]]  # check id -> {(unit, object name)}


def kmsguard_flags(report: dict[str, Any]) -> tuple[Flags, dict[str, int]]:
    """FAIL findings per check, and the ERROR findings' count per check."""
    flags: Flags = {}
    errors: dict[str, int] = {}
    for f in report.get("findings", []):
        loc = f.get("location") or {}
        if f["status"] == "ERROR":
            errors[f["check_id"]] = errors.get(f["check_id"], 0) + 1
        if f["status"] == "FAIL" and loc:
            flags.setdefault(f["check_id"], set()).add((unit_of(loc["file"]), loc["resource"]))
    return flags, errors


def checkov_flags(reports: list[dict[str, Any]]) -> Flags:
    flags: Flags = {}
    for report in reports:
        for f in report.get("results", {}).get("failed_checks", []):
            resource = f["resource"]
            # CloudFormation resources are "<Type>.<LogicalId>"; Terraform's are addresses.
            name = resource.rsplit(".", 1)[1] if resource.startswith("AWS::") else resource
            flags.setdefault(f["check_id"], set()).add((unit_of(f["file_path"]), name))
    return flags


# --- scoring --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    question: str
    cls: str
    trap: bool
    objects: int
    kmsguard: int | None  # None: the tool has no rule for it
    checkov: int | None
    # Terraform's share: Checkov's rules for Terraform are separate code from its CloudFormation rules
    objects_tf: int = 0
    checkov_tf: int | None = None


@dataclass
class Score:
    rows: list[Row] = field(default_factory=list)
    # per question: objects a tool flags that have none of the positive classes (and are no trap)
    other_false: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    objects: int = 0


def load_truth(corpus: Path) -> dict[str, Any]:
    path = iac_corpus.truth_path(corpus)
    if not path.exists():
        raise SystemExit(f"{path}: no truth file; generate the corpus with bench/iac_corpus.py")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def scored_objects(
    truth: dict[str, Any], kinds: Iterable[str] = ("cloudformation", "terraform")
) -> dict[tuple[str, str], dict[str, Any]]:
    """(unit, object) -> {kind, classes, unit_kind} for the units of the given kinds."""
    wanted = set(kinds)
    return {
        (u["unit"], name): {**obj, "unit_kind": u["kind"]}
        for u in truth["units"]
        if u["kind"] in wanted
        for name, obj in u["objects"].items()
    }


def score(objects: dict[tuple[str, str], dict[str, Any]], kg: Flags, ck: Flags | None) -> Score:
    out = Score(objects=len(objects))
    for q in QUESTIONS:
        of_kind = {o: set(v["classes"]) for o, v in objects.items() if v["kind"] == q.kind}
        hit_k = _flagged(kg, q.kmsguard) if q.kmsguard else None
        hit_c = (_flagged(ck, q.checkov) if q.checkov else None) if ck is not None else None
        for cls in (*q.rows, *q.traps):
            # A trap counts only where it is the whole story: a key that is also public is rightly reported.
            having = {o for o, cs in of_kind.items() if cls in cs and not (cls in q.traps and cs & q.positives)}
            if q.exclusive and cls in q.rows:
                having = {o for o in having if len(of_kind[o] & {*q.rows, *q.traps}) == 1}
            tf = {o for o in having if objects[o]["unit_kind"] == "terraform"}
            row = Row(q.title, cls, cls in q.traps, len(having), _count(having, hit_k), _count(having, hit_c))
            row.objects_tf, row.checkov_tf = len(tf), _count(tf, hit_c)
            out.rows.append(row)
        clean = {o for o, classes in of_kind.items() if not classes & (q.positives | q.ignore | set(q.traps))}
        out.other_false[q.title] = (_count(clean, hit_k), _count(clean, hit_c))
    return out


def _flagged(flags: Flags, checks: Iterable[str]) -> set[tuple[str, str]]:
    return set().union(*(flags.get(c, set()) for c in checks))


def _count(objects: set[tuple[str, str]], hits: set[tuple[str, str]] | None) -> int | None:
    return None if hits is None else len(objects & hits)


def table(s: Score, with_checkov: bool) -> str:
    """The comparison as a Markdown table: per class, objects that have it and how many each tool reports."""
    head = "| question | class | objects | kmsguard | Checkov | of which Terraform: Checkov / objects |\n"
    head += "| --- | --- | ---: | ---: | ---: | ---: |\n"
    lines = []
    last = ""
    for r in s.rows:
        q = r.question if r.question != last else ""
        last = r.question
        ck = _cell(r.checkov, r.objects) if with_checkov else "(not run)"
        tf = f"{r.checkov_tf} / {r.objects_tf}" if with_checkov and r.checkov_tf is not None else ""
        cls = CLASS_TEXT.get(r.cls, r.cls)
        lines.append(f"| {q} | {cls} | {r.objects} | {_cell(r.kmsguard, r.objects)} | {ck} | {tf} |")
    return head + "\n".join(lines) + "\n"


def _cell(n: int | None, of: int) -> str:
    if n is None:
        return "no rule"
    return f"{n}" if of == 0 else f"{n} ({100 * n / of:.0f}%)"


def false_table(s: Score, with_checkov: bool) -> str:
    head = "| question | kmsguard | Checkov |\n| --- | ---: | ---: |\n"
    body = ""
    for q, (k, c) in s.other_false.items():
        if (k or 0) or (c or 0):
            body += f"| {q} | {'-' if k is None else k} | {'-' if c is None or not with_checkov else c} |\n"
    return head + (body or "| (none) | 0 | 0 |\n")


# --- running Checkov ------------------------------------------------------------------------------------------


def find_checkov(given: str | None) -> Path | None:
    for candidate in (given, os.environ.get("CHECKOV"), str(CHECKOV_VENV), shutil.which("checkov")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def checkov_version(checkov: Path) -> str:
    done = subprocess.run([str(checkov), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def checkov_rules(checkov: Path) -> list[str]:
    """Checkov's KMS rules (title or source file names KMS/CMK) for AWS, plus the related rules above."""
    listing = subprocess.run(
        [str(checkov), "--list", "--framework", "cloudformation", "terraform"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids: set[str] = set(CHECKOV_ENCRYPTION + CHECKOV_IAM + CHECKOV_TRAIL)
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 8 or not re.fullmatch(r"CKV2?_AWS_\d+", cells[2]):
            continue
        title, url = cells[5], cells[7]
        if CHECKOV_KMS_RE.search(title) or CHECKOV_KMS_RE.search(url.rsplit("/", 1)[-1]):
            ids.add(cells[2])
    return sorted(ids, key=lambda i: (i.startswith("CKV2"), int(i.rsplit("_", 1)[1])))


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss: int  # bytes, the largest process of the run
    exit_code: int
    stdout: bytes
    stderr: bytes


# A process forked from a big one starts with the big one's peak RSS as its own (the kernel carries it over fork
# and exec), so a command is started from this small trampoline: its wait4 then reports the command's own peak.
_TRAMPOLINE = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    except OSError as e:
        print(f"{sys.argv[2]}: {e.strerror}", file=sys.stderr)
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}, out)
"""


def run_measured(cmd: list[str]) -> Run:
    """Run ``cmd`` to completion: wall time, CPU (it and its children) and its largest process's peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        measured, out, err = Path(tmp) / "rusage.json", Path(tmp) / "out", Path(tmp) / "err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run(
                [sys.executable, "-c", _TRAMPOLINE, str(measured), *cmd], stdout=stdout, stderr=stderr, check=True
            )
        m = json.loads(measured.read_text())
        return Run(m["seconds"], m["cpu"], m["maxrss"] * 1024, m["exit"], out.read_bytes(), err.read_bytes())


def run_checkov(checkov: Path, corpus: Path, rules: list[str]) -> tuple[Run, list[dict[str, Any]]]:
    cmd = [
        str(checkov),
        "-d",
        str(corpus),
        "--framework",
        "cloudformation",
        "terraform",
        "--check",
        ",".join(rules),
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    run = run_measured(cmd)
    if run.exit_code not in (0, 1):
        raise SystemExit(f"checkov exited {run.exit_code}: {run.stderr.decode(errors='replace')[-2000:]}")
    data = json.loads(run.stdout or b"[]")
    return run, data if isinstance(data, list) else [data]


def run_kmsguard(corpus: Path, report: Path) -> Run:
    """``kmsguard iac scan`` as a user runs it (the statements bounded by the corpus's organisation are trusted)."""
    exe = Path(sys.executable).with_name("kmsguard")
    cmd = [
        str(exe) if exe.exists() else "kmsguard",
        "iac",
        "scan",
        str(corpus),
        "-f",
        "json",
        "-q",
        "--root",
        str(corpus),
        "--trusted-org-id",
        iac_corpus.ORG_ID,
        "-o",
        str(report),
    ]
    run = run_measured(cmd)
    if run.exit_code not in (0, 1):
        raise SystemExit(f"kmsguard iac scan exited {run.exit_code}: {run.stderr.decode(errors='replace')[-2000:]}")
    return run


# --- the comparison -------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    score: Score
    checkov: dict[str, Any] | None  # version, rules, seconds, peak RSS, failed results; None when not run
    kmsguard_errors: dict[str, int]
    text: str


def compare(
    corpus: Path, kmsguard_report: dict[str, Any], checkov: Path | None, kmsguard_seconds: float | None = None
) -> Comparison:
    truth = load_truth(corpus)
    objects = scored_objects(truth)
    kg, errors = kmsguard_flags(kmsguard_report)
    info: dict[str, Any] | None = None
    ck: Flags | None = None
    lines = []
    if checkov is None:
        lines.append(
            f"Checkov not found (give --checkov, set CHECKOV, or install checkov=={CHECKOV_VERSION} into "
            f"{CHECKOV_VENV.parent.parent}): the Checkov side is skipped."
        )
    else:
        rules = checkov_rules(checkov)
        run, reports = run_checkov(checkov, corpus, rules)
        ck = checkov_flags(reports)
        failed = sum(len(r.get("results", {}).get("failed_checks", [])) for r in reports)
        info = {
            "version": checkov_version(checkov),
            "rules": rules,
            "seconds": run.seconds,
            "cpu_seconds": run.cpu_seconds,
            "peak_rss": run.peak_rss,
            "failed": failed,
            "by_check": {c: len(v) for c, v in sorted(ck.items())},
            "parsing_errors": sum(r.get("summary", {}).get("parsing_errors", 0) for r in reports),
        }
        lines.append(
            f"Checkov {info['version']}: {len(rules)} rules, {failed} failed results, "
            f"{run.seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU, peak RSS {run.peak_rss / 2**20:.0f} MiB, "
            f"parsing errors {info['parsing_errors']}"
        )
        if kmsguard_seconds:
            lines.append(f"ratio kmsguard / Checkov (wall): {kmsguard_seconds / run.seconds:.2f}")
    s = score(objects, kg, ck)
    lines.append(f"\nScored objects (CloudFormation + Terraform units): {s.objects}\n")
    lines.append(table(s, ck is not None))
    lines.append("Reported on objects that have none of the question's classes (false positives beyond the traps):\n")
    lines.append(false_table(s, ck is not None))
    if errors:
        lines.append("kmsguard ERROR findings by check: " + ", ".join(f"{c} {n}" for c, n in sorted(errors.items())))
    return Comparison(s, info, errors, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a corpus written by bench/iac_corpus.py")
    ap.add_argument("--kmsguard-report", type=Path, help="`kmsguard iac scan -f json` of it (default: run it)")
    ap.add_argument("--checkov", help=f"the checkov executable (default: $CHECKOV, {CHECKOV_VENV}, PATH)")
    args = ap.parse_args(argv)
    seconds = None
    if args.kmsguard_report is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "kmsguard.json"
            run = run_kmsguard(args.corpus, path)
            seconds = run.seconds
            print(f"kmsguard iac scan: {run.seconds:.2f} s wall, peak RSS {run.peak_rss / 2**20:.0f} MiB")
            report = json.loads(path.read_text())
    else:
        report = json.loads(args.kmsguard_report.read_text())
    print(compare(args.corpus, report, find_checkov(args.checkov), seconds).text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
