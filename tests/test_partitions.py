"""kmsguard in AWS GovCloud (US) and the China Regions, end to end on the real moto server.

Many CMMC users run in ``aws-us-gov``. An ARN there reads ``arn:aws-us-gov:...`` (AWS General Reference,
"Amazon Resource Names"); IAM, STS and Organizations are answered by the partition's own endpoints (IAM in
GovCloud is a different service from IAM in ``aws``), and the account-id shorthand in a key policy means the
root user of that account in the policy's own partition. moto keeps one backend per partition, placed by the
Region a client names, which is what makes these tests meaningful: a scanner that asks ``aws`` IAM about a
GovCloud account sees none of its roles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app

runner = CliRunner()
PARTITIONS = [("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
ACCOUNT = "123456789012"
PARTNER = "999999999999"


def key_policy(partition: str) -> dict[str, Any]:
    """The account-id shorthand (this account's root user, in the key's partition) and a partner account."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"},
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{PARTNER}:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }


def seed(client: Any, region: str, partition: str) -> str:
    kms, iam = client("kms", region), client("iam", region)
    policy = key_policy(partition)
    key = kms.create_key(Description="cui", Policy=json.dumps(policy))["KeyMetadata"]
    kms.create_alias(AliasName="alias/cui", TargetKeyId=key["KeyId"])
    trust = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    iam.create_role(
        RoleName="App", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )
    decrypt = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
    iam.put_role_policy(
        RoleName="App", PolicyName="d", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [decrypt]})
    )
    return str(key["Arn"])


@pytest.mark.parametrize(("region", "partition"), PARTITIONS)
def test_scan_who_can_and_reports_in_the_partition(
    client: Any, aws: Any, region: str, partition: str, tmp_path: Path
) -> None:
    key = seed(client, region, partition)
    assert key.startswith(f"arn:{partition}:kms:{region}:")
    snap, out = tmp_path / "snap.json", tmp_path / "scan.json"
    args = ["scan", "--endpoint-url", aws.endpoint_url, "--regions", region, "-f", "json", "-o", str(out), "-q"]
    res = runner.invoke(app, [*args, "--snapshot-out", str(snap), "--allow-errors"], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(out.read_text())
    # Every finding names a resource of the partition: keys, and the account/region pseudo-ARNs.
    assert doc["findings"] and all(f["resource_arn"].startswith(f"arn:{partition}:") for f in doc["findings"])
    external = [f for f in doc["findings"] if f["check_id"] == "key_policy_external_access" and f["status"] == "FAIL"]
    assert [f["resource_arn"] for f in external] == [key]
    # IAM was read from the partition's IAM: the role that decrypts through its identity policy is found.
    broad = [f for f in doc["findings"] if f["check_id"] == "key_decrypt_via_broad_iam" and f["status"] == "FAIL"]
    assert broad and "role/App" in broad[0]["message"]

    res = runner.invoke(
        app,
        ["access", "who-can", "alias/cui", "--from-snapshot", str(snap), "--action", "kms:Decrypt", "--format", "json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    [result] = json.loads(res.stdout)["results"]
    who = {p["principal"]: p for p in result["principals"]}
    assert f"arn:{partition}:iam::{ACCOUNT}:role/App" in who
    assert who[f"arn:{partition}:iam::{ACCOUNT}:root"]["paths"][0]["via"] == "key_policy"
    assert f"account:{PARTNER}" in who
    assert all(not p.startswith("arn:aws:") for p in who)

    # Security Hub and OCSF carry the partition the findings came from.
    for fmt, field in (("asff", "Partition"), ("ocsf", "cloud_partition")):
        rendered = tmp_path / f"scan.{fmt}"
        res = runner.invoke(
            app,
            ["scan", "--from-snapshot", str(snap), "-f", fmt, "-o", str(rendered), "-q", "--allow-errors"],
            catch_exceptions=False,
        )
        assert res.exit_code in (0, 1), res.output
        text = rendered.read_text()
        assert f'"{field}": "{partition}"' in text and '"aws"' not in text.replace('"aws-', '"')


@pytest.mark.parametrize(("region", "partition"), PARTITIONS)
def test_policy_analysis_of_partition_principals(region: str, partition: str, tmp_path: Path) -> None:
    """``policy analyze``: the shorthand and the full root ARN of the same account are one principal in the
    policy's partition, and another account's root there is external."""
    policy = key_policy(partition)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    res = runner.invoke(
        app, ["policy", "analyze", str(path), "--account", ACCOUNT, "--format", "json"], catch_exceptions=False
    )
    assert res.exit_code in (0, 1), res.output
    text = res.stdout
    assert PARTNER in text
    assert f"arn:aws:iam::{ACCOUNT}" not in text and f"arn:aws:iam::{PARTNER}" not in text


def test_trail_keys_are_placed_in_their_partition(tmp_path: Path) -> None:
    """CloudTrail in GovCloud logs bare key ids in requestParameters: kmsguard qualifies them in the record's
    Region's partition, so they meet the scanned keys (``trail analyze`` counts them per key)."""
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    record = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-30T12:00:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "awsRegion": "us-gov-west-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/App/i-1",
                         "accountId": ACCOUNT,
                         "sessionContext": {"sessionIssuer": {"arn": f"arn:aws-us-gov:iam::{ACCOUNT}:role/App"}}},
        "requestParameters": {"keyId": key_id, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
    }  # fmt: skip
    logs = tmp_path / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-gov-west-1" / "2026" / "11" / "30"
    logs.mkdir(parents=True)
    (logs / "a.json").write_text(json.dumps({"Records": [record]}))
    res = runner.invoke(
        app, ["trail", "analyze", str(tmp_path / "AWSLogs"), "--format", "json", "-q"], catch_exceptions=False
    )
    assert res.exit_code in (0, 1), res.output
    assert f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/{key_id}" in res.stdout
    assert "arn:aws:kms:" not in res.stdout


def test_regions_of_two_partitions_in_one_run_are_refused(aws: Any) -> None:
    """Credentials belong to one partition: asking for us-east-1 and us-gov-west-1 together is a usage error
    naming both partitions, before any AWS call."""
    res = runner.invoke(app, ["scan", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1,us-gov-west-1", "-q"])
    assert res.exit_code == 2
    assert "aws, aws-us-gov" in res.output and "us-gov-west-1" in res.output
