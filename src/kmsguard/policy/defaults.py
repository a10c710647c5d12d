"""The standard statements: the key policy KMS attaches when CreateKey (or a template's key) names none, and the
guide's statement refusing requests without TLS. One home for each; every policy kmsguard writes, rewrites or
plays in the demo takes them from here.

AWS documents it as the "default key policy": one statement that gives the account's root principal every
KMS action, so the account's IAM policies decide who may use and manage the key
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html). CloudFormation's
``AWS::KMS::Key`` without ``KeyPolicy`` and Terraform's ``aws_kms_key`` without ``policy`` get the same.
"""

from __future__ import annotations

import json
from typing import Any

from kmsguard.arn import root_arn

# The guide's DenyInsecureTransport statement: every KMS request made without TLS is refused, whoever makes it.
# Read-only: a caller that changes its copy (a new Sid) deep-copies it first.
DENY_INSECURE_TRANSPORT: dict[str, Any] = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "kms:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


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
