"""Checks of the resource family: what key each data store is encrypted under, and whether that key works.

Keys are looked up by ARN in an index built once per check run (the snapshot may hold tens of thousands
of keys and resources). A resource's ``key_arn`` is what the collector resolved its key id, alias or ARN
to; when it is missing only ``key_ref`` (as the service reported it) is left to go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kmsguard.arn import account_of
from kmsguard.checks.registry import Result, check, region_result, resource_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Resource, Snapshot


_AWS_ALIAS_PREFIX = "alias/aws/"


def index_keys(snapshot: Snapshot) -> dict[str, Key]:
    """Key ARN -> Key, over every account and region of the snapshot."""
    return {k.arn: k for k in snapshot.all_keys()}


def _resources(snapshot: Snapshot) -> Iterator[Resource]:
    for acct in snapshot.accounts:
        for reg in acct.regions:
            yield from reg.resources


def _alias_in_ref(ref: str | None) -> str | None:
    """The alias name in a key reference ("alias/aws/s3" or "arn:aws:kms:...:alias/aws/s3"), if any."""
    if not ref:
        return None
    if ref.startswith("alias/"):
        return ref
    head, sep, tail = ref.partition(":alias/")
    return f"alias/{tail}" if sep and head.startswith("arn:") else None


def _aws_managed_alias(key: Key | None, ref: str | None, service: str) -> str | None:
    """The alias of the AWS managed key in use, or None when the key is not AWS managed (or unknown)."""
    ref_alias = _alias_in_ref(ref)
    if key is not None and key.is_aws_managed:
        named = next((a for a in key.aliases if a.startswith(_AWS_ALIAS_PREFIX)), None)
        return named or (ref_alias if ref_alias and ref_alias.startswith(_AWS_ALIAS_PREFIX) else f"alias/aws/{service}")
    # A reference to alias/aws/... is an AWS managed key by construction, even when the key itself was not
    # found in the snapshot (emulators have no AWS managed keys; a scan may not have listed it).
    if ref_alias and ref_alias.startswith(_AWS_ALIAS_PREFIX):
        return ref_alias
    return None


def _arn_account(arn: str) -> str | None:
    return account_of(arn)


def _describe(res: Resource) -> str:
    return f"{res.service} {res.resource_type.rsplit('::', 1)[-1]} {res.name}"


# --- AWS managed keys ----------------------------------------------------------------------------------------


@check(
    "resource_uses_aws_managed_key",
    title="Data is encrypted under an AWS managed key",
    severity=Severity.MEDIUM,
    family="resource",
    rationale="An AWS managed key (aws/s3, aws/ebs, ...) has a policy nobody can change, a fixed rotation "
    "schedule and no cross-account control; sensitive data needs a customer managed key (CMMC expects one). "
    "High severity where the resource is tagged sensitive (sensitivity_tag with one of sensitive_values).",
    remediation="Create a customer managed key and re-encrypt under it, e.g. S3: aws s3api put-bucket-encryption "
    "--bucket <bucket> --server-side-encryption-configuration "
    '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"<key-arn>"}}]}\'; '
    "EBS default: aws ec2 modify-ebs-default-kms-key-id --kms-key-id <key-arn>; RDS/EBS volumes: copy the "
    "snapshot with --kms-key-id <key-arn> and restore from it.",
    topics=["cmk_in_use_for_sensitive_data"],
    fixer="rekey_resource",
)
def resource_uses_aws_managed_key(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    keys = index_keys(snapshot)
    for res in _resources(snapshot):
        if res.encryption != "kms":
            continue  # unencrypted, AWS owned or unknown: resource_not_kms_encrypted judges those
        yield _judge_managed(res, keys, config)
    yield from _ebs_default_keys(snapshot, keys)


def _judge_managed(res: Resource, keys: dict[str, Key], config: ScanConfig) -> Result:
    key = keys.get(res.key_arn) if res.key_arn else None
    alias = _aws_managed_alias(key, res.key_ref, res.service)
    sensitive = config.is_sensitive(res.tags)
    evidence: dict[str, object] = {"key_ref": res.key_ref, "key_arn": res.key_arn, "sensitive": sensitive}
    if alias is not None:
        evidence["aws_managed_alias"] = alias
        return resource_result(
            res,
            Status.FAIL,
            f"{_describe(res)} is encrypted with the AWS managed key {alias}"
            + (" although it is tagged sensitive" if sensitive else ""),
            evidence,
            Severity.HIGH if sensitive else Severity.MEDIUM,
        )
    if key is not None and key.is_customer_managed:
        return resource_result(res, Status.PASS, f"{_describe(res)} uses customer managed key {key.display_name}")
    if key is None and res.key_arn and _arn_account(res.key_arn) not in (None, res.account):
        # AWS managed keys cannot be used from another account, so a foreign key is customer managed.
        return resource_result(
            res, Status.PASS, f"{_describe(res)} uses a key in account {_arn_account(res.key_arn)}", evidence
        )
    reason = "its key could not be resolved" if key is None else "its key's manager could not be read"
    return resource_result(res, Status.ERROR, f"{_describe(res)}: {reason} ({res.key_ref or res.key_arn})", evidence)


def _ebs_default_keys(snapshot: Snapshot, keys: dict[str, Key]) -> Iterator[Result]:
    """The region's EBS default key: every new volume lands under it when default encryption is on."""
    for acct in snapshot.accounts:
        for reg in acct.regions:
            if not reg.ebs_encryption_by_default:
                continue
            key = keys.get(reg.ebs_default_key_arn) if reg.ebs_default_key_arn else None
            alias = _aws_managed_alias(key, reg.ebs_default_key_ref, "ebs")
            evidence = {"ebs_default_key_ref": reg.ebs_default_key_ref, "ebs_default_key_arn": reg.ebs_default_key_arn}
            if alias is not None:
                msg = f"EBS default encryption uses the AWS managed key {alias}: every new volume lands under it"
                yield region_result(acct.partition, acct.account_id, reg.region, Status.FAIL, msg, evidence)
            elif key is not None and key.is_customer_managed:
                msg = f"EBS default encryption uses customer managed key {key.display_name}"
                yield region_result(acct.partition, acct.account_id, reg.region, Status.PASS, msg, evidence)


# --- not encrypted with KMS ------------------------------------------------------------------------------------


@check(
    "resource_not_kms_encrypted",
    title="Data is not encrypted with a KMS key",
    severity=Severity.MEDIUM,
    family="resource",
    rationale="Unencrypted data has no protection at rest (high severity when tagged sensitive). Data under an "
    "AWS owned key (SSE-S3, DynamoDB's default) is encrypted, but nobody can see or control who uses that key, "
    "and its use leaves no CloudTrail record in the account: low severity, medium when tagged sensitive.",
    remediation="Turn on SSE-KMS with a customer managed key, e.g. S3: aws s3api put-bucket-encryption --bucket "
    "<bucket> ... SSEAlgorithm aws:kms; DynamoDB: aws dynamodb update-table --table-name <table> "
    "--sse-specification Enabled=true,SSEType=KMS,KMSMasterKeyId=<key-arn>; SQS: aws sqs set-queue-attributes "
    "--queue-url <url> --attributes KmsMasterKeyId=<key-arn>; SNS: aws sns set-topic-attributes --topic-arn "
    "<arn> --attribute-name KmsMasterKeyId --attribute-value <key-arn>; EBS/RDS: copy a snapshot with "
    "--kms-key-id <key-arn> and restore.",
    topics=["cmk_in_use_for_sensitive_data"],
)
def resource_not_kms_encrypted(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for res in _resources(snapshot):
        sensitive = config.is_sensitive(res.tags)
        evidence = {"encryption": res.encryption, "sensitive": sensitive}
        if res.encryption == "kms":
            yield resource_result(res, Status.PASS, f"{_describe(res)} is encrypted with a KMS key", evidence)
        elif res.encryption == "none":
            sev = Severity.HIGH if sensitive else Severity.MEDIUM
            yield resource_result(res, Status.FAIL, f"{_describe(res)} is not encrypted at rest", evidence, sev)
        elif res.encryption == "aws-owned":
            sev = Severity.MEDIUM if sensitive else Severity.LOW
            msg = f"{_describe(res)} is encrypted with an AWS owned key: no key policy, rotation or audit trail"
            yield resource_result(res, Status.FAIL, msg, evidence, sev)
        else:
            yield resource_result(res, Status.ERROR, f"{_describe(res)}: its encryption could not be read", evidence)


# --- data under a dying key ----------------------------------------------------------------------------------------

# Key states in which data under the key cannot be decrypted. PendingDeletion and Disabled are the issue's
# "about to become unreadable"; the others are as unreadable today but usually transient (an import not
# done yet, a custom key store disconnected), hence high rather than critical.
_UNREADABLE_STATES: dict[str, Severity] = {
    "PendingDeletion": Severity.CRITICAL,
    "PendingReplicaDeletion": Severity.CRITICAL,
    "Disabled": Severity.CRITICAL,
    "PendingImport": Severity.HIGH,
    "Unavailable": Severity.HIGH,
}


@check(
    "resource_key_pending_deletion",
    title="Data is under a key that is pending deletion or disabled",
    severity=Severity.CRITICAL,
    family="resource",
    rationale="Data encrypted under a key pending deletion becomes unreadable for good when the waiting period "
    "ends; under a disabled key it is unreadable now. Either is an outage or data loss waiting to happen.",
    remediation="aws kms cancel-key-deletion --key-id <key-id> && aws kms enable-key --key-id <key-id> "
    "(or re-encrypt the resource under a live key before the deletion date)",
    topics=["key_not_pending_deletion", "key_enabled"],
)
def resource_key_pending_deletion(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    keys = index_keys(snapshot)
    scanned = {a.account_id for a in snapshot.accounts}
    for res in _resources(snapshot):
        if res.encryption != "kms":
            continue
        key = keys.get(res.key_arn) if res.key_arn else None
        if key is not None and key.key_state is not None:
            yield _judge_key_state(res, key)
        elif key is None and _aws_managed_alias(None, res.key_ref, res.service):
            # AWS managed keys can be neither disabled nor scheduled for deletion.
            yield resource_result(
                res, Status.PASS, f"{_describe(res)} uses an AWS managed key, which cannot be deleted"
            )
        else:
            yield _unknown_key(res, key, scanned)


def _judge_key_state(res: Resource, key: Key) -> Result:
    state = key.key_state
    evidence = {"key_arn": key.arn, "key_state": state}
    severity = _UNREADABLE_STATES.get(state or "")
    if severity is None:
        return resource_result(res, Status.PASS, f"{_describe(res)}: its key {key.display_name} is {state}", evidence)
    if key.deletion_date is not None:
        evidence["deletion_date"] = key.deletion_date.isoformat()
    msg = f"{_describe(res)} is under {key.display_name}, which is {state}: its data is (about to be) unreadable"
    return resource_result(res, Status.FAIL, msg, evidence, severity)


def _unknown_key(res: Resource, key: Key | None, scanned: set[str]) -> Result:
    evidence = {"key_ref": res.key_ref, "key_arn": res.key_arn}
    if key is not None:
        msg = f"{_describe(res)}: the state of its key {key.display_name} could not be read"
    elif res.key_arn:
        acct = _arn_account(res.key_arn)
        where = f" (account {acct} was not scanned)" if acct and acct not in scanned else ""
        msg = f"{_describe(res)}: its key {res.key_arn} is not in the snapshot{where}; its state is unknown"
    else:
        msg = f"{_describe(res)}: its key reference {res.key_ref!r} could not be resolved"
    return resource_result(res, Status.ERROR, msg, evidence)
