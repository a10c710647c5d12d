"""`--timeout`, `--max-attempts` and `--deadline`: bounded defaults, and a clear exit 2 for a value that makes no
sense. (That the values reach every call is shown by the fault tests: attempts counted at the proxy, hung calls
ending at the timeout given.)"""

from __future__ import annotations

from typing import Any

import pytest

from kmsguard.aws.options import MAX_ATTEMPTS, TIMEOUT, AwsOptions
from kmsguard.aws.session import client_config
from kmsguard.cli.common import duration_seconds

from .conftest import kmsguard


def test_the_default_schedule_of_one_call_is_bounded() -> None:
    # Issue 14: 8 attempts x 30 s read timeout per call kept a hung scan going past 10 minutes.
    config: Any = client_config(AwsOptions())  # botocore's stubs do not declare Config's attributes
    assert (config.connect_timeout, config.read_timeout) == (TIMEOUT, TIMEOUT) == (20, 20)
    # Standard mode (back-off with full jitter): kmsguard.aws.pacing paces per quota, not adaptive's one limiter.
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS} and MAX_ATTEMPTS == 5
    assert AwsOptions().deadline is None


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("1.5", 1.5), ("15m", 900), ("1h", 3600)])
def test_a_deadline_is_seconds_or_a_duration(text: str, seconds: float) -> None:
    assert duration_seconds(text, "--deadline") == seconds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deadline", "soon"], "--deadline: 'soon' is not a duration (seconds, or 90s, 15m, 1h)"),
        (["--deadline", "0"], "--deadline: '0' must be more than 0 and less than a week"),
        (["--deadline", "nan"], "--deadline: 'nan' must be more than 0 and less than a week"),
        (["--timeout", "0"], "--timeout: 0 is not a number of seconds between 0 and 3600"),
        (["--max-attempts", "0"], "--max-attempts: 0 is not between 1 and 20"),
        (["--concurrency", "0"], "--concurrency: 0 is not between 1 and 1024"),
        (["--checks", "no_such_check"], "unknown check id(s): no_such_check (see `kmsguard checks`)"),
        (["--quotas", "/nonexistent/quotas.yaml"], "--quotas /nonexistent/quotas.yaml: "),
    ],
)
def test_a_nonsensical_value_exits_2_naming_it(args: list[str], message: str) -> None:
    # Refused before any call: the endpoint does not even exist.
    run = kmsguard("scan", "--endpoint-url", "http://127.0.0.1:9", "-f", "json", *args)
    assert run.exit_code == 2 and message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "option",
    [["--timeout", "5"], ["--max-attempts", "2"], ["--deadline", "5m"], ["--concurrency", "8"], ["--quotas", "off"]],
)
def test_a_saved_snapshot_takes_no_call_options(option: list[str]) -> None:
    run = kmsguard("scan", "--from-snapshot", "no-such.json", *option)
    assert run.exit_code == 2 and "--from-snapshot judges a saved snapshot" in run.stderr, run.stderr
