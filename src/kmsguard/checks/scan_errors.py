"""scan_collection_error: everything the collector could not read becomes an ERROR finding.

A scan that silently skips what it cannot read reports a clean estate it never saw; this check makes
every CollectionError in the snapshot visible, on the object it concerns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kmsguard.checks.registry import Result, check
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status, region_arn

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import CollectionError, IamInventory, Snapshot


def _msg(e: CollectionError) -> str:
    what = f" {e.resource}" if e.resource else ""
    return f"could not read{what}: {e.service}:{e.operation} failed with {e.code}: {e.message}"


def _evidence(e: CollectionError) -> dict[str, str | None]:
    return {"service": e.service, "operation": e.operation, "code": e.code, "error": e.message, "resource": e.resource}


def _iam_errors(inv: IamInventory | None) -> Iterator[tuple[str, str, CollectionError]]:
    """(ARN, resource type, error) of every IAM document that could not be read, on its user, role, group or policy."""
    if inv is None:
        return
    for p in inv.principals:
        for e in p.errors:
            yield p.arn, "AWS::IAM::Role" if p.kind == "role" else "AWS::IAM::User", e
    for g in inv.groups:
        for e in g.errors:
            yield g.arn, "AWS::IAM::Group", e
    for m in inv.policies:
        for e in m.errors:
            yield m.arn, "AWS::IAM::ManagedPolicy", e


@check(
    "scan_collection_error",
    title="Part of the estate could not be read",
    severity=Severity.MEDIUM,
    family="scan",
    rationale="What a scan cannot read it cannot judge; an unreadable key or region is a blind spot.",
    remediation="Grant the scanning role read access (e.g. the AWS managed SecurityAudit policy plus "
    "kms:GetKeyPolicy, kms:GetKeyRotationStatus, kms:ListResourceTags, kms:ListGrants) and re-run.",
)
def scan_collection_error(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for acct in snapshot.accounts:
        for e in acct.errors:
            yield Result(
                Status.ERROR,
                acct.account_id,
                "global",
                "AWS::Account",
                region_arn(acct.partition, acct.account_id, "global"),
                _msg(e),
                _evidence(e),
            )
        for arn, resource_type, e in _iam_errors(acct.iam):
            yield Result(Status.ERROR, acct.account_id, "global", resource_type, arn, _msg(e), _evidence(e))
        for reg in acct.regions:
            for e in reg.errors:
                yield Result(
                    Status.ERROR,
                    acct.account_id,
                    reg.region,
                    "AWS::Account::Region",
                    e.resource or region_arn(acct.partition, acct.account_id, reg.region),
                    _msg(e),
                    _evidence(e),
                )
            for key in reg.keys:
                for e in key.errors:
                    yield Result(Status.ERROR, key.account, key.region, "AWS::KMS::Key", key.arn, _msg(e), _evidence(e))
            for res in reg.resources:
                for e in res.errors:
                    yield Result(
                        Status.ERROR, res.account, res.region, res.resource_type, res.arn, _msg(e), _evidence(e)
                    )
