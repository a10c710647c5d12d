"""The same key as infrastructure as code: a CloudFormation template (JSON) or Terraform (HCL)."""

from __future__ import annotations

import json
import re
from typing import Any

from kmsguard.provision.spec import KeySpec


def cloudformation(spec: KeySpec) -> str:
    key: dict[str, Any] = {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Description": spec.full_description(),
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "MultiRegion": spec.multi_region,
            "EnableKeyRotation": True,
            "RotationPeriodInDays": spec.rotation_days,
            "KeyPolicy": spec.policy(),
            "Tags": [{"Key": k, "Value": v} for k, v in spec.tags().items()],
        },
    }
    alias = {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": spec.alias, "TargetKeyId": {"Ref": "Key"}}}
    doc = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"kmsguard: customer managed key {spec.alias}",
        "Resources": {"Key": key, "KeyAlias": alias},
        "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}},
    }
    return json.dumps(doc, indent=2) + "\n"


def _hcl_string(value: str) -> str:
    # JSON string escaping is valid HCL; "${" would start an interpolation, so it is escaped as "$${".
    return json.dumps(value).replace("${", "$${")


def _name(alias: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", alias.removeprefix("alias/")) or "key"


def terraform(spec: KeySpec) -> str:
    name = _name(spec.alias)
    width = max((len(k) for k in spec.tags()), default=0)  # terraform fmt aligns the "=" of a block
    tags = "\n".join(f"    {k.ljust(width)} = {_hcl_string(v)}" for k, v in spec.tags().items())
    policy = json.dumps(spec.policy(), indent=2)
    return (
        f'resource "aws_kms_key" "{name}" {{\n'
        f"  description              = {_hcl_string(spec.full_description())}\n"
        '  customer_master_key_spec = "SYMMETRIC_DEFAULT"\n'
        '  key_usage                = "ENCRYPT_DECRYPT"\n'
        f"  multi_region             = {str(spec.multi_region).lower()}\n"
        "  enable_key_rotation      = true\n"
        f"  rotation_period_in_days  = {spec.rotation_days}\n"
        f"  policy                   = <<-POLICY\n{policy}\n  POLICY\n"
        f"  tags = {{\n{tags}\n  }}\n"
        "}\n\n"
        f'resource "aws_kms_alias" "{name}" {{\n'
        f"  name          = {_hcl_string(spec.alias)}\n"
        f"  target_key_id = aws_kms_key.{name}.key_id\n"
        "}\n"
    )
