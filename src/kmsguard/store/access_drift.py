"""Effective-access drift between two stored scans: who can now (or can no longer) decrypt or administer a key.

The key-policy diff in ``drift.py`` sees only the key policy. Most real access comes through IAM (a key policy
that delegates to the account), grants and role chains, so for each customer managed key present in both scans
the engine (``policy.access``) answers, for each scan, who can call ``policy.actions.ACCESS_PROBES`` on it, and
the answers are compared principal by principal:

- ``access_gained``: a principal can now call an action it could not ("X can now decrypt K via
  key_policy+iam (...)"); high when the principal is outside the key's account, critical for ``*``.
- ``access_unconditional``: it could only under request conditions and now can under any (a widening).
- ``access_lost`` / ``access_conditional``: the reverse (narrowing; recorded, not alerted).
- ``access_lockout``: some principal could change the key policy and now none can.
- ``access_not_judged``: effective access could not be compared (a scan without a snapshot, an account whose
  IAM inventory was not read, a snapshot from before the inventory existed). It is alerted when a key's grants
  or tags changed meanwhile, or when one scan could be judged and the other not; a key whose policy changed
  says so on its ``key_policy_changed`` item instead (see ``drift.py``).

Each scan is judged on the snapshot of its full scan (key-event scans keep none: the latest full scan at or
before it, as the dashboard does) with the keys as that scan stored them. When the IAM inventory and the
Organization are the same in both snapshots, only keys whose policy, grants or tags changed can differ and only
they are evaluated; answers are memoised per (estate, key) so the scan that is "new" in one cycle is not
evaluated again as "previous" in the next.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kmsguard.arn import partition_in
from kmsguard.model.finding import region_arn
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.policy.access import AccessEvaluator, KeyAccess, PrincipalAccess
from kmsguard.policy.actions import ACCESS_PROBES, DECRYPT, PUT_KEY_POLICY
from kmsguard.policy.estate import build_estate
from kmsguard.policy.principals import account_of
from kmsguard.store.schema import KeyRow, ScanRow, SnapshotRow

log = logging.getLogger(__name__)

# Past this many effective-access items in one cycle, the rest are summed up in one item (worst first are kept).
MAX_ITEMS = 200
_SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
_KINDS = {
    "gained": "access_gained",
    "unconditional": "access_unconditional",
    "lost": "access_lost",
    "conditional": "access_conditional",
}


# --- what one scan can say ---------------------------------------------------------------------------------


@dataclass
class ScanView:
    """A stored scan as effective access sees it: the evaluator over its snapshot's estate, which accounts'
    keys cannot be judged (and why), and its keys as stored."""

    scan_id: int
    evaluator: AccessEvaluator | None
    estate_fp: str | None
    reason: str | None  # the whole scan cannot be judged
    not_judged: dict[str, str] = field(default_factory=dict)  # account -> why its keys cannot be judged
    partitions: dict[str, str] = field(default_factory=dict)  # account -> partition

    def why_not(self, account: str) -> str | None:
        return self.reason or self.not_judged.get(account)


def base_scan_id(s: Session, scan_id: int) -> int | None:
    """The full scan whose snapshot serves ``scan_id``: itself, or for a key-event scan the latest full scan
    before it (key-event scans derive from the latest scan; only full scans store a snapshot)."""
    found = s.scalar(select(func.max(ScanRow.id)).where(ScanRow.kind == "full", ScanRow.id <= scan_id))
    return int(found) if found is not None else None


def _estate_fingerprint(snap: Snapshot) -> str:
    """Everything ``build_estate`` reads (IAM inventories, partitions, the Organization), in a canonical order,
    so that two collections of the same estate compare equal."""

    def sorted_by(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda r: str(r.get(key)))

    accounts = []
    for a in sorted(snap.accounts, key=lambda a: a.account_id):
        iam = a.iam.model_dump(mode="json") if a.iam is not None else None
        if iam is not None:
            for part in ("principals", "groups", "policies"):
                iam[part] = sorted_by(iam[part], "arn")
        accounts.append([a.account_id, a.partition, iam])
    org = snap.organization.model_dump(mode="json") if snap.organization is not None else None
    if org is not None:
        org["policies"] = sorted_by(org["policies"], "id")
        org["units"] = sorted_by(org["units"], "id")
    text = json.dumps([accounts, org], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def key_fingerprint(key: Key) -> str:
    """What ``who_can`` reads of a key: a change elsewhere (rotation, description) cannot change access."""
    parts = [
        key.arn,
        key.account,
        key.key_manager,
        key.policy,
        sorted(key.tags.items()),
        sorted((g.model_dump(mode="json") for g in key.grants), key=lambda g: str(g["grant_id"])),
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class _Memo:
    """Evaluators per estate and answers per (estate, key), for the last few estates: a monitor compares
    scan N-1 with N, then N with N+1, so each scan's answers are computed once."""

    def __init__(self, estates: int = 2, keys: int = 20_000) -> None:
        self.estates = estates
        self.keys = keys
        self.evaluators: OrderedDict[str, AccessEvaluator] = OrderedDict()
        self.answers: OrderedDict[tuple[str, str], KeyAccess] = OrderedDict()

    def evaluator(self, fp: str, snap: Snapshot) -> AccessEvaluator:
        ev = self.evaluators.get(fp)
        if ev is None:
            ev = self.evaluators[fp] = AccessEvaluator(build_estate(snap))
            while len(self.evaluators) > self.estates:
                gone, _ = self.evaluators.popitem(last=False)
                for k in [k for k in self.answers if k[0] == gone]:
                    del self.answers[k]
        self.evaluators.move_to_end(fp)
        return ev

    def who_can(self, view: ScanView, key: Key) -> KeyAccess:
        assert view.evaluator is not None and view.estate_fp is not None
        ident = (view.estate_fp, key_fingerprint(key))
        hit = self.answers.get(ident)
        if hit is None:
            hit = self.answers[ident] = view.evaluator.who_can(key, ACCESS_PROBES)
            while len(self.answers) > self.keys:
                self.answers.popitem(last=False)
        self.answers.move_to_end(ident)
        return hit


MEMO = _Memo()


def scan_view(s: Session, scan_id: int) -> ScanView:
    base = base_scan_id(s, scan_id)
    if base is None:
        return ScanView(scan_id, None, None, f"scan #{scan_id} has no full scan to take the IAM inventory from")
    data = s.scalar(select(SnapshotRow.data).where(SnapshotRow.scan_id == base))
    if data is None:
        return ScanView(scan_id, None, None, f"scan #{base} did not keep its snapshot")
    # Parsed once per stored snapshot: each key event of a monitor compares two scans served by the same one.
    digest = hashlib.sha256(bytes(data)).hexdigest()
    hit = _VIEWS.get(digest)
    if hit is None:
        hit = _VIEWS[digest] = _parse_view(scan_id, base, bytes(data))
        while len(_VIEWS) > 2:
            _VIEWS.popitem(last=False)
    _VIEWS.move_to_end(digest)
    return replace(hit, scan_id=scan_id)


_VIEWS: OrderedDict[str, ScanView] = OrderedDict()


def _parse_view(scan_id: int, base: int, data: bytes) -> ScanView:
    try:
        snap = Snapshot.model_validate_json(zlib.decompress(data))
    except (zlib.error, ValidationError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return ScanView(scan_id, None, None, f"the snapshot of scan #{base} could not be read ({first})")
    not_judged: dict[str, str] = {}
    for a in snap.accounts:
        # As the access checks do: a live scan without an account's IAM inventory cannot say who can decrypt.
        if a.iam is None and snap.source == "aws":
            why = "; ".join(sorted({f"{e.operation}: {e.code}" for e in a.errors if e.service == "iam"}))
            not_judged[a.account_id] = (
                f"scan #{base} has no IAM inventory of account {a.account_id} "
                f"({why or f'snapshot schema {snap.schema_version} from kmsguard {snap.kmsguard_version}'})"
            )
    fp = _estate_fingerprint(snap)
    return ScanView(
        scan_id,
        MEMO.evaluator(fp, snap),
        fp,
        None,
        not_judged,
        {a.account_id: a.partition for a in snap.accounts},
    )


def _stored_keys(s: Session, scan_id: int, arns: Iterable[str] | None) -> dict[str, Key]:
    q = select(KeyRow.arn, KeyRow.data).where(KeyRow.scan_id == scan_id)
    wanted = None if arns is None else set(arns)
    if wanted is not None and len(wanted) == 1:
        q = q.where(KeyRow.arn == next(iter(wanted)))
    out: dict[str, Key] = {}
    for arn, data in s.execute(q):
        if wanted is None or arn in wanted:
            out[arn] = Key.model_validate_json(data)
    return out


# --- comparing two answers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    principal: str
    kind: str  # gained, unconditional, lost, conditional
    action: str
    before: PrincipalAccess | None
    after: PrincipalAccess | None


def compare(old: KeyAccess, new: KeyAccess, actions: Iterable[str] = ACCESS_PROBES) -> list[Change]:
    """Principal by principal and action by action: what changed from ``old`` to ``new``."""
    out: list[Change] = []
    for action in actions:
        was, now = old.principals(action), new.principals(action)
        for p in sorted(was.keys() | now.keys()):
            b, a = was.get(p), now.get(p)
            if b is None and a is not None:
                out.append(Change(p, "gained", action, None, a))
            elif a is None and b is not None:
                out.append(Change(p, "lost", action, b, None))
            elif a is not None and b is not None and a.decision != b.decision:
                out.append(Change(p, "unconditional" if a.decision == "allowed" else "conditional", action, b, a))
    return out


def principal_account(principal: str) -> str | None:
    if principal.startswith("account:"):
        return principal.split(":", 1)[1]
    return account_of(principal) if principal.startswith("arn:") else None


def outside(principal: str, key_account: str) -> bool:
    """Is the principal outside the key's account (anyone, another organisation's principals, federated
    identities, another account's principals)? Services act for callers and are not counted outside."""
    if principal == "*" or principal.startswith(("org:", "federated:")):
        return True
    acct = principal_account(principal)
    return acct is not None and acct != key_account


def path_text(pa: PrincipalAccess, limit: int = 4) -> str:
    """``via key_policy+iam (key policy: Sid Root; iam: policy/Y)`` for the first path, and how many others."""
    if not pa.paths:
        return "via an unknown path"
    p = pa.paths[0]
    inner: list[str] = []
    if p.chain:
        inner.append("chain: " + " → ".join(c.split(":", 5)[-1] for c in p.chain))
    stmts = list(p.statements)
    inner += stmts[:limit] + ([f"{len(stmts) - limit} more"] if len(stmts) > limit else [])
    more = f"; {len(pa.paths) - 1} other path(s)" if len(pa.paths) > 1 else ""
    cond = " under conditions" if pa.decision == "conditional" else ""
    listed = " (" + "; ".join(inner) + ")" if inner else ""
    return f"via {p.via}{listed}{more}{cond}"


def _verbs(actions: list[str], key_name: str) -> str:
    rest = [a for a in actions if a != DECRYPT]
    if DECRYPT in actions and rest:
        return f"decrypt {key_name} and call {', '.join(rest)} on it"
    if DECRYPT in actions:
        return f"decrypt {key_name}"
    return f"call {', '.join(rest)} on {key_name}"


def _severity(kind: str, principal: str, key_account: str) -> str:
    if kind in ("lost", "conditional"):
        return "low"
    if principal == "*":
        return "critical"
    return "high" if outside(principal, key_account) else "medium"


def _summary(kind: str, principal: str, actions: list[str], key_name: str, via: str) -> str:
    verbs = _verbs(actions, key_name)
    if kind == "gained":
        return f"{principal} can now {verbs} {via}"
    if kind == "unconditional":
        return f"{principal} can now {verbs} under any request conditions (before: only under conditions) {via}"
    if kind == "lost":
        return f"{principal} can no longer {verbs} (before: {via})"
    return f"{principal} can now {verbs} only under conditions {via}"


@dataclass
class KeyItem:
    """A drift item in the making (``drift.DriftItem`` fields), kept free of the drift module's import."""

    kind: str
    severity: str
    account: str
    region: str
    resource_arn: str
    summary: str
    detail: dict[str, Any]
    alert: bool


def _shown(c: Change) -> PrincipalAccess | None:
    """The answer whose path explains the change: the new one, or for a loss the old one."""
    return c.before if c.kind == "lost" else c.after


def _through(c: Change, index: set[tuple[str, str, str]]) -> str | None:
    """The role whose own change ``c`` follows from: ``c``'s principal reaches the action only by assuming
    roles, and a role of that chain changed the same way (one item for the role, not one per assumer)."""
    pa = _shown(c)
    if pa is None or not pa.paths or any(p.via != "assume_role" for p in pa.paths):
        return None
    return next((r for r in pa.paths[0].chain if (r, c.kind, c.action) in index), None)


def key_items(key: Key, key_name: str, changes: list[Change]) -> list[KeyItem]:
    """One item per (principal, kind of change) on one key, naming the actions and the path. A principal whose
    change only follows from a role it assumes is named on that role's item."""
    index = {(c.principal, c.kind, c.action) for c in changes}
    grouped: dict[tuple[str, str], list[Change]] = {}
    assumers: dict[tuple[str, str], set[str]] = {}
    for c in changes:
        role = _through(c, index)
        if role is not None:
            assumers.setdefault((role, c.kind), set()).add(c.principal)
        else:
            grouped.setdefault((c.principal, c.kind), []).append(c)
    out: list[KeyItem] = []
    for (principal, kind), cs in sorted(grouped.items()):
        actions = [c.action for c in cs]
        # The path that matters: decryption's when it changed, else the first action's.
        shown = _shown(cs[0])
        via = path_text(shown) if shown is not None else ""
        also = sorted(assumers.get((principal, kind), ()))
        if also:
            names = ", ".join(also[:3]) + (" …" if len(also) > 3 else "")
            via += f"; the same for {len(also)} principal(s) that can assume it ({names})"
        sev = _severity(kind, principal, key.account)
        detail: dict[str, Any] = {
            "principal": principal,
            "change": kind,
            "actions": actions,
            "decisions": {
                c.action: {
                    "before": c.before.decision if c.before else None,
                    "after": c.after.decision if c.after else None,
                }
                for c in cs
            },
            "paths": [p.to_dict() for p in shown.paths[:3]] if shown is not None else [],
            "outside_account": outside(principal, key.account),
        }
        if also:
            detail["assumed_by"] = also
        if shown is not None and shown.notes:
            detail["notes"] = list(shown.notes)
        out.append(
            KeyItem(
                _KINDS[kind],
                sev,
                key.account,
                key.region,
                key.arn,
                _summary(kind, principal, actions, key_name, via),
                detail,
                alert=kind in ("gained", "unconditional"),
            )
        )
    return out


def lockout_item(key: Key, key_name: str, old: KeyAccess, new: KeyAccess) -> KeyItem | None:
    """Some principal (not a service) could change the key policy before, and none can now."""

    def admins(a: KeyAccess) -> list[str]:
        return sorted(p for p in a.principals(PUT_KEY_POLICY) if not p.startswith("service:"))

    before, after = admins(old), admins(new)
    if not before or after:
        return None
    return KeyItem(
        "access_lockout",
        "critical",
        key.account,
        key.region,
        key.arn,
        f"no principal can change the key policy of {key_name} any more (before: {', '.join(before[:3])}"
        f"{' …' if len(before) > 3 else ''})",
        {"before": before},
        alert=True,
    )


# --- the whole comparison ----------------------------------------------------------------------------------


@dataclass
class AccessDrift:
    items: list[KeyItem] = field(default_factory=list)
    # Keys in both scans whose effective access could not be compared, and why.
    not_judged: dict[str, str] = field(default_factory=dict)


def _eligible(k: Key) -> bool:
    return k.is_customer_managed and k.key_state != "PendingDeletion"


def access_drift(
    s: Session, prev_id: int, new_id: int, key_arn: str | None, names: dict[str, str], policy_changed: set[str]
) -> AccessDrift:
    """Effective-access drift of the keys in both scans (only ``key_arn`` when given). ``names``: how each key
    is written (alias and ARN); ``policy_changed``: keys whose policy hash changed (their ``key_policy_changed``
    item carries the not-judged notice, so no separate item is made for them)."""
    out = AccessDrift()
    old_view, new_view = scan_view(s, prev_id), scan_view(s, new_id)
    same_estate = old_view.estate_fp is not None and old_view.estate_fp == new_view.estate_fp
    wanted = [key_arn] if key_arn is not None else None
    old_keys, new_keys = _stored_keys(s, prev_id, wanted), _stored_keys(s, new_id, wanted)
    both = sorted(a for a in old_keys.keys() & new_keys.keys() if _eligible(old_keys[a]) and _eligible(new_keys[a]))
    unjudged_by_account: dict[str, list[str]] = {}
    for arn in both:
        o, n = old_keys[arn], new_keys[arn]
        key_changed = key_fingerprint(o) != key_fingerprint(n)
        why = old_view.why_not(n.account) or new_view.why_not(n.account)
        if why is not None:
            side = "previous" if old_view.why_not(n.account) else "new"
            out.not_judged[arn] = f"{why} (the {side} scan)"
            unjudged_by_account.setdefault(n.account, []).append(arn)
            if key_changed and arn not in policy_changed:
                what = f"the grants or tags of {names.get(arn, arn)} changed"
                out.items.append(_not_judged_key(n, what, out.not_judged[arn]))
            continue
        if same_estate and not key_changed:
            continue  # nothing access depends on changed
        name = names.get(arn, arn)
        try:
            before, after = MEMO.who_can(old_view, o), MEMO.who_can(new_view, n)
        except Exception as e:  # one key the engine cannot answer must not stop the cycle
            log.warning("effective access of %s could not be evaluated: %s", arn, e)
            out.not_judged[arn] = f"the engine failed: {e}"
            if arn not in policy_changed:
                out.items.append(_not_judged_key(n, f"the access of {name} may have changed", out.not_judged[arn]))
            continue
        out.items += key_items(n, name, compare(before, after))
        lock = lockout_item(n, name, before, after)
        if lock is not None:
            out.items.append(lock)
    out.items += _transitions(old_view, new_view, unjudged_by_account, new_keys)
    out.items = _capped(out.items)
    return out


def _not_judged_key(key: Key, what: str, why: str) -> KeyItem:
    return KeyItem(
        "access_not_judged",
        "medium",
        key.account,
        key.region,
        key.arn,
        f"{what} and who can decrypt it could not be judged: {why}",
        {"reason": why},
        alert=True,
    )


def _transitions(old: ScanView, new: ScanView, unjudged: dict[str, list[str]], keys: dict[str, Key]) -> list[KeyItem]:
    """One item per account whose keys could be judged in one scan and not in the other (an old scan stored
    before the IAM inventory existed, an IAM inventory that stopped being readable): access gained through IAM,
    grants or role chains in between would not show, so it is alerted once, at the transition."""
    out: list[KeyItem] = []
    for account, arns in sorted(unjudged.items()):
        was, now = old.why_not(account), new.why_not(account)
        if (was is None) == (now is None):
            continue  # both judged (not here), or neither: said when it started
        why = was or now or ""
        partition = new.partitions.get(account) or old.partitions.get(account) or "aws"
        region = keys[arns[0]].region if len(arns) == 1 else "global"
        out.append(
            KeyItem(
                "access_not_judged",
                "medium",
                account,
                region,
                arns[0] if len(arns) == 1 else region_arn(partition, account, "global"),
                f"who can decrypt the {len(arns)} key(s) of account {account} could not be compared with the "
                f"{'previous' if was else 'new'} scan: {why}; access gained through IAM, grants or role chains "
                "would not show",
                {"reason": why, "keys": arns[:50], "key_count": len(arns)},
                alert=True,
            )
        )
    return out


def _capped(items: list[KeyItem]) -> list[KeyItem]:
    if len(items) <= MAX_ITEMS:
        return items
    ranked = sorted(items, key=lambda i: (-_SEVERITY_RANK.get(i.severity, 0), not i.alert))
    kept, rest = ranked[: MAX_ITEMS - 1], ranked[MAX_ITEMS - 1 :]
    worst = max(rest, key=lambda i: _SEVERITY_RANK.get(i.severity, 0))
    by_kind: dict[str, int] = {}
    for i in rest:
        by_kind[i.kind] = by_kind.get(i.kind, 0) + 1
    first = rest[0]
    partition = partition_in(first.resource_arn)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
    kept.append(
        KeyItem(
            "access_more",
            worst.severity,
            first.account,
            "global",
            region_arn(partition, first.account, "global"),
            f"{len(rest)} more effective-access change(s) not listed ({counts}); "
            "see `kmsguard access who-can` or the dashboard",
            {"count": len(rest), "by_kind": by_kind, "keys": sorted({i.resource_arn for i in rest})[:100]},
            alert=any(i.alert for i in rest),
        )
    )
    return kept
