"""The trail family in the check registry: stable ids, titles, severities, remediation, compliance topics.

Trail findings come from CloudTrail logs, not from a Snapshot, so each registered function yields nothing
when a scan runs it: the registry entry is what gives the ids their title, default severity, remediation and
compliance ids in every output format and in ``kmsguard checks``. The findings themselves are built by
``kmsguard.trail.findings`` through ``make_finding`` below. Importing this module registers the family;
nothing imports it for a scan without ``--trail``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kmsguard.checks.registry import REGISTRY, CheckSpec, Result, check
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding, Severity, Status

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Snapshot


FAMILY = "trail"
KEY = "AWS::KMS::Key"


def _from_logs(snapshot: Snapshot, config: ScanConfig) -> Iterable[Result]:
    return ()


_SPECS: list[tuple[str, str, Severity, str, str, tuple[str, ...]]] = [
    (
        "trail_key_deletion_scheduled",
        "A key was scheduled for deletion",
        Severity.HIGH,
        "Deleting a key makes everything encrypted under it unreadable; scheduling deletion is a ransomware and "
        "sabotage move, and the waiting period is the only chance to stop it.",
        "Confirm the deletion was intended; otherwise run kms:CancelKeyDeletion and re-enable the key, then find "
        "out who had kms:ScheduleKeyDeletion.",
        ("key_not_pending_deletion", "key_usage_anomalies"),
    ),
    (
        "trail_key_disabled",
        "A key was disabled",
        Severity.MEDIUM,
        "A disabled key stops every workload that decrypts with it.",
        "Confirm the change was intended; otherwise run kms:EnableKey.",
        ("key_enabled", "key_usage_anomalies"),
    ),
    (
        "trail_policy_widened",
        "A key policy change widened access",
        Severity.HIGH,
        "A PutKeyPolicy that admits new principals, other accounts or everyone is how attackers keep access to "
        "data, and how mistakes expose it.",
        "Review the change (evidence lists the access gained); restore the previous policy if it was not intended.",
        ("key_policy_least_privilege", "key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_grant_external",
        "A grant was created for a principal outside the key's account",
        Severity.HIGH,
        "Grants give use of a key without appearing in its policy; one to another account is a quiet way out.",
        "Confirm the grantee is trusted; otherwise retire or revoke the grant (kms:RevokeGrant).",
        ("key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_rotation_disabled",
        "Automatic rotation was disabled on a key",
        Severity.MEDIUM,
        "Rotation limits how much data one key version protects; turning it off is a compliance regression.",
        "Run kms:EnableKeyRotation on the key.",
        ("rotation_enabled", "key_usage_anomalies"),
    ),
    (
        "trail_alias_deleted",
        "An alias was deleted",
        Severity.LOW,
        "Applications that name keys by alias fail, or silently use another key if the alias is re-created.",
        "Confirm the change was intended; re-create the alias on the right key if not.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_key_material_imported",
        "Key material was imported",
        Severity.MEDIUM,
        "Imported material is outside AWS's durability guarantees, and an attacker who controls it controls the data.",
        "Confirm who imported the material and where its copy is kept.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_key_material_deleted",
        "Imported key material was deleted",
        Severity.HIGH,
        "Deleting imported material makes the key unusable at once, with no waiting period.",
        "Re-import the same key material if it is still held; find out who called DeleteImportedKeyMaterial.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_decrypt_failure_burst",
        "A burst of failed calls on a key",
        Severity.MEDIUM,
        "Many AccessDenied or other errors on one key in a few minutes is someone probing for access, or a "
        "workload that broke (the guide's alarm fires above 5 in 5 minutes).",
        "Look at the principals and error codes in the evidence; block the caller or fix the workload.",
        ("key_usage_anomalies", "metric_filters_and_alarms"),
    ),
    (
        "trail_usage_spike",
        "Key use far above its own hourly baseline",
        Severity.MEDIUM,
        "A sudden surge of Decrypt or GenerateDataKey calls is what bulk exfiltration looks like.",
        "Check who made the calls in the spike hour and whether a job explains them.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_new_principal",
        "A principal or account used a key for the first time",
        Severity.LOW,
        "A key's users are usually a stable set; a newcomer after the learning period deserves a look.",
        "Confirm the principal (or account) should use this key; tighten the key policy if not.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_cross_account_use",
        "A key was used from another account",
        Severity.MEDIUM,
        "Use from outside the key's account crosses a trust boundary.",
        "Confirm the account is trusted (add it to trusted_accounts); remove its access otherwise.",
        ("key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_foreign_environment",
        "A key was used for a resource of another environment",
        Severity.MEDIUM,
        "Keys are per environment; a production key protecting a development resource (or the reverse) breaks "
        "the isolation the tags promise.",
        "Use a key of the resource's own environment.",
        ("environment_isolation", "key_usage_anomalies"),
    ),
    (
        "trail_use_not_allowed_by_policy",
        "A key was used by a principal its key policy does not allow",
        Severity.HIGH,
        "A successful call that the key policy (as the policy engine reads it) does not allow means a grant, an "
        "out-of-date policy copy, or a policy the scan misreads; each needs an explanation.",
        "Find what allowed the call (grants, the policy at the time) and remove that access if it is not intended.",
        ("key_policy_least_privilege", "key_usage_anomalies"),
    ),
    (
        "trail_logs_unreadable",
        "CloudTrail log files could not be read",
        Severity.MEDIUM,
        "The events of a log file that cannot be read are missing from every trail finding and from the key usage: "
        "whatever they recorded goes unseen.",
        "Fix what the reason names (s3:GetObject on the bucket and kms:Decrypt on its key for S3 errors; copy a "
        "truncated or corrupt file again) and re-run: files that failed are read again on every run.",
        ("key_usage_anomalies",),
    ),
    (
        "key_unused",
        "A customer managed key has not been used",
        Severity.LOW,
        "A key nobody uses still costs money and still decrypts old data for whoever can call it.",
        "Confirm the key is not needed (old ciphertext may still need it), disable it, then schedule deletion.",
        ("unused_keys",),
    ),
]

for _id, _title, _sev, _why, _fix, _topics in _SPECS:
    if _id not in REGISTRY:  # re-import safe (tests reload modules)
        check(
            _id,
            title=_title,
            severity=_sev,
            family=FAMILY,
            rationale=_why,
            remediation=_fix,
            topics=_topics,
            live_only=True,  # judged from CloudTrail logs, never from a template
        )(_from_logs)

TRAIL_CHECK_IDS = tuple(s[0] for s in _SPECS)


def spec(check_id: str) -> CheckSpec:
    return REGISTRY[check_id]


def make_finding(
    check_id: str,
    *,
    account: str,
    region: str,
    resource_arn: str,
    message: str,
    evidence: dict[str, Any],
    severity: Severity | None = None,
    config: ScanConfig | None = None,
    resource_type: str = KEY,
    status: Status = Status.FAIL,
) -> Finding:
    """A finding for a trail check (FAIL, or ERROR when the check could not judge), completed from its registry
    entry like the scan's findings."""
    s = REGISTRY[check_id]
    overrides = config.severity_overrides if config else {}
    return Finding(
        check_id=check_id,
        status=status,
        severity=severity or overrides.get(check_id, s.severity),
        account=account,
        region=region,
        resource_type=resource_type,
        resource_arn=resource_arn,
        message=message,
        evidence=evidence,
        remediation=s.remediation,
        compliance=s.compliance,
    )
