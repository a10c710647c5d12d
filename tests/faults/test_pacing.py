"""Pacing below AWS's request quotas (kmsguard.aws.pacing): a burst of calls against the quota emulator is spread so
that AWS never has to throttle it beyond the retry budget, and a quota lower than the table says is found by
backing off.

The lanes are tested on an injected clock (what is admitted when follows from the rates alone); the scans run
against an emulator of the test's own that throttles as AWS does (kmsguard.demo.quotas), with real time. No test
asserts elapsed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.aws.pacing import BURST_SECONDS, FLOOR, RECOVERY_SECONDS, SHARE, Lane, Pacer
from kmsguard.aws.quotas import load_quotas, parse_quotas
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import Emulator

from .conftest import EAST

pytestmark = pytest.mark.timeout(180)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- one lane, on a clock the test moves -----------------------------------------------------------------------


def test_a_lane_admits_its_burst_then_one_request_per_interval() -> None:
    clock = Clock()
    lane = Lane(20.0, clock)  # a quota of 20/s: paced at 18/s, bursts of 9
    rate = 20 * SHARE
    burst = int(rate * BURST_SECONDS)
    waits = [lane.reserve() for _ in range(burst + 3)]
    assert waits[:burst] == pytest.approx([0.0] * burst, abs=1e-9)
    assert waits[burst:] == pytest.approx([1 / rate, 2 / rate, 3 / rate], abs=1e-9)
    # Time passing refills the burst: a second later the lane is idle again.
    clock.now += 2.0
    assert lane.reserve() == 0.0


def test_throttling_halves_the_rate_and_it_recovers_linearly() -> None:
    clock = Clock()
    lane = Lane(100.0, clock)
    target = 100 * SHARE
    lane.throttled()
    assert lane.rate == pytest.approx(target / 2)
    # The next slot is a full interval at the new rate away, whatever the burst had left.
    assert lane.reserve() == pytest.approx(1 / lane.rate)
    for _ in range(10):
        lane.throttled()
    assert lane.rate == pytest.approx(100 * FLOOR)  # never below the floor: the scan still ends
    clock.now += RECOVERY_SECONDS / 2
    lane.reserve()
    assert lane.rate == pytest.approx(100 * FLOOR + target / 2)
    clock.now += RECOVERY_SECONDS
    lane.reserve()
    assert lane.rate == pytest.approx(target)


def test_lanes_are_per_account_region_and_quota() -> None:
    table = parse_quotas(
        "services:\n  kms:\n    quotas:\n      ListGrants: 10\n      Crypto:\n        operations: [Encrypt, Decrypt]\n"
        "        rate: 50\n        regions: {eu-west-1: 80}\n",
        "test",
    )
    pacer = Pacer(table, Clock(), sleep=lambda _: None)
    lane = pacer.lane("111111111111", EAST, "kms", "Encrypt")
    assert lane is not None and lane is pacer.lane("111111111111", EAST, "kms", "Decrypt")  # one shared quota
    assert lane is not pacer.lane("222222222222", EAST, "kms", "Encrypt")  # another account: its own quota
    assert lane.target == pytest.approx(50 * SHARE)
    west = pacer.lane("111111111111", "eu-west-1", "kms", "Encrypt")
    assert west is not None and west.target == pytest.approx(80 * SHARE)  # the Region's own figure
    assert pacer.lane("111111111111", EAST, "kms", "DescribeKey") is None  # no quota: not paced
    assert pacer.lane("111111111111", EAST, "iam", "ListRoles") is None


def test_the_built_in_table_paces_what_a_scan_calls_most() -> None:
    table = load_quotas("default")
    for op in ("ListKeys", "ListAliases", "DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "ListGrants"):
        assert table.quota_for("kms", op) is not None, op
    for op in ("PutKeyPolicy", "EnableKeyRotation", "CancelKeyDeletion", "TagResource"):
        assert table.quota_for("kms", op) is not None, op


# --- scans against the quota emulator -----------------------------------------------------------------------------

# ListGrants at 10 a second: a scan of KEYS keys asks for ListGrants KEYS times, all at once without pacing.
QUOTAS = "services:\n  kms:\n    source: this test\n    quotas:\n      ListGrants: 10\n"
KEYS = 40


@pytest.fixture
def throttling(aws: Emulator, tmp_path: Path) -> Iterator[Emulator]:
    """An emulator of this test's own, throttling ListGrants at 10/s, holding KEYS keys (made unthrottled)."""
    path = tmp_path / "quotas.yaml"
    path.write_text(QUOTAS)
    with Emulator(aws_managed_policies=False, aws_quotas=str(path)) as emu:
        with emu.aws_time_paused():
            kms = boto3.client(
                "kms",
                region_name=EAST,
                endpoint_url=emu.endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for i in range(KEYS):
                kms.create_key(Description=f"k{i}")
        emu.reset_request_counts()
        yield emu


def _scan(emu: Emulator, quotas: str | None, max_attempts: int) -> tuple[Any, AwsOptions]:
    options = AwsOptions(
        endpoint_url=emu.endpoint_url, regions=[EAST], max_workers=64, quotas=quotas, max_attempts=max_attempts
    )
    return collect_snapshot(options), options


def _failed_calls(snap: Any) -> list[str]:
    return [f"{e.operation}: {e.code}" for a in snap.accounts for r in a.regions for k in r.keys for e in k.errors] + [
        f"{e.operation}: {e.code}" for a in snap.accounts for r in a.regions for e in r.errors
    ]


def test_a_burst_paced_at_the_quota_is_not_throttled_beyond_the_retry_budget(
    throttling: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "client-quotas.yaml"
    path.write_text(QUOTAS)  # the client knows the quota the emulator enforces
    snap, options = _scan(throttling, str(path), max_attempts=2)
    assert _failed_calls(snap) == []
    assert sum(1 for a in snap.accounts for r in a.regions for _ in r.keys) == KEYS
    grants = throttling.request_counts()[("kms", "ListGrants")]
    throttled = throttling.throttled_counts().get(("kms", "ListGrants"), 0)
    assert grants >= KEYS and throttled <= KEYS // 20, throttling.throttled_counts()
    assert options.pacer is not None and options.pacer.stats.paced > 0  # the calls did wait for their slots


def test_the_same_burst_unpaced_is_throttled(throttling: Emulator) -> None:
    """The contrast that shows the test above is not vacuous: 64 threads, no pacing, one attempt per call."""
    snap, _ = _scan(throttling, None, max_attempts=1)
    # How many of the KEYS come at once depends on this machine's load; any beyond the quota's 10 are refused.
    assert throttling.throttled_counts().get(("kms", "ListGrants"), 0) > 0
    assert "ListGrants: ThrottlingException" in _failed_calls(snap)


def test_a_quota_lower_than_the_table_is_found_by_backing_off(throttling: Emulator, tmp_path: Path) -> None:
    """The client believes ListGrants allows 100/s (a stale table, a quota shared with another tool); AWS allows 10.
    The first throttles halve the lane until it fits, and the retries (standard back-off with jitter) read it all."""
    path = tmp_path / "client-quotas.yaml"
    path.write_text(QUOTAS.replace("ListGrants: 10", "ListGrants: 100"))
    snap, options = _scan(throttling, str(path), max_attempts=5)
    assert _failed_calls(snap) == []
    assert options.pacer is not None
    assert options.pacer.stats.throttled == throttling.throttled_counts()[("kms", "ListGrants")] > 0
    lane = options.pacer.lane(snap.accounts[0].account_id, EAST, "kms", "ListGrants")
    assert lane is not None and lane.rate < lane.target


def test_the_scan_says_when_aws_throttled_it_and_what_to_do(throttling: Emulator, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kmsguard.cli.main import app

    path = tmp_path / "client-quotas.yaml"
    path.write_text(QUOTAS.replace("ListGrants: 10", "ListGrants: 100"))  # the client's table is too generous
    args = ["scan", "--endpoint-url", throttling.endpoint_url, "--regions", EAST, "-f", "json", "-q"]
    run = CliRunner().invoke(app, [*args, "--quotas", str(path), "--fail-on", "never"])
    throttled = throttling.throttled_counts()[("kms", "ListGrants")]
    assert run.exit_code == 0, run.stderr
    assert f"kmsguard: AWS throttled {throttled} call(s)" in run.stderr
    assert "--quotas FILE" in run.stderr
    right = tmp_path / "right-quotas.yaml"
    right.write_text(QUOTAS)  # the quota the emulator enforces: paced below it, normally nothing to say
    throttling.reset_request_counts()
    paced = CliRunner().invoke(app, [*args, "--quotas", str(right), "--fail-on", "never"])
    assert paced.exit_code == 0, paced.stderr
    # What it says is what happened at the server (a loaded machine can bunch a paced call or two).
    again = throttling.throttled_counts().get(("kms", "ListGrants"), 0)
    assert ("throttled" in paced.stderr) == (again > 0), paced.stderr
    assert again <= KEYS // 20
