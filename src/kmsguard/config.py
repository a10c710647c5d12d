"""Scan configuration: the knobs checks read. Defaults are the guide's."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kmsguard.model.finding import Severity


class ScanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_tags: list[str] = Field(default_factory=lambda: ["Environment", "DataClassification", "Owner"])
    max_rotation_days: int = 365
    environment_tag: str = "Environment"
    # A resource tagged <sensitivity_tag> with one of these values (case-insensitive) holds sensitive data.
    sensitivity_tag: str = "DataClassification"
    sensitive_values: list[str] = Field(
        default_factory=lambda: ["cui", "confidential", "restricted", "sensitive", "secret", "pii", "phi", "pci"]
    )
    # Accounts and organisations whose principals are not "external" for key_policy_external_access.
    trusted_accounts: list[str] = Field(default_factory=list)
    trusted_org_ids: list[str] = Field(default_factory=list)
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)

    def is_sensitive(self, tags: dict[str, str]) -> bool:
        value = tags.get(self.sensitivity_tag)
        return value is not None and value.strip().lower() in self.sensitive_values
