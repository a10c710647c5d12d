"""What the key page shows about one key: metadata, its policy statement by statement with the risky ones
marked, who can decrypt and who can administer it — effective access from the scan's snapshot
(web/access_view.py), with the principals the key policy alone names only as a fallback when effective access
cannot be computed — and its CloudTrail usage from the latest stored usage summary (web/usage.py).

Read, don't re-judge: whether the key is public, which principals are outside the trusted accounts and which
statements grant them or every action are the scan's own findings for the key (``key_policy_public``,
``key_policy_external_access``, ``key_policy_wildcard_actions``) and their evidence, as stored. Those answers
depend on who the scan trusted (configured accounts and organisations, every scanned account and theirs:
``policy.trust``), which the store does not keep; re-analysing here trusted nobody but the key's own account and
flagged principals the scan had passed. The key policy analysis still runs for what the findings do not hold —
who the policy alone lets decrypt or administer, which asks nothing about trust, and which statement grants
which of the flagged principals — and never adds a principal the scan did not flag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kmsguard.fileio import loads_json
from kmsguard.model.snapshot import Key
from kmsguard.store.queries import StoredUsage
from kmsguard.store.schema import FindingRow, KeyRow
from kmsguard.web.access_view import ENGINE_LOCK, KeyAccessView
from kmsguard.web.usage import KeyUsageView, key_usage

PUBLIC = "key_policy_public"
EXTERNAL = "key_policy_external_access"
WILDCARD = "key_policy_wildcard_actions"
# A muted finding is still the scan's answer (accepted, not untrue): the key page shows it like a failing one.
FLAGGED = frozenset({"FAIL", "MUTED"})


@dataclass
class StatementView:
    index: int
    sid: str | None
    text: str
    risks: list[str] = field(default_factory=list)


@dataclass
class KeyView:
    key: Key
    statements: list[StatementView]
    # The principals the key policy alone names (policy.questions): not who can decrypt or administer; the
    # page shows them only when effective access cannot be computed, and says what they are.
    policy_decrypt: list[str]
    policy_administer: list[str]
    analysis_error: str | None
    public: bool  # the scan's key_policy_public finding
    external: list[str]  # the principals of the scan's key_policy_external_access finding
    usage: KeyUsageView | None  # None: no trail data
    access: KeyAccessView | None = None  # None: not asked for
    judged: bool = True  # False: the scan has no key-policy finding for this key (not judged, or skipped)


@dataclass
class _Judged:
    """The scan's key-policy findings for one key, as stored."""

    public: list[int] | None  # the statements letting anyone use the key; None: not public
    external: dict[str, Any] | None  # the external-access finding's evidence; None: nobody outside
    wildcard: list[int]
    judged: bool


def key_view(
    row: KeyRow,
    findings: Iterable[FindingRow] = (),
    stored_usage: StoredUsage | None = None,
    access: KeyAccessView | None = None,
) -> KeyView:
    """The key page of ``row`` from the scan's ``findings`` for the key (``store.queries.key_findings``)."""
    key = Key.model_validate_json(row.data)
    scan = _read(findings)
    statements: list[StatementView] = []
    decrypt: list[str] = []
    administer: list[str] = []
    error: str | None = None
    external = list(scan.external.get("principals", [])) if scan.external else []
    granting: dict[str, list[int]] = {}
    if key.policy:
        raw = _statements(key.policy)
        statements = [StatementView(i, st.get("Sid"), json.dumps(st, indent=2)) for i, st in enumerate(raw)]
        try:
            from kmsguard.policy.questions import analyze_key_policy_cached

            with ENGINE_LOCK:  # the analysis may ask z3, whose global context is not thread-safe
                a = analyze_key_policy_cached(key.policy, key.account, (), (), key.key_spec, key.key_usage)
        except Exception as e:  # a policy the engine cannot read is shown as is, with the reason
            error = f"{type(e).__name__}: {e}"
        else:
            # Trusting only the key's account, the analysis names every principal the scan could have flagged;
            # only those the scan did flag are kept.
            granting = {p: a.external_statements[p] for p in external if p in a.external_statements}
            decrypt = _who(a.who_can.get("kms:Decrypt", []))
            administer = sorted(set(a.admins) | set(_who(a.who_can.get("kms:PutKeyPolicy", []))))
        marks = _marks(scan, granting)
        for st in statements:
            st.risks = marks.get(st.index, [])
    usage = key_usage(stored_usage, key)
    public = scan.public is not None
    return KeyView(key, statements, decrypt, administer, error, public, external, usage, access, scan.judged)


def _read(findings: Iterable[FindingRow]) -> _Judged:
    by_check = {f.check_id: f for f in findings if f.check_id in (PUBLIC, EXTERNAL, WILDCARD)}

    def flagged(check_id: str) -> FindingRow | None:
        f = by_check.get(check_id)
        return f if f is not None and f.status in FLAGGED else None

    public, external, wildcard = flagged(PUBLIC), flagged(EXTERNAL), flagged(WILDCARD)
    return _Judged(
        public=_indexes(public) if public else None,
        external=dict(external.evidence or {}) if external else None,
        wildcard=_indexes(wildcard) if wildcard else [],
        judged=PUBLIC in by_check or EXTERNAL in by_check,
    )


def _marks(scan: _Judged, granting: dict[str, list[int]]) -> dict[int, list[str]]:
    marks: dict[int, list[str]] = {}
    for i in scan.public or []:
        marks.setdefault(i, []).append("lets anyone use the key")
    if scan.external is not None and scan.public is None:
        named: set[int] = set()
        for principal, idx in granting.items():
            for i in idx:
                marks.setdefault(i, []).append(f"grants {principal} (outside the trusted accounts)")
                named.add(i)
        # A statement of the finding's evidence the analysis did not tie to one principal is still marked.
        for i in _indexes_of(scan.external):
            if i not in named:
                marks.setdefault(i, []).append("grants access outside the trusted accounts")
    for i in scan.wildcard:
        marks.setdefault(i, []).append("wildcard actions")
    return marks


def _indexes(f: FindingRow) -> list[int]:
    return _indexes_of(f.evidence or {})


def _indexes_of(evidence: dict[str, Any]) -> list[int]:
    """The statement indexes of a key-policy finding's evidence (``checks.policies``: index, sid, statement)."""
    sts = evidence.get("statements", [])
    found = [s.get("index") for s in sts if isinstance(s, dict)] if isinstance(sts, list) else []
    return sorted({i for i in found if isinstance(i, int)})


def _statements(policy: str) -> list[dict[str, Any]]:
    try:
        doc = loads_json(policy)  # fileio's limits: a stored policy nested 5,000 deep is not a 500
    except ValueError:
        return []
    sts = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [s for s in (sts if isinstance(sts, list) else [sts]) if isinstance(s, dict)]


def _who(entries: list[Any]) -> list[str]:
    out = []
    for w in entries:
        label = w.principal
        if w.conditions:
            label += " (with conditions)"
        if label not in out:
            out.append(label)
    return out
