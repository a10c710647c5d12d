"""Findings: the judgement of one check on one resource, account or region."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    FAIL = "FAIL"
    PASS = "PASS"
    ERROR = "ERROR"  # the check could not judge: something it needs was not readable
    MUTED = "MUTED"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


def region_arn(partition: str, account: str, region: str) -> str:
    """The resource ARN of an account/region-level finding: ``arn:aws:::<account>:<region>``.

    Not a real AWS ARN (there is none for "the audit set-up of this region"), but ARN-shaped so that
    tools keyed on resource ARNs group and de-duplicate it. ``region`` is "global" for account-wide ones.
    """
    return f"arn:{partition}:::{account}:{region}"


def is_region_arn(arn: str) -> bool:
    """True for the ``arn:<partition>:::<account>:<region>`` pseudo-ARN of account/region findings."""
    from kmsguard.arn import parse as parse_arn

    parsed = parse_arn(arn)
    return parsed is not None and not parsed.service and not parsed.region


class FindingLocation(BaseModel):
    """Where an IaC finding's resource is written (``kmsguard iac``): the file relative to the scanned root,
    the 1-based line its declaration starts on, and its CloudFormation logical id or Terraform address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    line: int
    resource: str


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: str
    status: Status
    severity: Severity
    account: str
    region: str
    resource_type: str
    resource_arn: str
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str = ""
    # framework id -> control ids, e.g. {"nist-800-171": ["3.13.10"], "cmmc-l2": ["SC.L2-3.13.10"]}
    compliance: dict[str, list[str]] = Field(default_factory=dict)
    mute_reason: str | None = None
    # Only on findings about templates (`kmsguard iac`); absent from a live scan's outputs.
    location: FindingLocation | None = None

    @property
    def failing(self) -> bool:
        return self.status is Status.FAIL
