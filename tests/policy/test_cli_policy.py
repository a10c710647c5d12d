"""`kmsguard policy ...` through typer's CliRunner: the JSON contract, exit codes and one-line errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.cli.main import app

K = "111122223333"
X = "444455556666"
ORG = "o-abc123def4"
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
    other = [*base[:4], "--principal", f"arn:aws:iam::{K}:role/Other", "--action", "kms:Decrypt"]
    assert json.loads(invoke(*other).stdout)["decision"] == "implicit_deny"  # the root statement needs IAM
    identity = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
    iam = write(tmp_path, "iam.json", identity)
    assert json.loads(invoke(*other, "--iam-policy", iam).stdout)["decision"] == "allow"


def test_simulate_fills_in_the_keys_aws_sets_from_the_principal(guide: str) -> None:
    """The guide's root statement requires kms:CallerAccount = the account. AWS sets that key (and
    aws:PrincipalAccount, aws:PrincipalArn, ...) from the caller, so a role of the account whose IAM
    policies allow gets in without anyone typing --context kms:CallerAccount; the output says which keys
    were assumed."""
    role = f"arn:aws:iam::{K}:role/Other"
    args = ["simulate", guide, "--account", K, "--principal", role, "--action", "kms:Decrypt", "--assume-iam-allows"]
    out = json.loads(invoke(*args).stdout)
    assert out["decision"] == "allow"
    assert out["assumed_context"] == {
        "aws:principalaccount": [K],
        "aws:principalarn": [role],
        "aws:principalisawsservice": ["false"],
        "aws:principaltype": ["AssumedRole"],
        "kms:calleraccount": [K],
    }
    # A session carries its role's ARN; what --context gives wins and is not listed as assumed.
    session = f"arn:aws:sts::{K}:assumed-role/Other/alice"
    given = invoke(*args[:5], session, *args[6:], "--context", f"kms:CallerAccount={X}", "--principal-org-id", ORG)
    out = json.loads(given.stdout)
    assert out["decision"] == "implicit_deny"  # the caller says it is another account: the root statement fails
    assert out["assumed_context"]["aws:principalarn"] == [role]
    assert out["assumed_context"]["aws:principalorgid"] == [ORG]
    assert "kms:calleraccount" not in out["assumed_context"]
    assert "aws:securetransport" not in out["assumed_context"]  # how the call is made is never assumed


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
    key = f"arn:aws:kms:eu-west-1:{K}:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
    out = json.loads(invoke("diff", guide, new, "--account", K, "--key-arn", key, "--format", "json").stdout)
    assert out["admin_lockout"] is False and out["lost"] == [] and out["uncertain"] == []
    assert [(g["principal"].split(" (for example ")[0], g["action"]) for g in out["gained"]] == [
        (f"any principal of account {X}", "kms:Decrypt")
    ]
    assert {g["example"]["principal"].split(":")[4] for g in out["gained"]} == {X}
    assert {g["resource"] for g in out["gained"]} == {key}
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
        (["analyze", "{policy}", "--account", K, "--org-id", "o-abc123"], "10 to 32"),
        ([*SIM, "kms:Decrypt", "--principal-org-id", "o-ABCDEFGHIJ"], "Organization id"),
        (["diff", "{policy}", "{policy}", "--account", K, "--key-arn", f"arn:aws:kms:eu-west-1:{X}:key/k"], "key-arn"),
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


# --- the README's own examples, and organisation ids --------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_policy_commands() -> list[list[str]]:
    """Every `kmsguard policy ...` command line in the README (continuation lines joined, comments cut)."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in text.splitlines()]
    return [shlex.split(line)[2:] for line in lines if line.startswith("kmsguard policy ")]


def test_the_readme_policy_examples_run(guide: str, tmp_path: Path) -> None:
    """The README's examples, as a new user would paste them (issue 13, 4.4: its `--org-id o-abc123` was
    rejected), with the file names pointing at a real policy."""
    commands = readme_policy_commands()
    assert {c[0] for c in commands} >= {"validate", "analyze", "simulate", "diff", "generate"}
    files = {name: guide for name in ("policy.json", "old.json", "new.json")}
    for command in commands:
        result = invoke(*[files.get(arg, arg) for arg in command])
        assert result.exit_code == 0, (command, result.output)


@pytest.mark.parametrize(
    ("org_id", "accepted"),
    [
        ("o-" + "a" * 10, True),
        ("o-" + "0123456789abcdefghijklmnopqrstuv", True),  # 32, the most AWS allows
        ("o-abc123def4", True),
        ("o-abc123", False),  # 6: fewer than 10
        ("o-" + "a" * 33, False),
        ("o-ABCDEFGHIJ", False),  # upper case
        ("o-abcdefghij\n", False),
        ("r-abcdefghij", False),
    ],
)
def test_org_ids_are_exactly_the_ones_aws_accepts(tmp_path: Path, org_id: str, accepted: bool) -> None:
    """Organizations API reference, Organization.Id: ^o-[a-z0-9]{10,32}$; the CLI and kmsguard.yaml agree."""
    from kmsguard.config import ScanConfig

    policy = write(tmp_path, "p.json", public_doc())
    result = invoke("analyze", policy, "--account", K, "--org-id", org_id)
    if accepted:
        assert result.exit_code == 0, result.output
    else:  # a one-line usage error, never a traceback from a later check
        assert result.exit_code == 2, result.output
        assert "--org-id" in result.output and len(result.output.strip().splitlines()) == 1
    try:
        ScanConfig(trusted_org_ids=[org_id])
        config_accepts = True
    except ValueError:
        config_accepts = False
    assert config_accepts is accepted


def _hostile_policies() -> list[tuple[str, bytes, list[str]]]:
    """Policy files a loader must refuse: (id, bytes, what the one-line error says)."""
    text = json.dumps(public_doc(), indent=2)
    sid = text.replace('"Effect"', '"Sid": "\\ud800",\n      "Effect"', 1)
    return [
        ("deep", b"[" * 5000, [":1:65:", "nested deeper than 64 levels"]),
        ("lone surrogate", sid.encode(), [":5:", "lone surrogate \\ud800", "Statement[0].Sid"]),
        ("not UTF-8", text.replace("kms:Decrypt", "kms:Dec\xffrypt").encode("latin-1"), ["not UTF-8 text at line"]),
    ]


@pytest.mark.parametrize(
    ("content", "words"), [c[1:] for c in _hostile_policies()], ids=[c[0] for c in _hostile_policies()]
)
@pytest.mark.parametrize(
    "command",
    [
        ["validate", "{p}"],
        ["analyze", "{p}", "--account", K],
        ["diff", "{good}", "{p}", "--account", K],
        ["simulate", "{p}", "--account", K, "--principal", APP, "--action", "kms:Decrypt"],
        ["simulate", "{good}", "--account", K, "--principal", APP, "--action", "kms:Decrypt", "--iam-policy", "{p}"],
    ],
    ids=["validate", "analyze", "diff", "simulate", "simulate-iam"],
)
def test_hostile_policy_files_are_one_line_exit_2_naming_file_and_place(
    tmp_path: Path, command: list[str], content: bytes, words: list[str]
) -> None:
    """Issue 14: a file nested 5,000 deep was a RecursionError traceback (exit 1); a lone surrogate or a byte
    that is not UTF-8 must be named where it is, not crash the first output that holds it."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    good = write(tmp_path, "good.json", public_doc())
    args = [a.format(p=bad, good=good) for a in command]
    result = runner.invoke(app, ["policy", *args], catch_exceptions=False)
    out = result.output.strip()
    assert result.exit_code == 2, out
    assert len(out.splitlines()) == 1 and str(bad) in out, out
    for w in words:
        assert w in out, out
