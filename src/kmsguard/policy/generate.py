"""Least-privilege key policies from roles, in the structure the KMS configuration guide recommends.

EnableIAMUserPermissions (the account root, kms:*, only for callers of this account), KeyAdministration
(named administrators, no cryptographic use), KeyUsageForEncryption (named users, optionally only through
given services and with a required encryption context), a grant statement limited to grants for AWS
resources, and DenyInsecureTransport. The result analyses clean: not public, no external principal, no
administrator with cryptographic use, no wildcard to anyone but the root, TLS required.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from kmsguard.arn import DEFAULT_PARTITION, mentioned_partition, root_arn
from kmsguard.policy.defaults import DENY_INSECURE_TRANSPORT
from kmsguard.policy.principals import account_of, is_account_id, is_root

ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
)
USE_ACTIONS: tuple[str, ...] = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")
GRANT_ACTIONS: tuple[str, ...] = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")


def _principals(kind: str, arns: Iterable[str], account: str) -> list[str]:
    out = []
    for arn in arns:
        if account_of(arn) is None:
            raise ValueError(f"{kind} {arn!r} is not an IAM role or user ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        if is_root(arn):
            raise ValueError(f"{kind} {arn!r} is an account root; name roles, never root (the guide's rule)")
        if "*" in arn or "?" in arn:
            raise ValueError(f"{kind} {arn!r} contains a wildcard; name each principal")
        if account_of(arn) != account:
            # A principal of another account is an external principal: the policy would not analyse clean.
            raise ValueError(f"{kind} {arn!r} is not in account {account}; name principals of the key's account")
        out.append(arn)
    return sorted(dict.fromkeys(out))


def generate_key_policy(
    account: str,
    admins: Iterable[str],
    users: Iterable[str],
    *,
    via_services: Iterable[str] = (),
    encryption_context: Mapping[str, str] | None = None,
    grants_for_aws_resources_only: bool = True,
    deny_insecure_transport: bool = True,
) -> dict[str, Any]:
    """A key policy document (a dict ready for json.dumps). ValueError names a bad argument.

    ``via_services``: users may use the key only through these services (kms:ViaService, e.g.
    ``s3.us-east-1.amazonaws.com``). ``encryption_context``: every use must carry these pairs.
    """
    if not is_account_id(account):
        raise ValueError(f"account {account!r} is not a 12-digit AWS account id")
    admin_list = _principals("admin", admins, account)
    user_list = _principals("user", users, account)
    if not admin_list:
        raise ValueError("name at least one administrator: without one only IAM can manage the key")
    both = sorted(set(admin_list) & set(user_list))
    if both:
        raise ValueError(f"{', '.join(both)} cannot be both admin and user (separation of duties)")

    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableIAMUserPermissions",
            "Effect": "Allow",
            "Principal": {
                "AWS": root_arn(account, mentioned_partition([*admin_list, *user_list]) or DEFAULT_PARTITION)
            },
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account}},
        },
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": admin_list},
            "Action": list(ADMIN_ACTIONS),
            "Resource": "*",
        },
    ]
    if user_list:
        use_conditions: dict[str, dict[str, Any]] = {}
        services = sorted(dict.fromkeys(via_services))
        if services:
            use_conditions.setdefault("StringEquals", {})["kms:ViaService"] = services
        for k, v in sorted((encryption_context or {}).items()):
            use_conditions.setdefault("StringEquals", {})[f"kms:EncryptionContext:{k}"] = v
        use: dict[str, Any] = {
            "Sid": "KeyUsageForEncryption",
            "Effect": "Allow",
            "Principal": {"AWS": user_list},
            # DescribeKey carries no encryption context: it gets its own statement when use is conditioned.
            "Action": list(USE_ACTIONS) + ([] if use_conditions else ["kms:DescribeKey"]),
            "Resource": "*",
        }
        if use_conditions:
            use["Condition"] = use_conditions
        statements.append(use)
        if use_conditions:
            statements.append(
                {
                    "Sid": "KeyUsageDescribe",
                    "Effect": "Allow",
                    "Principal": {"AWS": user_list},
                    "Action": "kms:DescribeKey",
                    "Resource": "*",
                }
            )
        grant: dict[str, Any] = {
            "Sid": "AllowGrantsForAWSResources",
            "Effect": "Allow",
            "Principal": {"AWS": user_list},
            "Action": list(GRANT_ACTIONS),
            "Resource": "*",
        }
        if grants_for_aws_resources_only:
            grant["Condition"] = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        statements.append(grant)
    if deny_insecure_transport:
        statements.append(copy.deepcopy(DENY_INSECURE_TRANSPORT))
    return {"Version": "2012-10-17", "Id": "kmsguard-generated", "Statement": statements}
