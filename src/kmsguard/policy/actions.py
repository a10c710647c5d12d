"""The catalogue the engine validates against: KMS actions, condition keys and condition operators.

Kept as plain data (no behaviour beyond look-ups) so the validator, the evaluator and the solver agree on
one list. The action list is the KMS section of the AWS Service Authorization Reference: the API
operations plus the IAM-only permissions (kms:ReEncryptFrom / kms:ReEncryptTo stand for the ReEncrypt
API; kms:SynchronizeMultiRegionKey is used by KMS itself for multi-Region keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# Canonical spelling; the engine compares lower-cased.
KMS_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decapsulate",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteCustomKeyStore",
    "kms:DeleteImportedKeyMaterial",
    "kms:DeriveSharedSecret",
    "kms:DescribeCustomKeyStores",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:DisconnectCustomKeyStore",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encapsulate",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GenerateRandom",
    "kms:GetKeyLastUsage",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:ListRetirableGrants",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:SynchronizeMultiRegionKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateCustomKeyStore",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
)
KMS_ACTIONS_LOWER: frozenset[str] = frozenset(a.lower() for a in KMS_ACTIONS)
_CANONICAL: dict[str, str] = {a.lower(): a for a in KMS_ACTIONS}

# Cryptographic ("use") operations, as the KMS developer guide groups them; administrators should not have
# these (the guide's KeyAdministration statement grants none of them).
CRYPTOGRAPHIC_ACTIONS: frozenset[str] = frozenset(
    a.lower()
    for a in (
        "kms:Decapsulate",
        "kms:Decrypt",
        "kms:DeriveSharedSecret",
        "kms:Encapsulate",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateMac",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:Sign",
        "kms:Verify",
        "kms:VerifyMac",
    )
)

# CloudTrail logs one ReEncrypt call where IAM, key policies and grants check two permissions; every other KMS call
# is logged under its permission's own name. One map for the trail decoder, grant judgement and policy conformance.
PERMISSIONS_OF_EVENT: dict[str, tuple[str, ...]] = {"ReEncrypt": ("kms:ReEncryptFrom", "kms:ReEncryptTo")}


def permissions_of_event(event: str) -> tuple[str, ...]:
    """The permissions (``kms:Action``) a call CloudTrail logged as ``event`` needs one of."""
    return PERMISSIONS_OF_EVENT.get(event, (f"kms:{event}",))


# Administrative calls that are findings by themselves when they succeed (the trail family judges each; the
# detections' SQL picks them out of the logs by these names, as CloudTrail's eventName gives them).
ADMIN_EVENTS: tuple[str, ...] = (
    "ScheduleKeyDeletion",
    "DisableKey",
    "DisableKeyRotation",
    "DeleteAlias",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
)

# What effective access is asked about, by the access checks, the dashboard's key and principal pages, and access
# drift between scans: one action that reads data, and the three that hand out or destroy control of the key
# (rewrite its policy, grant its use, schedule its deletion). One list, so the three never disagree on who
# administers a key.
DECRYPT = "kms:Decrypt"
PUT_KEY_POLICY = "kms:PutKeyPolicy"  # who can call it is who administers the key (the lock-out guards ask it)
ADMIN_PROBES: tuple[str, ...] = (PUT_KEY_POLICY, "kms:ScheduleKeyDeletion", "kms:CreateGrant")
ACCESS_PROBES: tuple[str, ...] = (DECRYPT, *ADMIN_PROBES)
# What "who can" reports on by default (``policy who-can`` on the key policy, ``access who-can`` and the fix plan's
# effective access): use, the actions that hand out access, and those that take the key away (deletion, disabling).
WHO_CAN_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
)
# The administrative actions that let a principal give itself use of the key (a new policy, a grant to itself):
# what the separation-of-duties check asks about. Scheduling deletion destroys the key but gives no use of it.
GIVES_ITSELF_USE: tuple[str, ...] = (PUT_KEY_POLICY, "kms:CreateGrant")

# KMS-specific condition keys (lower-cased). Entries ending in ":" are prefixes followed by a name.
KMS_CONDITION_KEYS: frozenset[str] = frozenset(
    k.lower()
    for k in (
        "kms:BypassPolicyLockoutSafetyCheck",
        "kms:CallerAccount",
        "kms:CustomerMasterKeySpec",
        "kms:CustomerMasterKeyUsage",
        "kms:DataKeyPairSpec",
        "kms:EncryptionAlgorithm",
        "kms:EncryptionContextKeys",
        "kms:ExpirationModel",
        "kms:GrantConstraintType",
        "kms:GrantIsForAWSResource",
        "kms:GrantOperations",
        "kms:GranteePrincipal",
        "kms:KeyAgreementAlgorithm",
        "kms:KeyMaterialId",
        "kms:KeyOrigin",
        "kms:KeySpec",
        "kms:KeyUsage",
        "kms:MacAlgorithm",
        "kms:MessageType",
        "kms:MultiRegion",
        "kms:MultiRegionKeyType",
        "kms:PrimaryRegion",
        "kms:ReEncryptOnSameKey",
        "kms:ReplicaRegion",
        "kms:RequestAlias",
        "kms:ResourceAliases",
        "kms:RetiringPrincipal",
        "kms:RotationPeriodInDays",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:SigningAlgorithm",
        "kms:ValidTo",
        "kms:ViaService",
        "kms:WrappingAlgorithm",
        "kms:WrappingKeySpec",
    )
)
KMS_CONDITION_KEY_PREFIXES: tuple[str, ...] = ("kms:encryptioncontext:",)

# Global condition keys (lower-cased) and the tag-style prefixes.
GLOBAL_CONDITION_KEYS: frozenset[str] = frozenset(
    k.lower()
    for k in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:Referer",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceVpcArn",
        "aws:TagKeys",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:IsMcpServiceAction",
        "aws:ViaAWSMCPService",
        "aws:CalledViaAWSMCP",
        "aws:AssumedRoot",
        "aws:ChatbotSourceArn",
    )
)
GLOBAL_CONDITION_KEY_PREFIXES: tuple[str, ...] = ("aws:principaltag/", "aws:requesttag/", "aws:resourcetag/")

# Base condition operators, canonical spelling. "negated" operators are true when the key is absent.
STRING_OPERATORS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)
NUMERIC_OPERATORS = (
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
)
DATE_OPERATORS = (
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
)
ARN_OPERATORS = ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
OTHER_OPERATORS = ("Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "Null")
BASE_OPERATORS: tuple[str, ...] = (
    STRING_OPERATORS + NUMERIC_OPERATORS + DATE_OPERATORS + ARN_OPERATORS + OTHER_OPERATORS
)
_BASE_BY_LOWER: dict[str, str] = {op.lower(): op for op in BASE_OPERATORS}

# The "negated matching" operators, each with the operator it negates: the documented rule is that when the key is
# absent from the request, a condition that requires the key NOT to match is true. The evaluator and the solver
# both judge a negated operator as "not" its positive twin.
POSITIVE_OF_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NotIpAddress": "IpAddress",
}
NEGATED_OPERATORS: frozenset[str] = frozenset(POSITIVE_OF_NEGATED)
# Operators whose values may contain policy variables (per the IAM condition operator reference).
VARIABLE_OPERATORS: frozenset[str] = frozenset(STRING_OPERATORS + ARN_OPERATORS + ("Bool",))

SET_OPERATORS: tuple[str, ...] = ("ForAnyValue", "ForAllValues")


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A parsed condition operator: ``ForAllValues:StringNotLikeIfExists`` -> base, if_exists, set_op."""

    base: str
    if_exists: bool
    set_op: Literal["ForAnyValue", "ForAllValues"] | None
    exact_case: bool  # False when the policy spelled the operator with other letter case


@lru_cache(maxsize=512)
def parse_operator(text: str) -> OperatorSpec | None:
    """Split an operator as written in a policy; None when it is not a known operator."""
    set_op: Literal["ForAnyValue", "ForAllValues"] | None = None
    rest = text
    if ":" in text:
        prefix, rest = text.split(":", 1)
        if prefix.lower() == "foranyvalue":
            set_op = "ForAnyValue"
        elif prefix.lower() == "forallvalues":
            set_op = "ForAllValues"
        else:
            return None
    if_exists = False
    if rest.lower().endswith("ifexists"):
        if_exists = True
        rest = rest[: -len("ifexists")]
    base = _BASE_BY_LOWER.get(rest.lower())
    if base is None:
        return None
    if base == "Null" and if_exists:
        return None  # "NullIfExists" is not an operator: Null already tests existence
    canonical = (f"{set_op}:" if set_op else "") + base + ("IfExists" if if_exists else "")
    return OperatorSpec(base, if_exists, set_op, exact_case=canonical == text)


def canonical_action(action: str) -> str:
    """The catalogue spelling of a KMS action ("kms:decrypt" -> "kms:Decrypt"), or the input unchanged."""
    return _CANONICAL.get(action.lower(), action)


@lru_cache(maxsize=1024)
def action_pattern(pattern: str) -> re.Pattern[str]:
    """A compiled, case-insensitive matcher for an Action value with * and ? wildcards."""
    return re.compile(glob_to_regex(pattern.lower()), re.IGNORECASE | re.DOTALL)


def glob_to_regex(pattern: str) -> str:
    """IAM wildcard text (``*`` any run, ``?`` one character) -> an anchored regular expression."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out) + r"\Z"


def expand_kms_actions(pattern: str) -> tuple[str, ...]:
    """The KMS actions (lower-cased) an Action value covers: ``kms:Get*`` -> the kms:get... actions."""
    p = pattern.lower()
    if "*" not in p and "?" not in p:
        return (p,) if p in KMS_ACTIONS_LOWER else ()
    rx = action_pattern(p)
    return tuple(sorted(a for a in KMS_ACTIONS_LOWER if rx.match(a)))


def is_known_condition_key(key: str) -> bool | None:
    """True/False for aws: and kms: keys; None for other services' keys (not catalogued here)."""
    k = key.lower()
    if k.startswith("kms:"):
        return k in KMS_CONDITION_KEYS or any(k.startswith(p) and len(k) > len(p) for p in KMS_CONDITION_KEY_PREFIXES)
    if k.startswith("aws:"):
        return k in GLOBAL_CONDITION_KEYS or any(
            k.startswith(p) and len(k) > len(p) for p in GLOBAL_CONDITION_KEY_PREFIXES
        )
    return None
