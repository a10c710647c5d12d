"""The key policy KMS attaches when CreateKey (or a template's key) names none.

AWS documents it as the "default key policy": one statement that gives the account's root principal every
KMS action, so the account's IAM policies decide who may use and manage the key
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html). CloudFormation's
``AWS::KMS::Key`` without ``KeyPolicy`` and Terraform's ``aws_kms_key`` without ``policy`` get the same.
"""

from __future__ import annotations

import json

from kmsguard.arn import root_arn


def default_key_policy(account: str, partition: str = "aws") -> str:
    """The default key policy of a key in ``account``, as JSON text (the shape GetKeyPolicy returns)."""
    statement = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": root_arn(account, partition)},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [statement]}, indent=2)
