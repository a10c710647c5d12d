"""Re-simulate, with the policy engine, the accesses a key policy's existing principals had.

The guide's mistake "not testing key access after policy changes" is answered here: every principal the
old policy names (and the key account's root, which stands for everyone IAM delegates to) is asked, action by
action, against the old and the new policy. An access that was allowed and is no longer is a loss; a loss the
change meant (a ``Removal`` the tighten step recorded) is intended, any other is reported as unintended.

Requests are made the way a legitimate caller makes them: over TLS, from its own account, with the encryption
context a required-context change asks for. Principals of the key account are judged by the key policy alone
(their IAM policies could restore access and hide a key-policy loss); other accounts' principals are assumed
to have IAM permission, since that side is not ours to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kmsguard.policy.actions import KMS_ACTIONS, canonical_action
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision, Policy
from kmsguard.policy.normalize import parse_and_normalize, request
from kmsguard.policy.principals import account_of, named_principals, root_arn
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
    principals = [*sorted(p for p in named_principals(old) if account_of(p)), root_arn(account)]
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
