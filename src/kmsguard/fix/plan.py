"""The remediation plan: what ``kmsguard fix`` would change, what it refuses to change, and what it leaves to
a person (the migration steps of resources that cannot be re-keyed in place).

``Plan.to_dict()`` is the stable JSON contract of ``kmsguard fix --format json``:
``{"actions": [{"action", "check_id", "account", "region", "resource_arn", "before", "after", "impact"}],
"refused": [...], "manual": [...]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ActionKind = Literal[
    "enable_rotation",
    "tighten_key_policy",
    "set_s3_default_encryption",
    "set_secret_kms_key",
    "set_ebs_default_key",
    "cancel_key_deletion",
]
# Every action kind that writes a key policy: the ones checked for concurrent changes before applying.
POLICY_ACTIONS: frozenset[str] = frozenset({"tighten_key_policy"})


@dataclass
class Action:
    action: ActionKind
    check_id: str  # the check the action fixes; several for a policy rewrite: comma-separated, sorted
    account: str
    region: str
    resource_arn: str
    before: dict[str, Any]
    after: dict[str, Any]
    impact: dict[str, Any] = field(default_factory=dict)
    # Not in the JSON contract: what apply needs that the user need not see (key id, the removals, ...).
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "check_id": self.check_id,
            "account": self.account,
            "region": self.region,
            "resource_arn": self.resource_arn,
            "before": self.before,
            "after": self.after,
            "impact": self.impact,
        }

    @property
    def check_ids(self) -> list[str]:
        return self.check_id.split(",")


@dataclass
class Refusal:
    check_id: str
    account: str
    region: str
    resource_arn: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "account": self.account,
            "region": self.region,
            "resource_arn": self.resource_arn,
            "reason": self.reason,
        }


@dataclass
class Manual:
    """A resource kmsguard will not re-key itself: the exact steps a person runs instead."""

    check_id: str
    account: str
    region: str
    resource_arn: str
    steps: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "account": self.account,
            "region": self.region,
            "resource_arn": self.resource_arn,
            "steps": self.steps,
        }


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    manual: list[Manual] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": [a.to_dict() for a in self.actions],
            "refused": [r.to_dict() for r in self.refused],
            "manual": [m.to_dict() for m in self.manual],
        }

    @property
    def empty(self) -> bool:
        return not self.actions
