"""Client-side pacing: keep each (account, Region, quota) under AWS's request quota, and back off when throttled.

AWS throttles per account, per Region and per operation (or per group of operations sharing one quota: see
``quotas.yaml``). A scan that spreads its requests across accounts and Regions can go as fast as the busiest
account-Region allows, but only if no single account-Region is asked faster than its quota: past it, every
extra request is a throttling answer, a retry after a back-off, and a slower scan (a throttling storm).

So every client the session factory makes waits, before each attempt, for a slot in a ``Lane``: one per
(account, Region, service, quota), paced with the generic cell rate algorithm (a token bucket that reserves
slots instead of refusing):

- a lane admits ``burst`` requests at once, then one every ``1 / rate`` seconds; ``rate`` starts at
  ``SHARE`` of the quota and ``burst`` at half a second's worth, leaving AWS's bucket (a full second's worth)
  room for requests the network delivers closer together than they were sent;
- a throttling answer halves the lane's rate (down to ``FLOOR`` of the quota) and pushes its next slot
  back; the rate then climbs back to its target linearly over ``RECOVERY_SECONDS`` (additive increase,
  multiplicative decrease, as TCP does), so a quota lower than the table's (an account with a shared or
  lowered limit) is found within a few throttles instead of being hit on every request;
- an operation without a published quota (IAM, EC2 and most services other than KMS publish none) is not
  paced; AWS's throttling there is retried with botocore's exponential back-off and jitter.

The waiting happens in the worker threads, which are many (``--concurrency``): a thread waiting for a slot
in one account-Region leaves the others free for the rest of the Organization.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kmsguard.aws.quotas import QuotaTable

SHARE = 0.9  # of the quota: what the network may compress (jitter) stays inside AWS's bucket
BURST_SECONDS = 0.5  # a lane's burst, in seconds' worth of its rate
FLOOR = 0.05  # the lowest rate throttling can push a lane to, as a share of its quota
RECOVERY_SECONDS = 10.0  # from any rate back to the target, after the last throttle

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Lane:
    """One quota's pace in one account and Region. Thread-safe; ``reserve`` says how long to wait."""

    def __init__(self, quota_rate: float, clock: Clock) -> None:
        self.target = quota_rate * SHARE
        self.rate = self.target
        self._floor = quota_rate * FLOOR
        self._clock = clock
        self._tat = clock()  # theoretical arrival time: when the next request is due at the current rate
        self._last = self._tat
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before sending (0: send now)."""
        with self._lock:
            now = self._clock()
            self._recover(now)
            tat = max(self._tat, now)
            start = max(now, tat - (self._burst() - 1.0) / self.rate)
            self._tat = tat + 1.0 / self.rate
            return start - now

    def throttled(self) -> None:
        """AWS said this lane is too fast: halve the rate and empty the burst, so the next slot is a full interval
        away (AWS's bucket is empty too)."""
        with self._lock:
            now = self._clock()
            self._recover(now)
            self.rate = max(self._floor, self.rate / 2)
            self._tat = max(self._tat, now + self._burst() / self.rate)

    def _burst(self) -> float:
        """Requests admitted at once after a pause: half a second's worth, at least one."""
        return max(1.0, self.rate * BURST_SECONDS)

    def _recover(self, now: float) -> None:
        if self.rate < self.target:
            self.rate = min(self.target, self.rate + self.target * (now - self._last) / RECOVERY_SECONDS)
        self._last = now


@dataclass
class PacingStats:
    paced: int = 0  # requests that waited for a slot
    waited_seconds: float = 0.0
    throttled: int = 0  # throttling answers received (each one retried by botocore within --max-attempts)


class Pacer:
    """The lanes of one run, shared by every client the run's session factory makes."""

    def __init__(self, table: QuotaTable, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.table = table
        self._clock, self._sleep = clock, sleep
        self._lanes: dict[tuple[str, str, str, str], Lane] = {}
        self._lock = threading.Lock()
        self.stats = PacingStats()

    def __reduce__(self) -> tuple[type[Pacer], tuple[QuotaTable]]:
        return (Pacer, (self.table,))  # a lock cannot be pickled; another process paces its own calls

    def lane(self, account: str, region: str, service: str, operation: str) -> Lane | None:
        """The lane ``operation`` is paced in (made on first use); None for an operation without a quota."""
        quota = self.table.quota_for(service, operation)
        if quota is None:
            return None
        key = (account, region, service, quota.name)
        found = self._lanes.get(key)
        if found is None:
            with self._lock:
                found = self._lanes.setdefault(key, Lane(quota.rate_in(region), self._clock))
        return found

    def wait(self, account: str, region: str, service: str, operation: str) -> None:
        """Block until ``operation`` may be sent in (account, region)."""
        lane = self.lane(account, region, service, operation)
        if lane is None:
            return
        delay = lane.reserve()
        if delay > 1e-6:  # less is the rounding of the slot arithmetic, not a wait
            with self._lock:
                self.stats.paced += 1
                self.stats.waited_seconds += delay
            self._sleep(delay)

    def throttled(self, account: str, region: str, service: str, operation: str) -> None:
        with self._lock:
            self.stats.throttled += 1
        lane = self.lane(account, region, service, operation)
        if lane is not None:
            lane.throttled()
