"""One bounded thread pool for the whole scan, and scopes that say when a unit of work is finished.

Accounts, regions and keys all run in the same pool of ``max_workers`` threads. No task ever waits
for another task (a task that finds more work submits it and returns), so the pool cannot deadlock
the way nested executors do, and the bound is on the total, not per level. A ``Scope`` counts the
tasks of one unit (an account, a region); when the last one finishes it calls its ``on_done``
(advance the progress bar) and tells its parent.

Waiting tasks are not run first come, first served: each is submitted in a ``lane`` (an account and
Region), and the task earliest in its lane runs first, so the lanes take turns. AWS's request quotas
are per account and Region, and a call waits for its slot there (``aws.pacing``): run in submission
order, a Region's hundreds of key reads would fill every thread with calls waiting for that one
Region's quota while the other Regions' work, free to go, sat in the queue behind them.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Hashable
from types import TracebackType


class Scope:
    """Open until ``close()`` is called and every task submitted in it has finished.

    The creator's own hold (released by ``close()``) keeps a scope from finishing early when its first
    task completes before the second is submitted.
    """

    def __init__(self, on_done: Callable[[], None] | None = None, parent: Scope | None = None) -> None:
        self._on_done = on_done
        self._parent = parent
        self._open = 1
        self._lock = threading.Lock()
        if parent is not None:
            parent.enter()

    def enter(self) -> None:
        with self._lock:
            self._open += 1

    def exit(self) -> None:
        with self._lock:
            self._open -= 1
            finished = self._open == 0
        if finished:
            if self._on_done is not None:
                self._on_done()
            if self._parent is not None:
                self._parent.exit()

    def close(self) -> None:
        """The creator has submitted everything it will; the scope ends when its tasks do."""
        self.exit()

    def child(self, on_done: Callable[[], None] | None = None) -> Scope:
        """A sub-unit that holds this scope open until it finishes (close it after submitting)."""
        return Scope(on_done, self)


class Runner:
    """Run tasks (which may submit more tasks) on a bounded pool until there are none left; lanes take turns."""

    def __init__(self, max_workers: int) -> None:
        self._cond = threading.Condition()
        # (position in its lane, submission number, task): the heap's smallest is the earliest task of any lane.
        self._waiting: list[tuple[int, int, Callable[[], None]]] = []
        self._lane_position: dict[Hashable, int] = {}
        self._submitted = 0
        self._pending = 0
        self._failure: BaseException | None = None
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"kmsguard-{i}", daemon=True) for i in range(max(1, max_workers))
        ]
        for t in self._threads:
            t.start()

    def submit(self, scope: Scope | None, fn: Callable[..., object], *args: object, lane: Hashable = None) -> None:
        """Run ``fn(*args)`` on the pool, as part of ``scope``, taking turns with the other ``lane``s."""

        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # a bug, not an AWS failure (those are CollectionErrors): stop the scan
                with self._cond:
                    self._failure = self._failure or e
            finally:
                if scope is not None:
                    scope.exit()

        with self._cond:
            if self._failure is not None or self._closed:
                return  # the scan is failing: start nothing new
            if scope is not None:
                scope.enter()  # before any worker can take the task: it cannot exit a scope it never entered
            position = self._lane_position.get(lane, 0)
            self._lane_position[lane] = position + 1
            heapq.heappush(self._waiting, (position, self._submitted, run))
            self._submitted += 1
            self._pending += 1
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                _, _, task = heapq.heappop(self._waiting)
            try:
                task()
            finally:
                with self._cond:
                    self._pending -= 1
                    if self._pending == 0:
                        self._cond.notify_all()

    def wait(self) -> None:
        """Block until every task (and every task they submitted) is done; re-raise the first bug."""
        with self._cond:
            while self._pending:
                self._cond.wait()
            failure = self._failure
        if failure is not None:
            raise failure

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Drop what has not started (after Ctrl-C or a bug) and let the calls in flight end, each within its
        timeout."""
        with self._cond:
            self._closed = True
            self._pending -= len(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join()
