"""A small estate with an IAM inventory for the dashboard's effective-access pages (tests/web/test_access_pages.py):
one key whose policy delegates to the account, reached by every path AWS allows, and one principal a
permissions boundary keeps out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kmsguard.model.snapshot import (
    AccountSnapshot,
    Grant,
    IamInventory,
    IamPrincipal,
    Key,
    ManagedPolicy,
    RegionSnapshot,
    Snapshot,
)

ACCOUNT = "111122223333"
REGION = "us-east-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-0000-0000-0000-00000000cafe"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-0000-0000-0000-00000000beef"


def arn(kind: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}{path}{name}"


READER = arn("role", "IamReader")  # kms:Decrypt on * in its own inline policy: key_policy+iam
GRANTEE = arn("role", "Grantee")  # no IAM policy; a grant with an encryption-context constraint
ALICE = arn("user", "alice")  # may assume Hop, which may assume Vault, which may decrypt
HOP = arn("role", "Hop")
VAULT = arn("role", "Vault")
BOUNDED = arn("role", "Bounded")  # kms:* inline, but a boundary allowing only s3: never listed
ADMIN = arn("role", "Admin")  # the AWS managed AdministratorAccess: decrypts and administers
# IAM paths may hold any printable ASCII but space: markup in a principal's ARN is text like any other.
HOSTILE_PATH = "/<script>alert(1)</script>/"
HOSTILE = arn("role", "Hostile", HOSTILE_PATH)
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
S3_ONLY = f"arn:aws:iam::{ACCOUNT}:policy/S3Only"
CONTEXT = {"dept": "finance"}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(principal: str) -> str:
    return doc({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"})


def key_policy() -> str:
    return doc(
        {
            "Sid": "EnableIAM",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )


def keys(*, grant: bool = True) -> list[Key]:
    grants = [
        Grant(
            grant_id="grant-" + "a" * 58,
            name="finance-reader",
            grantee_principal=GRANTEE,
            operations=["Decrypt"],
            constraints={"EncryptionContextEquals": CONTEXT},
        )
    ]
    common: dict[str, Any] = {"account": ACCOUNT, "region": REGION, "key_manager": "CUSTOMER", "key_state": "Enabled"}
    return [
        Key(
            arn=KEY,
            key_id=KEY.rsplit("/", 1)[1],
            aliases=["alias/finance"],
            policy=key_policy(),
            grants=grants if grant else [],
            rotation_enabled=True,
            **common,
        ),
        Key(arn=OTHER_KEY, key_id=OTHER_KEY.rsplit("/", 1)[1], aliases=["alias/other"], policy=key_policy(), **common),
    ]


def inventory() -> IamInventory:
    def role(name: str, path: str = "/", **kw: Any) -> IamPrincipal:
        kw.setdefault("trust_policy", doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                           "Action": "sts:AssumeRole"}))  # fmt: skip
        return IamPrincipal(arn=arn("role", name, path), name=name, kind="role", path=path, **kw)

    decrypt_on_star = {"decrypt": doc(allow("kms:Decrypt"))}
    return IamInventory(
        principals=[
            role("IamReader", inline_policies=decrypt_on_star),
            role("Grantee"),
            IamPrincipal(
                arn=ALICE, name="alice", kind="user", inline_policies={"hop": doc(allow("sts:AssumeRole", HOP))}
            ),
            role("Hop", trust_policy=trust(ALICE), inline_policies={"vault": doc(allow("sts:AssumeRole", VAULT))}),
            role("Vault", trust_policy=trust(HOP), inline_policies=decrypt_on_star),
            role("Bounded", inline_policies={"kms": doc(allow("kms:*"))}, permissions_boundary=S3_ONLY),
            role("Admin", managed_policies=[ADMIN_POLICY]),
            role("Hostile", HOSTILE_PATH, inline_policies=decrypt_on_star),
        ],
        policies=[
            ManagedPolicy(arn=ADMIN_POLICY, name="AdministratorAccess", document=doc(allow("*")), aws_managed=True),
            ManagedPolicy(arn=S3_ONLY, name="S3Only", document=doc(allow("s3:*"))),
        ],
    )


def snapshot(*, iam: bool = True, grant: bool = True) -> Snapshot:
    """The estate; ``iam=False``: as a version 1 snapshot stored it (no IAM inventory, no Organization)."""
    return Snapshot(
        schema_version=2 if iam else 1,
        kmsguard_version="test",
        collected_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        source="test",
        accounts=[
            AccountSnapshot(
                account_id=ACCOUNT,
                iam=inventory() if iam else None,
                regions=[RegionSnapshot(region=REGION, keys=keys(grant=grant))],
            )
        ],
    )
