"""Carry out a Plan: per action re-read, compare with the plan, journal the prior state, change, record.

One failed action never stops the others; each ends as one ``Outcome`` (applied, skipped with the reason, or
failed with the AWS error) and, once journalled, one result line (``applied``, ``failed``, or ``partial`` for a
failed action of several calls that did change the resource); an action that ends without a change gets an
``outcome`` line. A key whose policy changed between plan and apply is skipped, never overwritten.

**Concurrency.** AWS limits mutations per (account, Region, operation) per second, and the session factory's
clients pace themselves under those quotas; what apply must add is enough actions in flight that the quota, not
one call's latency after another, sets the pace. The actions on one resource form a group, run in plan order by
one task (a key's policy and rotation are never changed at once); groups run on a bounded thread pool
(``AwsOptions.max_workers``), started round-robin over (account, Region) so that every Region's quota is used
from the start. Outcomes come back in plan order.

**Interruption.** Ctrl-C (SIGINT, or a KeyboardInterrupt raised by ``on_outcome``) stops new actions from
starting; the ones in flight finish and journal their results, then ``Interrupted`` says what was done and what
was not started. A crash leaves at most the actions in flight with a ``before`` line and no result: ``resume``
re-reads those ("in doubt") before doing anything, so no action is applied twice or skipped.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from types import FrameType
from typing import Any, Literal

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.session import AccountSession, SessionFactory
from kmsguard.fix.actions import KINDS, MULTI_CALL, same_state
from kmsguard.fix.journal import Entry, Journal, JournalError, JournalFile
from kmsguard.fix.plan import Action, Plan, check_id_fields

CHANGED_SINCE_PLAN = (
    "changed since the plan was made (re-read differs from the plan's before); not overwritten - "
    "run kmsguard fix again to plan from the current state"
)


class Sessions:
    """One AccountSession per account, made on first use through the one session factory; thread-safe, with one
    AssumeRole per account however many threads ask at once."""

    def __init__(self, factory: SessionFactory, role_name: str) -> None:
        self.factory = factory
        self.role_name = role_name
        self._cache: dict[str, AccountSession] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, account: str) -> AccountSession:
        found = self._cache.get(account)
        if found is not None:
            return found
        with self._lock:
            lock = self._locks.setdefault(account, threading.Lock())
        with lock:  # one account's threads wait for its one assume; other accounts go on
            if account not in self._cache:
                self._cache[account] = self.factory.assume(account, self.role_name)
            return self._cache[account]


@dataclass
class Outcome:
    action: Action
    status: Literal["applied", "skipped", "failed"]
    message: str

    def to_dict(self) -> dict[str, Any]:
        a = self.action
        return {
            "action": a.action,
            **check_id_fields(a.check_ids),
            "account": a.account,
            "region": a.region,
            "resource_arn": a.resource_arn,
            "status": self.status,
            "message": self.message,
        }


class Interrupted(Exception):
    """Ctrl-C stopped the apply: ``outcomes`` of the actions that ended (plan order), ``not_started`` the rest."""

    def __init__(self, outcomes: list[Outcome], not_started: list[Action]) -> None:
        super().__init__(f"interrupted: {len(outcomes)} action(s) ended, {len(not_started)} not started")
        self.outcomes = outcomes
        self.not_started = not_started


def error_text(e: Exception) -> str:
    code, message = error_code(e)
    return f"{code}: {message}"


def planned(action: Action) -> dict[str, Any]:
    """An action as the journal's plan holds it: its JSON form and the detail apply needs."""
    return action.to_dict() | {"detail": action.detail}


def apply_plan(
    plan: Plan,
    sessions: Sessions,
    journal: Journal,
    on_outcome: Callable[[Outcome], None] | None = None,
    max_workers: int | None = None,
) -> list[Outcome]:
    """Apply every action, ``max_workers`` resources at once (default: the run's AWS concurrency,
    ``AwsOptions.max_workers``); the plan is journalled first. Raises ``Interrupted`` after Ctrl-C."""

    def start() -> None:
        journal.plan([planned(a) for a in plan.actions])

    def step(index: int, action: Action) -> Outcome:
        return _apply_one(index, action, sessions, journal)

    todo = list(enumerate(plan.actions))
    return _run(todo, start, step, on_outcome, max_workers or sessions.factory.options.max_workers)


# --- resuming -------------------------------------------------------------------------------------------------


@dataclass
class ResumeState:
    """Where an interrupted apply stopped, from its journal alone."""

    actions: list[Action]  # the journal's plan
    earlier: dict[int, Outcome] = field(default_factory=dict)  # ended in an earlier run, by plan index
    in_doubt: dict[int, Entry] = field(default_factory=dict)  # a before line without its result
    not_started: list[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return not self.in_doubt and not self.not_started

    @property
    def todo(self) -> list[int]:
        return sorted([*self.in_doubt, *self.not_started])


def resume_state(journal: JournalFile) -> ResumeState:
    """The plan the journal holds and how far it got. JournalError when it holds no plan (written before
    version 3, or by something other than an apply)."""
    if journal.plan is None:
        raise JournalError(
            f"{journal.path}: holds no plan to resume (a version {journal.version} journal; kmsguard writes its "
            "plan into the journal since version 3): run kmsguard fix --apply again to plan from the current state"
        )
    actions = [_action(journal, i, raw) for i, raw in enumerate(journal.plan)]
    state = ResumeState(actions)
    changes = {e.index: e for e in journal.entries if e.index is not None}
    for i, action in enumerate(actions):
        entry, ended = changes.get(i), journal.ended.get(i)
        if entry is not None and entry.status is not None:
            ok = entry.status == "applied"
            how = "applied" if ok else f"{entry.status}: {entry.error or 'no error recorded'}"
            state.earlier[i] = Outcome(action, "applied" if ok else "failed", f"{how} (by the earlier run)")
        elif ended is not None:
            status: Literal["skipped", "failed"] = "failed" if ended.status == "failed" else "skipped"
            state.earlier[i] = Outcome(action, status, f"{ended.message} (by the earlier run)")
        elif entry is not None:
            state.in_doubt[i] = entry
        else:
            state.not_started.append(i)
    return state


_TEXT_FIELDS = ("action", "account", "region", "resource_arn")
_OBJECT_FIELDS = ("before", "after", "impact", "detail")


def _action(journal: JournalFile, index: int, raw: dict[str, Any]) -> Action:
    """One action of the journal's plan, its fields checked: a resume hands them to AWS calls. A plan written
    before ``check_ids`` (one comma-joined ``check_id``) is read too: ``Action.from_dict``."""
    where = f"{journal.path}: action {index} of the plan"
    try:
        action = Action.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise JournalError(f"{where}: {e}") from None
    for name in _TEXT_FIELDS + _OBJECT_FIELDS:
        if not isinstance(getattr(action, name), str if name in _TEXT_FIELDS else dict):
            raise JournalError(f"{where}: {name} is not {'text' if name in _TEXT_FIELDS else 'an object'}")
    if action.action not in KINDS:
        raise JournalError(f"{where}: unknown action {action.action!r}")
    return action


def resume_plan(
    state: ResumeState,
    sessions: Sessions,
    journal: Journal,
    on_outcome: Callable[[Outcome], None] | None = None,
    max_workers: int | None = None,
) -> list[Outcome]:
    """Carry on with what the earlier run left (``state.todo``), appending to its journal: an action in doubt is
    re-read first (already applied: its result is recorded; still as planned: applied now; else skipped), one
    never started is applied as usual. Outcomes of ``state.todo`` in plan order; ``Interrupted`` after Ctrl-C."""

    def step(index: int, action: Action) -> Outcome:
        entry = state.in_doubt.get(index)
        if entry is None:
            return _apply_one(index, action, sessions, journal)
        return _settle(index, action, entry, sessions, journal)

    todo = [(i, state.actions[i]) for i in state.todo]
    return _run(todo, journal.resumed, step, on_outcome, max_workers or sessions.factory.options.max_workers)


# --- one action -----------------------------------------------------------------------------------------------


def _apply_one(index: int, action: Action, sessions: Sessions, journal: Journal) -> Outcome:
    kind = KINDS[action.action]
    a = action.to_dict()
    try:
        session = sessions.get(action.account)
        current = kind.read(a, action.detail, session)
    except AWS_CALL_ERRORS as e:
        return _ended(index, Outcome(action, "failed", f"could not read the current state: {error_text(e)}"), journal)
    if kind.done(current, a):
        return _ended(index, Outcome(action, "skipped", "already in the planned state; nothing to do"), journal)
    if not kind.as_planned(current, a):
        return _ended(index, Outcome(action, "skipped", CHANGED_SINCE_PLAN), journal)
    seq = journal.before(a, action.detail, current, index)
    return _change(action, seq, current, session, journal)


def _ended(index: int, outcome: Outcome, journal: Journal) -> Outcome:
    """An action that ends without a change: journalled too, so a resume knows it ended."""
    if outcome.status != "applied":
        journal.outcome(index, outcome.status, outcome.message)
    return outcome


def _change(action: Action, seq: int, prior: dict[str, Any], session: AccountSession, journal: Journal) -> Outcome:
    """Make the change whose before line ``seq`` is journalled, and journal its result."""
    try:
        KINDS[action.action].apply(action.to_dict(), action.detail, session)
    except AWS_CALL_ERRORS as e:
        journal.result(seq, _failed_status(action, prior, session), error_text(e))
        return Outcome(action, "failed", error_text(e))
    journal.result(seq, "applied")
    return Outcome(action, "applied", "applied")


def _settle(index: int, action: Action, entry: Entry, sessions: Sessions, journal: Journal) -> Outcome:
    """An action in doubt: the earlier run journalled its prior state and stopped before recording the result.
    Re-read now and decide from what AWS says, never from a guess: the change may or may not have landed."""
    kind = KINDS[action.action]
    a = action.to_dict()
    try:
        session = sessions.get(action.account)
        current = kind.read(a, action.detail, session)
    except AWS_CALL_ERRORS as e:  # still in doubt: the next resume re-reads it again
        return Outcome(action, "failed", f"in doubt and could not be re-read: {error_text(e)}; resume again")
    if kind.done(current, a):
        journal.result(entry.seq, "applied")
        return Outcome(action, "applied", "completed before the interruption (re-read: in the planned state)")
    if kind.as_planned(current, a):
        # The call never reached AWS: made now, recorded against the earlier before line (its prior still holds).
        return _change(action, entry.seq, entry.prior, session, journal)
    if action.action in MULTI_CALL and not same_state(action.action, entry.prior, current):
        # The run stopped between the calls of one action (CancelKeyDeletion made, EnableKey not): the resource
        # did change, so it is recorded as partial, the same rule as a failed call (rollback restores it).
        journal.result(entry.seq, "partial", "the run stopped between this action's calls")
        return Outcome(action, "failed", "partly applied before the interruption; run kmsguard fix again")
    message = "changed since the interrupted run (neither as planned nor in the planned state); not overwritten"
    return _ended(index, Outcome(action, "skipped", message), journal)


def _failed_status(action: Action, prior: dict[str, Any], session: AccountSession) -> str:
    """``partial`` when an action of several calls failed after changing the resource (CancelKeyDeletion went
    through, EnableKey did not), else ``failed``. Decided now, from a fresh read, and journalled: rollback
    restores only what the journal says changed, never guessing from a later state someone else may have made.
    A single call that failed changed nothing."""
    if action.action not in MULTI_CALL:
        return "failed"
    try:
        now = KINDS[action.action].read(action.to_dict(), action.detail, session)
    except AWS_CALL_ERRORS:
        return "partial"  # unknown: say it may have changed, so rollback looks at it
    return "failed" if same_state(action.action, prior, now) else "partial"


# --- the pool -------------------------------------------------------------------------------------------------

Step = Callable[[int, Action], Outcome]
_GROUP_DONE = object()


def groups(todo: list[tuple[int, Action]]) -> list[list[tuple[int, Action]]]:
    """The actions per resource, each group in plan order, the groups interleaved round-robin over (account,
    Region): a pool working down a plan sorted by Region would otherwise wait on one Region's quota at a time."""
    by_resource: dict[str, list[tuple[int, Action]]] = {}
    for index, action in todo:
        by_resource.setdefault(action.resource_arn, []).append((index, action))
    by_place: dict[tuple[str, str], list[list[tuple[int, Action]]]] = {}
    for group in by_resource.values():
        first = group[0][1]
        by_place.setdefault((first.account, first.region), []).append(group)
    rounds = zip_longest(*by_place.values())
    return [group for round_ in rounds for group in round_ if group is not None]


def _run(
    todo: list[tuple[int, Action]],
    start: Callable[[], None],
    step: Step,
    on_outcome: Callable[[Outcome], None] | None,
    workers: int,
) -> list[Outcome]:
    """``start()`` (the journal line that opens the run), then ``step`` over ``todo`` group by group on a bounded
    pool; ``on_outcome`` is called in this thread (the caller's) as each action ends. Ctrl-C stops new actions
    and waits for those in flight; from the start, so that it never cuts a journal line short."""
    work = groups(todo)
    ended: queue.SimpleQueue[tuple[int, Outcome] | BaseException | object] = queue.SimpleQueue()
    interrupt = threading.Event()  # Ctrl-C
    failures: list[BaseException] = []

    def run_group(group: list[tuple[int, Action]]) -> None:
        try:
            for index, action in group:
                if interrupt.is_set() or failures:
                    return
                ended.put((index, step(index, action)))
        except BaseException as e:  # a bug, not an AWS failure (those are outcomes): stop the apply
            ended.put(e)
        finally:
            ended.put(_GROUP_DONE)

    results: dict[int, Outcome] = {}
    with _sigint_sets(interrupt), ThreadPoolExecutor(max(1, min(workers, len(work))), "kmsguard-fix") as pool:
        start()
        for group in work:
            pool.submit(run_group, group)
        running = len(work)
        while running:
            try:
                # With a timeout, so that this thread runs Python often: a signal handler runs in the main thread
                # only, and a SIGINT the OS hands to another thread would otherwise wait for the next outcome.
                item = ended.get(timeout=0.1)
                if item is _GROUP_DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    failures.append(item)
                elif isinstance(item, tuple):
                    index, outcome = item
                    results[index] = outcome  # stored first: a KeyboardInterrupt from on_outcome keeps it
                    if on_outcome is not None:
                        on_outcome(outcome)
            except queue.Empty:
                pass
            except KeyboardInterrupt:
                interrupt.set()
            except Exception as e:  # on_outcome failed
                failures.append(e)
            # After Ctrl-C or a failure the workers start nothing more; the actions in flight end and are journalled.
    if failures:
        raise failures[0]
    done = [results[i] for i, _ in todo if i in results]
    if interrupt.is_set():  # even with nothing left: the user asked to stop, so no verification follows
        raise Interrupted(done, [a for i, a in todo if i not in results])
    return done


@contextmanager
def _sigint_sets(interrupt: threading.Event) -> Iterator[None]:
    """While the pool runs, SIGINT (Ctrl-C) sets ``interrupt`` instead of raising KeyboardInterrupt wherever the main
    thread happens to be (it could drop an outcome between two lines). Only the main thread can set a handler;
    elsewhere (a library caller's thread) KeyboardInterrupt keeps its usual meaning."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        interrupt.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
