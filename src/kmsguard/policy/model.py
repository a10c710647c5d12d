"""The normalised policy model every part of the engine works on (the contract between its modules).

Normalisation rules (normalize.py produces these; nothing else constructs them from raw JSON):
- Single values become tuples; a missing optional block becomes None (not an empty tuple), because
  "no Resource element" and "Resource: []" differ.
- Principals: ``"*"`` and ``{"AWS": "*"}`` -> Principal("AWS", "*"); a 12-digit account id
  ``"123456789012"`` -> Principal("AWS", "arn:aws:iam::123456789012:root"); service, federated and
  canonical-user principals keep their kind. ARN values are kept verbatim otherwise.
- Actions are lower-cased ("kms:decrypt", "kms:*", "*"): IAM matches action names case-insensitively.
- Condition keys are lower-cased (case-insensitive in IAM); condition values keep their case
  (StringEquals is case-sensitive, StringEqualsIgnoreCase is not). The operator is split into its
  base name, an ``IfExists`` flag and an optional set operator (ForAnyValue / ForAllValues).
- Request.context keys are lower-cased too, and every value is a tuple (multi-valued keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

PrincipalKind = Literal["AWS", "Service", "Federated", "CanonicalUser"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    value: str  # "*" for everyone of that kind

    @property
    def is_wildcard(self) -> bool:
        return self.value == "*"


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # base operator as AWS spells it: "StringEquals", "ArnLike", "Bool", "Null", ...
    key: str  # lower-cased condition key: "aws:principalorgid", "kms:callerAccount" -> "kms:calleraccount"
    values: tuple[str, ...]  # booleans and numbers as their JSON text ("true", "10")
    if_exists: bool = False
    set_op: Literal["ForAnyValue", "ForAllValues"] | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    index: int  # position in the policy's Statement list (0-based)
    sid: str | None
    effect: Literal["Allow", "Deny"]
    # Exactly one of principals / not_principals is set in a key policy; both None in an identity policy.
    principals: tuple[Principal, ...] | None = None
    not_principals: tuple[Principal, ...] | None = None
    # Exactly one of actions / not_actions is set.
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    # At most one of resources / not_resources is set (key policies normally say Resource "*").
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    kind: Literal["key", "identity"]
    version: str | None
    statements: tuple[Statement, ...]
    id: str | None = None


@dataclass(frozen=True)
class Request:
    """One request to KMS, as the evaluator sees it."""

    # An IAM ARN (role, user, root, assumed-role session, federated user) or "service:NAME" for a service
    # principal, e.g. "service:logs.us-east-1.amazonaws.com".
    principal: str
    action: str  # "kms:Decrypt" (any case)
    resource: str  # the key ARN
    principal_account: str | None = None  # derived from the ARN when None
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-cased keys


class Decision(StrEnum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


@dataclass(frozen=True)
class EvaluationResult:
    decision: Decision
    matched_statements: tuple[int, ...]  # indexes of statements that applied (the deciding ones first)
    # Why a root-delegation Allow did or did not carry: "iam_allows", "iam_not_given", ... (free text).
    notes: tuple[str, ...] = ()
