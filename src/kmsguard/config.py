"""Scan configuration: the knobs checks read, the mute list and per-check options. Defaults are the guide's.

Every model forbids unknown keys, so a typo in kmsguard.yaml (``requierd_tags``) is an error naming the line
rather than a setting silently ignored.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kmsguard.model.finding import Severity
from kmsguard.mutes import Mute

# The range KMS accepts for RotationPeriodInDays.
ROTATION_DAYS_MIN, ROTATION_DAYS_MAX = 90, 2560


def _check_accounts(values: list[str]) -> list[str]:
    for v in values:
        if not re.fullmatch(r"\d{12}", v):
            raise ValueError(f"{v!r} is not a 12-digit AWS account id (quote it in YAML)")
    return values


def _check_orgs(values: list[str]) -> list[str]:
    for v in values:
        if not re.fullmatch(r"o-[a-z0-9]{10,32}", v):
            raise ValueError(f"{v!r} is not an AWS Organization id (o-...)")
    return values


def _check_rotation(v: int | None) -> int | None:
    if v is not None and not ROTATION_DAYS_MIN <= v <= ROTATION_DAYS_MAX:
        raise ValueError(f"must be between {ROTATION_DAYS_MIN} and {ROTATION_DAYS_MAX} days (the range KMS accepts)")
    return v


class CheckOptions(BaseModel):
    """``checks: {<check id>: {...}}`` in kmsguard.yaml: switch a check off, re-rate it, or give it its own knobs.

    The knobs are the ScanConfig settings a check reads; set here they apply to that check only (e.g. a
    stricter ``max_rotation_days`` for ``key_rotation_period_too_long`` without touching anything else).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    severity: Severity | None = None
    required_tags: list[str] | None = None
    max_rotation_days: int | None = None
    environment_tag: str | None = None
    sensitivity_tag: str | None = None
    sensitive_values: list[str] | None = None
    trusted_accounts: list[str] | None = None
    trusted_org_ids: list[str] | None = None

    @field_validator("max_rotation_days")
    @classmethod
    def _rotation(cls, v: int | None) -> int | None:
        return _check_rotation(v)

    @field_validator("trusted_accounts")
    @classmethod
    def _accounts(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_accounts(v)

    @field_validator("trusted_org_ids")
    @classmethod
    def _orgs(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_orgs(v)

    def knobs(self) -> dict[str, Any]:
        """The ScanConfig fields this entry overrides."""
        return {
            k: v
            for k, v in self.model_dump(exclude={"enabled", "severity"}).items()
            if v is not None and k in ScanConfig.model_fields
        }


# What Spark accepts as a master: local mode, a standalone cluster (one or more masters), YARN, Kubernetes.
SPARK_MASTER = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|yarn|k8s://\S+")


def check_spark_master(v: str) -> str:
    if not SPARK_MASTER.fullmatch(v):
        raise ValueError(f"{v!r} is not a Spark master (local[*], spark://HOST:PORT, yarn or k8s://URL)")
    return v


def check_spark_conf(v: dict[str, str]) -> dict[str, str]:
    for name in v:
        if not name.startswith("spark."):
            raise ValueError(f"{name!r} is not a Spark setting (they start with 'spark.')")
    return v


class SparkSettings(BaseModel):
    """``trail: {spark: {...}}`` in kmsguard.yaml: where ``trail analyze --engine spark`` runs."""

    model_config = ConfigDict(extra="forbid")

    master: str = "local[*]"
    # Any Spark setting (spark.executor.memory, spark.sql.shuffle.partitions ...); they win over kmsguard's own.
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _master(cls, v: str) -> str:
        return check_spark_master(v)

    @field_validator("conf", mode="before")
    @classmethod
    def _conf(cls, v: Any) -> Any:
        if isinstance(v, dict):  # YAML gives numbers and booleans; Spark takes every setting as text
            v = {k: str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}
            check_spark_conf(v)
        return v


class TrailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spark: SparkSettings = Field(default_factory=SparkSettings)


class LocalityRule(BaseModel):
    """``data_locality.<value>``: where keys whose sensitivity tag holds that value may keep their key material."""

    model_config = ConfigDict(extra="forbid")

    single_region: bool = True  # no multi-Region keys or replicas (the guide creates keys single-Region)
    regions: list[str] = Field(default_factory=list)  # the Regions allowed; empty: any

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", r)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an AWS Region name (e.g. us-east-1)")
        return v


# The guide's tagging standard for customer managed keys (its key creation step: "tags Environment,
# DataClassification, Owner, CostCenter"): key_missing_tags' default and what `provision key` requires.
GUIDE_TAGS: tuple[str, ...] = ("Environment", "DataClassification", "Owner", "CostCenter")


class ScanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The guide's tagging standard: every customer managed key carries these four (key_missing_tags).
    required_tags: list[str] = Field(default_factory=lambda: list(GUIDE_TAGS))
    # Allowed values per tag, e.g. {"Environment": ["Production", "Staging", "Development"]}
    # (key_tag_value_not_allowed); a tag not listed here may hold any value.
    tag_values: dict[str, list[str]] = Field(default_factory=dict)
    # key_data_locality: per value of sensitivity_tag (e.g. CUI), where such keys may be; values compared
    # case-insensitively, as sensitive_values are.
    data_locality: dict[str, LocalityRule] = Field(default_factory=dict)
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
    # key_decryptable_by_unintended: for keys tagged "TagName=Value", the principals allowed to decrypt, as
    # patterns ("arn:aws:iam::*:role/cui-*", "service:s3.amazonaws.com", "account:111122223333"; * and ?).
    decrypt_allowed: dict[str, list[str]] = Field(default_factory=dict)
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)
    checks: dict[str, CheckOptions] = Field(default_factory=dict)
    mutes: list[Mute] = Field(default_factory=list)
    trail: TrailSettings = Field(default_factory=TrailSettings)

    @field_validator("max_rotation_days")
    @classmethod
    def _rotation(cls, v: int) -> int:
        _check_rotation(v)
        return v

    @field_validator("trusted_accounts")
    @classmethod
    def _accounts(cls, v: list[str]) -> list[str]:
        return _check_accounts(v)

    @field_validator("trusted_org_ids")
    @classmethod
    def _orgs(cls, v: list[str]) -> list[str]:
        return _check_orgs(v)

    @field_validator("tag_values")
    @classmethod
    def _tag_values(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for tag, values in v.items():
            if not tag.strip():
                raise ValueError("a tag name is empty")
            if not values or not all(isinstance(x, str) and x.strip() for x in values):
                raise ValueError(f"{tag}: list the values it may hold (non-empty text), e.g. [Production, Staging]")
        return v

    @field_validator("decrypt_allowed")
    @classmethod
    def _decrypt_allowed(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for tag in v:
            if "=" not in tag or not tag.split("=", 1)[0]:
                raise ValueError(f"{tag!r}: a rule is keyed by TagName=Value, e.g. DataClassification=CUI")
        return v

    def is_sensitive(self, tags: dict[str, str]) -> bool:
        value = tags.get(self.sensitivity_tag)
        return value is not None and value.strip().lower() in self.sensitive_values

    def enabled(self, check_id: str) -> bool:
        opts = self.checks.get(check_id)
        return opts is None or opts.enabled

    def for_check(self, check_id: str) -> ScanConfig:
        """The configuration one check runs with: this one, with that check's own options laid over it."""
        opts = self.checks.get(check_id)
        if opts is None:
            return self
        update: dict[str, Any] = opts.knobs()
        if opts.severity is not None:
            update["severity_overrides"] = {**self.severity_overrides, check_id: opts.severity}
        return self.model_copy(update=update) if update else self
