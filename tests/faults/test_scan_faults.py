"""`scan` against a misbehaving AWS: each fault is an ERROR finding on what it hit, named by the failure; the rest
of the estate is still read and judged; no traceback; exit 1 (ERROR findings, at ``--fail-on never``).

Faults come from tests/faultproxy.py in front of the real moto server: 5xx, throttling, a binary body, an answer
cut off, a connection reset, an endpoint that never answers, and answers that drip in slowly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faultproxy import GARBAGE, FaultProxy

from .conftest import EAST, Estate, make_keys, scan

pytestmark = pytest.mark.timeout(60)  # a scan that hangs fails the test instead of the suite

# Timeouts here are 2 s (the default is 20): short enough to keep the suite quick, long enough that moto, the proxy
# and the scan sharing one busy process do not time out calls the test did not fault.

ACCOUNT = "123456789012"
REGION_ARN = f"arn:aws:::{ACCOUNT}:{EAST}"
ACCOUNT_ARN = f"arn:aws:::{ACCOUNT}:global"


def attempts(proxy: FaultProxy, operation: str, key_id: str) -> int:
    return sum(1 for c in proxy.calls if c.operation == operation and key_id in c.body)


def assert_untouched(run_errors: list[tuple[str, str]]) -> None:
    assert run_errors == [], "a fault on one key must not reach another"


@dataclass
class KeyFault:
    inject: Callable[[FaultProxy, str], None]  # given the proxy and the key id
    code: str  # what the ERROR finding names
    attempts: int  # calls made with --max-attempts 2: faults that may pass are retried, unreadable 200s are not
    says: str  # in the finding's message


# One scan, one fault per key on its GetKeyPolicy (in JSON, KMS's protocol), and a key no fault touches.
KEY_FAULTS = {
    "binary": KeyFault(
        lambda p, k: p.garbage("GetKeyPolicy", contains=k), "ResponseParserError", 1, "unreadable answer (HTTP 200)"
    ),
    "server-error": KeyFault(
        lambda p, k: p.fail("GetKeyPolicy", "InternalFailure", contains=k, status=500),
        "InternalFailure",
        2,
        "InternalFailure",
    ),
    # A middlebox's 503 with a binary body: no AWS error code to read, but still a 5xx, so still retried.
    "binary-503": KeyFault(
        lambda p, k: p.respond("GetKeyPolicy", GARBAGE, contains=k, status=503), "503", 2, "Service Unavailable"
    ),
    "reset": KeyFault(lambda p, k: p.reset("GetKeyPolicy", contains=k), "ConnectionClosedError", 2, "closed"),
    "cut-off": KeyFault(
        lambda p, k: p.cut("GetKeyPolicy", after=40, contains=k), "ResponseParserError", 1, "truncated: 40 of"
    ),
}


def test_each_fault_is_an_error_on_the_key_it_hit_and_no_other(proxy: FaultProxy, client: Any) -> None:
    estate = make_keys(client, *KEY_FAULTS, "fine")
    for name, fault in KEY_FAULTS.items():
        fault.inject(proxy, estate.ids[name])
    run = scan(proxy, "--max-attempts", "2")
    assert run.exit_code == 1, run.stderr
    for name, fault in KEY_FAULTS.items():
        arn = estate.arns[name]
        assert run.read_errors(arn) == [("GetKeyPolicy", fault.code)], name  # the rest of the key was read
        [err] = [f for f in run.errors(arn) if f["check_id"] == "scan_collection_error"]
        assert fault.says in err["message"], (name, err["message"])
        assert attempts(proxy, "GetKeyPolicy", estate.ids[name]) == fault.attempts, name
    assert run.judged(estate.arns["fine"]) and run.read_errors(estate.arns["fine"]) == []


def test_a_binary_answer_to_a_listing_is_an_error_on_the_region(proxy: FaultProxy, estate: Estate) -> None:
    proxy.garbage("ListKeys")  # JSON protocol (KMS)
    proxy.garbage("ListTopics")  # query/XML protocol (SNS)
    run = scan(proxy)
    assert run.exit_code == 1, run.stderr
    assert run.read_errors(REGION_ARN) == [("ListKeys", "ResponseParserError"), ("ListTopics", "ResponseParserError")]


def test_binary_answers_from_organizations_are_errors_not_crashes(
    proxy: FaultProxy, estate: Estate, tmp_path: Path
) -> None:
    # The reproduction of issue 14: a 200 with a binary body crashed the scan in aws/org.py with UnicodeDecodeError.
    proxy.garbage("DescribeOrganization")
    proxy.garbage("ListAccounts")
    snapshot = tmp_path / "snapshot.json"
    run = scan(proxy, "--org", "--snapshot-out", str(snapshot))
    assert run.exit_code == 1, run.stderr
    # The Organization could not be listed: the caller's account is scanned, with the reason on it.
    assert run.read_errors(ACCOUNT_ARN) == [("ListAccounts", "ResponseParserError")]
    # Whether the account is in an Organization is unknown, and the snapshot says why.
    org = json.loads(snapshot.read_text())["organization"]
    assert org["id"] == "unknown"
    assert [(e["operation"], e["code"]) for e in org["errors"]] == [("DescribeOrganization", "ResponseParserError")]
    for arn in estate.arns.values():
        assert run.judged(arn) and run.read_errors(arn) == []


def test_throttling_that_never_clears_is_an_error_after_max_attempts(proxy: FaultProxy, estate: Estate) -> None:
    proxy.fail("ListKeys", "ThrottlingException")
    run = scan(proxy, "--max-attempts", "2")
    assert run.exit_code == 1, run.stderr
    assert run.read_errors(REGION_ARN) == [("ListKeys", "ThrottlingException")]
    assert proxy.count("ListKeys") == 2


def test_an_endpoint_that_never_answers_is_a_timeout_error_on_that_key(proxy: FaultProxy, estate: Estate) -> None:
    proxy.hang("GetKeyPolicy", contains=estate.ids["hit"])
    run = scan(proxy, "--timeout", "2", "--max-attempts", "2")
    assert run.exit_code == 1, run.stderr
    assert run.read_errors(estate.arns["hit"]) == [("GetKeyPolicy", "ReadTimeoutError")]
    assert attempts(proxy, "GetKeyPolicy", estate.ids["hit"]) == 2
    assert_untouched(run.read_errors(estate.arns["fine"]))


def test_a_slow_answer_is_read_while_each_piece_comes_within_the_timeout(
    proxy: FaultProxy, estate: Estate, tmp_path: Path
) -> None:
    # ~15 pieces 0.25 s apart: the whole answer (~3.75 s) takes longer than --timeout, each read does not. The
    # timeout is 3 s rather than 2 s so that a CI worker sharing 2 cores with a heavy test cannot stretch one gap
    # past it (seen once in CI).
    proxy.drip("GetKeyPolicy", interval=0.25, contains=estate.ids["hit"])
    snapshot = tmp_path / "snapshot.json"
    run = scan(proxy, "--timeout", "3", "--max-attempts", "1", "--snapshot-out", str(snapshot))
    assert run.exit_code == 0, (run.errors(), run.stderr)
    assert run.errors() == []
    [key] = [k for r in json.loads(snapshot.read_text())["accounts"][0]["regions"] for k in r["keys"]
             if k["arn"] == estate.arns["hit"]]  # fmt: skip
    assert json.loads(key["policy"])["Statement"]


def test_an_answer_that_stalls_past_the_timeout_is_an_error_on_that_key(proxy: FaultProxy, estate: Estate) -> None:
    proxy.drip("GetKeyPolicy", interval=5, contains=estate.ids["hit"])
    run = scan(proxy, "--timeout", "2", "--max-attempts", "1")
    assert run.exit_code == 1, run.stderr
    assert run.read_errors(estate.arns["hit"]) == [("GetKeyPolicy", "ReadTimeoutError")]
    assert_untouched(run.read_errors(estate.arns["fine"]))
