"""One bounded thread pool for the whole scan, and scopes that say when a unit of work is finished.

Accounts, regions and keys all run in the same pool of ``max_workers`` threads. No task ever waits
for another task (a task that finds more work submits it and returns), so the pool cannot deadlock
the way nested executors do, and the bound is on the total, not per level. A ``Scope`` counts the
tasks of one unit (an account, a region); when the last one finishes it calls its ``on_done``
(advance the progress bar) and tells its parent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    """Run tasks (which may submit more tasks) on a bounded pool until there are none left."""

    def __init__(self, max_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="kmsguard")
        self._cond = threading.Condition()
        self._pending = 0
        self._failure: BaseException | None = None

    def submit(self, scope: Scope | None, fn: Callable[..., object], *args: object) -> None:
        with self._cond:
            if self._failure is not None:
                return  # the scan is failing: start nothing new
            self._pending += 1
        if scope is not None:
            scope.enter()

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
                    self._pending -= 1
                    if self._pending == 0:
                        self._cond.notify_all()

        self._pool.submit(run)

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
        self._pool.shutdown(wait=True, cancel_futures=True)
