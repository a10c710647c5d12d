"""The AWS side of each action kind: read the current state, change it, restore a prior state.

Each kind is one small class with the same four methods, so apply, verify and rollback treat them alike:

- ``read``: the live state, in the shape the journal stores as ``prior`` (for a key policy the exact text
  GetKeyPolicy returns, so that rollback can put it back byte for byte);
- ``as_planned``: the live state is still the one the plan was made from (else the action is skipped, never
  written over someone else's change);
- ``done``: the live state is already the target (applying again would change nothing);
- ``apply`` / ``restore``;
- ``restore_text``: the concrete operation a restore carries out, in words, shown before rollback asks.

Actions arrive as their JSON form (``Action.to_dict()`` plus ``detail``) so that rollback can run from a
journal alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from kmsguard.arn import parse as parse_arn
from kmsguard.aws.session import AccountSession

ActionDict = dict[str, Any]


class Kind(Protocol):
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]: ...
    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool: ...
    def done(self, current: dict[str, Any], a: ActionDict) -> bool: ...
    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None: ...
    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None: ...
    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str: ...


def _kms(a: ActionDict, s: AccountSession) -> Any:
    return s.client("kms", a["region"])


def _key_id(a: ActionDict, detail: dict[str, Any]) -> str:
    return str(detail.get("key_id") or a["resource_arn"])


class Rotation:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        st = _kms(a, s).get_key_rotation_status(KeyId=_key_id(a, detail))
        enabled = bool(st["KeyRotationEnabled"])
        return {
            "rotation_enabled": enabled,
            "rotation_period_days": st.get("RotationPeriodInDays") if enabled else None,
        }

    @staticmethod
    def _state(state: dict[str, Any]) -> tuple[bool, Any]:
        enabled = bool(state.get("rotation_enabled"))
        return enabled, state.get("rotation_period_days") if enabled else None

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        # Someone may have changed rotation since the plan (a shorter period, say): never written over.
        return self._state(current) == self._state(a["before"])

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return (
            bool(current["rotation_enabled"]) and current["rotation_period_days"] == a["after"]["rotation_period_days"]
        )

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        days = int(a["after"]["rotation_period_days"])
        _kms(a, s).enable_key_rotation(KeyId=_key_id(a, detail), RotationPeriodInDays=days)

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        kms, key = _kms(a, s), _key_id(a, detail)
        enabled, days = self._state(prior)
        if enabled:
            kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=int(days or 365))
        else:
            kms.disable_key_rotation(KeyId=key)

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        return f"rotation of {a['resource_arn']}: {_rotation_words(current)} -> {_rotation_words(prior)}"


class KeyPolicy:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        return {"policy": _kms(a, s).get_key_policy(KeyId=_key_id(a, detail), PolicyName="default")["Policy"]}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        return bool(current["policy"] == a["before"]["policy"])

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return bool(current["policy"] == a["after"]["policy"])

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        _kms(a, s).put_key_policy(KeyId=_key_id(a, detail), PolicyName="default", Policy=a["after"]["policy"])

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        _kms(a, s).put_key_policy(KeyId=_key_id(a, detail), PolicyName="default", Policy=prior["policy"])

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        return f"put the key policy from before the fix on {a['resource_arn']} (diff below)"


def _rotation_words(state: dict[str, Any]) -> str:
    enabled, days = Rotation._state(state)
    return f"on, every {days} days" if enabled else "off"


def _key_words(ref: str | None) -> str:
    return ref or "the AWS managed key"


def _same_key(ref: str | None, other: str | None) -> bool:
    """Key references as services report them: the same key, or both unset/AWS managed."""
    return (ref or "") == (other or "") or (ref or "").endswith(f"/{(other or '').rsplit('/', 1)[-1]}")


class S3DefaultEncryption:
    def _rules_key(self, current: dict[str, Any]) -> str | None:
        config = current.get("configuration") or {}
        for rule in config.get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse"):
                return str(default.get("KMSMasterKeyID") or "alias/aws/s3")
        return None

    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        s3 = s.client("s3", a["region"])
        try:
            config = s3.get_bucket_encryption(Bucket=detail["name"])["ServerSideEncryptionConfiguration"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            config = None
        return {"configuration": config}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        return _same_key(self._rules_key(current), a["before"]["kms_key_id"] or "alias/aws/s3")

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return self._rules_key(current) == a["after"]["kms_key_id"]

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        rule = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": a["after"]["kms_key_id"],
            },
            "BucketKeyEnabled": True,
        }
        s.client("s3", a["region"]).put_bucket_encryption(
            Bucket=detail["name"], ServerSideEncryptionConfiguration={"Rules": [rule]}
        )

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        s3 = s.client("s3", a["region"])
        if prior["configuration"] is None:
            s3.delete_bucket_encryption(Bucket=detail["name"])
        else:
            s3.put_bucket_encryption(Bucket=detail["name"], ServerSideEncryptionConfiguration=prior["configuration"])

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        before = "no default encryption" if prior["configuration"] is None else _key_words(self._rules_key(prior))
        return f"default encryption of {a['resource_arn']}: {_key_words(self._rules_key(current))} -> {before}"


class SecretKey:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        described = s.client("secretsmanager", a["region"]).describe_secret(SecretId=a["resource_arn"])
        return {"kms_key_id": described.get("KmsKeyId")}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        return _same_key(current["kms_key_id"] or "alias/aws/secretsmanager", a["before"]["kms_key_id"])

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return bool(current["kms_key_id"] == a["after"]["kms_key_id"])

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        # Secrets Manager re-encrypts the current version under the new key; older versions keep theirs.
        s.client("secretsmanager", a["region"]).update_secret(
            SecretId=a["resource_arn"], KmsKeyId=a["after"]["kms_key_id"]
        )

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        s.client("secretsmanager", a["region"]).update_secret(
            SecretId=a["resource_arn"], KmsKeyId=prior["kms_key_id"] or "alias/aws/secretsmanager"
        )

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        was, now = prior["kms_key_id"] or "alias/aws/secretsmanager", current["kms_key_id"]
        return f"KMS key of secret {a['resource_arn']}: {_key_words(now)} -> {_key_words(was)}"


class EbsDefaultKey:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        return {"kms_key_id": s.client("ec2", a["region"]).get_ebs_default_kms_key_id().get("KmsKeyId")}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        return _same_key(current["kms_key_id"], a["before"]["kms_key_id"])

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return bool(current["kms_key_id"] == a["after"]["kms_key_id"])

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        s.client("ec2", a["region"]).modify_ebs_default_kms_key_id(KmsKeyId=a["after"]["kms_key_id"])

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        ec2 = s.client("ec2", a["region"])
        ref = prior["kms_key_id"]
        if not ref or ref == "alias/aws/ebs":
            ec2.reset_ebs_default_kms_key_id()
        else:
            ec2.modify_ebs_default_kms_key_id(KmsKeyId=ref)

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        was = prior["kms_key_id"] or "alias/aws/ebs"
        return f"EBS default key of {a['account']} in {a['region']}: {_key_words(current['kms_key_id'])} -> {was}"


# KMS's shortest waiting period: a cancelled deletion is re-scheduled with it (the original date cannot be given).
RESCHEDULE_DAYS = 7


class CancelDeletion:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        md = _kms(a, s).describe_key(KeyId=_key_id(a, detail))["KeyMetadata"]
        when = md.get("DeletionDate")
        return {"key_state": md.get("KeyState"), "deletion_date": when.isoformat() if when else None}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        # Only a deletion the plan saw scheduled is cancelled (and, by rollback, scheduled again).
        return bool(current["key_state"] == "PendingDeletion" == a["before"]["key_state"])

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return current["key_state"] == "Enabled"

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        kms, key = _kms(a, s), _key_id(a, detail)
        kms.cancel_key_deletion(KeyId=key)
        kms.enable_key(KeyId=key)  # a cancelled key comes back Disabled

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        # KMS takes a waiting period, not a date: the original date cannot be restored exactly, only the
        # shortest allowed wait - a later deletion date than before, never an earlier one.
        _kms(a, s).schedule_key_deletion(KeyId=_key_id(a, detail), PendingWindowInDays=RESCHEDULE_DAYS)

    def restore_text(self, prior: dict[str, Any], current: dict[str, Any], a: ActionDict) -> str:
        return (
            f"schedule deletion of {a['resource_arn']} in {RESCHEDULE_DAYS} days "
            f"(it is {current['key_state']} now; its deletion was cancelled by this journal's fix)"
        )


KINDS: dict[str, Kind] = {
    "enable_rotation": Rotation(),
    "tighten_key_policy": KeyPolicy(),
    "set_s3_default_encryption": S3DefaultEncryption(),
    "set_secret_kms_key": SecretKey(),
    "set_ebs_default_key": EbsDefaultKey(),
    "cancel_key_deletion": CancelDeletion(),
}

# Action kinds made of several AWS calls: when one fails after another succeeded, the change is partial.
MULTI_CALL = frozenset({"cancel_key_deletion"})
# Action kinds whose resource is a KMS key named by ``detail["key_id"]`` (or the ARN).
KEY_KINDS = frozenset({"enable_rotation", "tighten_key_policy", "cancel_key_deletion"})
_SERVICE = {
    "enable_rotation": "kms",
    "tighten_key_policy": "kms",
    "cancel_key_deletion": "kms",
    "set_s3_default_encryption": "s3",
    "set_secret_kms_key": "secretsmanager",
    "set_ebs_default_key": "",  # model.finding.region_arn: arn:<partition>:::<account>:<region>
}


def same_state(kind: str, prior: dict[str, Any], current: dict[str, Any]) -> bool:
    """Is ``current`` the journal's ``prior`` state (what restoring would give)?"""
    if kind == "cancel_key_deletion":  # KMS cannot be given a deletion date back, only a waiting period
        return bool(prior["key_state"] == current["key_state"])
    return prior == current


def target_problem(a: ActionDict, detail: dict[str, Any]) -> str | None:
    """Why the resource a journal entry names is not the one its calls would change, or None.

    A journal entry says the resource (ARN, account, region) and, apart, what the calls use (the key id, the
    bucket name): rollback refuses an entry where the two disagree, so a restore cannot act on another resource
    than the one it shows."""
    kind, arn = a["action"], str(a["resource_arn"])
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != _SERVICE[kind]:
        return f"{arn!r} is not the ARN of what {kind} changes"
    region, account, resource = parsed.region, parsed.account, parsed.resource
    if kind == "set_ebs_default_key":
        region, resource = resource, ""
    if account and account != a["account"]:
        return f"{arn} is in account {account}, the entry says {a['account']}"
    if region and region != a["region"]:
        return f"{arn} is in region {region}, the entry says {a['region']}"
    if kind in KEY_KINDS:
        key_id = resource.removeprefix("key/")
        if not resource.startswith("key/") or _key_id(a, detail) not in (arn, key_id):
            return f"the entry changes key {_key_id(a, detail)}, not {arn}"
    if kind == "set_s3_default_encryption" and detail.get("name") != resource:
        return f"the entry changes bucket {detail.get('name')!r}, not {arn}"
    return None
