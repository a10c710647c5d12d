"""``--format asff``: AWS Security Finding Format (Security Hub), a JSON array of findings.

``kmsguard export securityhub`` sends exactly these with BatchImportFindings.

Field decisions:

- ``Id`` = ``kmsguard/<account>/<region>/<check id>/<fingerprint>``: stable per check and resource, so a
  re-import updates the finding instead of adding a duplicate.
- ``ProductArn`` = the account's default integration, ``arn:<partition>:securityhub:<region>:<account>:
  product/<account>/default`` -- what Security Hub accepts for findings a customer imports about its own
  account. Security Hub imports into the ProductArn's region, so ``region`` (the export's ``--region``)
  overrides each finding's; an account-wide finding (region ``global``) otherwise goes to ``us-east-1``.
- ``GeneratorId`` = ``kmsguard/<check id>``; ``Types`` = Software and Configuration Checks/AWS Security Best
  Practices (kmsguard judges configuration); ``Severity.Label`` CRITICAL/HIGH/MEDIUM/LOW/INFORMATIONAL.
- ``Compliance.Status``: FAIL FAILED, PASS PASSED, MUTED FAILED (the control still fails; the acceptance is
  in the workflow), ERROR NOT_AVAILABLE. ``RelatedRequirements`` = ``<framework> <control>`` (max 32, the
  ASFF limit). ``Workflow.Status``: MUTED SUPPRESSED (with the reason in ``Note``), PASS RESOLVED, else NEW.
- ``Resources[0]``: the ARN with the ASFF resource type when there is one (AwsKmsKey, AwsS3Bucket ...),
  ``AwsAccount`` for account/region findings, ``Other`` otherwise. Evidence goes in ``ProductFields`` as
  compact JSON (ProductFields values are strings).
- Text limits: Title 256, Description 1024, Recommendation text 512 characters.
"""

from __future__ import annotations

import json
from typing import Any

from kmsguard.arn import partition_in
from kmsguard.checks.registry import load_builtin_checks
from kmsguard.model.finding import Finding, Severity, Status, is_region_arn
from kmsguard.model.result import ScanResult
from kmsguard.report._common import compact_json
from kmsguard.report._time import iso_z
from kmsguard.report.sarif import fingerprint

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
DEFAULT_REGION = "us-east-1"
LABELS = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFO: "INFORMATIONAL",
}
COMPLIANCE = {Status.FAIL: "FAILED", Status.PASS: "PASSED", Status.MUTED: "FAILED", Status.ERROR: "NOT_AVAILABLE"}
WORKFLOW = {Status.FAIL: "NEW", Status.ERROR: "NEW", Status.MUTED: "SUPPRESSED", Status.PASS: "RESOLVED"}
RESOURCE_TYPES = {
    "AWS::KMS::Key": "AwsKmsKey",
    "AWS::S3::Bucket": "AwsS3Bucket",
    "AWS::EC2::Volume": "AwsEc2Volume",
    "AWS::RDS::DBInstance": "AwsRdsDbInstance",
    "AWS::RDS::DBCluster": "AwsRdsDbCluster",
    "AWS::SecretsManager::Secret": "AwsSecretsManagerSecret",
    "AWS::DynamoDB::Table": "AwsDynamoDbTable",
    "AWS::SNS::Topic": "AwsSnsTopic",
    "AWS::SQS::Queue": "AwsSqsQueue",
    "AWS::CloudTrail::Trail": "AwsCloudTrailTrail",
    "AWS::IAM::Policy": "AwsIamPolicy",
    "AWS::Account::Region": "AwsAccount",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def asff_finding(f: Finding, result: ScanResult, region: str | None = None) -> dict[str, Any]:
    spec = load_builtin_checks().get(f.check_id)
    partition = partition_in(f.resource_arn)
    home = region or (f.region if f.region != "global" else DEFAULT_REGION)
    when = iso_z(result.scanned_at)
    related = [f"{fw} {ctl}" for fw, ctls in sorted(f.compliance.items()) for ctl in ctls][:32]
    resource_type = RESOURCE_TYPES.get(f.resource_type, "AwsAccount" if is_region_arn(f.resource_arn) else "Other")
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f"kmsguard/{f.account}/{f.region}/{f.check_id}/{fingerprint(f.check_id, f.resource_arn)[:32]}",
        "ProductArn": f"arn:{partition}:securityhub:{home}:{f.account}:product/{f.account}/default",
        "ProductName": "kmsguard",
        "CompanyName": "kmsguard",
        "GeneratorId": f"kmsguard/{f.check_id}",
        "AwsAccountId": f.account,
        "Region": home,
        "Types": [FINDING_TYPE],
        "CreatedAt": when,
        "UpdatedAt": when,
        "Severity": {"Label": LABELS[f.severity], "Original": f.severity.value},
        "Title": _cut(spec.title if spec else f.check_id, 256),
        "Description": _cut(f.message or f.check_id, 1024),
        "ProductFields": {
            "kmsguard/check_id": f.check_id,
            "kmsguard/status": f.status.value,
            "kmsguard/evidence": _cut(compact_json(f.evidence), 4096),
        },
        "Resources": [
            {
                "Type": resource_type,
                "Id": f.resource_arn,
                "Partition": partition,
                "Region": f.region if f.region != "global" else home,
            }
        ],
        "Compliance": {"Status": COMPLIANCE[f.status]},
        "Workflow": {"Status": WORKFLOW[f.status]},
        "RecordState": "ACTIVE",
    }
    if related:
        out["Compliance"]["RelatedRequirements"] = related
    if f.remediation:
        out["Remediation"] = {"Recommendation": {"Text": _cut(f.remediation, 512)}}
    if f.status is Status.MUTED:
        out["Note"] = {
            "Text": _cut(f"muted: {f.mute_reason or 'no reason given'}", 512),
            "UpdatedBy": "kmsguard",
            "UpdatedAt": when,
        }
    return out


def asff_findings(result: ScanResult, region: str | None = None) -> list[dict[str, Any]]:
    return [asff_finding(f, result, region) for f in result.sorted_findings()]


def render_asff(result: ScanResult) -> str:
    rows = [_ENCODE(x) for x in asff_findings(result)]
    return "[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n"


_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False).encode
