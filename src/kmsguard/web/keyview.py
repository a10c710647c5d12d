"""What the key page shows about one key: metadata, its policy statement by statement with the risky ones
marked (the reasons come from the policy engine's analysis, never re-derived here), who can decrypt and
who can administer it — effective access from the scan's snapshot (web/access_view.py), with the principals
the key policy alone names only as a fallback when effective access cannot be computed — and its CloudTrail
usage from the latest stored usage summary (web/usage.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kmsguard.fileio import loads_json
from kmsguard.model.snapshot import Key
from kmsguard.store.queries import StoredUsage
from kmsguard.store.schema import KeyRow
from kmsguard.web.access_view import ENGINE_LOCK, KeyAccessView
from kmsguard.web.usage import KeyUsageView, key_usage


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
    # The principals the key policy alone names (policy.analyze): not who can decrypt or administer; the
    # page shows them only when effective access cannot be computed, and says what they are.
    policy_decrypt: list[str]
    policy_administer: list[str]
    analysis_error: str | None
    public: bool
    external: list[str]
    usage: KeyUsageView | None  # None: no trail data
    access: KeyAccessView | None = None  # None: not asked for


def key_view(row: KeyRow, stored_usage: StoredUsage | None = None, access: KeyAccessView | None = None) -> KeyView:
    key = Key.model_validate_json(row.data)
    statements: list[StatementView] = []
    decrypt: list[str] = []
    administer: list[str] = []
    error: str | None = None
    public, external = False, []
    if key.policy:
        raw = _statements(key.policy)
        statements = [StatementView(i, st.get("Sid"), json.dumps(st, indent=2)) for i, st in enumerate(raw)]
        try:
            from kmsguard.policy.analyze import analyze_key_policy_cached

            with ENGINE_LOCK:  # the analysis may ask z3, whose global context is not thread-safe
                a = analyze_key_policy_cached(key.policy, key.account, (), (), key.key_spec, key.key_usage)
        except Exception as e:  # a policy the engine cannot read is shown as is, with the reason
            error = f"{type(e).__name__}: {e}"
        else:
            public, external = a.public, list(a.external_principals)
            marks: dict[int, list[str]] = {}
            for i in a.public_statements:
                marks.setdefault(i, []).append("lets anyone use the key")
            for principal, idx in a.external_statements.items():
                for i in idx:
                    marks.setdefault(i, []).append(f"grants {principal} (outside the account)")
            for i in a.wildcard_statements:
                marks.setdefault(i, []).append("wildcard actions")
            for st in statements:
                st.risks = marks.get(st.index, [])
            decrypt = _who(a.who_can.get("kms:Decrypt", []))
            administer = sorted(set(a.admins) | set(_who(a.who_can.get("kms:PutKeyPolicy", []))))
    usage = key_usage(stored_usage, key)
    return KeyView(key, statements, decrypt, administer, error, public, external, usage, access)


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
