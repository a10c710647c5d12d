"""Tighten a key policy with the policy engine's judgement: the transform behind the tighten_key_policy action.

The engine (``analyze_key_policy``) says which statements make the key public, which principals are external,
which statements grant wildcards to someone other than the account root and which administrators also have
cryptographic use. This module only rewrites the JSON document accordingly; it decides nothing about access
itself. It works on the raw document (not the normalised model) so that every statement it does not need to
touch comes out exactly as it went in: Sids, conditions, single values and lists.

The rewrite:
- remove ``"*"`` from the Principal of statements that make the key public or open it to an outside
  organisation, and remove external principals (accounts outside the trusted set); a statement left with no
  principal, or a NotPrincipal Allow that grants outsiders, is dropped;
- a statement that grants a wildcard (kms:*, *, NotAction) to named principals, or cryptographic use to an
  administrator, is split: administrators get the guide's KeyAdministration actions (no cryptographic use),
  users the guide's KeyUsageForEncryption actions; the statement's conditions are kept on both;
- with a required encryption context, the users' cryptographic actions get a StringEquals
  kms:EncryptionContext:K condition (DescribeKey, which carries no context, moves to its own statement);
- a DenyInsecureTransport statement is added when TLS is not already required.

Who is an administrator: ``admins``/``users`` given by the caller decide; otherwise a principal that a
non-wildcard statement already lets call kms:PutKeyPolicy is one, and a principal seen only through a
wildcard is one when its name says so (admin, security, break-glass) and a user otherwise. The plan shows the
resulting diff before anything is applied, so the guess is always visible.

``engine capability``: this transform belongs in kmsguard.policy (a ``tighten`` next to ``generate``); it is
here because fix/ owns it for now.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsguard.arn import root_arn
from kmsguard.policy.actions import CRYPTOGRAPHIC_ACTIONS, canonical_action, expand_kms_actions
from kmsguard.policy.defaults import DENY_INSECURE_TRANSPORT
from kmsguard.policy.generate import ADMIN_ACTIONS, USE_ACTIONS
from kmsguard.policy.model import Policy, Statement
from kmsguard.policy.normalize import parse_and_normalize
from kmsguard.policy.principals import account_of, is_account_id, is_root, policy_partition
from kmsguard.policy.probing import covered
from kmsguard.policy.questions import KeyPolicyAnalysis, analyze_key_policy

_MAX_PASSES = 4
_ADMIN_NAME = re.compile(r"admin|security|break-?glass", re.IGNORECASE)


@dataclass(frozen=True)
class TightenOptions:
    trusted_accounts: frozenset[str] = frozenset()
    trusted_org_ids: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()  # principals the caller declares administrators
    users: frozenset[str] = frozenset()  # ... and users
    require_context: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Removal:
    """Access the rewrite takes away on purpose: ``actions`` ("*" = all) of ``principal``, and why."""

    principal: str
    actions: tuple[str, ...]
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "actions": list(self.actions), "why": self.why}


@dataclass
class Tightened:
    document: dict[str, Any]
    changes: list[str]
    removals: list[Removal]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def tighten_policy(text: str, account: str, options: TightenOptions | None = None) -> Tightened:
    """The tightened document for a key policy of a key in ``account`` (ValueError/PolicyError if invalid)."""
    opts = options or TightenOptions()
    total = Tightened(json.loads(text), [], [])
    current = text
    # Until nothing changes: a public key hides its external principals from the analysis ("*" says it all),
    # so removing "*" can reveal more to remove. Every pass only removes or narrows, so this ends quickly.
    for _ in range(_MAX_PASSES):
        analysis = analyze_key_policy(
            current, account, trusted_accounts=opts.trusted_accounts, trusted_org_ids=opts.trusted_org_ids
        )
        step = _Rewriter(current, account, opts, analysis).run()
        if not step.changed:
            break
        total = Tightened(step.document, total.changes + step.changes, total.removals + step.removals)
        current = to_text(step.document)
    return total


def _listify(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _norm_principal(value: str, partition: str) -> str:
    return root_arn(value, partition) if is_account_id(value) else value


class _Rewriter:
    def __init__(self, text: str, account: str, opts: TightenOptions, analysis: KeyPolicyAnalysis) -> None:
        self.doc: dict[str, Any] = json.loads(text)
        self.policy: Policy = parse_and_normalize(text)
        self.partition = policy_partition(self.policy)
        self.account = account
        self.opts = opts
        self.a = analysis
        self.trusted = set(opts.trusted_accounts) | {account}
        self.changes: list[str] = []
        self.removals: list[Removal] = []
        self.sids: set[str] = set()
        ext = [p for p in analysis.external_principals if p != "*" and not p.startswith("org:")]
        self.external_arns = set(ext)
        self.external_accounts = {account_of(p) for p in ext if is_root(p)}
        # Statements whose "*" principal reaches outsiders: public ones, and those an outside org gets through.
        self.wild_outsiders: set[int] = set(analysis.public_statements)
        for who, idx in analysis.external_statements.items():
            if who.startswith("org:"):
                self.wild_outsiders.update(idx)
        self.admin_set = self._admins()

    # -- who is who ----------------------------------------------------------------------------------

    def _admins(self) -> set[str]:
        out: set[str] = set()
        wildcard = set(self.a.wildcard_statements)
        for st in self.policy.statements:
            if st.effect != "Allow" or st.index in wildcard or st.principals is None:
                continue
            if "kms:putkeypolicy" in covered(st.actions, st.not_actions):
                out.update(p.value for p in st.principals if p.kind == "AWS" and not p.is_wildcard)
        for st in self.policy.statements:
            if st.index in wildcard:
                for p in st.principals or ():
                    name = p.value.rsplit("/", 1)[-1]
                    if p.kind == "AWS" and not p.is_wildcard and not is_root(p.value) and _ADMIN_NAME.search(name):
                        out.add(p.value)
        out |= set(self.opts.admins)
        return out - set(self.opts.users)

    def _is_external(self, arn: str) -> bool:
        acct = account_of(arn)
        if acct is None or acct in self.trusted:
            return False
        return arn in self.external_arns or acct in self.external_accounts

    # -- the rewrite ---------------------------------------------------------------------------------

    def run(self) -> Tightened:
        raw = _listify(self.doc.get("Statement", []))
        for st in raw:
            if isinstance(st, dict) and isinstance(st.get("Sid"), str):
                self.sids.add(st["Sid"])
        out: list[dict[str, Any]] = []
        for raw_st, st in zip(raw, self.policy.statements, strict=True):
            out.extend(self._statement(raw_st, st))
        if not self.a.denies_insecure_transport:
            deny = copy.deepcopy(DENY_INSECURE_TRANSPORT)
            deny["Sid"] = self._sid("DenyInsecureTransport")
            out.append(deny)
            self.changes.append("add DenyInsecureTransport (Deny every request without TLS)")
        if not self.changes:
            return Tightened(self.doc, [], [])
        doc = dict(self.doc)
        doc["Statement"] = out
        return Tightened(doc, self.changes, self.removals)

    def _sid(self, base: str) -> str:
        sid, n = base, 2
        while sid in self.sids:
            sid, n = f"{base}{n}", n + 1
        self.sids.add(sid)
        return sid

    def _statement(self, raw: dict[str, Any], st: Statement) -> list[dict[str, Any]]:
        if st.effect != "Allow":
            return [raw]
        label = st.sid or f"Statement[{st.index}]"
        if st.not_principals is not None:
            if st.index in self.wild_outsiders or st.index in self._external_statement_indexes():
                self.changes.append(f"drop {label}: a NotPrincipal Allow that grants principals outside the account")
                self.removals.append(Removal("*", ("*",), f"{label} granted everyone but the listed principals"))
                return []
            return [raw]
        principal = raw.get("Principal")
        entries = self._principal_entries(principal)
        kept: list[tuple[str, str]] = []
        for kind, value in entries:
            norm = _norm_principal(value, self.partition) if kind == "AWS" else value
            if kind == "AWS" and value == "*" and st.index in self.wild_outsiders:
                self.changes.append(f'{label}: remove Principal "*" (grants principals outside the account)')
                self.removals.append(Removal("*", ("*",), f"{label} made the key public or open to an outside org"))
                continue
            if kind == "AWS" and self._is_external(norm):
                self.changes.append(f"{label}: remove external principal {norm}")
                self.removals.append(Removal(norm, ("*",), f"{label} granted an external principal"))
                continue
            kept.append((kind, value))
        if not kept:
            self.changes.append(f"drop {label}: no principal left")
            return []
        base = dict(raw)
        if len(kept) != len(entries):
            base["Principal"] = self._principal_element(principal, kept)
        return self._split(base, st, kept, label)

    def _external_statement_indexes(self) -> set[int]:
        return {i for idx in self.a.external_statements.values() for i in idx}

    @staticmethod
    def _principal_entries(principal: Any) -> list[tuple[str, str]]:
        if principal == "*":
            return [("AWS", "*")]
        if isinstance(principal, dict):
            return [(kind, str(v)) for kind, vals in principal.items() for v in _listify(vals)]
        return []

    @staticmethod
    def _principal_element(original: Any, kept: list[tuple[str, str]]) -> Any:
        if kept == [("AWS", "*")] and original == "*":
            return "*"
        out: dict[str, Any] = {}
        for kind, value in kept:
            out.setdefault(kind, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in out.items()}

    def _split(
        self, raw: dict[str, Any], st: Statement, kept: list[tuple[str, str]], label: str
    ) -> list[dict[str, Any]]:
        actions = covered(st.actions, st.not_actions)
        wildcard = st.index in self.a.wildcard_statements
        named = [(k, v) for k, v in kept if k == "AWS" and not is_root(_norm_principal(v, self.partition))]
        # An AWS service given a wildcard gets the usage actions too: services encrypt and decrypt (CloudTrail,
        # CloudWatch Logs, SNS ...); none needs to administer the key through its policy.
        services = [v for k, v in kept if k == "Service"] if wildcard else []
        others = [(k, v) for k, v in kept if (k, v) not in named and v not in services]
        admins = [v for _, v in named if v in self.admin_set]
        users = [v for _, v in named if v not in self.admin_set]
        admin_uses = bool(admins) and bool(actions & CRYPTOGRAPHIC_ACTIONS)
        ctx = dict(self.opts.require_context)
        needs_context = (
            bool(users) and bool(ctx) and bool(actions & CRYPTOGRAPHIC_ACTIONS) and not self._has_context(st)
        )
        if not (wildcard or admin_uses or needs_context):
            return [raw]
        out: list[dict[str, Any]] = []
        if others:
            rest = dict(raw)
            rest["Principal"] = self._principal_element(raw.get("Principal"), others)
            out.append(rest)
        if admins:
            admin_actions = list(ADMIN_ACTIONS) if wildcard else self._without_crypto(raw)
            gone = sorted(canonical_action(a) for a in actions - _expand(admin_actions))
            if gone:
                for arn in admins:
                    self.removals.append(Removal(arn, tuple(gone), f"{label}: administrators get no cryptographic use"))
            if admin_actions:
                out.append(self._copy(raw, admins, admin_actions, "KeyAdministration"))
                self.changes.append(f"{label}: administrators {', '.join(admins)} get KeyAdministration actions only")
            else:  # only cryptographic use was granted here (administration comes from another statement)
                self.changes.append(f"{label}: administrators {', '.join(admins)} lose its cryptographic use")
        if services:
            service_actions = [*USE_ACTIONS, "kms:DescribeKey"]
            gone = sorted(canonical_action(a) for a in actions - _expand(service_actions))
            for svc in services:
                self.removals.append(Removal(svc, tuple(gone), f"{label}: a service gets the usage actions"))
            out.append(self._copy(raw, services, service_actions, "ServiceUsage", kind="Service"))
            self.changes.append(f"{label}: services {', '.join(services)} get the usage actions instead of a wildcard")
        if users:
            user_actions = [*USE_ACTIONS, "kms:DescribeKey"] if wildcard else _listify(raw.get("Action", []))
            if not user_actions:  # a NotAction statement: users get the guide's usage actions
                user_actions = [*USE_ACTIONS, "kms:DescribeKey"]
            gone = sorted(canonical_action(a) for a in actions - _expand(user_actions))
            if gone:
                for arn in users:
                    self.removals.append(Removal(arn, tuple(gone), f"{label}: wildcard replaced by the usage actions"))
            if wildcard:
                self.changes.append(
                    f"{label}: users {', '.join(users)} get KeyUsageForEncryption actions instead of a wildcard"
                )
            out.extend(
                self._user_statements(raw, users, user_actions, ctx if needs_context or (ctx and wildcard) else {})
            )
        # The first emitted statement keeps the original Sid so that references to it stay meaningful.
        if out and isinstance(raw.get("Sid"), str):
            out[0]["Sid"] = raw["Sid"]
        return out

    def _user_statements(
        self, raw: dict[str, Any], users: list[str], actions: list[str], ctx: dict[str, str]
    ) -> list[dict[str, Any]]:
        if not ctx:
            return [self._copy(raw, users, actions, "KeyUsageForEncryption")]
        crypto = [a for a in actions if set(expand_kms_actions(a)) & CRYPTOGRAPHIC_ACTIONS]
        plain = [a for a in actions if a not in crypto]
        use = self._copy(raw, users, crypto, "KeyUsageForEncryption")
        cond = copy.deepcopy(use.get("Condition") or {})
        for k, v in sorted(ctx.items()):
            cond.setdefault("StringEquals", {})[f"kms:EncryptionContext:{k}"] = v
        use["Condition"] = cond
        self.changes.append(
            f"users {', '.join(users)} must send encryption context "
            + ", ".join(f"{k}={v}" for k, v in sorted(ctx.items()))
        )
        out = [use]
        if plain:
            out.append(self._copy(raw, users, plain, "KeyUsageDescribe"))
        return out

    def _copy(
        self, raw: dict[str, Any], principals: list[str], actions: list[str], sid: str | None, kind: str = "AWS"
    ) -> dict[str, Any]:
        st = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("NotAction", "Action", "Principal", "Sid")}
        out: dict[str, Any] = {}
        if sid is not None:
            out["Sid"] = self._sid(sid)
        out["Effect"] = "Allow"
        out["Principal"] = {kind: principals[0] if len(principals) == 1 else sorted(principals)}
        out["Action"] = actions
        out.update({k: v for k, v in st.items() if k != "Effect"})
        return out

    @staticmethod
    def _without_crypto(raw: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for a in _listify(raw.get("Action", [])):
            expanded = set(expand_kms_actions(a))
            if not expanded & CRYPTOGRAPHIC_ACTIONS:
                out.append(a)
            else:
                out.extend(canonical_action(x) for x in sorted(expanded - CRYPTOGRAPHIC_ACTIONS))
        return list(dict.fromkeys(out))

    def _has_context(self, st: Statement) -> bool:
        want = {f"kms:encryptioncontext:{k.lower()}" for k in self.opts.require_context}
        have = {c.key for c in st.conditions if c.operator == "StringEquals"}
        return want <= have


def _expand(actions: Iterable[str]) -> frozenset[str]:
    return frozenset(x for a in actions for x in expand_kms_actions(a))


def to_text(document: Mapping[str, Any]) -> str:
    """The text kmsguard writes with PutKeyPolicy: indented JSON, key order as built."""
    return json.dumps(document, indent=2)
