"""Carry out a Plan: per action re-read, compare with the plan, journal the prior state, change, record.

One failed action never stops the others; each ends as one ``Outcome`` (applied, skipped with the reason, or
failed with the AWS error) and, once journalled, one result line (``applied``, ``failed``, or ``partial`` for a
failed action of several calls that did change the resource). A key whose policy changed between plan and apply
is skipped, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.session import AccountSession, SessionFactory
from kmsguard.fix.actions import KINDS, MULTI_CALL, same_state
from kmsguard.fix.journal import Journal
from kmsguard.fix.plan import Action, Plan


class Sessions:
    """One AccountSession per account, made on first use through the one session factory."""

    def __init__(self, factory: SessionFactory, role_name: str) -> None:
        self.factory = factory
        self.role_name = role_name
        self._cache: dict[str, AccountSession] = {}

    def get(self, account: str) -> AccountSession:
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
            "check_id": a.check_id,
            "account": a.account,
            "region": a.region,
            "resource_arn": a.resource_arn,
            "status": self.status,
            "message": self.message,
        }


def error_text(e: Exception) -> str:
    code, message = error_code(e)
    return f"{code}: {message}"


def apply_plan(
    plan: Plan,
    sessions: Sessions,
    journal: Journal,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for action in plan.actions:
        outcome = _apply_one(action, sessions, journal)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def _apply_one(action: Action, sessions: Sessions, journal: Journal) -> Outcome:
    kind = KINDS[action.action]
    a = action.to_dict()
    try:
        session = sessions.get(action.account)
        current = kind.read(a, action.detail, session)
    except AWS_CALL_ERRORS as e:
        return Outcome(action, "failed", f"could not read the current state: {error_text(e)}")
    if kind.done(current, a):
        return Outcome(action, "skipped", "already in the planned state; nothing to do")
    if not kind.as_planned(current, a):
        return Outcome(
            action,
            "skipped",
            "changed since the plan was made (re-read differs from the plan's before); not overwritten - "
            "run kmsguard fix again to plan from the current state",
        )
    seq = journal.before(a, action.detail, current)
    try:
        kind.apply(a, action.detail, session)
    except AWS_CALL_ERRORS as e:
        journal.result(seq, _failed_status(action, current, session), error_text(e))
        return Outcome(action, "failed", error_text(e))
    journal.result(seq, "applied")
    return Outcome(action, "applied", "applied")


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
