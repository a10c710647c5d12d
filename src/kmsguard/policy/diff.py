"""What a key-policy change does: the access it adds, the access it removes, and whether it locks out
every administrator.

Gained and lost access are found by the solver over one shared request (allowed by the new policy and not
the old, and the reverse), for each class of caller either policy mentions: every named principal, every
named account (any other principal of it, through its IAM), the key account's own principals (through
IAM), and unrelated accounts; a principal of the key account that the policies name is judged by the key
policy alone. Each change is a concrete request the direct evaluator confirms.

Lock-out follows KMS's own policy lockout safety check (the reason ``BypassPolicyLockoutSafetyCheck``
exists): a key stays manageable while some principal can still call kms:PutKeyPolicy. The account root
counts when the root statement lets IAM grant PutKeyPolicy (IAM policies are assumed to do so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmsguard.policy.actions import KMS_ACTIONS
from kmsguard.policy.analyze import load, request_dict
from kmsguard.policy.model import Policy, Request
from kmsguard.policy.principals import account_of, is_root, mentioned_accounts, mentioned_orgs, named_principals
from kmsguard.policy.solver import Identity, Question, differences, prove

ALL = tuple(a.lower() for a in KMS_ACTIONS)


@dataclass
class PolicyDiff:
    gained: list[Request] = field(default_factory=list)
    lost: list[Request] = field(default_factory=list)
    admin_lockout: bool = False
    administrable_before: bool = True
    administrable_after: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "gained": [request_dict(r) for r in self.gained],
            "lost": [request_dict(r) for r in self.lost],
            "admin_lockout": self.admin_lockout,
            "administrable_before": self.administrable_before,
            "administrable_after": self.administrable_after,
        }


def _classes(old: Policy, new: Policy, account: str) -> list[Identity]:
    named = frozenset(named_principals(old) | named_principals(new))
    accounts = frozenset(mentioned_accounts(old) | mentioned_accounts(new)) | {account}
    orgs = frozenset(mentioned_orgs(old) | mentioned_orgs(new))
    # A principal the key account names is judged by the key policy alone (its IAM policies could restore
    # what root delegation allows, and then no key-policy change would ever show for it).
    out = [
        Identity(principal=p, iam_allows=account_of(p) != account)
        for p in sorted(named)
        if not is_root(p) and account_of(p)
    ]
    out += [Identity(account=a, exclude_principals=named) for a in sorted(accounts)]
    out.append(Identity(exclude_accounts=accounts, exclude_principals=named, exclude_orgs=orgs))
    out += [
        Identity(exclude_accounts=accounts, exclude_principals=named, org_mode="fixed", org_id=o) for o in sorted(orgs)
    ]
    return out


def administrable(policy: Policy, account: str) -> bool:
    """Can anyone (any principal, its IAM policies assumed to allow) still call kms:PutKeyPolicy?"""
    return not prove(policy, Question(("kms:putkeypolicy",), Identity(), account)).proved


def diff_policies(old: Policy | str, new: Policy | str, account: str, *, per_class: int = 8) -> PolicyDiff:
    before, after = load(old), load(new)
    out = PolicyDiff()
    for ident in _classes(before, after, account):
        q = Question(ALL, ident, account)
        out.gained += differences(after, before, q, per_class)
        out.lost += differences(before, after, q, per_class)
    out.administrable_before = administrable(before, account)
    out.administrable_after = administrable(after, account)
    out.admin_lockout = out.administrable_before and not out.administrable_after
    return out
