"""The AWS side of each action kind: read the current state, change it, restore a prior state.

Each kind is one small class with the same four methods, so apply, verify and rollback treat them alike:

- ``read``: the live state, in the shape the journal stores as ``prior`` (for a key policy the exact text
  GetKeyPolicy returns, so that rollback can put it back byte for byte);
- ``as_planned``: the live state is still the one the plan was made from (else the action is skipped, never
  written over someone else's change);
- ``done``: the live state is already the target (applying again would change nothing);
- ``apply`` / ``restore``.

Actions arrive as their JSON form (``Action.to_dict()`` plus ``detail``) so that rollback can run from a
journal alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import ClientError

from kmsguard.aws.session import AccountSession

ActionDict = dict[str, Any]


class Kind(Protocol):
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]: ...
    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool: ...
    def done(self, current: dict[str, Any], a: ActionDict) -> bool: ...
    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None: ...
    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None: ...


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
        if prior["rotation_enabled"]:
            kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=int(prior["rotation_period_days"] or 365))
        else:
            kms.disable_key_rotation(KeyId=key)


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


class CancelDeletion:
    def read(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> dict[str, Any]:
        md = _kms(a, s).describe_key(KeyId=_key_id(a, detail))["KeyMetadata"]
        when = md.get("DeletionDate")
        return {"key_state": md.get("KeyState"), "deletion_date": when.isoformat() if when else None}

    def as_planned(self, current: dict[str, Any], a: ActionDict) -> bool:
        return current["key_state"] == "PendingDeletion"

    def done(self, current: dict[str, Any], a: ActionDict) -> bool:
        return current["key_state"] == "Enabled"

    def apply(self, a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        kms, key = _kms(a, s), _key_id(a, detail)
        kms.cancel_key_deletion(KeyId=key)
        kms.enable_key(KeyId=key)  # a cancelled key comes back Disabled

    def restore(self, prior: dict[str, Any], a: ActionDict, detail: dict[str, Any], s: AccountSession) -> None:
        # KMS takes a waiting period, not a date: the original date cannot be restored exactly, only the
        # shortest allowed wait (7 days) - a later deletion date than before, never an earlier one.
        _kms(a, s).schedule_key_deletion(KeyId=_key_id(a, detail), PendingWindowInDays=7)


KINDS: dict[str, Kind] = {
    "enable_rotation": Rotation(),
    "tighten_key_policy": KeyPolicy(),
    "set_s3_default_encryption": S3DefaultEncryption(),
    "set_secret_kms_key": SecretKey(),
    "set_ebs_default_key": EbsDefaultKey(),
    "cancel_key_deletion": CancelDeletion(),
}
