"""`kmsguard policy ...` through typer's CliRunner: the JSON contract, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app

K = "111122223333"
X = "444455556666"
ADMIN = f"arn:aws:iam::{K}:role/Admin"
APP = f"arn:aws:iam::{K}:role/App"
runner = CliRunner()


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return str(path)


def invoke(*args: str) -> Any:
    return runner.invoke(app, ["policy", *args])


@pytest.fixture
def guide(tmp_path: Path) -> str:
    result = invoke("generate", "--account", K, "--admin", ADMIN, "--user", APP)
    assert result.exit_code == 0, result.output
    return write(tmp_path, "guide.json", result.stdout)


def public_doc() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt",
                                                     "Resource": "*"}]}  # fmt: skip


def test_validate_reports_line_and_column_and_exits_2(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.json", '{\n  "Version": "2012-10-17",\n  "Statement": [\n')
    result = invoke("validate", bad)
    assert result.exit_code == 2
    assert f"{bad}:4:" in result.stdout
    result = invoke("validate", bad, "--format", "json")
    assert json.loads(result.stdout)["valid"] is False


def test_validate_good_policy_exits_0(guide: str) -> None:
    assert invoke("validate", guide).exit_code == 0


def test_analyze_contract(guide: str) -> None:
    result = invoke("analyze", guide, "--account", K, "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["public"] is False
    assert out["external_principals"] == []
    assert out["admins_can_decrypt"] is False
    assert APP in [e["principal"] for e in out["who_can"]["kms:Decrypt"]]
    statuses = {f["check_id"]: f["status"] for f in out["findings"]}
    assert statuses["key_policy_public"] == "PASS"
    assert set(statuses) >= {"key_policy_external_access", "key_policy_no_secure_transport"}


def test_analyze_public_and_trusted_options(tmp_path: Path) -> None:
    path = write(tmp_path, "public.json", public_doc())
    out = json.loads(invoke("analyze", path, "--account", K).stdout)
    assert (out["public"], out["external_principals"]) == (True, ["*"])
    assert {f["check_id"]: f["status"] for f in out["findings"]}["key_policy_public"] == "FAIL"
    doc = public_doc()
    doc["Statement"][0]["Principal"] = {"AWS": X}
    shared = write(tmp_path, "shared.json", doc)
    assert json.loads(invoke("analyze", shared, "--account", K).stdout)["external_principals"] == [
        f"arn:aws:iam::{X}:root"
    ]
    trusted = invoke("analyze", shared, "--account", K, "--trusted-account", X)
    assert json.loads(trusted.stdout)["external_principals"] == []


def test_simulate_decisions(guide: str, tmp_path: Path) -> None:
    base = ["simulate", guide, "--account", K, "--principal", APP, "--action", "kms:Decrypt"]
    ok = json.loads(invoke(*base, "--context", "aws:SecureTransport=true").stdout)
    assert ok["decision"] == "allow"
    denied = json.loads(invoke(*base, "--context", "aws:SecureTransport=false").stdout)
    assert denied["decision"] == "explicit_deny"
    assert 4 in denied["matched_statements"]
    # The context is exactly what --context gives: the root statement's kms:CallerAccount must be stated.
    other = [*base[:4], "--principal", f"arn:aws:iam::{K}:role/Other", "--action", "kms:Decrypt"]
    other += ["--context", f"kms:CallerAccount={K}"]
    assert json.loads(invoke(*other).stdout)["decision"] == "implicit_deny"
    assert json.loads(invoke(*other, "--assume-iam-allows").stdout)["decision"] == "allow"
    identity = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
    iam = write(tmp_path, "iam.json", identity)
    assert json.loads(invoke(*other, "--iam-policy", iam).stdout)["decision"] == "allow"


def test_simulate_multi_valued_context(tmp_path: Path) -> None:
    doc = public_doc()
    doc["Statement"][0]["Condition"] = {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}}
    path = write(tmp_path, "p.json", doc)
    base = ["simulate", path, "--account", K, "--principal", APP, "--action", "kms:Decrypt"]
    ok = invoke(*base, "--context", "kms:EncryptionContextKeys=a", "--context", "kms:EncryptionContextKeys=b")
    assert json.loads(ok.stdout)["decision"] == "allow"
    bad = invoke(*base, "--context", "kms:EncryptionContextKeys=a", "--context", "kms:EncryptionContextKeys=c")
    assert json.loads(bad.stdout)["decision"] == "implicit_deny"


def test_diff_reports_gained_access_and_lockout(guide: str, tmp_path: Path) -> None:
    doc = json.loads(Path(guide).read_text())
    doc["Statement"].append({"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:Decrypt", "Resource": "*"})
    new = write(tmp_path, "new.json", doc)
    out = json.loads(invoke("diff", guide, new, "--account", K, "--format", "json").stdout)
    assert out["admin_lockout"] is False and out["lost"] == []
    assert {g["principal"].split(":")[4] for g in out["gained"]} == {X}
    lock = write(tmp_path, "lock.json", public_doc())
    assert json.loads(invoke("diff", guide, lock, "--account", K).stdout)["admin_lockout"] is True


def test_generate_options_and_bad_arguments() -> None:
    result = invoke(
        "generate", "--account", K, "--admin", ADMIN, "--user", APP,
        "--via-service", "s3.us-east-1.amazonaws.com", "--require-context", "Environment=Production",
    )  # fmt: skip
    doc = json.loads(result.stdout)
    use = next(s for s in doc["Statement"] if s["Sid"] == "KeyUsageForEncryption")
    assert use["Condition"]["StringEquals"]["kms:EncryptionContext:Environment"] == "Production"
    bad = invoke("generate", "--account", K, "--admin", f"arn:aws:iam::{K}:root")
    assert bad.exit_code == 2
    assert "never root" in bad.output


SIM = ["simulate", "{policy}", "--account", K, "--principal", APP, "--action"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "missing.json", "--account", K], "no such file"),
        (["analyze", "{policy}", "--account", "123"], "12-digit"),
        (["analyze", "{policy}", "--account", K, "--org-id", "org1"], "Organization id"),
        ([*SIM, "kms:Decrypt", "--context", "novalue"], "KEY=VALUE"),
        ([*SIM, "s3:GetObject"], "KMS action"),
        (["diff", "{policy}", "{invalid}", "--account", K], "invalid.json"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    policy = write(tmp_path, "p.json", public_doc())
    invalid = write(tmp_path, "invalid.json", '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}')
    result = invoke(*[a.format(policy=policy, invalid=invalid) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
