"""``kmsguard fix --rollback JOURNAL``: put back the prior state of every change a fix run made.

Entries are undone newest first. Each is re-read before it is restored: a resource already back in its prior
state is left alone, and one that someone changed after kmsguard did (it is neither kmsguard's result nor the
prior state) is skipped with a message unless ``force``, for the same reason apply skips concurrent changes.
After restoring, the state is read again and compared with the journal: a key policy must be the exact text
GetKeyPolicy returned before the fix.

A change whose result is ``failed`` normally left AWS in its prior state and is passed over; but an action of
several calls (cancel_key_deletion: CancelKeyDeletion, then EnableKey) can fail half-way, so such an entry is
restored too when the resource is no longer in its prior state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kmsguard.aws.errors import AWS_CALL_ERRORS
from kmsguard.fix.actions import KINDS
from kmsguard.fix.apply import Sessions, error_text
from kmsguard.fix.journal import Entry


@dataclass
class Restored:
    entry: Entry
    status: Literal["restored", "unchanged", "skipped", "failed"]
    message: str

    def to_dict(self) -> dict[str, Any]:
        a = self.entry.action
        return {
            "action": a["action"],
            "account": a["account"],
            "region": a["region"],
            "resource_arn": a["resource_arn"],
            "status": self.status,
            "message": self.message,
        }


# Action kinds made of several AWS calls: when one fails after another succeeded, the change is partial.
MULTI_CALL = frozenset({"cancel_key_deletion"})


def _same(kind: str, prior: dict[str, Any], current: dict[str, Any]) -> bool:
    if kind == "cancel_key_deletion":  # KMS cannot be given a deletion date back, only a waiting period
        return bool(prior["key_state"] == current["key_state"])
    return prior == current


def rollback(
    entries: list[Entry],
    sessions: Sessions,
    *,
    force: bool = False,
    on_result: Callable[[Restored], None] | None = None,
) -> list[Restored]:
    out: list[Restored] = []
    for entry in reversed(entries):
        result = _one(entry, sessions, force)
        if entry.status == "failed" and result.status == "unchanged":  # the change failed: AWS kept the prior state
            continue
        out.append(result)
        if on_result is not None:
            on_result(result)
    return out


def _one(entry: Entry, sessions: Sessions, force: bool) -> Restored:
    a, kind_name = entry.action, entry.action["action"]
    kind = KINDS.get(kind_name)
    if kind is None:
        return Restored(entry, "failed", f"unknown action {kind_name!r} in the journal")
    try:
        session = sessions.get(a["account"])
        current = kind.read(a, entry.detail, session)
        if _same(kind_name, entry.prior, current):
            return Restored(entry, "unchanged", "already in its prior state")
        if entry.status == "failed":
            # A failed change may still have partly happened: an action of several calls (CancelKeyDeletion,
            # then EnableKey) leaves the first one's effect behind. A single-call action that failed changed
            # nothing, so a difference is someone else's change.
            if kind_name not in MULTI_CALL and not force:
                return Restored(
                    entry,
                    "skipped",
                    "the change failed, yet the resource differs from its prior state (changed by someone else?); "
                    "not overwritten (--force to restore anyway)",
                )
        elif not kind.done(current, a) and not force:
            return Restored(
                entry, "skipped", "changed again after kmsguard applied it; not overwritten (--force to restore anyway)"
            )
        kind.restore(entry.prior, a, entry.detail, session)
        after = kind.read(a, entry.detail, session)
    except AWS_CALL_ERRORS as e:
        return Restored(entry, "failed", error_text(e))
    if not _same(kind_name, entry.prior, after):
        return Restored(entry, "failed", "restored, but reading it back does not give the journal's prior state")
    return Restored(entry, "restored", "restored to the journal's prior state")
