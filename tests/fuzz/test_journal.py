"""`kmsguard fix --rollback JOURNAL` on hostile journals, against the real moto server over HTTP: exit 2 naming the
file, or a reviewed result (exit 0, or 1 when something was not restored); never a traceback.

The seed is a real journal: `fix --apply` on keys with rotation off, a policy without DenyInsecureTransport and a
scheduled deletion. Mutated journals are unverified (their MACs break): they are refused without --force and
reviewed, trusting nothing, with it. Journals of hostile entries signed with this user's key reach the review
as a verified journal would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmsguard.demo.emulator import Emulator
from kmsguard.fix.journal import Journal

from .harness import Tally, budget, run
from .mutations import byte_mutants, raw, tree_mutated

REGION = "us-east-1"


def seed_estate(endpoint: str) -> None:
    kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
    kms.create_key(Description="rotation off")
    pending = kms.create_key(Description="scheduled for deletion")["KeyMetadata"]["Arn"]
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=30)


@pytest.fixture
def estate(aws: Emulator, tmp_path: Path) -> tuple[str, Path]:
    """(endpoint, the journal of a real apply). Made for each test: under xdist, tests of other modules can run on
    this worker in between and empty the moto server."""
    seed_estate(aws.endpoint_url)
    journal = tmp_path / "seed.json"
    args: list[str | Path] = ["fix", "--apply", "--yes", "--cancel-deletion", "--journal", journal]
    result = run(Tally("journal"), [*args, *flags(aws.endpoint_url)], [journal])
    # Exit 1: the key whose deletion was cancelled still has rotation off (it was not planned while pending).
    assert journal.exists(), result.output
    applied = sum('"status":"applied"' in line for line in journal.read_text().splitlines())
    assert applied == 4, result.output
    return aws.endpoint_url, journal


def flags(endpoint: str) -> list[str | Path]:
    return ["--endpoint-url", endpoint, "--regions", REGION, "-q"]


def rollback(tally: Tally, endpoint: str, path: Path, *options: str) -> None:
    run(tally, ["fix", "--rollback", path, "--yes", *options, *flags(endpoint)], [path])


@budget(40)
@given(data=st.data(), force=st.booleans())
def test_byte_mutated_journals(estate: tuple[str, Path], tally: Tally, data: st.DataObject, force: bool) -> None:
    endpoint, seed = estate
    path = seed.with_name("mutated.json")
    path.write_bytes(data.draw(byte_mutants([seed.read_bytes()])))
    rollback(tally, endpoint, path, *(["--force"] if force else []))


def entries(seed: Path) -> list[dict[str, Any]]:
    """The seed's change entries (header and MACs left out: the writer adds its own)."""
    lines = [json.loads(line) for line in seed.read_text().splitlines()[1:]]
    return [{k: v for k, v in line.items() if k != "mac"} for line in lines]


def signed(path: Path, doc: Any) -> None:
    """Write ``doc`` (the entries, mutated) as a journal signed with this user's key: the real writer's header, then
    each object line MAC-chained in the writer's format (``{...,"mac":"<hex>"}``), hostile values included."""
    path.unlink(missing_ok=True)
    with Journal(path) as jr:
        key = jr.key
    previous = json.loads(path.read_text())["mac"]
    lines = []
    for entry in doc if isinstance(doc, list) else [doc]:
        text = raw(json.dumps(entry, separators=(",", ":")))
        if isinstance(entry, dict) and entry:
            previous = key.mac(previous, text)
            text = f'{text[:-1]},"mac":"{previous}"}}'
        lines.append(text + "\n")
    with path.open("a", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write("".join(lines))


@budget(30)
@given(data=st.data())
def test_signed_journals_of_hostile_entries(estate: tuple[str, Path], tally: Tally, data: st.DataObject) -> None:
    endpoint, seed = estate  # made by the fixture, so the strategy is drawn from here
    path = seed.with_name("signed.json")
    signed(path, data.draw(tree_mutated([entries(seed)]), label="entries"))
    rollback(tally, endpoint, path)
