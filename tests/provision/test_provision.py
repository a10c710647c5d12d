"""kmsguard provision key: against the real moto server, and the templates' structure."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import hcl2
import pytest
import typer
from hcl2.utils import SerializationOptions
from typer.testing import CliRunner, Result

from kmsguard.cli import provision
from kmsguard.policy.questions import analyze_key_policy

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
USER = f"arn:aws:iam::{ACCOUNT}:role/app"
TAGS = {"Environment": "Production", "DataClassification": "CUI", "Owner": "security", "CostCenter": "cc-1"}
BASE = [
    "--alias",
    "alias/production-encryption-2026",
    "--admin",
    ADMIN,
    "--user",
    USER,
    "--environment",
    "Production",
    "--data-classification",
    "CUI",
    "--owner",
    "security",
    "--cost-center",
    "cc-1",
    "--rotation-days",
    "180",
]


def _run(*args: str) -> Result:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """A group, as in kmsguard."""

    app.add_typer(provision.app, name="provision")
    return CliRunner().invoke(app, ["provision", "key", *args])


def test_creates_a_key_to_standard_verifies_it_and_a_rerun_changes_nothing(aws, client) -> None:  # type: ignore[no-untyped-def]
    args = [*BASE, "--endpoint-url", aws.endpoint_url, "--region", "us-east-1", "--require-context", "app=ledger"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["created"] is True and out["verification"] == {"described": True, "rotation": True, "round_trip": True}
    kms = client("kms")
    md = kms.describe_key(KeyId="alias/production-encryption-2026")["KeyMetadata"]
    assert (md["KeySpec"], md["KeyUsage"], md["MultiRegion"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", False)
    assert "created 20" in md["Description"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=md["KeyId"])["Tags"]}
    assert tags == TAGS
    assert kms.get_key_rotation_status(KeyId=md["KeyId"])["RotationPeriodInDays"] == 180
    analysis = analyze_key_policy(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"], ACCOUNT)
    assert not analysis.public and analysis.admins_can_decrypt is False and analysis.denies_insecure_transport

    keys_before = len(kms.list_keys()["Keys"])
    again = _run(*args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"verification": {}} == {
        "key_arn": md["Arn"],
        "created": False,
        "status": "already provisioned",
        "differences": [],
        "verification": {},
    }
    assert len(kms.list_keys()["Keys"]) == keys_before
    kms.disable_key_rotation(KeyId=md["KeyId"])
    drift = _run(*args)
    assert drift.exit_code == 1 and "automatic rotation is off" in json.loads(drift.stdout)["differences"]


def test_cloudformation_template_has_the_key_and_alias_to_standard(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    result = _run(*BASE, "--output", "cloudformation", "--output-file", str(path))
    assert result.exit_code == 0, result.output
    doc = json.loads(path.read_text())
    key = doc["Resources"]["Key"]
    assert key["Type"] == "AWS::KMS::Key"
    props = key["Properties"]
    assert (props["KeySpec"], props["KeyUsage"], props["MultiRegion"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        False,
    )
    assert props["EnableKeyRotation"] is True and props["RotationPeriodInDays"] == 180
    assert {t["Key"] for t in props["Tags"]} == {"Environment", "DataClassification", "Owner", "CostCenter"}
    assert not analyze_key_policy(json.dumps(props["KeyPolicy"]), ACCOUNT).public
    assert doc["Resources"]["KeyAlias"]["Properties"] == {
        "AliasName": "alias/production-encryption-2026",
        "TargetKeyId": {"Ref": "Key"},
    }
    assert _cfn_lint(path) == []
    # The linter knows KMS's own limits: the same template with a rotation period AWS refuses does not pass.
    props["RotationPeriodInDays"] = 30
    path.write_text(json.dumps(doc))
    [problem] = _cfn_lint(path)
    assert problem["Level"] == "Error"
    assert problem["Location"]["Path"] == ["Resources", "Key", "Properties", "RotationPeriodInDays"]


def _cfn_lint(template: Path) -> list[dict[str, Any]]:
    """cfn-lint's findings on ``template``, from this interpreter's environment (a dev dependency, so the test
    needs no PATH): JSON output, so the test reads where a problem is rather than how cfn-lint words it."""
    exe = Path(sysconfig.get_path("scripts")) / "cfn-lint"
    lint = subprocess.run([str(exe), "--format", "json", str(template)], capture_output=True, text=True, timeout=120)
    problems: list[dict[str, Any]] = json.loads(lint.stdout)
    assert (lint.returncode == 0) == (problems == []), lint.stderr
    return problems


def _hcl(text: str) -> dict[str, Any]:
    """HCL parsed by python-hcl2: blocks as nested dicts, strings without their quotes, heredocs as written."""
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    doc: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    return doc


def test_terraform_has_the_key_and_alias(tmp_path: Path) -> None:
    path = tmp_path / "main.tf"
    result = _run(*BASE, "--output", "terraform", "--output-file", str(path))
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert 'resource "aws_kms_key" "production_encryption_2026"' in text
    assert 'resource "aws_kms_alias" "production_encryption_2026"' in text
    assert "target_key_id = aws_kms_key.production_encryption_2026.key_id" in text
    assert "rotation_period_in_days  = 180" in text and "enable_key_rotation      = true" in text
    # Terraform itself is not installable here (no `terraform fmt` or `validate`): the text checks above hold
    # the layout `terraform fmt` wants, and an HCL parser checks the structure.
    doc = _hcl(text)
    assert list(doc) == ["resource"] and [list(r) for r in doc["resource"]] == [["aws_kms_key"], ["aws_kms_alias"]]
    key = doc["resource"][0]["aws_kms_key"]["production_encryption_2026"]
    assert (key["customer_master_key_spec"], key["key_usage"], key["multi_region"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        False,
    )
    assert key["enable_key_rotation"] is True and key["rotation_period_in_days"] == 180
    assert key["description"].startswith("production-encryption-2026 encryption key (created ")
    assert key["tags"] == TAGS
    heredoc = re.fullmatch(r"<<-POLICY\n(.*)\n *POLICY", key["policy"], re.DOTALL)
    assert heredoc is not None, key["policy"]
    policy = json.loads(heredoc[1])
    assert policy["Statement"][0]["Sid"] == "EnableIAMUserPermissions"
    analysis = analyze_key_policy(json.dumps(policy), ACCOUNT)
    assert not analysis.public and analysis.admins_can_decrypt is False and analysis.denies_insecure_transport
    assert doc["resource"][1]["aws_kms_alias"]["production_encryption_2026"] == {
        "name": "alias/production-encryption-2026",
        "target_key_id": "${aws_kms_key.production_encryption_2026.key_id}",
    }


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--alias", "prod", "--admin", ADMIN], "--alias"),
        (["--alias", "alias/aws/x", "--admin", ADMIN], "reserved"),
        (["--alias", "alias/x", "--admin", f"arn:aws:iam::{ACCOUNT}:root"], "root"),
        (["--alias", "alias/x", "--admin", ADMIN, "--user", ADMIN], "separation"),
        (["--alias", "alias/x", "--admin", ADMIN, "--rotation-days", "30"], "--rotation-days"),
        (["--alias", "alias/x", "--admin", ADMIN, "--output", "pulumi"], "--output"),
    ],
)
def test_bad_input_exit_2(args: list[str], text: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2 and text in result.output, result.output


def test_a_key_without_the_guides_four_tags_is_refused_naming_the_flags(tmp_path: Path) -> None:
    partial = ["--alias", "alias/app", "--admin", ADMIN, "--environment", "Production", "--owner", "security"]
    result = _run(*partial, "--output", "terraform", "--output-file", str(tmp_path / "key.tf"))
    assert result.exit_code == 2, result.output
    assert "DataClassification, CostCenter" in result.output and "--data-classification, --cost-center" in result.output
    assert not (tmp_path / "key.tf").exists()  # nothing written
    # --allow-untagged says the user chose a key off the standard; key_missing_tags will flag it.
    allowed = _run(*partial, "--allow-untagged", "--output", "terraform", "--output-file", str(tmp_path / "key.tf"))
    assert allowed.exit_code == 0, allowed.output
    text = (tmp_path / "key.tf").read_text()
    assert "Production" in text and "CostCenter" not in text
