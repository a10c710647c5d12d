"""Drift between two consecutive scans: findings that appeared or resolved, and what changed on each key.

Key changes compared: the policy (by hash; when it changed, the policy engine's ``diff_policies`` says which
access was gained and lost, and whether every administrator is locked out), rotation switched off, the key
disabled or scheduled for deletion, a key created, a key gone.

Effective access (``access_drift``): for every customer managed key in both scans, who can now or can no
longer decrypt it or call kms:PutKeyPolicy, kms:ScheduleKeyDeletion or kms:CreateGrant on it, through the key
policy, IAM, grants or role chains ("arn:...:role/X can now decrypt alias/k (arn) via key_policy+iam (...)").
When it cannot be judged (a scan without the IAM inventory or without its snapshot), a changed key policy's item
says so instead of "no access gained" and is alerted.

A changed policy the engine could not diff (it failed on the policy, or more than ``MAX_POLICY_DIFFS`` changed in
one cycle) says "could not judge" with the reason, at high severity, and is alerted.

``alert`` marks the drift that is dangerous enough to alert on by itself: a policy change that gains access,
locks administrators out or could not be judged, a principal gaining access or losing its conditions, nobody
left able to change the key policy, effective access that could not be judged where it may have changed,
rotation disabled, deletion scheduled, a key disabled, a key gone. New failing findings are alerted through the
de-duplicating alert state (see ``monitor.alerts``), not from here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from kmsguard.model.finding import Severity, Status
from kmsguard.store.access_drift import AccessDrift, access_drift
from kmsguard.store.schema import FindingRow, KeyRow

log = logging.getLogger(__name__)
# Each policy diff is a solver run; past this many changed policies in one cycle, report the change without it.
MAX_POLICY_DIFFS = 50


@dataclass
class DriftItem:
    kind: str  # new_finding, resolved_finding, key_policy_changed, rotation_disabled, key_scheduled_for_deletion,
    #            key_disabled, key_created, key_gone; effective access (access_drift.py): access_gained,
    #            access_unconditional, access_lost, access_conditional, access_lockout, access_not_judged, access_more
    severity: str
    account: str
    region: str
    resource_arn: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    alert: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failing(s: Session, scan_id: int, key_arn: str | None) -> dict[str, Any]:
    q = select(
        FindingRow.fingerprint,
        FindingRow.check_id,
        FindingRow.severity,
        FindingRow.account,
        FindingRow.region,
        FindingRow.resource_arn,
        FindingRow.message,
    ).where(FindingRow.scan_id == scan_id, FindingRow.status == Status.FAIL.value)
    if key_arn is not None:
        q = q.where(FindingRow.key_arn == key_arn)
    return {r.fingerprint: r for r in s.execute(q)}


def _keys(s: Session, scan_id: int, key_arn: str | None) -> dict[str, Any]:
    q = select(
        KeyRow.arn,
        KeyRow.account,
        KeyRow.region,
        KeyRow.alias,
        KeyRow.key_state,
        KeyRow.rotation_enabled,
        KeyRow.policy_hash,
        KeyRow.key_manager,
    ).where(KeyRow.scan_id == scan_id)
    if key_arn is not None:
        q = q.where(KeyRow.arn == key_arn)
    return {r.arn: r for r in s.execute(q)}


def _policy(s: Session, scan_id: int, arn: str) -> str | None:
    data = s.scalar(select(KeyRow.data).where(KeyRow.scan_id == scan_id, KeyRow.arn == arn))
    if data is None:
        return None
    policy: str | None = json.loads(data).get("policy")
    return policy


def compute_drift(s: Session, prev_id: int, new_id: int, key_arn: str | None = None) -> list[DriftItem]:
    """What changed from scan ``prev_id`` to ``new_id`` (only ``key_arn``'s part when given)."""
    items: list[DriftItem] = []
    before, after = _failing(s, prev_id, key_arn), _failing(s, new_id, key_arn)
    for fp in sorted(after.keys() - before.keys()):
        f = after[fp]
        items.append(
            DriftItem(
                "new_finding",
                f.severity,
                f.account,
                f.region,
                f.resource_arn,
                f"{f.check_id}: {f.message}",
                {"check_id": f.check_id, "fingerprint": fp},
            )
        )
    for fp in sorted(before.keys() - after.keys()):
        f = before[fp]
        items.append(
            DriftItem(
                "resolved_finding",
                f.severity,
                f.account,
                f.region,
                f.resource_arn,
                f"resolved {f.check_id}: {f.message}",
                {"check_id": f.check_id, "fingerprint": fp},
            )
        )
    items.extend(_key_drift(s, prev_id, new_id, key_arn))
    return items


def _name(k: Any) -> str:
    return f"{k.alias} ({k.arn})" if k.alias else str(k.arn)


def _key_drift(s: Session, prev_id: int, new_id: int, key_arn: str | None) -> list[DriftItem]:
    items: list[DriftItem] = []
    old_keys, new_keys = _keys(s, prev_id, key_arn), _keys(s, new_id, key_arn)
    diffs = 0
    for arn in sorted(new_keys.keys() - old_keys.keys()):
        k = new_keys[arn]
        items.append(DriftItem("key_created", "info", k.account, k.region, arn, f"new key {_name(k)}"))
    for arn in sorted(old_keys.keys() - new_keys.keys()):
        k = old_keys[arn]
        items.append(
            DriftItem(
                "key_gone",
                "medium",
                k.account,
                k.region,
                arn,
                f"key {_name(k)} is gone",
                alert=k.key_manager == "CUSTOMER",
            )
        )
    common = sorted(old_keys.keys() & new_keys.keys())
    changed = {
        arn
        for arn in common
        if old_keys[arn].policy_hash != new_keys[arn].policy_hash
        and new_keys[arn].policy_hash is not None
        and old_keys[arn].policy_hash is not None
    }
    access = _access(s, prev_id, new_id, key_arn, {arn: _name(new_keys[arn]) for arn in common}, changed)
    for arn in common:
        o, n = old_keys[arn], new_keys[arn]
        where = (n.account, n.region, arn)
        if arn in changed:
            detail: dict[str, Any] = {}
            change: Severity | None = None
            if diffs < MAX_POLICY_DIFFS:
                diffs += 1
                detail, change = _policy_diff(s, prev_id, new_id, arn, n.account)
                not_diffed = detail.get("error")
            else:
                not_diffed = f"more than {MAX_POLICY_DIFFS} policies changed in this cycle; the access diff was skipped"
                detail = {"note": not_diffed}
            unjudged = access.not_judged.get(arn)
            sev, what = _policy_verdict(not_diffed, change, unjudged)
            if unjudged is not None:
                detail = {**detail, "effective_access": {"judged": False, "reason": unjudged}}
            items.append(
                DriftItem(
                    "key_policy_changed",
                    sev,
                    *where,
                    f"key policy of {_name(n)} changed: {what}",
                    detail,
                    alert=change is not None or not_diffed is not None or unjudged is not None,
                )
            )
        if o.rotation_enabled is True and n.rotation_enabled is False:
            items.append(
                DriftItem(
                    "rotation_disabled",
                    _event_severity("rotation_disabled"),
                    *where,
                    f"automatic rotation disabled on {_name(n)}",
                    alert=True,
                )
            )
        entered = _STATE_ITEMS.get(n.key_state or "") if o.key_state != n.key_state else None
        if entered is not None:
            kind, words = entered
            items.append(
                DriftItem(
                    kind, _event_severity(kind), *where, f"key {_name(n)} {words}", {"was": o.key_state}, alert=True
                )
            )
    items += [
        DriftItem(i.kind, i.severity, i.account, i.region, i.resource_arn, i.summary, i.detail, alert=i.alert)
        for i in access.items
    ]
    return items


# Drift between scans sees the same events the trail family judges from CloudTrail: their severity is that check's
# default severity in the registry, so a key disabled is graded the same whichever way it was seen (drift does not
# apply kmsguard.yaml's severity_overrides, which re-rate findings, not drift items).
_SAME_EVENT = {
    "rotation_disabled": "trail_rotation_disabled",
    "key_scheduled_for_deletion": "trail_key_deletion_scheduled",
    "key_disabled": "trail_key_disabled",
}


# A key that entered one of these states: the drift item's kind and how its summary says it.
_STATE_ITEMS = {
    "PendingDeletion": ("key_scheduled_for_deletion", "scheduled for deletion"),
    "Disabled": ("key_disabled", "disabled"),
}


def _event_severity(kind: str) -> str:
    from kmsguard.checks.registry import load_builtin_checks

    return load_builtin_checks()[_SAME_EVENT[kind]].severity.value


def _policy_verdict(not_diffed: str | None, change: Severity | None, unjudged: str | None) -> tuple[str, str]:
    """(severity, words) for a changed key policy; ``change`` is the diff's own severity (``PolicyDiff.severity``, the
    scale the trail's PutKeyPolicy finding uses too). A diff that could not be made says "could not judge" and why,
    high enough to alert on: never "no access gained", which nobody knows then."""
    if not_diffed is not None:
        sev, what = "high", f"could not judge what access it gives: {not_diffed}"
    elif change is Severity.CRITICAL:
        sev, what = change.value, "locks every administrator out"
    elif change is not None:
        sev, what = change.value, "gains access" + (" from outside the account" if change is Severity.HIGH else "")
    elif unjudged is not None:
        # The key policy alone cannot say nobody gained access: IAM, grants and role chains are not in it.
        sev, what = "medium", "no access gained in the key policy"
    else:
        sev, what = "low", "no access gained"
    if unjudged is not None:
        what += f"; who can decrypt it through IAM, grants or role chains could not be judged: {unjudged}"
    return sev, what


def _access(
    s: Session, prev_id: int, new_id: int, key_arn: str | None, names: dict[str, str], changed: set[str]
) -> AccessDrift:
    """Effective-access drift; a failure of the comparison as a whole is logged and reported on the keys whose
    policy changed (their items then say it could not be judged), never stops the cycle."""
    try:
        return access_drift(s, prev_id, new_id, key_arn, names, changed)
    except SQLAlchemyError:
        raise  # the database: the monitor retries the whole transaction
    except Exception as e:
        log.warning("effective-access drift failed: %s", e)
        return AccessDrift(not_judged={arn: f"the comparison failed: {e}" for arn in changed})


def _policy_diff(
    s: Session, prev_id: int, new_id: int, arn: str, account: str
) -> tuple[dict[str, Any], Severity | None]:
    """The diff's detail and its severity (``PolicyDiff.severity``: None when it neither gains access nor locks the
    administrators out)."""
    from kmsguard.policy.diff import diff_policies

    old, new = _policy(s, prev_id, arn), _policy(s, new_id, arn)
    if old is None or new is None:
        return {}, None
    try:
        d = diff_policies(old, new, account, key_arn=arn)
    except Exception as e:  # the engine could not judge: the change is reported as such, and the cycle goes on
        log.warning("policy diff failed for %s: %s", arn, e)
        return {"error": f"the policy engine failed ({e})"}, None
    return d.to_dict(), d.severity(account)
