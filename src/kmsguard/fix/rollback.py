"""``kmsguard fix --rollback JOURNAL``: put back the prior state of every change a fix run made.

Entries are undone newest first. Each is re-read before it is restored: a resource already back in its prior
state is left alone, and one that someone changed after kmsguard did (it is neither kmsguard's result nor the
prior state) is skipped with a message unless ``force``, for the same reason apply skips concurrent changes.
After restoring, the state is read again and compared with the journal: a key policy must be the exact text
GetKeyPolicy returned before the fix.
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
        result = _one(entry, sessions, force) if entry.status != "failed" else None
        if result is None:  # the change itself failed: AWS kept the prior state
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
        if not kind.done(current, a) and not force:
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
