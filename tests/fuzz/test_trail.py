"""`kmsguard trail analyze DIR` on hostile CloudTrail files and records: exit 2 naming the file, or a result; a good
file beside a bad one loses none of its records; a file that is not JSON is counted as failed, not as read."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime
from functools import cache
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import seeds
from .harness import Tally, budget, memory_guard, run
from .mutations import Blob, byte_mutants, gzipped, hostile_values, json_text, tree_mutants

GOOD = "111122223333_CloudTrail_us-west-2_20240501T1200Z_good0001.json"
NAME = seeds.TRAIL_NAME.removesuffix(".json")
GUARD_MB = 1500  # the target is 500 MB peak for any file under 1 MB; the guard only protects the machine
_runs = count()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trail")


def analyze(tally: Tally, work: Path, name: str, data: bytes, good: bool = True) -> dict[str, Any]:
    """Analyse a directory holding the hostile file (and, with ``good``, a good one beside it); returns the usage
    summary ({} on exit 2)."""
    n = next(_runs)
    logs = work / f"logs{n}"
    logs.mkdir()
    (logs / name).write_bytes(data)
    if good:
        (logs / GOOD).write_bytes(seeds.trail_files()[1])
    summary = work / f"summary{n}.json"
    args: list[str | Path] = ["trail", "analyze", logs, "--cache", work / f"cache{n}", "--workers", "1", "-f", "json"]
    args += ["-o", work / f"out{n}.json", "--summary-out", summary, "-q"]
    with memory_guard(GUARD_MB):
        run(tally, args, [logs, name])
    return json.loads(summary.read_text()) if summary.exists() else {}


@cache
def good_records() -> int:
    return len(seeds.trail_records())


def check_no_loss(summary: dict[str, Any]) -> None:
    """The good file beside the bad one is read whole and not listed as a problem."""
    if not summary:
        return
    problems = [p["file"] for p in summary["problems"]]
    assert not any(p.endswith(GOOD) for p in problems), f"records of the good file lost: {summary['problems']}"
    assert summary["records"]["read"] >= good_records(), f"records of the good file lost: {summary['records']}"


def json_pieces(data: bytes, gz: bool) -> tuple[bool, int, int, bool] | None:
    """How a trail file reads, as one JSON document or as JSON lines: (one document?, lines that are JSON, lines,
    could any record be in it?); None for a file with nothing in it. Invalid UTF-8 alone does not count (where it
    sits in a field kmsguard never reads, the decoders skip it), nor does JSON past Python's own limits (4,300-digit
    integers, deep nesting): other parsers read it."""
    try:
        text = (gzip.decompress(data) if gz else data).decode("utf-8", "replace")
    except (EOFError, OSError, zlib.error):
        return False, 0, 0, False  # not even gzip
    if not text.strip():
        return None

    def parses(doc: str) -> bool:
        try:
            json.loads(doc)
        except json.JSONDecodeError:
            return False
        except (ValueError, RecursionError):
            pass
        return True

    lines = [line for line in text.splitlines() if line.strip()]
    return parses(text), sum(map(parses, lines)), len(lines), '"eventTime"' in text


def check_counted(name: str, data: bytes, summary: dict[str, Any]) -> None:
    """A file that is neither a JSON document nor JSON lines is a failed file or has skipped records, never a clean
    read; one where no record can be (no eventTime in it) gives no records (issue 14: random bytes in a .gz were
    "37 records read, 0 failed")."""
    pieces = json_pieces(data, name.endswith(".gz"))
    if not summary or pieces is None:
        return
    whole, good, lines, records = pieces
    if whole or (lines and good == lines):
        return
    mine = [p for p in summary["problems"] if p["file"].endswith(name)]
    assert mine and (mine[0].get("error") or mine[0]["skipped"]), f"{name} is not JSON yet counted clean: {summary}"
    if not records:
        assert mine[0]["records_read"] == 0, f"{name} holds no record, yet records were read from it: {mine[0]}"


# A file as delivered (.json.gz), plain, one record per line, or gzip of a mutant; and mutants of the gzip itself.
TRAIL_FILES = st.one_of(
    byte_mutants(seeds.trail_files()).map(lambda d: (NAME + ".json", d)),
    byte_mutants(seeds.trail_files()).map(lambda d: (NAME + ".json.gz", gzipped(d))),
    byte_mutants([gzipped(s) for s in seeds.trail_files()]).map(lambda d: (NAME + ".json.gz", d)),
    byte_mutants(seeds.trail_files()[2:]).map(lambda d: (NAME + ".jsonl", d)),
    st.binary(min_size=1, max_size=4096).map(lambda d: (NAME + ".json.gz", Blob(d))),  # issue 14: "37 records read"
)


@budget(60)
@given(file=TRAIL_FILES)
def test_byte_mutated_trail_files(work: Path, tally: Tally, file: tuple[str, bytes]) -> None:
    name, data = file
    summary = analyze(tally, work, name, data)
    check_no_loss(summary)
    check_counted(name, data, summary)


@budget(30)
@given(data=tree_mutants([{"Records": seeds.trail_records()[:10]}], json_text))
def test_trail_files_with_wrong_types_and_hostile_values(work: Path, tally: Tally, data: bytes) -> None:
    analyze(tally, work, NAME + ".json", data, good=False)


# --- generated records -------------------------------------------------------------------------------------

KMS_EVENTS = [
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    "DisableKey",
    "CreateGrant",
    "CreateKey",
    "ReEncrypt",
    "Sign",
    "",
    "decrypt",
]
KEY_REFS = [
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "alias/app",
    "arn:aws:kms:us-west-2:111122223333:alias/app",
    "arn:aws-cn:kms:cn-north-1:111122223333:key/x",
    "",
    "*",
]
ARNS = ["arn:aws:iam::111122223333:user/Alice", "arn:aws:sts::111122223333:assumed-role/app/i-1", "arn:", "", "*"]


def iso(d: datetime) -> str:
    return d.isoformat(timespec="seconds") + "Z"  # not strftime: its %Y writes year 1 as "1", not "0001"


EVENT_TIMES = st.one_of(
    st.datetimes(min_value=datetime(2024, 4, 30), max_value=datetime(2024, 5, 2)).map(iso),  # the file's own hour
    st.datetimes().map(iso),  # year 1 to 9999: the 8.1 GB span
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2013-10-31T23:59:59Z"]),
    st.sampled_from(["", "2024-05-01", "2024-13-45T99:99:99Z", "1714564800", "2024-05-01T12:00:00+14:00"]),
    hostile_values,
)
IDENTITIES = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["IAMUser", "AssumedRole", "AWSService", "Root", ""]), "arn": st.sampled_from(ARNS)},
        optional={"accountId": st.sampled_from(["111122223333", "", "x"]), "invokedBy": st.text(max_size=20)},
    ),
    hostile_values,
)
REQUESTS = st.one_of(
    st.fixed_dictionaries(
        {"keyId": st.sampled_from(KEY_REFS)},
        optional={"encryptionContext": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)},
    ),
    hostile_values,
)
# A real KMS record (the guide's examples) with its time and any other fields replaced.
OVERRIDES = st.fixed_dictionaries(
    {"eventTime": EVENT_TIMES},
    optional={
        "eventSource": st.sampled_from(["kms.amazonaws.com", "s3.amazonaws.com", "", "KMS.AMAZONAWS.COM"]),
        "eventName": st.sampled_from(KMS_EVENTS),
        "eventVersion": st.sampled_from(["1.08", "1.11", "9.99"]),
        "awsRegion": st.sampled_from(["us-west-2", "eu-west-1", "", "x" * 300]),
        "userIdentity": IDENTITIES,
        "requestParameters": REQUESTS,
        "responseElements": hostile_values,
        "resources": st.lists(st.fixed_dictionaries({"ARN": st.sampled_from(KEY_REFS)}), max_size=2) | hostile_values,
        "errorCode": st.sampled_from(["AccessDenied", "", None]),
        "recipientAccountId": st.sampled_from(["111122223333", "444455556666", ""]),
        "eventID": st.uuids().map(str),
        "readOnly": st.booleans() | hostile_values,
    },
)
RECORDS = st.tuples(st.sampled_from(seeds.trail_records()), OVERRIDES).map(lambda r: {**r[0], **r[1]})


@budget(50)
@given(records=st.lists(RECORDS, min_size=1, max_size=6))
def test_generated_records(work: Path, tally: Tally, records: list[dict[str, Any]]) -> None:
    doc = {"Records": records}
    analyze(tally, work, NAME + ".json", Blob(json_text(doc).encode()), good=False)
