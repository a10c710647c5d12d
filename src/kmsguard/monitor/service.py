"""The monitor: full scans on a schedule, one-key scans on events, drift, alerts through the outbox.

One thread does everything in turn (scan, store, alert, poll events), so there is no locking and a stop
request (SIGTERM) is honoured between steps: the loop waits on ``stop`` rather than sleeping. With ``trail``
sources, each full cycle also analyses CloudTrail logs: their findings join the scan's (drift and alerts
treat them like any other) and the key usage summary is stored with the scan for the dashboard.

Faults:
- AWS unreachable (AwsUnavailable) or a failing call: retried with exponential back-off; a cycle that still
  fails is skipped, the loop goes on. Nothing is lost: drift is always computed against the last *stored*
  scan, so the next successful cycle reports what the skipped one would have.
- Database unavailable (SQLAlchemy OperationalError/InterfaceError): the whole transaction (scan, drift,
  alert outbox) is retried with back-off, then the cycle is skipped, for the same reason.
- A failing alert channel keeps its deliveries pending; every loop iteration retries them.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from kmsguard.aws.errors import AWS_CALL_ERRORS, AwsUnavailable
from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.single_key import collect_key
from kmsguard.config import ScanConfig
from kmsguard.model.snapshot import Snapshot
from kmsguard.model.trail import TrailFacts
from kmsguard.model.usage import TrailUsage
from kmsguard.monitor.alerts import deliver_pending, plan_alert
from kmsguard.monitor.channels import Channel
from kmsguard.monitor.events import KeyEvent, SqsEvents, key_event
from kmsguard.monitor.keyscan import judge_key
from kmsguard.monitor.schedule import Schedule
from kmsguard.store.db import Store, StoreError, open_store
from kmsguard.store.drift import DriftItem, compute_drift
from kmsguard.store.queries import latest_scan
from kmsguard.store.schema import DriftRow, SnapshotRow
from kmsguard.store.writer import insert_full_scan, insert_key_scan

log = logging.getLogger("kmsguard.monitor")
T = TypeVar("T")
DB_ERRORS = (OperationalError, DBAPIError, StoreError)
AWS_ERRORS: tuple[type[BaseException], ...] = (AwsUnavailable, *AWS_CALL_ERRORS)


class TrailError(Exception):
    """The cycle's trail analysis could not read its logs (a source gone, a bad file set): the cycle is skipped."""


RECOVERABLE: tuple[type[BaseException], ...] = (*AWS_ERRORS, *DB_ERRORS, TrailError)


@dataclass
class Cycle:
    scan_id: int
    kind: str
    drift: list[DriftItem] = field(default_factory=list)
    alert_id: int | None = None
    failing: int = 0


@dataclass
class MonitorSettings:
    db_url: str | None
    options: AwsOptions
    config: ScanConfig = field(default_factory=ScanConfig)
    dashboard_url: str | None = None
    # `--trail`: CloudTrail logs analysed each full cycle (their findings merged, their usage stored);
    # ``trail_aws`` reads s3:// sources (one bucket: never the Organization's accounts).
    trail: list[str] = field(default_factory=list)
    trail_aws: AwsOptions | None = None
    retry_attempts: int = 5
    retry_base: float = 2.0  # seconds; doubles each attempt
    retry_max: float = 300.0


class Monitor:
    def __init__(
        self,
        settings: MonitorSettings,
        channels: Sequence[Channel] = (),
        stop: threading.Event | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.channels = list(channels)
        self.stop = stop or threading.Event()
        self._store = store
        self._factory: SessionFactory | None = None
        self._snapshot: Snapshot | None = None  # the last full snapshot, for judging single keys in context

    # -- plumbing -------------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self._retry("open the store", lambda: open_store(self.settings.db_url), DB_ERRORS)
        return self._store

    def factory(self) -> SessionFactory:
        if self._factory is None:
            self._factory = SessionFactory(self.settings.options)
        return self._factory

    def _retry(self, what: str, fn: Callable[[], T], errors: tuple[type[BaseException], ...]) -> T:
        delay = self.settings.retry_base
        for attempt in range(1, self.settings.retry_attempts + 1):
            try:
                return fn()
            except errors as e:
                if attempt == self.settings.retry_attempts or self.stop.is_set():
                    raise
                log.warning("%s failed (attempt %d): %s; retrying in %.1fs", what, attempt, _short(e), delay)
                if self.stop.wait(delay):
                    raise
                delay = min(delay * 2, self.settings.retry_max)
        raise AssertionError("unreachable")

    def _links(self) -> tuple[str, str]:
        base = self.settings.dashboard_url
        if base:
            base = base.rstrip("/")
            return f"{base}/findings?status=FAIL", base + "/keys/{arn}"
        db = self.store.url
        return f"kmsguard serve --db '{db}' (page /findings)", f"kmsguard serve --db '{db}' (page /keys/{{arn}})"

    def _record(self, write: Callable[[Any], tuple[int, int | None, str | None]]) -> Cycle:
        """Run ``write`` (returns scan id, previous scan id, key scope) then drift and the alert plan, in one
        transaction: a scan is never stored without its drift and alerts, nor alerts without their scan."""
        more, key_page = self._links()
        names = [c.name for c in self.channels]

        def txn() -> Cycle:
            with self.store.session() as s:
                scan_id, prev_id, scope = write(s)
                drift = compute_drift(s, prev_id, scan_id, scope) if prev_id is not None else []
                for d in drift:
                    s.add(
                        DriftRow(
                            scan_id=scan_id,
                            kind=d.kind,
                            severity=d.severity,
                            account=d.account,
                            region=d.region,
                            resource_arn=d.resource_arn,
                            summary=d.summary,
                            detail=d.detail,
                        )
                    )
                alert_id = plan_alert(s, scan_id, drift, names, key_arn=scope, more=more, key_page=key_page)
                return Cycle(scan_id, "key" if scope else "full", drift, alert_id)

        return self._retry("store the scan", txn, DB_ERRORS)

    def deliver(self) -> dict[str, int]:
        try:
            return deliver_pending(self.store, self.channels)
        except DB_ERRORS as e:
            log.warning("could not read the alert outbox: %s", _short(e))
            return {}

    # -- cycles ---------------------------------------------------------------------------------------

    def full_cycle(self) -> Cycle:
        """Scan everything, store, diff against the last stored scan, record and send alerts."""
        from kmsguard.pipeline import judge

        snapshot = self._retry("the scan", self._collect, AWS_ERRORS)
        facts, usage = self._trail(snapshot) if self.settings.trail else (None, None)
        # The facts are judged with the scan (the trail family of checks), not stored with its snapshot: the store
        # keeps what was collected, and the trail findings with the other findings.
        judged = snapshot.model_copy(update={"trail": facts}) if facts is not None else snapshot
        result = judge(judged, self.settings.config)
        result.trail_usage = usage

        def write(s: Any) -> tuple[int, int | None, str | None]:
            prev = latest_scan(s)
            return insert_full_scan(s, snapshot, result), prev.id if prev else None, None

        cycle = self._record(write)
        cycle.failing = sum(1 for f in result.findings if f.failing)
        self._snapshot = snapshot
        log.info(
            "scan %d: %d findings, %d failing, %d drift",
            cycle.scan_id,
            len(result.findings),
            cycle.failing,
            len(cycle.drift),
        )
        self.deliver()
        return cycle

    def _collect(self) -> Snapshot:
        """One collection; a blind one (every AWS call failed) is an error, retried like AWS being down and
        never stored: stored, it would make drift report every finding resolved."""
        from kmsguard.collect.snapshot import collect_snapshot

        calls = self.settings.options.calls
        before = (calls.succeeded, calls.failed)
        snapshot = collect_snapshot(self.settings.options)
        if calls.failed > before[1] and calls.succeeded == before[0]:
            raise AwsUnavailable(f"every AWS call failed, the scan read nothing; first failure: {calls.first_failure}")
        return snapshot

    def _trail(self, snapshot: Snapshot) -> tuple[TrailFacts, TrailUsage]:
        """The trail analysis of a full cycle, joined with its snapshot. The cache makes each cycle read only
        the log files that are new since the last one. Unreadable S3 is retried like the scan; a local error
        (a source gone, bad --trail options) fails the cycle rather than storing a scan without the trail
        findings, which would report them resolved and alert on them again next time."""
        from kmsguard.trail.analyze import TrailOptions
        from kmsguard.trail.usage import analyze_usage

        opts = TrailOptions(config=self.settings.config, aws=self.settings.trail_aws)
        try:
            return self._retry(
                "the trail analysis", lambda: analyze_usage(self.settings.trail, snapshot, opts), AWS_ERRORS
            )
        except (OSError, ValueError) as e:
            raise TrailError(f"--trail: {e}") from e

    def key_cycle(self, ev: KeyEvent) -> Cycle | None:
        """Re-read and re-judge only the key ``ev`` names; store a derived scan; diff and alert that key."""
        started = datetime.now(UTC)
        key = self._retry(
            f"reading {ev.key_ref}",
            lambda: collect_key(self.factory(), ev.account, ev.region, ev.key_ref),
            AWS_ERRORS,
        )
        base = self._base_snapshot()
        findings = judge_key(base, key, self.settings.config) if key is not None else []
        arn = key.arn if key is not None else ev.key_ref

        def write(s: Any) -> tuple[int, int | None, str | None]:
            prev = latest_scan(s)
            if prev is None:
                raise _NoBaseline()
            return insert_key_scan(s, prev.id, arn, key, findings, started), prev.id, arn

        try:
            cycle = self._record(write)
        except _NoBaseline:
            log.info("event %s on %s before any full scan: running one", ev.event_name, arn)
            return self.full_cycle()
        if key is not None and self._snapshot is not None:
            from kmsguard import __version__
            from kmsguard.monitor.keyscan import replace_key

            self._snapshot = replace_key(self._snapshot, key, __version__)
        log.info("event %s on %s: scan %d, %d drift", ev.event_name, arn, cycle.scan_id, len(cycle.drift))
        self.deliver()
        return cycle

    def _base_snapshot(self) -> Snapshot | None:
        if self._snapshot is None:
            with self.store.session() as s:
                data = s.scalar(select(SnapshotRow.data).order_by(SnapshotRow.scan_id.desc()).limit(1))
            if data is not None:
                self._snapshot = Snapshot.model_validate_json(zlib.decompress(data))
        return self._snapshot

    # -- the loop -------------------------------------------------------------------------------------

    def run(self, schedule: Schedule, events: SqsEvents | None = None, max_cycles: int | None = None) -> int:
        """Until ``stop`` is set (or ``max_cycles`` full cycles ran): full scans when due, events between.
        Returns the number of full cycles run."""
        self.deliver()  # alerts recorded before a restart and not sent yet
        cycles = 0
        due = datetime.now(UTC)
        while not self.stop.is_set():
            now = datetime.now(UTC)
            if now >= due:
                self._guarded("full scan", self.full_cycle)
                cycles += 1
                if max_cycles is not None and cycles >= max_cycles:
                    break
                due = schedule.next_after(datetime.now(UTC))
                continue
            wait = (due - now).total_seconds()
            if events is None:
                self.stop.wait(wait)
                continue
            self._poll(events, wait)
            self.deliver()
        return cycles

    def _poll(self, events: SqsEvents, wait: float) -> None:
        try:
            messages = events.receive(wait)
        except AWS_CALL_ERRORS as e:
            log.warning("reading events failed: %s", _short(e))
            self.stop.wait(min(wait, self.settings.retry_base))
            return
        for handle, body in messages:
            if self.stop.is_set():
                return  # unhandled messages become visible again after the queue's visibility timeout
            ev = key_event(body)
            ok = True
            if ev is not None:
                ok = self._guarded(f"event {ev.event_name}", partial(self.key_cycle, ev)) is not None
            if ok:
                try:
                    events.delete(handle)
                except AWS_CALL_ERRORS as e:
                    log.warning("could not delete an event message: %s", _short(e))

    def _guarded(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one step; log what made it fail instead of dying (the loop goes on)."""
        started = time.monotonic()
        try:
            return fn()
        except RECOVERABLE as e:
            log.error("%s failed after retries, skipped: %s", what, _short(e))
        except Exception:
            log.exception("%s failed unexpectedly, skipped (after %.1fs)", what, time.monotonic() - started)
        return None


class _NoBaseline(Exception):
    pass


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]
