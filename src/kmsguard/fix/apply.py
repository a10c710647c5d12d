"""Carry out a Plan: per action re-read, compare with the plan, journal the prior state, change, record.

One failed action never stops the others; each ends as one ``Outcome`` (applied, skipped with the reason, or
failed with the AWS error). A key whose policy changed between plan and apply is skipped, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.session import AccountSession, SessionFactory
from kmsguard.fix.actions import KINDS
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
        journal.result(seq, "failed", error_text(e))
        return Outcome(action, "failed", error_text(e))
    journal.result(seq, "applied")
    return Outcome(action, "applied", "applied")
