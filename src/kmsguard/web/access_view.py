"""Effective access for the dashboard: who can decrypt and administer a key (the key page), and which keys a
principal can decrypt and administer (the principal page), answered by the policy engine
(``policy.estate`` + ``policy.access``) from the stored snapshot of the scan shown.

Only full scans keep a snapshot (``store.writer.insert_full_scan``); a key-event scan is judged against the
latest full scan at or before it, so its page evaluates the key as that scan stored it against the IAM
inventory and Organization of that full scan, and says so. When the snapshot was not kept, cannot be read,
or holds no IAM inventory (a version 1 snapshot), the page says effective access cannot be shown rather
than showing the key policy's answer as if it were complete; when only some accounts lack IAM, it lists
them as making the answer incomplete.

Building the Estate and evaluator costs a decompression, a parse and every policy document once, so they
are kept per full scan in a small LRU; answers per key (keyed by the key's stored JSON) in a bounded LRU
inside each. The engine's solver uses z3's global context, which is not thread-safe, and FastAPI runs the
dashboard's handlers in a thread pool: every engine call from the dashboard holds ``ENGINE_LOCK``.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.policy.access import AccessEvaluator, AccessPath, KeyAccess, PrincipalAccess
from kmsguard.policy.actions import ACCESS_PROBES, ADMIN_PROBES, DECRYPT
from kmsguard.policy.estate import build_estate
from kmsguard.policy.questions import condition_dict
from kmsguard.store.db import Store
from kmsguard.store.schema import KeyRow, ScanRow, SnapshotRow

# z3 (policy.solver) works in its global context: one engine question at a time from the dashboard.
ENGINE_LOCK = threading.RLock()

Problem = Literal["no_full_scan", "not_kept", "unreadable", "no_iam"]


# --- store reads ---------------------------------------------------------------------------------------


def base_scan_id(s: Session, scan: ScanRow) -> int | None:
    """The full scan whose snapshot serves ``scan``: itself, or for a key-event scan the latest full scan
    before it (key-event scans derive from the latest scan, and only full scans store a snapshot)."""
    if scan.kind == "full":
        return scan.id
    found = s.scalar(select(func.max(ScanRow.id)).where(ScanRow.kind == "full", ScanRow.id <= scan.id))
    return int(found) if found is not None else None


def stored_snapshot(s: Session, scan_id: int) -> bytes | None:
    """The zlib-compressed snapshot JSON of a full scan; None when the scan did not keep it."""
    data = s.scalar(select(SnapshotRow.data).where(SnapshotRow.scan_id == scan_id))
    return bytes(data) if data is not None else None


def scan_key_rows(s: Session, scan_id: int) -> list[tuple[str, str]]:
    """(ARN, stored Key JSON) of every key of a scan, by ARN."""
    rows = s.execute(select(KeyRow.arn, KeyRow.data).where(KeyRow.scan_id == scan_id).order_by(KeyRow.arn)).all()
    return [(str(a), str(d)) for a, d in rows]


def key_fingerprint(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


# --- what the engine can answer for a scan ---------------------------------------------------------------


@dataclass(frozen=True)
class Availability:
    base_scan_id: int | None  # the full scan whose snapshot is used
    collected_at: datetime | None  # when that snapshot was collected
    problem: Problem | None = None  # None: effective access can be shown
    message: str = ""  # the plain sentence the page shows when there is a problem
    # Accounts of the snapshot whose IAM inventory was not collected: their users and roles are missing.
    missing_iam: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class ScanAccess:
    """The evaluator of one full scan's snapshot and the answers already computed with it."""

    availability: Availability
    evaluator: AccessEvaluator | None = None
    key_capacity: int = 512
    _answers: OrderedDict[tuple[str, str], KeyAccess] = field(default_factory=OrderedDict)

    def who_can(self, key: Key, fingerprint: str) -> KeyAccess:
        """The page's actions on ``key`` (as stored, ``fingerprint`` = hash of its stored JSON)."""
        assert self.evaluator is not None
        ident = (key.arn, fingerprint)
        with ENGINE_LOCK:
            hit = self._answers.get(ident)
            if hit is not None:
                self._answers.move_to_end(ident)
                return hit
            answer = self.evaluator.who_can(key, ACCESS_PROBES)
            self._answers[ident] = answer
            while len(self._answers) > self.key_capacity:
                self._answers.popitem(last=False)
            return answer

    def kind_of(self, principal: str) -> str:
        """How the page describes a principal: user, role, root, or what an aggregate stands for."""
        subject = self.evaluator.estate.subjects.get(principal) if self.evaluator else None
        if subject is not None:
            return {"root": "account root user"}.get(subject.kind, subject.kind)
        return describe_aggregate(principal)


def describe_aggregate(principal: str) -> str:
    if principal == "*":
        return "any principal of an account in no organisation we know"
    prefix, _, rest = principal.partition(":")
    if prefix == "account":
        return f"principals of account {rest} (not scanned)"
    if prefix == "org":
        return f"principals of organisation {rest}'s other accounts"
    if prefix == "service":
        return "AWS service"
    if prefix == "federated":
        return "federated identities"
    if ":role/" in principal:
        return "role (account not scanned)"
    if ":user/" in principal:
        return "user (account not scanned)"
    return "principal outside the scanned IAM"


def _availability(base: int, collected_at: datetime | None, data: bytes | None) -> tuple[Availability, Snapshot | None]:
    if data is None:
        return (
            Availability(
                base,
                collected_at,
                "not_kept",
                f"Effective access is not shown: scan #{base} did not keep its snapshot, and the key policy "
                "alone does not say who can decrypt or administer this key (IAM policies, grants and role "
                "chains are not in it).",
            ),
            None,
        )
    try:
        snapshot = Snapshot.model_validate_json(zlib.decompress(data))
    except (zlib.error, ValidationError, ValueError) as e:
        first = str(e).splitlines()[0]
        return (
            Availability(
                base,
                collected_at,
                "unreadable",
                f"Effective access is not shown: the snapshot stored with scan #{base} could not be read ({first}).",
            ),
            None,
        )
    missing = tuple(a.account_id for a in snapshot.accounts if a.iam is None)
    if snapshot.accounts and len(missing) == len(snapshot.accounts):
        reasons = sorted(
            {f"{e.operation}: {e.code}" for a in snapshot.accounts for e in a.errors if e.service == "iam"}
        )
        why = f"reading it failed ({'; '.join(reasons)})" if reasons else "the snapshot predates the IAM inventory"
        return (
            Availability(
                base,
                snapshot.collected_at,
                "no_iam",
                f"Effective access is not shown: IAM users, roles and policies were not collected in scan #{base} "
                f"({why}; snapshot schema {snapshot.schema_version}, kmsguard {snapshot.kmsguard_version}). "
                "Run a new scan with this kmsguard to see who can decrypt and administer this key.",
                missing,
            ),
            snapshot,
        )
    return Availability(base, snapshot.collected_at, missing_iam=missing), snapshot


class AccessCache:
    """Per full scan, the Estate and evaluator built from its stored snapshot (an LRU of ``scans``)."""

    def __init__(self, store: Store, scans: int = 3, keys_per_scan: int = 512) -> None:
        self.store = store
        self.capacity = scans
        self.keys_per_scan = keys_per_scan
        self._scans: OrderedDict[int, ScanAccess] = OrderedDict()
        self._lock = threading.Lock()  # the LRU itself
        self._build = threading.Lock()  # one build at a time: two page views of a new scan build it once
        self.builds = 0  # how many evaluators were built (tests read it to see the cache work)

    def for_scan(self, s: Session, scan: ScanRow) -> ScanAccess:
        base = base_scan_id(s, scan)
        if base is None:
            return ScanAccess(
                Availability(
                    None,
                    None,
                    "no_full_scan",
                    f"Effective access is not shown: scan #{scan.id} derives from no full scan with a snapshot.",
                )
            )
        hit = self._get(base)
        if hit is not None:
            return hit
        with self._build:
            hit = self._get(base)
            if hit is not None:
                return hit
            base_row = s.get(ScanRow, base)
            availability, snapshot = _availability(
                base, base_row.started_at if base_row else None, stored_snapshot(s, base)
            )
            entry = ScanAccess(availability, key_capacity=self.keys_per_scan)
            if availability.ok and snapshot is not None:
                with ENGINE_LOCK:
                    entry.evaluator = AccessEvaluator(build_estate(snapshot))
                self.builds += 1
            with self._lock:
                self._scans[base] = entry
                while len(self._scans) > self.capacity:
                    self._scans.popitem(last=False)
            return entry

    def _get(self, base: int) -> ScanAccess | None:
        with self._lock:
            hit = self._scans.get(base)
            if hit is not None:
                self._scans.move_to_end(base)
            return hit


# --- what the pages show ---------------------------------------------------------------------------------


@dataclass
class PathView:
    via: str
    chain: list[str]
    statements: list[str]
    grants: list[str]
    all_of: list[str]  # request conditions the allowing statements need
    none_of: list[str]  # request conditions under which a Deny applies


@dataclass
class ActionView:
    action: str
    decision: str  # allowed | conditional
    paths: list[PathView]
    notes: list[str]


@dataclass
class PrincipalRow:
    principal: str
    kind: str
    actions: list[ActionView]  # one per action the principal holds (decrypt: one)


@dataclass
class KeyAccessView:
    availability: Availability
    decrypt: list[PrincipalRow] = field(default_factory=list)
    administer: list[PrincipalRow] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    error: str | None = None  # the engine failed on this key

    @property
    def shown(self) -> bool:
        return self.availability.ok and self.error is None

    @property
    def decrypt_conditional(self) -> int:
        return sum(1 for r in self.decrypt if r.actions and r.actions[0].decision == "conditional")


def condition_text(c: dict[str, object]) -> str:
    values = c.get("values") or []
    shown = " or ".join(str(v) for v in values) if isinstance(values, list) else str(values)
    return f"{c['operator']} {c['key']} = {shown}"


def path_view(p: AccessPath) -> PathView:
    return PathView(
        via=p.via,
        chain=list(p.chain),
        statements=list(p.statements),
        grants=list(p.grants),
        all_of=[condition_text(condition_dict(c)) for c in p.require],
        none_of=[condition_text(condition_dict(c)) for c in p.unless],
    )


def action_view(action: str, pa: PrincipalAccess) -> ActionView:
    return ActionView(action, pa.decision, [path_view(p) for p in pa.paths], list(pa.notes))


def _rows(entry: ScanAccess, answer: KeyAccess, actions: Iterable[str]) -> list[PrincipalRow]:
    by: dict[str, list[ActionView]] = {}
    for action in actions:
        for principal, pa in answer.principals(action).items():
            by.setdefault(principal, []).append(action_view(action, pa))
    return [PrincipalRow(p, entry.kind_of(p), views) for p, views in sorted(by.items())]


def key_access_view(cache: AccessCache, s: Session, scan: ScanRow, key: Key, fingerprint: str) -> KeyAccessView:
    entry = cache.for_scan(s, scan)
    view = KeyAccessView(entry.availability)
    if not entry.availability.ok:
        return view
    try:
        answer = entry.who_can(key, fingerprint)
    except Exception as e:  # an engine failure on one key is shown on its page, not a 500
        view.error = f"{type(e).__name__}: {e}"
        return view
    view.decrypt = _rows(entry, answer, (DECRYPT,))
    view.administer = _rows(entry, answer, ADMIN_PROBES)
    view.assumptions = list(answer.assumptions)
    return view


@dataclass
class KeyHolding:
    """One key a principal can use: its ARN and name, and what the principal may do with it."""

    arn: str
    name: str
    actions: list[ActionView]


@dataclass
class PrincipalView:
    principal: str
    kind: str
    availability: Availability
    known: bool = True  # a principal of the estate, or one some key's answer names
    decrypt: list[KeyHolding] = field(default_factory=list)
    administer: list[KeyHolding] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    keys_checked: int = 0
    errors: list[str] = field(default_factory=list)  # keys the engine failed on


def principal_view(cache: AccessCache, s: Session, scan: ScanRow, principal: str) -> PrincipalView:
    """Every key of ``scan`` ``principal`` can decrypt or administer, with decision and paths (the shape of
    ``kmsguard access principal``, over the keys of the scan shown)."""
    entry = cache.for_scan(s, scan)
    view = PrincipalView(principal, entry.kind_of(principal), entry.availability)
    if not entry.availability.ok or entry.evaluator is None:
        return view
    named = principal in entry.evaluator.estate.subjects
    assumptions: dict[str, None] = {}  # every key's, in order, once
    for arn, data in scan_key_rows(s, scan.id):
        key = Key.model_validate_json(data)
        view.keys_checked += 1
        try:
            answer = entry.who_can(key, key_fingerprint(data))
        except Exception as e:
            view.errors.append(f"{arn}: {type(e).__name__}: {e}")
            continue
        assumptions.update(dict.fromkeys(answer.assumptions))
        for target, actions in ((view.decrypt, (DECRYPT,)), (view.administer, ADMIN_PROBES)):
            held = [action_view(a, pa) for a in actions if (pa := answer.principals(a).get(principal)) is not None]
            if held:
                target.append(KeyHolding(arn, key.display_name, held))
    view.assumptions = list(assumptions)
    view.known = named or bool(view.decrypt or view.administer)
    return view
