"""Effective access end to end on a real moto server over HTTP: the collector reads IAM (AWS managed
policies included) and the Organization (OUs, SCPs, RCPs), and `kmsguard access` answers from them.

moto loads AWS managed IAM policies only with MOTO_IAM_LOAD_MANAGED_POLICIES=true: the demo's emulator sets it;
the test server leaves it off (it makes resets slow) and this module switches it on for its own estate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from kmsguard.aws.options import AwsOptions
from kmsguard.cli.main import app
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import DEFAULT_ACCOUNT, Emulator, set_aws_managed_policies
from kmsguard.model.snapshot import Snapshot
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.estate import build_estate
from kmsguard.snapshot_io import save_snapshot

MAIN = DEFAULT_ACCOUNT
ADMIN_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust(principal: dict[str, Any]) -> str:
    return _doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


@pytest.fixture(scope="module")
def world(moto_server: Emulator) -> Iterator[tuple[dict[str, Any], Snapshot]]:
    """Main (management) account and one member account in an OU with an SCP and an RCP, collected once
    over HTTP for the tests of this module (they only read)."""
    set_aws_managed_policies(True)  # AdministratorAccess & co. exist in the accounts created from here on
    moto_server.reset()

    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=moto_server.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    iam, kms = client("iam"), client("kms")
    # Main account: a key that delegates to IAM, and every way IAM can give decrypt.
    iam.create_user(UserName="admin")
    iam.attach_user_policy(UserName="admin", PolicyArn=ADMIN_ACCESS)
    iam.create_role(RoleName="Power", AssumeRolePolicyDocument=_trust({"Service": "ec2.amazonaws.com"}))
    iam.attach_role_policy(RoleName="Power", PolicyArn=POWER_USER)
    iam.create_user(UserName="alice")  # no policy: reaches decrypt only through the App role
    iam.create_role(RoleName="App", AssumeRolePolicyDocument=_trust({"AWS": f"arn:aws:iam::{MAIN}:user/alice"}))
    iam.put_role_policy(
        RoleName="App",
        PolicyName="Decrypt",
        PolicyDocument=_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
    )
    s3only = iam.create_policy(
        PolicyName="S3Only", PolicyDocument=_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    )["Policy"]["Arn"]
    iam.create_role(
        RoleName="Bounded",
        AssumeRolePolicyDocument=_trust({"Service": "ec2.amazonaws.com"}),
        PermissionsBoundary=s3only,
    )
    iam.attach_role_policy(RoleName="Bounded", PolicyArn=ADMIN_ACCESS)
    iam.create_group(GroupName="Readers")
    iam.put_group_policy(
        GroupName="Readers",
        PolicyName="kms-read",
        PolicyDocument=_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
    )
    iam.create_user(UserName="reader")
    iam.add_user_to_group(GroupName="Readers", UserName="reader")
    iam.create_role(RoleName="Worker", AssumeRolePolicyDocument=_trust({"Service": "lambda.amazonaws.com"}))
    key = kms.create_key(Description="orders")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/orders", TargetKeyId=key)
    kms.create_grant(
        KeyId=key,
        GranteePrincipal=f"arn:aws:iam::{MAIN}:role/Worker",
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"dept": "orders"}},
    )

    # The Organization: the main account manages it; a member account sits in OU "Workloads".
    orgs = client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    member = orgs.create_account(Email="m@example.com", AccountName="member")["CreateAccountStatus"]["AccountId"]
    ou = orgs.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]
    orgs.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
    orgs.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    orgs.enable_policy_type(RootId=root, PolicyType="RESOURCE_CONTROL_POLICY")
    scp = orgs.create_policy(
        Name="DenyScheduleDeletion",
        Type="SERVICE_CONTROL_POLICY",
        Description="",
        Content=_doc({"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}),
    )["Policy"]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=scp, TargetId=ou)
    rcp_doc = _doc(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {
                "StringNotEqualsIfExists": {"aws:PrincipalOrgID": orgs.describe_organization()["Organization"]["Id"]},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        }
    )
    rcp = orgs.create_policy(Name="OrgPerimeter", Type="RESOURCE_CONTROL_POLICY", Description="", Content=rcp_doc)[
        "Policy"
    ]["PolicySummary"]["Id"]
    orgs.attach_policy(PolicyId=rcp, TargetId=ou)

    # Member account: the scan's role, an admin there, and a key shared with an outside account.
    def member_client(service: str) -> Any:
        c = client(service)
        c.meta.events.register(
            "before-send", lambda request, **_: request.headers.__setitem__("x-moto-account-id", member)
        )
        return c

    miam, mkms = member_client("iam"), member_client("kms")
    # moto creates OrganizationAccountAccessRole (the role the scan assumes) in a new account, as AWS does.
    miam.create_user(UserName="ops")
    miam.attach_user_policy(UserName="ops", PolicyArn=ADMIN_ACCESS)
    shared = mkms.create_key(
        Description="shared",
        Policy=_doc(
            {
                "Sid": "EnableIAM",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{member}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::777788889999:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ),
    )["KeyMetadata"]["Arn"]
    info = {"key": key, "member": member, "shared": shared, "ou": ou, "scp": scp, "rcp": rcp}
    options = AwsOptions(endpoint_url=moto_server.endpoint_url, regions=["us-east-1"], accounts=[MAIN, member])
    try:
        yield info, collect_snapshot(options)
    finally:
        set_aws_managed_policies(False)
        moto_server.reset()


def test_collector_reads_iam_inventory_and_organization(world: tuple[dict[str, Any], Snapshot]) -> None:
    estate, snap = world
    main = next(a for a in snap.accounts if a.account_id == MAIN)
    assert main.iam is not None
    by_name = {p.name: p for p in main.iam.principals}
    assert by_name["admin"].managed_policies == [ADMIN_ACCESS]
    assert by_name["Bounded"].permissions_boundary == f"arn:aws:iam::{MAIN}:policy/S3Only"
    assert json.loads(by_name["App"].trust_policy or "{}")["Statement"][0]["Principal"]["AWS"].endswith("user/alice")
    assert by_name["reader"].groups == ["Readers"]
    policies = {p.arn: p for p in main.iam.policies}
    # AWS managed policies are kept when something uses them, with their real default document.
    assert policies[ADMIN_ACCESS].aws_managed and json.loads(policies[ADMIN_ACCESS].document or "")["Statement"]
    assert POWER_USER in policies
    assert "arn:aws:iam::aws:policy/ReadOnlyAccess" not in policies  # attached to nothing: left out
    org = snap.organization
    assert org is not None and org.management_account == MAIN and not org.errors
    assert org.scps_enabled and org.rcps_enabled
    assert org.account_parents[estate["member"]] == estate["ou"]
    kinds = {p.id: (p.kind, p.targets) for p in org.policies}
    assert kinds[estate["scp"]] == ("SCP", [estate["ou"]])
    assert kinds[estate["rcp"]] == ("RCP", [estate["ou"]])


def test_who_can_decrypt_follows_every_path(world: tuple[dict[str, Any], Snapshot]) -> None:
    estate, snap = world
    ev = AccessEvaluator(build_estate(snap))
    key = next(k for k in snap.all_keys() if k.arn == estate["key"])
    decrypt = ev.who_can(key, ["kms:Decrypt"]).principals("kms:Decrypt")
    p = f"arn:aws:iam::{MAIN}:"
    assert decrypt[p + "user/admin"].decision == "allowed"  # AWS managed AdministratorAccess
    assert "iam: AWS managed AdministratorAccess" in decrypt[p + "user/admin"].paths[0].statements[1]
    assert decrypt[p + "role/Power"].decision == "allowed"  # PowerUserAccess: NotAction iam/organizations/account
    assert decrypt[p + "user/reader"].decision == "allowed"  # through the group's inline policy
    assert p + "role/Bounded" not in decrypt  # boundary allows only s3
    assert decrypt[p + "role/Worker"].decision == "conditional"  # the grant, bound to an encryption context
    assert decrypt[p + "role/Worker"].paths[0].via == "grant"
    alice = decrypt[p + "user/alice"]
    assert (alice.decision, alice.paths[0].via, alice.paths[0].chain) == ("allowed", "assume_role", (p + "role/App",))
    assert decrypt[p + "root"].decision == "allowed"


def test_scps_and_rcps_bound_the_member_account(world: tuple[dict[str, Any], Snapshot]) -> None:
    estate, snap = world
    ev = AccessEvaluator(build_estate(snap))
    shared = next(k for k in snap.all_keys() if k.arn == estate["shared"])
    access = ev.who_can(shared, ["kms:Decrypt", "kms:ScheduleKeyDeletion"])
    ops = f"arn:aws:iam::{estate['member']}:user/ops"
    assert access.principals("kms:Decrypt")[ops].decision == "allowed"
    assert ops not in access.principals("kms:ScheduleKeyDeletion")  # the SCP on the OU denies it
    # The partner account is named in the key policy, but the RCP keeps everyone outside the org out.
    assert "account:777788889999" not in access.principals("kms:Decrypt")


def test_cli_who_can_and_principal_json_contract(world: tuple[dict[str, Any], Snapshot], tmp_path: Any) -> None:
    estate, snap = world
    path = tmp_path / "snap.json"
    save_snapshot(snap, path)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "access",
            "who-can",
            "alias/orders",
            "--from-snapshot",
            str(path),
            "--format",
            "json",
            "--action",
            "kms:Decrypt",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["key"] == estate["key"] and doc["assumptions"]
    [result] = doc["results"]
    assert result["action"] == "kms:Decrypt"
    alice = next(p for p in result["principals"] if p["principal"].endswith("user/alice"))
    assert alice["decision"] == "allowed"
    assert alice["paths"][0]["via"] == "assume_role" and alice["paths"][0]["chain"][0].endswith("role/App")
    res = runner.invoke(
        app,
        [
            "access",
            "principal",
            f"arn:aws:iam::{MAIN}:user/admin",
            "--from-snapshot",
            str(path),
            "--format",
            "json",
            "-a",
            "kms:PutKeyPolicy",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["principal"].endswith("user/admin")
    assert estate["key"] in [k["key"] for k in doc["results"][0]["keys"]]
    # Unknown key or principal: exit 2, naming it.
    res = runner.invoke(app, ["access", "who-can", "alias/nope", "--from-snapshot", str(path)])
    assert res.exit_code == 2 and "alias/nope" in res.output
    res = runner.invoke(
        app, ["access", "principal", "arn:aws:iam::123456789012:user/ghost", "--from-snapshot", str(path)]
    )
    assert res.exit_code == 2 and "ghost" in res.output
