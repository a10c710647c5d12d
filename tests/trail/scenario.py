"""A synthetic account whose logs show every trail finding once, and the snapshot that goes with it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Resource, Snapshot
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, OTHER, T0, user

R = "us-east-1"
K_BUSY = key_arn(ACCT, R, 1)  # steady use, then a spike; used cross-account; foreign environment
K_ADMIN = key_arn(ACCT, R, 2)  # every administrative event
K_IDLE = key_arn(ACCT, R, 3)  # in the snapshot, never used: key_unused
K_PROBED = key_arn(ACCT, R, 4)  # a burst of AccessDenied
APP = f"arn:aws:sts::{ACCT}:assumed-role/app/session-1"
INTRUDER = user("mallory")
OUTSIDER = f"arn:aws:iam::{OTHER}:role/partner"

POLICY_OLD = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}
POLICY_PUBLIC = {
    "Version": "2012-10-17",
    "Statement": [
        *POLICY_OLD["Statement"],
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"},
    ],
}
BUSY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/app"}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
            "Action": "kms:Decrypt",
            "Resource": "*",
        },
    ],
}
DAYS = 100
BUCKET_DEV = "arn:aws:s3:::dev-bucket"


def records() -> list[dict]:
    out: list[dict] = []
    # Steady use of K_BUSY by the app: 3 Decrypt every 4 hours for 100 days (a quiet, regular baseline).
    for h in range(0, DAYS * 24, 4):
        for i in range(3):
            out.append(event("Decrypt", K_BUSY, APP, T0 + timedelta(hours=h, minutes=i), context_arn=BUCKET_DEV + "/o"))
    spike = T0 + timedelta(days=60, hours=3)
    out += [event("Decrypt", K_BUSY, APP, spike + timedelta(seconds=5 * i)) for i in range(400)]
    # Mallory decrypts with K_BUSY on day 1 (inside the learning window): BUSY_POLICY does not allow her.
    out += [event("Decrypt", K_BUSY, INTRUDER, T0 + timedelta(days=1, minutes=i)) for i in range(2)]
    # Cross-account use, first seen after the learning window: new account + cross-account.
    out += [event("Decrypt", K_BUSY, OUTSIDER, T0 + timedelta(days=30, minutes=i)) for i in range(3)]
    # CloudTrail's own GenerateDataKey calls: a service, never a new principal or a spike.
    out += [
        event("GenerateDataKey", K_BUSY, "service:cloudtrail.amazonaws.com", T0 + timedelta(days=50, seconds=i))
        for i in range(500)
    ]
    # Administrative events on K_ADMIN.
    t = T0 + timedelta(days=40)
    out.append(event("CreateKey", K_ADMIN, user("admin"), t, params={"policy": json.dumps(POLICY_OLD)}))
    out.append(
        event(
            "PutKeyPolicy",
            K_ADMIN,
            INTRUDER,
            t + timedelta(hours=1),
            params={"policyName": "default", "policy": json.dumps(POLICY_PUBLIC)},
        )
    )
    out.append(
        event(
            "CreateGrant",
            K_ADMIN,
            INTRUDER,
            t + timedelta(hours=2),
            params={"granteePrincipal": OUTSIDER, "operations": ["Decrypt"]},
        )
    )
    out.append(
        event(
            "CreateGrant",
            K_ADMIN,
            user("admin"),
            t + timedelta(hours=2),
            params={"granteePrincipal": f"{ACCT}:aws:ec2-infrastructure:i-1"},
        )
    )  # same account: fine
    for name, params in [
        ("DisableKeyRotation", {}),
        ("DisableKey", {}),
        ("ScheduleKeyDeletion", {"pendingWindowInDays": 7}),
        ("DeleteAlias", {"aliasName": "alias/payments"}),
        ("ImportKeyMaterial", {"expirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        ("DeleteImportedKeyMaterial", {}),
    ]:
        t += timedelta(hours=3)
        out.append(event(name, K_ADMIN, INTRUDER, t, params=params))
    # A failed DisableKey is not a finding (it did not happen).
    out.append(event("DisableKey", K_BUSY, INTRUDER, t, error="AccessDenied"))
    # A burst of AccessDenied on K_PROBED: 8 in two minutes; and 3 scattered ones (below the threshold).
    b = T0 + timedelta(days=70, minutes=1)
    out += [event("Decrypt", K_PROBED, INTRUDER, b + timedelta(seconds=15 * i), error="AccessDenied") for i in range(8)]
    out += [event("Decrypt", K_PROBED, INTRUDER, T0 + timedelta(days=80 + i), error="AccessDenied") for i in range(3)]
    return out


def write_logs(root: Path) -> list[Path]:
    return write_trail_files(root, records())


def snapshot() -> Snapshot:
    def key(arn: str, env: str, policy: dict | None = None) -> Key:
        return Key(
            arn=arn,
            key_id=arn.rsplit("/", 1)[1],
            account=ACCT,
            region=R,
            key_manager="CUSTOMER",
            key_state="Enabled",
            creation_date=T0 - timedelta(days=365),
            tags={"Environment": env},
            policy=json.dumps(policy or POLICY_OLD),
        )

    bucket = Resource(
        service="s3",
        resource_type="AWS::S3::Bucket",
        arn=BUCKET_DEV,
        name="dev-bucket",
        account=ACCT,
        region=R,
        encryption="kms",
        key_arn=K_BUSY,
        tags={"Environment": "dev"},
    )
    keys = [key(K_BUSY, "prod", BUSY_POLICY), key(K_ADMIN, "prod"), key(K_IDLE, "prod"), key(K_PROBED, "prod")]
    return Snapshot(
        kmsguard_version="test",
        collected_at=T0 - timedelta(days=1),
        source="test",
        accounts=[AccountSnapshot(account_id=ACCT, regions=[RegionSnapshot(region=R, keys=keys, resources=[bucket])])],
    )
