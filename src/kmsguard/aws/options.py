"""What the user said about where and how to reach AWS (shared by scan, fix, monitor ...)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kmsguard.aws.pacing import Pacer

# Defaults of --timeout, --max-attempts and --deadline (README "AWS calls: timeouts, retries, deadline").
TIMEOUT = 20.0  # seconds to connect, then for each read of the answer
MAX_ATTEMPTS = 5  # attempts per call, the first included
# Requests in flight at once (`--concurrency`): the work is waiting for AWS, so many threads, each mostly asleep.
CONCURRENCY = 64
QUOTAS = "default"  # `--quotas`: pace calls below AWS's published request quotas (kmsguard/aws/quotas.yaml)


class CallTally:
    """How many AWS calls were answered with success and how many failed, counted by every client the session
    factory makes. A run whose calls all failed read nothing: its empty findings must not pass for a clean
    estate (``blind``).

    A copy sent to another process (the trail decoder's workers, Spark) starts from zero and is not merged
    back: only this process's calls are counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.succeeded = 0
        self.failed = 0
        self.first_failure: str | None = None  # "service:Operation in region: code: message"

    def __reduce__(self) -> tuple[type[CallTally], tuple[()]]:
        return (CallTally, ())  # a lock cannot be pickled, and counts belong to the process that made the calls

    def success(self) -> None:
        with self._lock:
            self.succeeded += 1

    def failure(self, what: str) -> None:
        with self._lock:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = what

    @property
    def blind(self) -> bool:
        """Calls were made and not one of them succeeded."""
        return self.failed > 0 and self.succeeded == 0

    def __repr__(self) -> str:
        return f"CallTally(succeeded={self.succeeded}, failed={self.failed})"


class RunClock:
    """The run's ``--deadline``, shared by every client the session factory makes from one AwsOptions.

    Armed only while AWS is read (``running``): once the deadline has passed, each client refuses to start a
    call or a retry (``check`` raises DeadlinePassed, recorded as a CollectionError on what it would have read),
    so the reading ends once the calls in flight end (each read within ``--timeout``; a retry back-off already
    asleep finishes its sleep, then is refused) and what was read is still judged. Later calls of the same
    command (``fix`` applying, ``monitor`` reading one key) are not bound by it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ends: float | None = None
        self.seconds: float | None = None
        self.refused = 0  # calls not made because the deadline had passed, in the last ``running``

    def __reduce__(self) -> tuple[type[RunClock], tuple[()]]:
        return (RunClock, ())  # as CallTally: a lock cannot be pickled; another process starts unarmed

    @contextmanager
    def running(self, seconds: float | None) -> Iterator[None]:
        """Arm the deadline ``seconds`` from now (None: no deadline) for the duration of the block."""
        with self._lock:
            self.seconds, self.refused = seconds, 0
            self._ends = None if seconds is None else time.monotonic() + seconds
        try:
            yield
        finally:
            with self._lock:
                self._ends = None

    def check(self) -> None:
        """Raise DeadlinePassed when the armed deadline has passed (called before every attempt of every call)."""
        with self._lock:
            if self._ends is None or time.monotonic() < self._ends:
                return
            self.refused += 1
        from kmsguard.aws.errors import DeadlinePassed  # here: botocore loads only once a call is made

        raise DeadlinePassed(deadline=describe_seconds(self.seconds or 0))

    @property
    def cut_short(self) -> bool:
        """The deadline stopped the last reading: something was not read."""
        return self.refused > 0


def describe_seconds(seconds: float) -> str:
    """90 -> '90 s', 900 -> '15 min' (how a deadline or timeout is named in messages)."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


@dataclass
class AwsOptions:
    profile: str | None = None
    # None: every region enabled for the account (ec2:DescribeRegions).
    regions: list[str] | None = None
    # Never scanned, whether enabled or listed in ``regions`` (`--excluded-regions`).
    excluded_regions: list[str] | None = None
    endpoint_url: str | None = None
    # Scan every ACTIVE account of the Organization, assuming role_name in each.
    org: bool = False
    role_name: str = "OrganizationAccountAccessRole"
    # Restrict to these account ids (with org: a subset of the Organization; without: assume role_name).
    accounts: list[str] | None = None
    # `--concurrency`: threads reading AWS at once (each waits on one call at a time).
    max_workers: int = CONCURRENCY
    # `--quotas`: "default", a quota file (raised quotas), or None: no pacing (see kmsguard.aws.pacing).
    quotas: str | None = QUOTAS
    # `--timeout`: seconds a call may take to connect, and then to receive each part of the answer.
    timeout: float = TIMEOUT
    # `--max-attempts`: attempts per call (the first included); throttling, 5xx and network errors are retried.
    max_attempts: int = MAX_ATTEMPTS
    # `--deadline`: seconds the reading of AWS (collect_snapshot) may take; None: no limit.
    deadline: float | None = None
    # Filled by the session factory's clients; read by the commands to tell a blind run from a clean one.
    calls: CallTally = field(default_factory=CallTally, compare=False, repr=False)
    # Armed by collect_snapshot with ``deadline``; read by the commands to exit 3 when it cut the reading short.
    clock: RunClock = field(default_factory=RunClock, compare=False, repr=False)
    # Made by the first session factory from ``quotas``, then shared by every later one of the run (scan, then fix).
    pacer: Pacer | None = field(default=None, compare=False, repr=False)


__all__ = [
    "CONCURRENCY",
    "MAX_ATTEMPTS",
    "QUOTAS",
    "TIMEOUT",
    "AwsOptions",
    "CallTally",
    "RunClock",
    "describe_seconds",
]
