"""KMS grants judged as access: who a grant lets in, and whether it is bounded.

A grant is a small allow-only policy attached to one key: a grantee principal, a list of operations and
optional constraints (EncryptionContextSubset / EncryptionContextEquals). Two things make one risky:

- external: the grantee is an IAM principal of an account outside the trusted set (a service principal,
  e.g. ``dynamodb.amazonaws.com``, is not external: AWS services act for resources in the key's account);
- broad: no encryption-context constraint while the operations include a way to read data or to hand the
  key on: kms:Decrypt, kms:ReEncryptFrom or kms:CreateGrant. AWS services' own grants carry constraints
  (EBS binds aws:ebs:id, for example), so an unconstrained decrypting grant is usually a hand-made one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kmsguard.policy.actions import permissions_of_event
from kmsguard.policy.principals import account_of

READ_OR_DELEGATE = frozenset({"decrypt", "reencryptfrom", "creategrant"})

# Operations that take an encryption context: the only ones a grant's constraints bind (API_GrantConstraints).
CONTEXT_OPERATIONS = frozenset(
    {
        "decrypt",
        "encrypt",
        "generatedatakey",
        "generatedatakeywithoutplaintext",
        "generatedatakeypair",
        "generatedatakeypairwithoutplaintext",
        "reencryptfrom",
        "reencryptto",
    }
)


@dataclass(frozen=True)
class GrantAssessment:
    external_account: str | None  # the grantee's account when it is outside the trusted set
    broad_operations: tuple[str, ...]  # read/delegate operations given without a constraint

    @property
    def risky(self) -> bool:
        return self.external_account is not None or bool(self.broad_operations)


def assess_grant(
    grantee: str,
    operations: Iterable[str],
    constraints: Mapping[str, Mapping[str, str]] | None,
    trusted_accounts: Iterable[str],
) -> GrantAssessment:
    acct = account_of(grantee)
    external = acct if acct is not None and acct not in set(trusted_accounts) else None
    ops = [op.removeprefix("kms:") for op in operations]
    broad = () if _bounded(constraints) else tuple(sorted(op for op in ops if op.lower() in READ_OR_DELEGATE))
    return GrantAssessment(external, broad)


def grant_covers(operations: Iterable[str], constraints: Mapping[str, Mapping[str, str]] | None, event: str) -> bool:
    """Whether a grant lets its grantee make a call CloudTrail logged as ``event`` (e.g. ``Decrypt``) when the call's
    encryption context is not known: the grant must give the operation and, for an operation that takes an
    encryption context, carry no constraint. A constraint not known to be met counts as not met, as the policy
    engine counts conditions on request context the log does not carry."""
    given = {op.removeprefix("kms:").lower() for op in operations}
    needed = [p.removeprefix("kms:").lower() for p in permissions_of_event(event)]
    bounded = _bounded(constraints)
    return any(op in given and not (bounded and op in CONTEXT_OPERATIONS) for op in needed)


def _bounded(constraints: Mapping[str, Mapping[str, str]] | None) -> bool:
    """Whether a grant's constraints bind anything (an empty EncryptionContextSubset binds nothing)."""
    return bool(constraints) and any(bool(v) for v in (constraints or {}).values())
