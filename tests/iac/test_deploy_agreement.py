"""Issue 15's acceptance test: `kmsguard iac scan` on a CloudFormation template reports, for every resource, the
same check ids with the same statuses that `kmsguard scan` reports once the template is deployed.

Each template under data/deploy/ is deployed to the test's moto server with CloudFormation (create_stack over
HTTP), the account is scanned (`kmsguard scan`), the template is scanned (`kmsguard iac scan`), each deployed
resource is matched to its logical id through describe_stack_resources, and the two sets of
(check_id, status) per logical id must be equal. Compared: every check `iac scan` runs (not live_only) except
the audit family -- the deployed account has no trail, the templates declare none, so `iac scan` does not run
it (docs/iac.md). Findings of objects the templates do not declare (the AWS managed key aws/s3 creates,
account-wide findings) have no logical id and are left out of the comparison.

What moto deploys differently from AWS is left out of the templates, each said where (their header comments),
except two defects of moto's AWS::KMS::Key without which no key can be deployed at all (the policy kept as an
object, CloudFormation's tag shape refused): the emulator layer corrects those two
(``kmsguard.demo.patches._patch_cloudformation_keys``), as it does for `kmsguard demo`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from typer.testing import CliRunner

from kmsguard import arn as arns
from kmsguard.cli.main import app
from kmsguard.iac.judge import iac_checks

DEPLOY = Path(__file__).parent / "data" / "deploy"
REGION = "us-east-1"
runner = CliRunner()

# What each template is there to show, checked on both sides so that equal sets cannot mean "both empty" or
# "both blind": (logical id, check id) -> the status both scans must give.
EXPECTED = {
    "keys.yaml": {
        ("GuideKey", "key_policy_public"): "PASS",
        ("GuideKey", "key_policy_admin_can_use"): "PASS",
        ("GuideKey", "key_rotation_disabled"): "PASS",
        ("NoRotationKey", "key_rotation_disabled"): "FAIL",
        ("PublicKey", "key_policy_public"): "FAIL",
        ("ExternalKey", "key_policy_external_access"): "FAIL",
        ("NoAliasKey", "key_no_alias"): "FAIL",
        ("UntaggedKey", "key_missing_tags"): "FAIL",
        ("WildcardKey", "key_policy_wildcard_actions"): "FAIL",
        ("NoTlsKey", "key_policy_no_secure_transport"): "FAIL",
        ("AdminUsesKey", "key_policy_admin_can_use"): "FAIL",
        ("RootOnlyKey", "key_policy_iam_only"): "FAIL",
        # Principal "*" bounded by a condition is not public.
        ("OrgBoundedKey", "key_policy_public"): "PASS",
        ("CallerAccountKey", "key_policy_public"): "PASS",
        ("CallerAccountKey", "key_policy_external_access"): "PASS",
    },
    "workload.yaml": {
        ("DataKey", "key_policy_no_secure_transport"): "PASS",
        ("CmkBucket", "resource_uses_aws_managed_key"): "PASS",
        ("AliasBucket", "resource_uses_aws_managed_key"): "PASS",
        ("AwsManagedBucket", "resource_uses_aws_managed_key"): "FAIL",
        ("SseS3Bucket", "resource_not_kms_encrypted"): "FAIL",
        ("CmkQueue", "resource_not_kms_encrypted"): "PASS",
        ("ManagedSseQueue", "resource_not_kms_encrypted"): "FAIL",
        ("PlainQueue", "resource_not_kms_encrypted"): "FAIL",
        ("CmkTopic", "resource_uses_aws_managed_key"): "PASS",
        ("Volume", "resource_not_kms_encrypted"): "FAIL",
        ("DecryptEverything", "iam_policy_allows_decrypt_all_keys"): "FAIL",
        ("AppKeyUse", "iam_policy_allows_decrypt_all_keys"): "PASS",
    },
}

Outcomes = dict[str, set[tuple[str, str]]]  # logical id -> {(check_id, status)}


def _arn_finders(client: Callable[..., Any], account: str) -> dict[str, Callable[[str], str]]:
    """CloudFormation resource type -> (physical id -> the ARN `kmsguard scan` reports the resource under)."""
    partition = arns.partition_of(REGION)
    return {
        "AWS::KMS::Key": lambda kid: str(client("kms").describe_key(KeyId=kid)["KeyMetadata"]["Arn"]),
        "AWS::S3::Bucket": lambda name: arns.build("s3", "", "", name, partition=partition),
        "AWS::SQS::Queue": lambda url: str(
            client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        ),
        "AWS::SNS::Topic": lambda topic_arn: topic_arn,
        "AWS::Logs::LogGroup": lambda name: arns.build("logs", REGION, account, f"log-group:{name}"),
        "AWS::DynamoDB::Table": lambda name: str(
            client("dynamodb").describe_table(TableName=name)["Table"]["TableArn"]
        ),
        "AWS::EC2::Volume": lambda vol: arns.build("ec2", REGION, account, f"volume/{vol}"),
        "AWS::IAM::ManagedPolicy": lambda policy_arn: policy_arn,
    }


def _deploy(client: Callable[..., Any], template: Path, account: str) -> dict[str, str]:
    """Create the stack; the ARN of each deployed resource that findings can name -> its logical id."""
    cfn = client("cloudformation", REGION)
    stack = template.stem
    cfn.create_stack(
        StackName=stack, TemplateBody=template.read_text(encoding="utf-8"), Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    failed = [
        (r["LogicalResourceId"], r["ResourceStatus"]) for r in resources if r["ResourceStatus"] != "CREATE_COMPLETE"
    ]
    assert not failed, f"moto did not deploy {template.name}: {failed}"
    finders = _arn_finders(client, account)
    return {
        finders[r["ResourceType"]](r["PhysicalResourceId"]): r["LogicalResourceId"]
        for r in resources
        if r["ResourceType"] in finders
    }


def _compared_checks() -> list[str]:
    return sorted(s.id for s in iac_checks() if s.family != "audit")


def _json_run(args: list[str], out: Path) -> list[dict[str, Any]]:
    res = runner.invoke(app, [*args, "-f", "json", "-o", str(out), "-q"], catch_exceptions=False)
    # Both estates hold failing findings by design: exit 1, never 2 (bad input) or 3 (AWS unreachable).
    assert res.exit_code == 1, res.output
    findings: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))["findings"]
    return findings


def _live(endpoint: str, checks: list[str], arn_to_logical: dict[str, str], out: Path) -> Outcomes:
    args = ["scan", "--endpoint-url", endpoint, "--regions", REGION, "--checks", ",".join(checks)]
    outcomes: Outcomes = {}
    for f in _json_run(args, out):
        logical = arn_to_logical.get(f["resource_arn"])
        if logical is not None:
            outcomes.setdefault(logical, set()).add((f["check_id"], f["status"]))
    return outcomes


def _iac(template: Path, account: str, checks: list[str], out: Path) -> Outcomes:
    args = ["iac", "scan", str(template), "--account", account, "--region", REGION, "--root", str(DEPLOY)]
    outcomes: Outcomes = {}
    for f in _json_run([*args, "--checks", ",".join(checks)], out):
        assert f["location"]["file"] == template.name, f
        outcomes.setdefault(f["location"]["resource"], set()).add((f["check_id"], f["status"]))
    return outcomes


def _differences(live: Outcomes, iac: Outcomes) -> list[str]:
    lines = []
    for logical in sorted(live.keys() | iac.keys()):
        only_live = sorted(live.get(logical, set()) - iac.get(logical, set()))
        only_iac = sorted(iac.get(logical, set()) - live.get(logical, set()))
        if only_live or only_iac:
            lines.append(f"{logical}: only `scan`: {only_live}; only `iac scan`: {only_iac}")
    return lines


@pytest.mark.parametrize("template", sorted(EXPECTED), ids=lambda name: name.removesuffix(".yaml"))
def test_iac_scan_agrees_with_scan_once_deployed(client, aws, tmp_path: Path, template: str) -> None:  # type: ignore[no-untyped-def]
    path = DEPLOY / template
    account = client("sts").get_caller_identity()["Account"]
    arn_to_logical = _deploy(client, path, account)
    checks = _compared_checks()

    live = _live(aws.endpoint_url, checks, arn_to_logical, tmp_path / "live.json")
    iac = _iac(path, account, checks, tmp_path / "iac.json")

    differences = _differences(live, iac)
    assert not differences, f"{template}: `iac scan` and `scan` of the deployed stack differ:\n" + "\n".join(
        differences
    )
    for (logical, check_id), status in EXPECTED[template].items():
        assert (check_id, status) in live.get(logical, set()), (logical, check_id, status, live.get(logical))


@pytest.mark.parametrize("template", sorted(EXPECTED), ids=lambda name: name.removesuffix(".yaml"))
def test_the_deployed_templates_pass_cfn_lint(template: str) -> None:
    matches = lint_file(DEPLOY / template, ManualArgs(regions=[REGION]))
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []
