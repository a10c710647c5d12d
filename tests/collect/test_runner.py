"""The scan's pool (kmsguard.collect.runner): lanes take turns, scopes finish once, a bug stops the scan.

Orders are made deterministic with one worker held on an Event while the tasks are queued; no test asserts time.
"""

from __future__ import annotations

import threading

import pytest

from kmsguard.collect.runner import Runner, Scope


def test_lanes_take_turns_instead_of_first_come_first_served() -> None:
    """A Region's block of key reads must not fill every thread while other Regions' work waits behind it."""
    ran: list[str] = []
    gate = threading.Event()
    with Runner(1) as runner:
        runner.submit(None, gate.wait)  # holds the only worker while the blocks are queued
        for name in ("a0", "a1", "a2"):
            runner.submit(None, ran.append, name, lane=("111111111111", "us-east-1"))
        for name in ("b0", "b1", "b2"):
            runner.submit(None, ran.append, name, lane=("111111111111", "eu-west-1"))
        runner.submit(None, ran.append, "c0", lane=("222222222222", "us-east-1"))
        gate.set()
        runner.wait()
    assert ran == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]


def test_tasks_submit_tasks_and_each_scope_finishes_once_when_all_of_its_tasks_have() -> None:
    done: list[str] = []
    lock = threading.Lock()
    counted: list[int] = []

    def leaf(i: int) -> None:
        with lock:
            counted.append(i)

    with Runner(4) as runner:
        outer = Scope(on_done=lambda: done.append("outer"))

        def branch(scope: Scope) -> None:
            inner = scope.child(on_done=lambda: done.append("inner"))
            for i in range(20):
                runner.submit(inner, leaf, i, lane=i % 3)
            inner.close()

        runner.submit(outer, branch, outer)
        outer.close()
        runner.wait()
    assert sorted(counted) == list(range(20))
    assert done == ["inner", "outer"]


def test_a_bug_in_a_task_is_raised_by_wait_and_nothing_new_starts() -> None:
    ran: list[int] = []
    with Runner(2) as runner:

        def broken() -> None:
            raise RuntimeError("bug")

        runner.submit(None, broken)
        with pytest.raises(RuntimeError, match="bug"):
            runner.wait()
        runner.submit(None, ran.append, 1)  # refused: the scan is failing
    assert ran == []


def test_leaving_early_drops_what_has_not_started() -> None:
    """Ctrl-C (or a bug) in the scan: the queued tasks are dropped, the running one ends, the pool closes."""
    ran: list[int] = []
    gate = threading.Event()
    with pytest.raises(KeyboardInterrupt), Runner(1) as runner:
        runner.submit(None, gate.wait)
        for i in range(5):
            runner.submit(None, ran.append, i)
        # The running task ends a moment after the pool has begun closing (which drops the queue at once).
        threading.Timer(1.0, gate.set).start()
        raise KeyboardInterrupt
    assert ran == []
