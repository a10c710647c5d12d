"""The fix plan's "who loses what" from effective access, against the real moto server with IAM roles: what a
key-policy rewrite takes away through the key policy, IAM delegation and role chains, the lock-out guard when
the only administrator left cannot act, the key-policy diff as the fallback, and verification after apply."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.config import ScanConfig
from kmsguard.fix.apply import Sessions, apply_plan
from kmsguard.fix.journal import Journal
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.fix.verify import verify
from kmsguard.model.snapshot import Snapshot
from kmsguard.pipeline import judge

from .conftest import ACCOUNT, ADMIN, APP, OUTSIDER, make_key, messy_policy, root_statement

DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
ANALYST = f"arn:aws:iam::{ACCOUNT}:role/analyst"
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def trust(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
        }
    )


def allow_all(actions: str | list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})


def team_policy() -> str:
    return messy_policy(
        root_statement(),
        {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": [ADMIN, APP]}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": OUTSIDER}, "Action": "kms:Decrypt", "Resource": "*"},
    )


def seed_roles(iam: Any) -> None:
    """KeyAdmin can also decrypt through its identity policy; deployer reaches the app role by assuming it;
    analyst decrypts through IAM delegation only."""
    iam.create_role(RoleName="KeyAdmin", AssumeRolePolicyDocument=LAMBDA_TRUST)
    iam.put_role_policy(RoleName="KeyAdmin", PolicyName="Decrypt", PolicyDocument=allow_all("kms:Decrypt"))
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust(DEPLOYER))
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=LAMBDA_TRUST)
    iam.create_role(RoleName="analyst", AssumeRolePolicyDocument=LAMBDA_TRUST)
    iam.put_role_policy(RoleName="analyst", PolicyName="Decrypt", PolicyDocument=allow_all("kms:Decrypt"))


def lost(impact: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["principal"], r["action"]): r for r in impact["lost"]}


def test_who_loses_what_is_effective_access_with_the_path(
    aws: Any, client: Callable[..., Any], run: Callable[..., Result]
) -> None:
    seed_roles(client("iam"))
    kms = client("kms")
    arn = make_key(kms, policy=team_policy(), rotation_days=365)
    result = run("--format", "json", "--key", arn, "--admin", ADMIN, "--user", APP)
    assert result.exit_code == 0, result.output
    [action] = [a for a in json.loads(result.stdout)["actions"] if a["action"] == "tighten_key_policy"]
    impact = action["impact"]
    assert impact["effective_access"]["judged"] is True
    losses = lost(impact)

    # The key-policy diff says the administrator loses kms:Decrypt; it keeps it through its identity policy and
    # the account delegation, so effective access does not list it.
    assert any(r["principal"] == ADMIN and r["action"] == "kms:Decrypt" for r in impact["key_policy"]["lost"])
    assert (ADMIN, "kms:Decrypt") not in losses
    assert (ANALYST, "kms:Decrypt") not in losses  # IAM delegation untouched

    # The partner account loses decrypt on purpose: named by the removal of its root.
    partner = losses[(f"account:{OUTSIDER.split(':')[4]}", "kms:Decrypt")]
    assert partner["via"] == "key_policy+iam" and partner["intended"] is True
    assert partner["path"].startswith("key_policy+iam (key policy: Sid Partner")

    # The app role stops administering; so does the deployer, which reached it only by assuming the app role.
    app = losses[(APP, "kms:PutKeyPolicy")]
    assert app["via"] == "key_policy" and app["decision_before"] == "allowed" and app["intended"] is True
    chained = losses[(DEPLOYER, "kms:PutKeyPolicy")]
    assert chained["via"] == "assume_role" and chained["paths"][0]["chain"] == [APP]
    assert chained["intended"] is True  # explained by the app role's removal
    assert (DEPLOYER, "kms:Decrypt") not in losses  # the app role keeps decrypting, and so does its assumer

    assert impact["admin_lockout"] is False
    assert ADMIN in impact["effective_access"]["administrators_after"]

    # The text plan lists the same principals.
    text = run("--key", arn, "--admin", ADMIN, "--user", APP).stdout
    lines = {ln.strip().split(" loses e.g. ")[0]: ln for ln in text.splitlines() if " loses e.g. " in ln}
    assert "kms:PutKeyPolicy" in lines[DEPLOYER]
    assert ADMIN not in lines or "kms:Decrypt" not in lines[ADMIN]


def test_an_administrator_its_permissions_boundary_stops_does_not_count_against_lockout(
    aws: Any, client: Callable[..., Any], run: Callable[..., Result]
) -> None:
    """The key-policy diff counts the named administrator; effective access knows its permissions boundary
    allows no KMS call, so after the rewrite nobody could change the key policy: refused unless forced."""
    iam = client("iam")
    boundary = iam.create_policy(PolicyName="OnlyS3", PolicyDocument=allow_all("s3:*"))["Policy"]["Arn"]
    iam.create_role(RoleName="KeyAdmin", AssumeRolePolicyDocument=LAMBDA_TRUST, PermissionsBoundary=boundary)
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=LAMBDA_TRUST)
    kms = client("kms")
    policy = messy_policy(
        {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": [ADMIN, APP]}, "Action": "kms:*", "Resource": "*"}
    )
    arn = make_key(kms, policy=policy, rotation_days=365)
    args = ("--format", "json", "--key", arn, "--admin", ADMIN, "--user", APP)
    plan = json.loads(run(*args).stdout)
    assert plan["actions"] == []
    [refusal] = [r for r in plan["refused"] if r["resource_arn"] == arn]
    assert (
        "administer" in refusal["reason"] and "effective access: nobody could call it afterwards" in refusal["reason"]
    )

    [action] = json.loads(run(*args, "--force").stdout)["actions"]
    access = action["impact"]["effective_access"]
    assert access["administrators_before"] == [APP] and access["administrators_after"] == []
    assert access["lockout"] is True and action["impact"]["admin_lockout"] is True


def _without_iam(snap: Snapshot) -> Snapshot:
    accounts = [a.model_copy(update={"iam": None}) for a in snap.accounts]
    return snap.model_copy(update={"accounts": accounts})


def test_without_the_iam_inventory_the_plan_shows_the_key_policy_diff_and_says_why(
    aws: Any, client: Callable[..., Any]
) -> None:
    seed_roles(client("iam"))
    arn = make_key(client("kms"), policy=team_policy(), rotation_days=365)
    snap = _without_iam(collect_snapshot(AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url)))
    plan = build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions(admins=frozenset({ADMIN})))
    [action] = [a for a in plan.actions if a.action == "tighten_key_policy" and a.resource_arn == arn]
    assert action.impact["effective_access"]["judged"] is False
    assert "IAM inventory of account 123456789012 was not read" in action.impact["effective_access"]["reason"]
    assert action.impact["lost"] == action.impact["key_policy"]["lost"]
    assert any(":999988887777:" in r["principal"] for r in action.impact["lost"])
    assert action.detail["access_after"] == {}


def test_verification_reports_a_principal_that_lost_what_the_plan_said_it_keeps(
    aws: Any, client: Callable[..., Any], tmp_path: Path
) -> None:
    iam = client("iam")
    seed_roles(iam)
    arn = make_key(client("kms"), policy=team_policy(), rotation_days=365)
    options = AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url)
    snap = collect_snapshot(options)
    fopts = FixOptions(
        admins=frozenset({ADMIN}), users=frozenset({APP}), checks=frozenset({"key_policy_external_access"})
    )
    plan = build_plan(snap, judge(snap, warn=lambda _m: None).findings, fopts)
    [action] = plan.actions
    assert action.detail["access_after"]["kms:Decrypt"][ANALYST] == "allowed"
    # Between plan and verification the analyst's identity policy goes: the plan's promise no longer holds.
    iam.delete_role_policy(RoleName="analyst", PolicyName="Decrypt")
    sessions = Sessions(SessionFactory(options), options.role_name)
    with Journal(tmp_path / "j.json") as jr:
        [outcome] = apply_plan(plan, sessions, jr)
    assert outcome.status == "applied", outcome.message
    check = verify([outcome], sessions, options, ScanConfig())
    effective = [u for u in check.unintended_loss if u.get("via") == "effective access"]
    assert {(u["principal"], u["action"]) for u in effective} == {(ANALYST, "kms:Decrypt")}
    assert effective[0]["resource_arn"] == arn and effective[0]["expected"] == "allowed"
    assert not check.ok


def test_verification_after_an_undisturbed_apply_finds_no_effective_loss(
    aws: Any, client: Callable[..., Any], tmp_path: Path
) -> None:
    seed_roles(client("iam"))
    make_key(client("kms"), policy=team_policy(), rotation_days=365)
    options = AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url)
    snap = collect_snapshot(options)
    plan = build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions(admins=frozenset({ADMIN})))
    sessions = Sessions(SessionFactory(options), options.role_name)
    with Journal(tmp_path / "j.json") as jr:
        outcomes = apply_plan(plan, sessions, jr)
    check = verify(outcomes, sessions, options, ScanConfig())
    assert [u for u in check.unintended_loss if u.get("via") == "effective access"] == []
