"""The monitor against a real moto server: an IAM change between two full scans that lets a role decrypt a key
(its key policy unchanged, delegating to the account) is alerted as "X can now decrypt K via ..."; taking it
away again is drift but no alert. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kmsguard.aws.options import AwsOptions
from kmsguard.demo.emulator import Emulator
from kmsguard.monitor.channels import WebhookChannel
from kmsguard.monitor.service import Monitor, MonitorSettings

from .endpoints import HttpRecorder

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIAM",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)
DECRYPT_ANY_KEY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
)
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def test_an_identity_policy_granting_decrypt_is_alerted_with_its_path(
    aws: Emulator, client: Callable[..., Any], db_url: str
) -> None:
    kms, iam = client("kms", REGION), client("iam", REGION)
    arn = kms.create_key(Policy=ROOT_ONLY, Description="orders")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/orders", TargetKeyId=arn)
    role = iam.create_role(RoleName="reporting", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]

    with HttpRecorder() as http:
        options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
        settings = MonitorSettings(db_url=db_url, options=options, retry_attempts=2, retry_base=0.05)
        mon = Monitor(settings, [WebhookChannel(http.url("/hook"))])
        mon.full_cycle()
        assert mon.full_cycle().drift == []  # nothing changed: no access drift either

        iam.put_role_policy(RoleName="reporting", PolicyName="ReadEverything", PolicyDocument=DECRYPT_ANY_KEY)
        cycle = mon.full_cycle()
        gained = [d for d in cycle.drift if d.kind == "access_gained" and d.resource_arn == arn]
        assert [d.detail["principal"] for d in gained] == [role]
        assert not [d for d in cycle.drift if d.kind == "key_policy_changed"]  # the key policy did not change
        item = next(i for i in http.on("/hook")[-1]["items"] if i["kind"] == "access_gained")
        assert item["summary"].startswith(
            f"{role} can now decrypt alias/orders ({arn}) via key_policy+iam (key policy: Sid EnableIAM; "
            "iam: role/reporting inline ReadEverything"
        )
        assert item["summary"].endswith("(service:lambda.amazonaws.com)")  # Lambda functions running as the role
        assert item["severity"] == "medium" and item["resource_arn"] == arn

        sent = len(http.on("/hook"))
        iam.delete_role_policy(RoleName="reporting", PolicyName="ReadEverything")
        back = mon.full_cycle()
        assert [d.detail["principal"] for d in back.drift if d.kind == "access_lost"] == [role]
        assert back.alert_id is None and len(http.on("/hook")) == sent  # a loss is recorded, not alerted
