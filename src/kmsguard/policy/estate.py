"""The estate effective access reasons about: every principal with the policies that apply to it, the
Organization's SCPs and RCPs by level, and the keys, all parsed once from a Snapshot.

Nothing here decides access (``access.py`` does); this module only answers "which documents apply to
whom", and records what it could not read as an assumption of every answer drawn from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from kmsguard.fileio import loads_json
from kmsguard.model.snapshot import IamInventory, Key, Organization, Snapshot
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.model import Policy
from kmsguard.policy.normalize import parse_and_normalize
from kmsguard.policy.parse import PolicyKind

# (label for evidence, the policy)
Labelled = tuple[str, Policy]


@lru_cache(maxsize=8192)
def parsed(text: str, kind: PolicyKind) -> Policy:
    """A document parsed leniently (what AWS accepted is judged, not rejected), once per distinct text."""
    return parse_and_normalize(text, kind=kind, strict=False)


@dataclass(frozen=True)
class Subject:
    """An IAM user or role (a role stands for every session of it), or an account's root user."""

    arn: str
    kind: str  # "user", "role", "root"
    account: str
    policies: tuple[Labelled, ...] = ()  # identity policies: its own, and its groups'
    boundary: Labelled | None = None
    tags: tuple[tuple[str, str], ...] = ()
    service_linked: bool = False
    trust: Policy | None = None  # roles: who may assume it
    # Why its access cannot be judged completely (an unreadable document): shown with every answer about it.
    unreadable: tuple[str, ...] = ()
    label: str = ""  # how an aggregate (access.Aggregate) is written in answers; empty for an IAM principal


@dataclass
class Estate:
    subjects: dict[str, Subject] = field(default_factory=dict)
    scanned_accounts: frozenset[str] = frozenset()
    organization: Organization | None = None
    keys: dict[str, Key] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    _scp_cache: dict[str, tuple[tuple[Labelled, ...], ...] | None] = field(default_factory=dict)
    _rcp_cache: dict[str, tuple[tuple[Labelled, ...], ...] | None] = field(default_factory=dict)

    # -- Organizations -----------------------------------------------------------------------------

    @property
    def org_known(self) -> bool:
        return self.organization is not None and not self.organization.errors and self.organization.id != "unknown"

    def org_of(self, account: str) -> str | None:
        org = self.organization
        if org is None or account not in org.account_parents:
            return None
        return org.id

    def org_path(self, account: str) -> str | None:
        """aws:PrincipalOrgPaths / aws:ResourceOrgPaths form: ``o-x/r-y/ou-z/``."""
        org = self.organization
        path = org.path_of(account) if org is not None else None
        return f"{org.id}/{'/'.join(path)}/" if org is not None and path else None

    def scp_levels(self, account: str) -> tuple[tuple[Labelled, ...], ...] | None:
        """The SCPs that bound the principals of ``account``, one tuple per level (root, OUs, the account):
        every level must allow. None when no SCP applies (no Organization, SCPs disabled, the management
        account) or when they could not be read (then an assumption says so)."""
        return self._levels(account, "SCP", self._scp_cache)

    def rcp_levels(self, account: str) -> tuple[tuple[Labelled, ...], ...] | None:
        """The RCPs that bound the resources of ``account``, as ``scp_levels``."""
        return self._levels(account, "RCP", self._rcp_cache)

    def _levels(
        self, account: str, kind: str, cache: dict[str, tuple[tuple[Labelled, ...], ...] | None]
    ) -> tuple[tuple[Labelled, ...], ...] | None:
        if account in cache:
            return cache[account]
        org = self.organization
        enabled = org is not None and (org.scps_enabled if kind == "SCP" else org.rcps_enabled)
        path = org.path_of(account) if org is not None else None
        levels: tuple[tuple[Labelled, ...], ...] | None = None
        if org is not None and enabled and path is not None and account != org.management_account:
            by_target: dict[str, list[Labelled]] = {}
            for pol in org.policies:
                if pol.kind != kind or pol.document is None:
                    continue
                doc = parsed(pol.document, "identity" if kind == "SCP" else "key")
                for target in pol.targets:
                    by_target.setdefault(target, []).append((f"{kind} {pol.name}", doc))
            levels = tuple(tuple(by_target.get(node, ())) for node in [*path, account])
        cache[account] = levels
        return levels


def build_estate(snapshot: Snapshot) -> Estate:
    estate = Estate(organization=snapshot.organization)
    scanned: set[str] = set()
    for acct in snapshot.accounts:
        for region in acct.regions:
            for key in region.keys:
                estate.keys[key.arn] = key
        root = f"arn:{acct.partition}:iam::{acct.account_id}:root"
        estate.subjects[root] = Subject(root, "root", acct.account_id)
        if acct.iam is None:
            why = "; ".join(f"{e.operation}: {e.code}" for e in acct.errors if e.service == "iam") or "not collected"
            estate.assumptions.append(
                f"account {acct.account_id}: IAM users and roles unknown ({why}); its principals are not listed"
            )
            continue
        scanned.add(acct.account_id)
        _add_principals(estate, acct.account_id, acct.iam)
    estate.scanned_accounts = frozenset(scanned)
    _org_assumptions(estate, scanned)
    return estate


def _add_principals(estate: Estate, account: str, inv: IamInventory) -> None:
    managed = {p.arn: p for p in inv.policies}
    groups = {g.name: g for g in inv.groups}

    def managed_doc(arn: str, problems: list[str]) -> Labelled | None:
        pol = managed.get(arn)
        if pol is None or pol.document is None:
            problems.append(f"managed policy {arn} could not be read")
            return None
        label = f"AWS managed {pol.name}" if pol.aws_managed else f"policy/{pol.name}"
        return _parse_labelled(label, pol.document, "identity", problems)

    for p in inv.principals:
        problems = [f"{e.message}" for e in p.errors]
        docs: list[Labelled] = []
        owner = f"{p.kind}/{p.name}"
        for name, text in sorted(p.inline_policies.items()):
            docs += _maybe(_parse_labelled(f"{owner} inline {name}", text, "identity", problems))
        for arn in p.managed_policies:
            docs += _maybe(managed_doc(arn, problems))
        for gname in p.groups:
            g = groups.get(gname)
            if g is None:
                problems.append(f"group {gname} not found")
                continue
            problems += [e.message for e in g.errors]
            for name, text in sorted(g.inline_policies.items()):
                docs += _maybe(_parse_labelled(f"group/{g.name} inline {name}", text, "identity", problems))
            for arn in g.managed_policies:
                docs += _maybe(managed_doc(arn, problems))
        boundary = managed_doc(p.permissions_boundary, problems) if p.permissions_boundary else None
        trust = None
        if p.trust_policy is not None:
            trust = _maybe(_parse_labelled("trust", _with_resource(p.trust_policy), "key", problems))
        estate.subjects[p.arn] = Subject(
            arn=p.arn,
            kind=p.kind,
            account=account,
            policies=tuple(docs),
            boundary=boundary,
            tags=tuple(sorted(p.tags.items())),
            service_linked=p.service_linked,
            trust=trust[0][1] if trust else None,
            unreadable=tuple(problems),
        )


def _with_resource(text: str) -> str:
    """A trust policy has no Resource element (it is the role's own); the engine's resource policies need
    one, so each statement gets ``"Resource": "*"``: the role is the only resource it can apply to."""
    try:
        doc = loads_json(text)  # a trust policy from a snapshot may be hostile: fileio's depth limit
        statements = doc.get("Statement")
        for st in statements if isinstance(statements, list) else [statements]:
            if isinstance(st, dict) and "Resource" not in st and "NotResource" not in st:
                st["Resource"] = "*"
        return json.dumps(doc)
    except (ValueError, AttributeError):
        return text  # the parser then names what is wrong


def _parse_labelled(label: str, text: str, kind: PolicyKind, problems: list[str]) -> Labelled | None:
    try:
        return label, parsed(text, kind)
    except (PolicyError, ValueError) as e:
        problems.append(f"{label}: {e}")
        return None


def _maybe(item: Labelled | None) -> list[Labelled]:
    return [item] if item is not None else []


def _org_assumptions(estate: Estate, scanned: Iterable[str]) -> None:
    org = estate.organization
    if org is None:
        return
    if org.errors:
        failed = ", ".join(sorted({f"{e.operation} ({e.code})" for e in org.errors}))
        estate.assumptions.append(
            f"Organization {org.id}: {failed} could not be read, so SCPs and RCPs that could not be read are not "
            "applied: access they would deny is reported as allowed"
        )
    unplaced = sorted(a for a in scanned if a not in org.account_parents)
    if unplaced and not org.errors:
        estate.assumptions.append(
            f"accounts not found in Organization {org.id}: {', '.join(unplaced)}; no SCP/RCP applied"
        )
