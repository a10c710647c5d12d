"""Hostile files of at most about 1 MB, one per way a loader could be made to use unbounded memory, each run by the
real `kmsguard` in its own process: peak RSS (RUSAGE_CHILDREN of a fresh parent) under 500 MB, the issue's target
for any input under 1 MB, and exit 2 or a result without a traceback. An address-space limit on the child
(RLIMIT_AS) keeps a runaway from taking the shared machine down with it; hitting it fails the run."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from . import seeds
from .harness import INPUT_ERROR, RESULT, stat

PEAK_MB = 500
GUARD_MB = 2048
TIMEOUT_S = 120
MB = 2**20
ACCOUNT = seeds.ACCOUNT

# Runs the command under the address-space guard; prints its exit code, peak RSS and output tails as JSON. A fresh
# parent per sample, so RUSAGE_CHILDREN holds that command (and the processes it waited for) only.
WRAPPER = """
import json, resource, subprocess, sys
limit = int(sys.argv[1]) * 2**20
guard = lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    p = subprocess.run(sys.argv[3:], preexec_fn=guard, capture_output=True, timeout=int(sys.argv[2]))
    code, out, err = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired as e:
    code, out, err = "timeout", e.stdout or b"", e.stderr or b""
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
tail = lambda b: b[-3000:].decode("utf-8", "replace")
print(json.dumps({"code": code, "peak": peak, "stdout": tail(out), "stderr": tail(err)}))
"""


def bomb(total: int, chunk: bytes = b" " * MB) -> bytes:
    """A gzip file (gzip members one after another) that inflates to ``total`` bytes of ``chunk``: ~1 KB per MB."""
    member = gzip.compress(chunk, mtime=0)
    return member * (total // len(chunk))


def nested(n: int = MB) -> bytes:
    return b"[" * n


def span_file() -> bytes:
    """The issue's reproduction: two records dated year 1 and year 9999 (8.1 GB and 33 s before the fix)."""
    first, second = seeds.trail_records()[:2]
    return json.dumps(
        {"Records": [{**first, "eventTime": "0001-01-01T00:00:00Z"}, {**second, "eventTime": "9999-12-31T23:00:00Z"}]}
    ).encode()


def many_statements(n: int = 140) -> bytes:
    """A key policy as large as KMS accepts (32 KB): 140 statements, each naming another principal with a
    condition, every seventh a Deny."""
    statements = [
        {
            "Sid": f"S{i}",
            "Effect": "Allow" if i % 7 else "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{100000000000 + i}:role/r{i}"},
            "Action": ["kms:Decrypt", "kms:Encrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:app": f"a{i}"}},
        }
        for i in range(n)
    ]
    data = json.dumps({"Version": "2012-10-17", "Statement": statements}).encode()
    assert len(data) <= 32768, "larger than KMS accepts: refused before the engine sees it"
    return data


def laughs() -> bytes:
    rows = [b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [b"%c: &%c [" % (98 + i, 98 + i) + b",".join([b"*%c" % (97 + i)] * 9) + b"]" for i in range(9)]
    return b"\n".join([*rows, b"mutes: *j", b""])


def trail_dir(name: str, data: bytes) -> Callable[[Path], list[str]]:
    def args(work: Path) -> list[str]:
        logs = work / "logs"
        logs.mkdir()
        (logs / name).write_bytes(data)
        return ["trail", "analyze", str(logs), "--cache", str(work / "cache"), "-f", "json", "-o", str(work / "o")]

    return args


def one_file(name: str, data: bytes, command: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    def args(work: Path) -> list[str]:
        (work / name).write_bytes(data)
        return command(work / name)

    return args


def policy(verb: str) -> Callable[[Path], list[str]]:
    return lambda p: ["policy", verb, str(p), *([] if verb == "validate" else ["--account", ACCOUNT])]


def snapshot(p: Path) -> list[str]:
    return ["scan", "--from-snapshot", str(p), "-f", "json", "-o", str(p.with_name("out.json")), "-q"]


def config(p: Path) -> list[str]:
    snap = p.with_name("snapshot.json")
    snap.write_bytes(seeds.snapshot_files()[0])
    return ["scan", "--from-snapshot", str(snap), "--config", str(p), "-f", "json", "-o", str(p.with_name("o")), "-q"]


def journal(p: Path) -> list[str]:
    return ["fix", "--rollback", str(p), "--yes", "--endpoint-url", "http://127.0.0.1:9", "--regions", "us-east-1"]


TRAIL = seeds.TRAIL_NAME
SAMPLES: dict[str, Callable[[], Callable[[Path], list[str]]]] = {
    "policy analyze: 1 MB of [": lambda: one_file("p.json", nested(), policy("analyze")),
    "policy analyze: 140 statements (31 KB, the most KMS takes)": lambda: one_file(
        "p.json", many_statements(), policy("analyze")
    ),
    "snapshot: gzip bomb (400 KB to 400 MB)": lambda: one_file("s.json.gz", bomb(400 * MB), snapshot),
    "config: billion laughs": lambda: one_file("kmsguard.yaml", laughs(), config),
    "journal: 1 MB line of [": lambda: one_file("j.json", nested(), journal),
    "trail: records of year 1 and year 9999": lambda: trail_dir(TRAIL, span_file()),
    "trail: gzip bomb (400 KB to 400 MB)": lambda: trail_dir(TRAIL + ".gz", bomb(400 * MB)),
    "trail: 1 MB of random bytes as .gz": lambda: trail_dir(TRAIL + ".gz", os.urandom(MB)),
}


# Where the outcome is known: a lone .gz of random bytes is a failed file, so nothing was analysed (issue 14 once
# counted it "37 records read, 0 failed").
EXPECT = {"trail: 1 MB of random bytes as .gz": frozenset({INPUT_ERROR})}


def measure(args: list[str], cwd: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-c", WRAPPER, str(GUARD_MB), str(TIMEOUT_S), sys.executable, "-m", "kmsguard.cli.main"]
    done = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S + 30)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_peak_memory_of_hostile_files(sample: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    args = SAMPLES[sample]()(tmp_path)
    run = measure(args, tmp_path)
    stat({"test": request.node.nodeid, "loader": "memory", "sample": sample, "exit": run["code"], "peak": run["peak"]})
    said = run["stdout"] + run["stderr"]
    assert run["code"] in EXPECT.get(sample, RESULT | {INPUT_ERROR}), f"{sample}: exit {run['code']}: {said}"
    assert "Traceback" not in said, said
    peak_mb = run["peak"] / MB
    assert peak_mb < PEAK_MB, f"{sample}: peak RSS {peak_mb:.0f} MB (bound {PEAK_MB} MB)"
