"""What a key-policy change does: the access it adds, the access it removes, and whether it locks out
every administrator.

Gained and lost access are found by the solver over one shared request (allowed by the new policy and not
the old, and the reverse), for each class of caller either policy mentions: every named principal (and,
when a policy has a NotPrincipal, the sessions of each named role, which such a list treats apart from
the role), every named account (any other principal of it, through its IAM), the key account's own
principals (through IAM), and unrelated accounts; a principal of the key account that the policies name
is judged by the key policy alone. Every action that differs is reported, once per class, with an example
request the direct evaluator confirms; the list is sorted, so the same two policies always give the same
diff. An action the solver could not decide is listed in ``uncertain``, never dropped. ``context`` fixes request
context keys in every question: ``kmsguard fix`` asks about the requests a caller that follows the rewritten
policy makes (over TLS, with the encryption context it requires), so that refusing plain HTTP is not a loss.

Lock-out follows KMS's own policy lockout safety check (the reason ``BypassPolicyLockoutSafetyCheck``
exists): a key stays manageable while some principal can still call kms:PutKeyPolicy. The account root
counts when the root statement lets IAM grant PutKeyPolicy (IAM policies are assumed to do so).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsguard.model.finding import Severity
from kmsguard.policy.actions import KMS_ACTIONS, canonical_action
from kmsguard.policy.model import Policy, Request
from kmsguard.policy.principals import (
    account_of,
    is_root,
    mentioned_accounts,
    mentioned_orgs,
    named_principals,
    session_of,
)
from kmsguard.policy.questions import load, request_dict
from kmsguard.policy.solver import Identity, Question, differences, fixed, prove

ALL = tuple(a.lower() for a in KMS_ACTIONS)


@dataclass(frozen=True)
class CallerClass:
    """A class of callers the diff asks about, and how it is shown: ``who`` is the principal's ARN when
    the class is one principal, else a description ("any principal of account ...")."""

    identity: Identity
    who: str
    # The class as effective access names its principals: an ARN (a session class: its role's), "account:ID",
    # "org:ID", or "*" for accounts neither policy names; what a removal the rewrite meant is matched against.
    subject: str
    account: str | None = None  # the account every member is in, when there is one

    @property
    def one_principal(self) -> bool:
        return not self.who.startswith("any ")


@dataclass(frozen=True)
class AccessChange:
    """One action a class of callers gains or loses, with an example request the evaluator confirms.

    ``principal`` and ``principal_account`` are the example's (what a caller needs to look a change up);
    ``who`` and ``resource`` say what the change is about, with the example labelled as one."""

    who: str
    action: str
    resource: str
    example: Request
    subject: str  # the class's ``CallerClass.subject``

    @property
    def principal(self) -> str:
        return self.example.principal

    @property
    def principal_account(self) -> str | None:
        return self.example.principal_account or account_of(self.example.principal)

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.who,
            "action": canonical_action(self.action),
            "resource": self.resource,
            "context": {k: list(v) for k, v in sorted(self.example.context.items())},
            "example": request_dict(self.example),
        }


@dataclass
class PolicyDiff:
    gained: list[AccessChange] = field(default_factory=list)
    lost: list[AccessChange] = field(default_factory=list)
    admin_lockout: bool = False
    administrable_before: bool = True
    administrable_after: bool = True
    uncertain: list[str] = field(default_factory=list)  # "<who>: <action> gained/lost: <why>"
    # The losses among them, as (the class's subject, action): what may be lost and cannot be ruled out.
    uncertain_losses: list[tuple[str, str]] = field(default_factory=list)

    def gains_from_outside(self, account: str) -> list[AccessChange]:
        """The gained access of callers outside ``account`` (principals of other accounts, everyone)."""
        return [c for c in self.gained if c.principal_account not in (account, None)]

    def severity(self, account: str) -> Severity | None:
        """How serious the change is, on the one scale every judge of a policy change uses (drift between scans,
        the trail's PutKeyPolicy): locking every administrator out is critical, access gained from outside the
        key's account high, access gained within it medium; None when nothing was gained or locked out."""
        if self.admin_lockout:
            return Severity.CRITICAL
        if not self.gained:
            return None
        return Severity.HIGH if self.gains_from_outside(account) else Severity.MEDIUM

    def to_dict(self) -> dict[str, Any]:
        return {
            "gained": [c.to_dict() for c in self.gained],
            "lost": [c.to_dict() for c in self.lost],
            "admin_lockout": self.admin_lockout,
            "administrable_before": self.administrable_before,
            "administrable_after": self.administrable_after,
            "uncertain": list(self.uncertain),
        }


def _classes(old: Policy, new: Policy, account: str) -> list[CallerClass]:
    named = frozenset(named_principals(old) | named_principals(new))
    accounts = frozenset(mentioned_accounts(old) | mentioned_accounts(new)) | {account}
    orgs = frozenset(mentioned_orgs(old) | mentioned_orgs(new))
    # A principal the key account names is judged by the key policy alone (its IAM policies could restore
    # what root delegation allows, and then no key-policy change would ever show for it).
    out = [
        CallerClass(Identity(principal=p, iam_allows=account_of(p) != account), p, p, account_of(p))
        for p in sorted(named)
        if not is_root(p) and account_of(p)
    ]
    if any(st.not_principals is not None for st in old.statements + new.statements):
        out += _session_classes(named, account)
    for a in sorted(accounts):
        other = "other " if any(account_of(p) == a and not is_root(p) for p in named) else ""
        who = f"any {other}principal of account {a}"
        out.append(CallerClass(Identity(account=a, exclude_principals=named), who, f"account:{a}", a))
    unnamed = "any principal of an account neither policy names"
    ident = Identity(exclude_accounts=accounts, exclude_principals=named, exclude_orgs=orgs)
    out.append(CallerClass(ident, unnamed, "*"))
    out += [
        CallerClass(
            Identity(exclude_accounts=accounts, exclude_principals=named, org_mode="fixed", org_id=o),
            f"any principal of organisation {o} in an account neither policy names",
            f"org:{o}",
        )
        for o in sorted(orgs)
    ]
    return out


def _session_classes(named: frozenset[str], account: str) -> list[CallerClass]:
    """A NotPrincipal list judges a role and its sessions apart (a session is exempt only when the list
    names the session itself), so each named role's sessions are a class of their own, asked about through
    one session with a name no policy uses."""
    out = []
    for role in sorted(named):
        if session_of(role) is None:
            continue
        sessions = (session_of(role, f"example{n or ''}") for n in itertools.count())
        session = next(s for s in sessions if s not in named)
        ident = Identity(principal=session, iam_allows=account_of(role) != account)
        out.append(CallerClass(ident, f"any session of {role}", role, account_of(role)))
    return out


def administrable(policy: Policy, account: str) -> bool:
    """Can anyone (any principal, its IAM policies assumed to allow) still call kms:PutKeyPolicy?"""
    return not prove(policy, Question(("kms:putkeypolicy",), Identity(), account)).proved


def diff_policies(
    old: Policy | str,
    new: Policy | str,
    account: str,
    *,
    key_arn: str | None = None,
    context: Mapping[str, str] | None = None,
) -> PolicyDiff:
    """Every access ``new`` adds and removes relative to ``old`` for the key in ``account``. ``key_arn`` is
    the key's ARN when the caller knows it: the requests are then about that key (else about an example key
    of ``account``, and each says so). ``context``: request context keys every request has (else all free)."""
    before, after = load(old), load(new)
    out = PolicyDiff()
    pinned = fixed({k: (v,) for k, v in (context or {}).items()})
    for cls in _classes(before, after, account):
        q = Question(ALL, cls.identity, account, resource=key_arn, fixed_context=pinned)
        for kind, (allows, denies) in (("gained", (after, before)), ("lost", (before, after))):
            found = differences(allows, denies, q)
            changes = out.gained if kind == "gained" else out.lost
            changes += [_change(cls, r, key_arn, account) for r in found.found]
            out.uncertain += [f"{cls.who}: {canonical_action(a)} {kind}: {why}" for a, why in found.undecided]
            if kind == "lost":
                out.uncertain_losses += [(cls.subject, canonical_action(a)) for a, _ in found.undecided]
    out.gained.sort(key=_order)
    out.lost.sort(key=_order)
    out.administrable_before = administrable(before, account)
    out.administrable_after = administrable(after, account)
    out.admin_lockout = out.administrable_before and not out.administrable_after
    return out


def _change(cls: CallerClass, example: Request, key_arn: str | None, account: str) -> AccessChange:
    who = cls.who if cls.one_principal else f"{cls.who} (for example {example.principal})"
    resource = key_arn or f"this key of account {account} (for example {example.resource})"
    return AccessChange(who, example.action.lower(), resource, example, cls.subject)


def _order(change: AccessChange) -> tuple[str, str]:
    return change.who, change.action
