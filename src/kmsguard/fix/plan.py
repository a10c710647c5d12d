"""The remediation plan: what ``kmsguard fix`` would change, what it refuses to change, and what it leaves to
a person (the migration steps of resources that cannot be re-keyed in place).

``Plan.to_dict()`` is the stable JSON contract of ``kmsguard fix --format json``:
``{"actions": [{"action", "check_id", "check_ids", "account", "region", "resource_arn", "before", "after",
"impact"}], "refused": [{"check_id", "check_ids", ...}], "manual": [{"check_id", "check_ids", ...}]}``,
``check_ids`` a sorted list of the checks an entry answers (several for a key-policy rewrite). ``check_id`` holds
them comma-joined, as it did before ``check_ids`` existed: kept for one release so that scripts reading it keep
working (deprecated; docs/fix.md). A plan without ``check_ids`` (in a journal an earlier kmsguard wrote) is still
read: ``Action.from_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    check_ids: tuple[str, ...]  # the checks the action fixes, sorted; several for a key-policy rewrite
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
            **check_id_fields(self.check_ids),
            "account": self.account,
            "region": self.region,
            "resource_arn": self.resource_arn,
            "before": self.before,
            "after": self.after,
            "impact": self.impact,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Action:
        """An action as ``to_dict`` (and the journal's ``detail``) wrote it, or as kmsguard wrote it before
        ``check_ids`` (one ``check_id``, the ids comma-joined). TypeError or ValueError says what does not fit."""
        fields = dict(raw)
        old = fields.pop("check_id", None)  # the deprecated comma-joined form; check_ids wins when both are there
        if "check_ids" not in fields and old is not None:
            if not isinstance(old, str):
                raise ValueError("check_id is not text")
            fields["check_ids"] = old.split(",")
        ids = fields.get("check_ids")
        if not isinstance(ids, list | tuple) or not all(isinstance(c, str) for c in ids):
            raise ValueError("check_ids is not a list of text")
        fields["check_ids"] = tuple(ids)
        return cls(**fields)


def check_id_fields(ids: tuple[str, ...]) -> dict[str, Any]:
    """``check_ids``, and the deprecated comma-joined ``check_id`` beside it (one release, for scripts reading it)."""
    return {"check_id": ",".join(ids), "check_ids": list(ids)}


@dataclass
class Refusal:
    check_ids: tuple[str, ...]
    account: str
    region: str
    resource_arn: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **check_id_fields(self.check_ids),
            "account": self.account,
            "region": self.region,
            "resource_arn": self.resource_arn,
            "reason": self.reason,
        }


@dataclass
class Manual:
    """A resource kmsguard will not re-key itself: the exact steps a person runs instead."""

    check_ids: tuple[str, ...]
    account: str
    region: str
    resource_arn: str
    steps: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            **check_id_fields(self.check_ids),
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
