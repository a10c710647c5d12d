"""What "a customer managed key to standard" is (the guide's): one spec, rendered to AWS calls or templates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kmsguard.policy.generate import generate_key_policy


@dataclass
class KeySpec:
    account: str
    alias: str  # "alias/..."
    admins: list[str]
    users: list[str]
    environment: str | None = None
    data_classification: str | None = None
    owner: str | None = None
    cost_center: str | None = None
    description: str | None = None
    rotation_days: int = 365
    multi_region: bool = False
    require_context: dict[str, str] = field(default_factory=dict)
    via_services: list[str] = field(default_factory=list)
    created: date = field(default_factory=date.today)

    def policy(self) -> dict[str, Any]:
        """The least-privilege policy (ValueError names a bad --admin/--user)."""
        return generate_key_policy(
            self.account,
            self.admins,
            self.users,
            via_services=self.via_services,
            encryption_context=self.require_context,
        )

    def policy_text(self) -> str:
        return json.dumps(self.policy(), indent=2)

    def full_description(self) -> str:
        base = self.description or f"{self.alias.removeprefix('alias/')} encryption key"
        return f"{base} (created {self.created.isoformat()} by kmsguard)"

    def tags(self) -> dict[str, str]:
        pairs = {
            "Environment": self.environment,
            "DataClassification": self.data_classification,
            "Owner": self.owner,
            "CostCenter": self.cost_center,
        }
        return {k: v for k, v in pairs.items() if v}
