"""Create a key to standard, or say how an existing one with the alias differs; then verify it.

Re-running with the same alias changes nothing: the alias names the key, and an existing key is only
compared with the standard (spec, usage, region scope, rotation, tags, policy), never modified.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from kmsguard.aws.errors import error_code
from kmsguard.aws.session import AccountSession
from kmsguard.provision.spec import KeySpec


@dataclass
class Provisioned:
    key_arn: str
    created: bool
    differences: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_arn": self.key_arn,
            "created": self.created,
            "status": "created" if self.created else "already provisioned",
            "differences": self.differences,
            "verification": self.checks,
        }


def _existing(kms: Any, alias: str) -> dict[str, Any] | None:
    try:
        return dict(kms.describe_key(KeyId=alias)["KeyMetadata"])
    except ClientError as e:
        if error_code(e)[0] == "NotFoundException":
            return None
        raise


def differences(kms: Any, md: dict[str, Any], spec: KeySpec) -> list[str]:
    out = []
    if md.get("KeySpec") != "SYMMETRIC_DEFAULT":
        out.append(f"key spec is {md.get('KeySpec')}, not SYMMETRIC_DEFAULT")
    if md.get("KeyUsage") != "ENCRYPT_DECRYPT":
        out.append(f"key usage is {md.get('KeyUsage')}, not ENCRYPT_DECRYPT")
    if bool(md.get("MultiRegion")) != spec.multi_region:
        out.append(f"multi-region is {bool(md.get('MultiRegion'))}, asked {spec.multi_region}")
    if md.get("KeyState") != "Enabled":
        out.append(f"key state is {md.get('KeyState')}")
    rot = kms.get_key_rotation_status(KeyId=md["KeyId"])
    if not rot.get("KeyRotationEnabled"):
        out.append("automatic rotation is off")
    elif rot.get("RotationPeriodInDays") != spec.rotation_days:
        out.append(f"rotation period is {rot.get('RotationPeriodInDays')} days, asked {spec.rotation_days}")
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=md["KeyId"]).get("Tags", [])}
    for k, v in spec.tags().items():
        if tags.get(k) != v:
            out.append(f"tag {k} is {tags.get(k)!r}, asked {v!r}")
    policy = json.loads(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
    if policy != spec.policy():
        out.append("the key policy differs from the one generated from --admin/--user")
    return out


def verify(kms: Any, key_id: str, spec: KeySpec) -> dict[str, bool]:
    """Describe, rotation status, and an encrypt/decrypt round trip (with the required context, if any)."""
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    rot = kms.get_key_rotation_status(KeyId=key_id)
    plaintext = b"kmsguard provision round trip"
    ctx = dict(spec.require_context)
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=ctx)["CiphertextBlob"]
    back = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=key_id)["Plaintext"]
    return {
        "described": md.get("KeyState") == "Enabled",
        "rotation": bool(rot.get("KeyRotationEnabled")) and rot.get("RotationPeriodInDays") == spec.rotation_days,
        "round_trip": back == plaintext and base64.b64encode(blob) != base64.b64encode(plaintext),
    }


def provision(session: AccountSession, region: str, spec: KeySpec) -> Provisioned:
    kms = session.client("kms", region)
    md = _existing(kms, spec.alias)
    if md is not None:
        return Provisioned(md["Arn"], False, differences(kms, md, spec))
    created = kms.create_key(
        Policy=spec.policy_text(),
        Description=spec.full_description(),
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        MultiRegion=spec.multi_region,
        Tags=[{"TagKey": k, "TagValue": v} for k, v in spec.tags().items()],
    )["KeyMetadata"]
    kms.create_alias(AliasName=spec.alias, TargetKeyId=created["KeyId"])
    kms.enable_key_rotation(KeyId=created["KeyId"], RotationPeriodInDays=spec.rotation_days)
    return Provisioned(created["Arn"], True, [], verify(kms, created["KeyId"], spec))
