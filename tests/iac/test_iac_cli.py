"""`kmsguard iac scan` and `kmsguard iac diff` as a new user runs them, on the templates under data/cli/.

data/cli/repo: CloudFormation (cfn/keys.yaml: a public key, Principal "*" bounded by the organisation, a reader
given at deploy time, a key public only when Stage=prod) and Terraform (terraform/main.tf: a key without
rotation, tags or alias). data/cli/clean: the guide's key. data/cli/broken: a template that is not YAML.
data/cli/none: YAML that is no template. data/cli/diff: one key in the versions `iac diff` compares.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file
from typer.testing import CliRunner, Result

from kmsguard.cli.main import app

DATA = Path(__file__).parent / "data" / "cli"
REPO = DATA / "repo"
DIFF = DATA / "diff"
SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"
ACCOUNT = "123456789012"
runner = CliRunner()


def iac(*args: str) -> Result:
    return runner.invoke(app, ["iac", *args], catch_exceptions=False)


def line_of(path: Path, start: str) -> int:
    """The 1-based line of ``path`` that starts with ``start`` (where a resource's declaration begins)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(start))


def scan_json(tmp_path: Path, *args: str, expect: int = 1) -> list[dict[str, Any]]:
    out = tmp_path / "findings.json"
    res = iac("scan", *args, "-f", "json", "-o", str(out), "-q")
    assert res.exit_code == expect, res.output
    findings: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))["findings"]
    return findings


def by(findings: list[dict[str, Any]], check_id: str, resource: str) -> dict[str, Any]:
    [found] = [f for f in findings if f["check_id"] == check_id and f["location"]["resource"] == resource]
    return found


@pytest.fixture
def repo_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    # Run from data/cli as a user runs it from a repository's root: files are named relative to it.
    monkeypatch.chdir(DATA)
    return scan_json(tmp_path, "repo")


def test_a_directory_of_cloudformation_and_terraform_fails_with_file_line_and_resource(
    repo_findings: list[dict[str, Any]],
) -> None:
    public = by(repo_findings, "key_policy_public", "PublicKey")
    assert public["status"] == "FAIL" and public["severity"] == "critical"
    cfn = REPO / "cfn" / "keys.yaml"
    assert public["location"] == {
        "file": "repo/cfn/keys.yaml",
        "line": line_of(cfn, "  PublicKey:"),
        "resource": "PublicKey",
    }

    rotation = by(repo_findings, "key_rotation_disabled", "aws_kms_key.logs")
    assert rotation["status"] == "FAIL"
    tf = REPO / "terraform" / "main.tf"
    assert rotation["location"] == {
        "file": "repo/terraform/main.tf",
        "line": line_of(tf, 'resource "aws_kms_key" "logs"'),
        "resource": "aws_kms_key.logs",
    }
    for f in repo_findings:
        loc = f["location"]
        assert f["resource_arn"] == f"iac://{loc['file']}#{loc['resource']}", f
        assert loc["file"] in {"repo/cfn/keys.yaml", "repo/terraform/main.tf"}, f
        assert loc["line"] >= 1


def test_principal_star_bounded_by_the_organisation_is_not_public(repo_findings: list[dict[str, Any]]) -> None:
    assert by(repo_findings, "key_policy_public", "OrgKey")["status"] == "PASS"
    # ... but an organisation nobody trusted is still outside the account.
    assert by(repo_findings, "key_policy_external_access", "OrgKey")["status"] == "FAIL"


def test_a_principal_given_at_deploy_time_is_judged_as_anyone_and_named(repo_findings: list[dict[str, Any]]) -> None:
    public = by(repo_findings, "key_policy_public", "SharedKey")
    assert public["status"] == "FAIL"
    assert public["evidence"]["unknown_values"] == ["parameter ReaderArn (no default)"]
    assert "parameter ReaderArn (no default)" in public["message"]
    # A key without an unknown value says nothing of the kind.
    assert "unknown_values" not in by(repo_findings, "key_policy_public", "PublicKey")["evidence"]


def test_both_branches_of_fn_if_are_judged(repo_findings: list[dict[str, Any]]) -> None:
    public = by(repo_findings, "key_policy_public", "StageKey")
    assert public["status"] == "FAIL"
    assert public["evidence"]["iac_condition"] == "IsProd=true"
    assert public["message"].endswith("(when IsProd=true)")
    # A check both worlds agree on carries no condition.
    assert "iac_condition" not in by(repo_findings, "key_rotation_disabled", "StageKey")["evidence"]


@cache
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def test_sarif_is_valid_and_every_result_points_at_a_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(DATA)
    out = tmp_path / "r.sarif"
    res = iac("scan", "repo", "-f", "sarif", "-o", str(out), "-q")
    assert res.exit_code == 1, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    errors = sorted(sarif_validator().iter_errors(doc), key=str)
    assert not errors, "\n".join(e.message for e in errors[:5])
    results = doc["runs"][0]["results"]
    assert results
    for r in results:
        physical = r["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] in {"repo/cfn/keys.yaml", "repo/terraform/main.tf"}, r
        assert physical["region"]["startLine"] >= 1
    public = [
        r
        for r in results
        if r["ruleId"] == "key_policy_public" and r["level"] == "error" and "PublicKey" in json.dumps(r["locations"])
    ]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in public] == [
        line_of(REPO / "cfn" / "keys.yaml", "  PublicKey:")
    ]


WELL_FORMED = sorted(
    p.relative_to(DATA).as_posix() for p in DATA.rglob("*.yaml") if p.parent.name not in ("broken", "none")
)


@pytest.mark.parametrize("rel", WELL_FORMED)
def test_the_well_formed_templates_pass_cfn_lint(rel: str) -> None:
    # What these tests judge is what CloudFormation would take: no error and no warning.
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in lint_file(DATA / rel, ManualArgs())] == []


def test_a_live_only_check_is_refused_naming_live_state() -> None:
    res = iac("scan", str(REPO), "--checks", "key_pending_deletion", "-q")
    assert res.exit_code == 2
    assert "key_pending_deletion" in res.output and "live state" in res.output


def test_a_clean_template_exits_0(tmp_path: Path) -> None:
    findings = scan_json(tmp_path, str(DATA / "clean"), "--root", str(DATA), expect=0)
    statuses = {f["status"] for f in findings}
    assert statuses == {"PASS"}, [f for f in findings if f["status"] != "PASS"]
    # --root names files relative to it, wherever the command runs.
    assert {(f["location"]["file"], f["location"]["resource"]) for f in findings} == {("clean/guide.yaml", "GuideKey")}


def test_a_broken_template_exits_2_naming_file_and_line_without_a_traceback(tmp_path: Path) -> None:
    # The real entry point, so the output is exactly what a user sees.
    done = subprocess.run(
        [sys.executable, "-m", "kmsguard.cli.main", "iac", "scan", "broken", "-q"],
        cwd=DATA,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    # Line 6 holds a second ": " in a plain scalar, which YAML refuses.
    assert f"broken/bad.yaml:{line_of(DATA / 'broken' / 'bad.yaml', '      Description: key:')}:" in output, output


def test_a_directory_without_a_template_exits_2() -> None:
    res = iac("scan", str(DATA / "none"), "-q")
    assert res.exit_code == 2
    assert "no CloudFormation template" in res.output


def test_the_pre_commit_hook_passes_a_commit_that_touches_no_template() -> None:
    # The hook (.pre-commit-hooks.yaml) hands kmsguard every staged YAML/JSON file: a workflow file alone is not a
    # template, and that commit must pass, while the same files without the flag are still a usage error.
    hook = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())[0]
    entry = hook["entry"].split()
    assert entry[:3] == ["kmsguard", "iac", "scan"] and "--allow-no-templates" in entry
    files = [str(p) for p in sorted((DATA / "none").iterdir())]
    res = iac(*entry[2:], *files)
    assert res.exit_code == 0, res.output
    assert "no template among the paths" in res.output


def diff_json(*args: str) -> tuple[int, list[dict[str, Any]]]:
    res = iac("diff", *args, "-f", "json")
    assert res.exit_code in (0, 1), res.output
    changes: list[dict[str, Any]] = json.loads(res.stdout)["changes"]
    return res.exit_code, changes


def test_diff_fails_a_change_that_opens_a_key_to_the_public() -> None:
    code, changes = diff_json(str(DIFF / "old.yaml"), str(DIFF / "new_public.yaml"), "--fail-on-new-access", "public")
    assert code == 1
    [change] = changes
    assert change["key"] == "DataKey" and change["status"] == "changed"
    assert change["public_before"] is False and change["public_after"] is True
    assert change["gained"] and not change["admin_lockout"]


def test_diff_passes_a_change_that_only_removes_access() -> None:
    code, changes = diff_json(str(DIFF / "old.yaml"), str(DIFF / "new_narrower.yaml"), "--fail-on-new-access", "any")
    assert code == 0
    [change] = changes
    assert change["lost"] and not change["gained"]
    assert change["admin_lockout"] is False


def test_diff_fails_a_change_that_locks_out_every_administrator() -> None:
    code, changes = diff_json(str(DIFF / "old.yaml"), str(DIFF / "new_lockout.yaml"))
    assert code == 1
    [change] = changes
    assert change["admin_lockout"] is True and change["administrable_after"] is False


def test_diff_principal_star_bounded_by_the_organisation_is_not_public() -> None:
    old, new = str(DIFF / "old.yaml"), str(DIFF / "new_org.yaml")
    code, changes = diff_json(old, new, "--fail-on-new-access", "public")
    assert code == 0
    [change] = changes
    assert change["public_after"] is False and change["gained"]
    # It is new access all the same: `any` fails it.
    assert diff_json(old, new, "--fail-on-new-access", "any")[0] == 1


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_diff_base_compares_the_working_tree_with_a_git_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "kmsguard test")
    git(repo, "config", "user.email", "test@example.com")
    template = repo / "infra" / "key.yaml"
    for version in ("old.yaml", "new_public.yaml"):
        shutil.copy(DIFF / version, template)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", version)
    monkeypatch.chdir(repo)
    code, changes = diff_json("--base", "HEAD~1", "infra", "--fail-on-new-access", "public")
    assert code == 1
    [change] = changes
    assert change["unit"] == "infra/key.yaml" and change["key"] == "DataKey"
    assert change["public_before"] is False and change["public_after"] is True
    # Against itself nothing changed.
    assert diff_json("--base", "HEAD", "infra", "--fail-on-new-access", "any") == (0, [])


def plan(path: Path, before: dict[str, Any], after: dict[str, Any]) -> Path:
    """A `terraform show -json` plan updating one key's policy from ``before`` to ``after``."""

    def values(policy: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": "data key",
            "enable_key_rotation": True,
            "rotation_period_in_days": 365,
            "is_enabled": True,
            "key_usage": "ENCRYPT_DECRYPT",
            "customer_master_key_spec": "SYMMETRIC_DEFAULT",
            "multi_region": False,
            "policy": json.dumps(policy),
            "tags": {"Environment": "prod"},
        }

    resource = {"address": "aws_kms_key.data", "mode": "managed", "type": "aws_kms_key", "name": "data"}
    doc = {
        "format_version": "1.2",
        "terraform_version": "1.7.5",
        "planned_values": {"root_module": {"resources": [{**resource, "values": values(after)}]}},
        "resource_changes": [
            {
                **resource,
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": ["update"],
                    "before": values(before),
                    "after": values(after),
                    "after_unknown": {},
                },
            }
        ],
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def test_diff_of_a_terraform_plan_compares_its_before_and_after(tmp_path: Path) -> None:
    root = {
        "Sid": "Root",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    everyone = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    before = {"Version": "2012-10-17", "Statement": [root]}
    after = {"Version": "2012-10-17", "Statement": [root, everyone]}
    path = plan(tmp_path / "plan.json", before, after)
    code, changes = diff_json(str(path), "--fail-on-new-access", "public")
    assert code == 1
    [change] = changes
    assert change["key"] == "aws_kms_key.data" and change["status"] == "changed"
    assert change["public_before"] is False and change["public_after"] is True
    # The same plan with nothing changed in the policy: no change to report.
    unchanged = plan(tmp_path / "same.json", before, before)
    assert diff_json(str(unchanged), "--fail-on-new-access", "any") == (0, [])
