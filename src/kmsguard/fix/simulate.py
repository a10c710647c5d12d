"""Re-simulate, with the policy engine, the accesses a key policy's existing principals had.

The guide's mistake "not testing key access after policy changes" is answered here: every principal the
old policy names (and the key account's root, which stands for everyone IAM delegates to) is asked, action by
action, against the old and the new policy. An access that was allowed and is no longer is a loss; a loss the
change meant (a ``Removal`` the tighten step recorded) is intended, any other is reported as unintended.

Requests are made the way a legitimate caller makes them: over TLS, from its own account, with the encryption
context a required-context change asks for. Principals of the key account are judged by the key policy alone
(their IAM policies could restore access and hide a key-policy loss); other accounts' principals are assumed
to have IAM permission, since that side is not ours to change.

``access_changes`` answers the plan's "who loses what" with effective access instead (``policy.access``): the
key is evaluated with its current policy and with the planned one over the same estate (IAM, boundaries, SCPs,
RCPs, grants, role chains), and every principal that loses or gains an action is listed with the path that
gave (or now gives) it. A principal that keeps an action through IAM does not lose it, which is what a user of
the key will see after the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmsguard.arn import partition_in, root_arn
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.policy.access import DEFAULT_ACTIONS, AccessEvaluator, KeyAccess, PrincipalAccess
from kmsguard.policy.actions import KMS_ACTIONS, canonical_action
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision, Policy
from kmsguard.policy.normalize import parse_and_normalize, request
from kmsguard.policy.principals import account_of, is_root, named_principals
from kmsguard.policy.tighten import Removal


@dataclass(frozen=True)
class Loss:
    principal: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "action": self.action}


def _allowed(policy: Policy, principal: str, action: str, key_arn: str, account: str, ctx: Mapping[str, str]) -> bool:
    caller = account_of(principal) or account
    context: dict[str, Any] = {"aws:SecureTransport": "true", "kms:CallerAccount": caller}
    context.update({f"kms:EncryptionContext:{k}": v for k, v in ctx.items()})
    req = request(principal, action, key_arn, context)
    result = evaluate(policy, req, assume_iam_allows=caller != account, key_account=account)
    return result.decision is Decision.ALLOW


def lost_accesses(
    old_text: str,
    new_text: str,
    key_arn: str,
    account: str,
    *,
    context: Mapping[str, str] | None = None,
) -> list[Loss]:
    """Every (principal, action) the old policy allowed and the new one does not."""
    old = parse_and_normalize(old_text)
    new = parse_and_normalize(new_text)
    principals = [*sorted(p for p in named_principals(old) if account_of(p)), root_arn(account, partition_in(key_arn))]
    out: list[Loss] = []
    for principal in dict.fromkeys(principals):
        for action in KMS_ACTIONS:
            if _allowed(old, principal, action, key_arn, account, context or {}) and not _allowed(
                new, principal, action, key_arn, account, context or {}
            ):
                out.append(Loss(principal, action))
    return out


def unintended(losses: Iterable[Loss], removals: Iterable[Removal]) -> list[Loss]:
    """The losses no removal explains."""
    meant: dict[str, set[str]] = {}
    for r in removals:
        meant.setdefault(r.principal, set()).update(a.lower() for a in r.actions)
    out = []
    for loss in losses:
        # A removed "*" explains nothing here: the principals simulated are the named ones.
        why = meant.get(loss.principal, set())
        if "*" in why or canonical_action(loss.action).lower() in why:
            continue
        out.append(loss)
    return out


# --- effective access -----------------------------------------------------------------------------------------

PUT_POLICY = "kms:PutKeyPolicy"


def not_judged_reason(snapshot: Snapshot, account: str) -> str | None:
    """Why effective access of ``account``'s keys cannot be judged from ``snapshot`` (as the access checks
    decide: a live scan without the account's IAM inventory), or None."""
    for a in snapshot.accounts:
        if a.account_id == account and a.iam is None and snapshot.source == "aws":
            why = "; ".join(sorted({f"{e.operation}: {e.code}" for e in a.errors if e.service == "iam"}))
            return f"the IAM inventory of account {account} was not read ({why or 'snapshot from an older kmsguard'})"
    return None


def path_text(pa: PrincipalAccess) -> str:
    """``key_policy+iam (key policy: Sid Root; iam: role/App inline ...)`` for the first path."""
    if not pa.paths:
        return ""
    p = pa.paths[0]
    inner = ([f"chain: {' → '.join(c.split(':', 5)[-1] for c in p.chain)}"] if p.chain else []) + list(p.statements)
    return p.via + (f" ({'; '.join(inner)})" if inner else "")


@dataclass(frozen=True)
class AccessChange:
    """One principal's change on one action: ``lost`` or ``gained`` (``narrowed``: allowed before, now only
    under request conditions; ``widened``: the reverse). ``answer`` is the access that explains it: before the
    change for a loss, after it otherwise."""

    principal: str
    action: str
    change: str
    answer: PrincipalAccess
    before: str | None  # decision
    after: str | None
    intended: bool = False

    def to_dict(self) -> dict[str, Any]:
        first = self.answer.paths[0] if self.answer.paths else None
        return {
            "principal": self.principal,
            "action": self.action,
            "decision_before": self.before,
            "decision_after": self.after,
            "via": first.via if first is not None else None,
            "path": path_text(self.answer),
            "paths": [p.to_dict() for p in self.answer.paths[:3]],
            "intended": self.intended,
        }


@dataclass
class AccessImpact:
    lost: list[AccessChange] = field(default_factory=list)
    gained: list[AccessChange] = field(default_factory=list)
    narrowed: list[AccessChange] = field(default_factory=list)
    widened: list[AccessChange] = field(default_factory=list)
    administrators_before: list[str] = field(default_factory=list)
    administrators_after: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    expected_after: dict[str, dict[str, str]] = field(default_factory=dict)  # action -> principal -> decision

    @property
    def lockout(self) -> bool:
        """Some principal could change the key policy, and after the change none can."""
        return bool(self.administrators_before) and not self.administrators_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "judged": True,
            "lost": [c.to_dict() for c in self.lost],
            "gained": [c.to_dict() for c in self.gained],
            "narrowed": [c.to_dict() for c in self.narrowed],
            "widened": [c.to_dict() for c in self.widened],
            "administrators_before": self.administrators_before,
            "administrators_after": self.administrators_after,
            "lockout": self.lockout,
            "assumptions": self.assumptions,
        }


def _administrators(access: KeyAccess) -> list[str]:
    return sorted(p for p in access.principals(PUT_POLICY) if not p.startswith("service:"))


def _covers(removal: Removal, principal: str, answer: PrincipalAccess) -> bool:
    """Does the removal the rewrite meant explain this principal's loss?"""
    who = {principal}
    for p in answer.paths:
        who.update(p.chain)  # a loss through a role whose access was removed on purpose
    for w in who:
        if removal.principal == w or (removal.principal == "*" and (w == "*" or w.startswith(("account:", "org:")))):
            return True
        if is_root(removal.principal):
            acct = account_of(removal.principal)
            if w == f"account:{acct}" or account_of(w) == acct:
                return True
    return False


def _intended(principal: str, action: str, answer: PrincipalAccess, removals: Sequence[Removal]) -> bool:
    wanted = canonical_action(action).lower()
    return any(
        ("*" in r.actions or wanted in {canonical_action(a).lower() for a in r.actions})
        and _covers(r, principal, answer)
        for r in removals
    )


def access_changes(
    evaluator: AccessEvaluator,
    key: Key,
    new_policy: str,
    removals: Sequence[Removal] = (),
    actions: Sequence[str] = DEFAULT_ACTIONS,
) -> AccessImpact:
    """Effective access of ``key`` now and with ``new_policy`` (same estate), compared principal by principal."""
    before = evaluator.who_can(key, actions)
    after = evaluator.who_can(key.model_copy(update={"policy": new_policy}), actions)
    out = AccessImpact(
        administrators_before=_administrators(before),
        administrators_after=_administrators(after),
        assumptions=list(after.assumptions),
        expected_after={
            canonical_action(a): {p: pa.decision for p, pa in after.principals(a).items()} for a in actions
        },
    )
    for action in actions:
        name = canonical_action(action)
        was, now = before.principals(action), after.principals(action)
        for p in sorted(was.keys() | now.keys()):
            b, a = was.get(p), now.get(p)
            if a is None and b is not None:
                out.lost.append(AccessChange(p, name, "lost", b, b.decision, None, _intended(p, name, b, removals)))
            elif b is None and a is not None:
                out.gained.append(AccessChange(p, name, "gained", a, None, a.decision))
            elif a is not None and b is not None and a.decision != b.decision:
                change = "narrowed" if a.decision == "conditional" else "widened"
                target = out.narrowed if change == "narrowed" else out.widened
                target.append(AccessChange(p, name, change, a, b.decision, a.decision))
    return out
