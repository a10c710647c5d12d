"""`kmsguard iac scan` and `iac diff` on hostile templates: exit 2 naming the file, or a result.

Seeds are the templates kmsguard itself writes for the guide's key (`provision`'s CloudFormation JSON and
Terraform) and a CloudFormation YAML with short-form tags, conditions and parameters, so every loader path
(YAML tags, JSON line scan, HCL, intrinsics, worlds) gets mutated input.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmsguard.provision.spec import KeySpec
from kmsguard.provision.templates import cloudformation, terraform

from . import seeds
from .harness import Tally, budget, run
from .mutations import byte_mutants, json_text, tree_mutants

ACCOUNT = seeds.ACCOUNT
SPEC = KeySpec(
    account=ACCOUNT,
    alias="alias/payments",
    admins=[f"arn:aws:iam::{ACCOUNT}:role/KMSAdmin"],
    users=[f"arn:aws:iam::{ACCOUNT}:role/app"],
    environment="Production",
    data_classification="Confidential",
    owner="security",
    cost_center="CC-1",
    created=date(2026, 1, 1),
)
YAML_SEED = b"""AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env: {Type: String, Default: prod}
  Reader: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      EnableKeyRotation: !If [IsProd, true, false]
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            Action: "kms:*"
            Resource: "*"
          - Effect: Allow
            Principal: {AWS: !Ref Reader}
            Action: [kms:Decrypt]
            Resource: "*"
            Condition: {StringEquals: {"kms:CallerAccount": !Ref AWS::AccountId}}
      Tags: [{Key: Environment, Value: !Ref Env}]
  Alias:
    Type: AWS::KMS::Alias
    Properties: {AliasName: alias/app, TargetKeyId: !Ref Key}
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: "aws:kms", KMSMasterKeyID: !GetAtt Key.Arn}
"""
CFN_JSON = cloudformation(SPEC).encode()
TF = terraform(SPEC).encode()


def _docs() -> list[Any]:
    return [json.loads(CFN_JSON)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("iac")


def scan(work: Path, name: str, data: bytes, tally: Tally) -> None:
    """`iac scan` on a directory holding only the hostile file (named ``name``)."""
    target = work / name.replace(".", "_")
    target.mkdir(exist_ok=True)
    path = target / name
    path.write_bytes(data)
    run(tally, ["iac", "scan", target, "-f", "json", "-q", "--root", work], [path, target])


@budget(60)
@given(data=byte_mutants([YAML_SEED]))
def test_byte_mutated_cloudformation_yaml(work: Path, tally: Tally, data: bytes) -> None:
    scan(work, "stack.yaml", data, tally)


@budget(40)
@given(data=byte_mutants([CFN_JSON]))
def test_byte_mutated_cloudformation_json(work: Path, tally: Tally, data: bytes) -> None:
    scan(work, "stack.template.json", data, tally)


@budget(40)
@given(data=tree_mutants(_docs(), json_text))
def test_cloudformation_with_wrong_types_and_hostile_values(work: Path, tally: Tally, data: bytes) -> None:
    scan(work, "tree.json", data, tally)


@budget(60)
@given(data=byte_mutants([TF]))
def test_byte_mutated_terraform(work: Path, tally: Tally, data: bytes) -> None:
    scan(work, "main.tf", data, tally)


@budget(30)
@given(data=byte_mutants([YAML_SEED, CFN_JSON]), which=st.sampled_from(["old", "new"]))
def test_iac_diff_with_one_hostile_side(work: Path, tally: Tally, data: bytes, which: str) -> None:
    good, bad = work / "good.yaml", work / "bad.yaml"
    good.write_bytes(YAML_SEED)
    bad.write_bytes(data)
    sides = [bad, good] if which == "old" else [good, bad]
    run(tally, ["iac", "diff", *sides, "-f", "json"], [bad])
