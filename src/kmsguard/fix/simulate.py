"""What a key-policy change does to who can do what: the one answer the plan's "who loses what", its lock-out
guard, rollback's review and verification read (``ChangeImpact``).

Two views, each computed once: the key-policy diff (``policy.diff``: the key policy alone, every KMS action, the
solver's complete search) and effective access (``policy.access``: the key with its current and its changed policy
over the same estate -- IAM, boundaries, SCPs, RCPs, grants, role chains). Who loses and gains what is effective
access where the snapshot can judge it (a principal that keeps an action through IAM does not lose it, which is
what a user of the key will see after the change), else the key-policy diff. The lock-out guard refuses when
either says nobody could call kms:PutKeyPolicy afterwards.

The guide's mistake "not testing key access after policy changes" is answered by the key-policy diff of a rewrite
asked about the requests a legitimate caller makes (``legitimate_context``: over TLS, with the encryption context
a required-context change asks for): a loss there that no ``Removal`` the tighten step recorded explains is an
unintended loss. Principals of the key account are judged by the key policy alone there (their IAM policies
could restore access and hide a key-policy loss); other accounts' principals are assumed to have IAM permission,
since that side is not ours to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.policy.access import AccessEvaluator, KeyAccess, PrincipalAccess
from kmsguard.policy.actions import PUT_KEY_POLICY, WHO_CAN_ACTIONS, canonical_action
from kmsguard.policy.diff import AccessChange as KeyPolicyChange
from kmsguard.policy.diff import PolicyDiff, diff_policies
from kmsguard.policy.principals import account_of, is_root
from kmsguard.policy.tighten import Removal


def legitimate_context(require_context: Mapping[str, str]) -> dict[str, str]:
    """The request context of a caller that follows a rewritten policy: over TLS, with the encryption context it
    requires. Refusing plain HTTP and calls without that context is what a rewrite is for, not a loss."""
    return {"aws:SecureTransport": "true", **{f"kms:EncryptionContext:{k}": v for k, v in require_context.items()}}


def _covers(removal: Removal, who: Iterable[str], star_covers_classes: bool = True) -> bool:
    """Does the removal name one of ``who``: a principal's ARN or an aggregate (``account:ID``, ``org:ID``,
    ``*``), as effective access and the key-policy diff's caller classes name them? In effective access a removed
    ``"*"`` explains what any account or organisation loses through it; in the key-policy view
    (``star_covers_classes=False``) it explains only the loss of ``*`` itself: the diff's ``account:ID`` classes
    include the key's own account, whose loss a removed public statement must never hide."""
    for w in who:
        star = removal.principal == "*" and (w == "*" or (star_covers_classes and w.startswith(("account:", "org:"))))
        if removal.principal == w or star:
            return True
        if is_root(removal.principal):
            acct = account_of(removal.principal)
            if w == f"account:{acct}" or account_of(w) == acct:
                return True
    return False


def meant(removals: Sequence[Removal], who: Iterable[str], action: str, star_covers_classes: bool = True) -> bool:
    """Does a removal the rewrite meant explain that ``who`` (one principal, with the roles it reached the key
    through) loses ``action``? One rule for effective access and the key-policy diff (``_covers``)."""
    wanted, names = canonical_action(action).lower(), set(who)
    return any(
        ("*" in r.actions or wanted in {canonical_action(a).lower() for a in r.actions})
        and _covers(r, names, star_covers_classes)
        for r in removals
    )


# --- effective access -----------------------------------------------------------------------------------------


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
    return sorted(p for p in access.principals(PUT_KEY_POLICY) if not p.startswith("service:"))


def _intended(principal: str, action: str, answer: PrincipalAccess, removals: Sequence[Removal]) -> bool:
    """A loss through a role whose access was removed on purpose is meant too: the chain counts."""
    return meant(removals, {principal, *(c for p in answer.paths for c in p.chain)}, action)


def access_changes(
    evaluator: AccessEvaluator,
    key: Key,
    new_policy: str,
    removals: Sequence[Removal] = (),
    actions: Sequence[str] = WHO_CAN_ACTIONS,
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


def effective_change(
    snapshot: Snapshot,
    evaluator: Callable[[], AccessEvaluator],
    key: Key,
    new_policy: str,
    removals: Sequence[Removal] = (),
) -> AccessImpact | str:
    """``access_changes`` for ``key`` of ``snapshot``, or why it cannot be judged: then the key-policy diff is
    the answer. ``evaluator`` makes (or reuses) the snapshot's evaluator, only when it is needed."""
    why = not_judged_reason(snapshot, key.account)
    if why is not None:
        return why
    try:
        return access_changes(evaluator(), key, new_policy, removals)
    except Exception as e:  # the key-policy diff still answers, and decides the lock-out
        return f"effective access could not be evaluated: {e}"


# --- one change, both views ------------------------------------------------------------------------------------


@dataclass
class ChangeImpact:
    """Who gains and loses what by one key-policy change: the key-policy diff, and effective access or why it
    was not judged (``access``); ``removals`` the access the change takes away on purpose."""

    key_policy: PolicyDiff
    access: AccessImpact | str
    removals: tuple[Removal, ...] = ()

    @property
    def judged(self) -> bool:
        return isinstance(self.access, AccessImpact)

    @property
    def lockout(self) -> bool:
        """The lock-out guard: nobody could call kms:PutKeyPolicy afterwards, by the key-policy diff or by
        effective access."""
        return self.key_policy.admin_lockout or (isinstance(self.access, AccessImpact) and self.access.lockout)

    @property
    def lost(self) -> list[AccessChange] | list[KeyPolicyChange]:
        return self.access.lost if isinstance(self.access, AccessImpact) else self.key_policy.lost

    @property
    def gained(self) -> list[AccessChange] | list[KeyPolicyChange]:
        return self.access.gained if isinstance(self.access, AccessImpact) else self.key_policy.gained

    def unintended(self) -> list[dict[str, str]]:
        """The key-policy diff's losses no removal explains, once per principal (or class) and action. A loss
        the solver could not rule out counts too (``undecided``): a safety check never passes on a gap."""
        found = {(c.subject, canonical_action(c.action)): "" for c in self.key_policy.lost}
        for who, action in self.key_policy.uncertain_losses:
            found.setdefault((who, action), "the solver could not decide it")
        return [
            {"principal": who, "action": action} | ({"undecided": why} if why else {})
            for (who, action), why in found.items()
            if not meant(self.removals, (who,), action, star_covers_classes=False)
        ]

    def effective_access(self) -> dict[str, Any]:
        if isinstance(self.access, AccessImpact):
            return self.access.to_dict()
        return {"judged": False, "reason": self.access}


def change_impact(
    old: str,
    new: str,
    key_arn: str,
    account: str,
    access: AccessImpact | str,
    removals: Sequence[Removal] = (),
    context: Mapping[str, str] | None = None,
) -> ChangeImpact:
    """The change from ``old`` to ``new`` on the key: its key-policy diff (about requests with ``context``, when
    given) beside ``access``, the effective access the caller judged (``access_changes``) or why it could not."""
    diff = diff_policies(old, new, account, key_arn=key_arn, context=context)
    return ChangeImpact(diff, access, tuple(removals))
