"""`kmsguard scan --from-snapshot` on hostile snapshot files: exit 2 naming the file, or a result; and one bad key
policy inside a valid snapshot loses no finding (issue 14, section 4: an ERROR finding on that key, the rest of
the scan completes)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import Result

from . import seeds
from .harness import Tally, budget, run
from .mutations import byte_mutants, gzipped, json_text, tree_mutants

Pairs = dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("snapshot")


def scan(tally: Tally, work: Path, data: bytes, name: str = "snapshot.json") -> tuple[Result, Path]:
    path = work / name
    path.write_bytes(data)
    out = work / "out.json"
    out.unlink(missing_ok=True)
    result = run(tally, ["scan", "--from-snapshot", path, "-f", "json", "-o", out, "-q"], [path])
    return result, out


# A plain file, a compressed mutant (valid gzip around broken JSON), and a mutated compressed file.
SNAPSHOT_FILES = st.one_of(
    byte_mutants(seeds.snapshot_files()).map(lambda d: ("snapshot.json", d)),
    byte_mutants(seeds.snapshot_files()).map(lambda d: ("snapshot.json.gz", gzipped(d))),
    byte_mutants([gzipped(s) for s in seeds.snapshot_files()]).map(lambda d: ("snapshot.json.gz", d)),
)


@budget(80)
@given(file=SNAPSHOT_FILES)
def test_byte_mutated_snapshots(work: Path, tally: Tally, file: tuple[str, bytes]) -> None:
    name, data = file
    scan(tally, work, data, name)


@budget(80)
@given(data=tree_mutants([json.loads(s) for s in seeds.snapshot_files()], json_text))
def test_snapshots_with_wrong_types_and_hostile_values(work: Path, tally: Tally, data: bytes) -> None:
    scan(tally, work, data)


# --- one bad key policy in a valid snapshot -------------------------------------------------------------------


def pairs(out: Path) -> Pairs:
    return {(f["check_id"], f["resource_arn"]): f["status"] for f in json.loads(out.read_text())["findings"]}


@cache
def baseline(seed: int, work: Path) -> Pairs:
    """A seed snapshot's findings, judged as it is (not a fixture: hypothesis would print it with every failure)."""
    result, path = scan(Tally("snapshot"), work, seeds.snapshot_files()[seed])
    assert result.exit_code in (0, 1), result.output
    return pairs(path)


def keys_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [k for a in doc["accounts"] for r in a["regions"] for k in r["keys"]]


# A hostile key policy: a mutated real policy (as text: GetKeyPolicy returns UTF-8), or a policy of wrong types and
# hostile values (lone surrogates among them).
HOSTILE_POLICIES = st.one_of(
    byte_mutants(seeds.policy_files()).map(lambda b: b.decode("utf-8", "replace")),
    tree_mutants(seeds.policies(), json_text).map(lambda b: b.decode("utf-8", "surrogatepass")),
)


def surrogates(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@budget(60)
@given(seed=st.integers(0, len(seeds.snapshot_files()) - 1), which=st.integers(0, 99), policy=HOSTILE_POLICIES)
def test_one_bad_key_policy_loses_no_finding(work: Path, tally: Tally, seed: int, which: int, policy: str) -> None:
    doc = json.loads(seeds.snapshot_files()[seed])
    keys = keys_of(doc)
    target = keys[which % len(keys)]
    target["policy"] = policy
    result, out = scan(tally, work, json_text(doc).encode())
    if surrogates(policy) and result.exit_code == 2:
        # Not text at all (a lone surrogate is half a UTF-16 pair): the loader may refuse the file, naming the field.
        assert "policy" in result.stderr, result.stderr
        return
    # Otherwise a bad policy is the key's problem, not the snapshot's: a result, never an input error.
    assert result.exit_code in (0, 1), result.output[-2000:]
    lost = sorted(set(baseline(seed, work)) - set(pairs(out)))
    assert not lost, f"findings lost when {target['arn']} has a bad policy: {lost}"
