"""Unknown values judged as "any value" (iac.symbolic), through the registered checks as `iac scan` runs them.

Each case builds what a loader would declare -- a key whose policy holds ``unknown(...)`` -- and judges it with
``judge_unit``: the policy engine and the checks decide, so these tests hold the worst-case rewrite to what it
is for (an unknown can only make a finding worse, never hide one, and the finding names it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kmsguard.config import ScanConfig
from kmsguard.iac.declared import Declared, IacContext, Location, Unit, unknown
from kmsguard.iac.judge import iac_checks, judge_unit
from kmsguard.iac.symbolic import worst_case_policy
from kmsguard.model.finding import Finding, Status
from kmsguard.model.snapshot import Key

CTX = IacContext(account="111122223333", region="eu-west-1")
ROOT = "arn:aws:iam::111122223333:root"


def _policy(*statements: dict[str, Any]) -> str:
    admin = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [admin, *statements]})


def _judge(policy: str, name: str = "Key") -> dict[str, Finding]:
    key = Key(
        arn=CTX.key_arn(name),
        key_id=name,
        account=CTX.account,
        region=CTX.region,
        key_manager="CUSTOMER",
        key_state="Enabled",
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        policy=policy,
        rotation_enabled=True,
        rotation_period_days=365,
        aliases=["alias/app"],
    )
    world = Declared(keys=[key], locations={key.arn: Location("stack.yaml", 7, name)})
    findings = judge_unit(Unit("stack.yaml", "cloudformation", [world]), CTX, ScanConfig(), iac_checks())
    return {f.check_id: f for f in findings if f.resource_type == "AWS::KMS::Key"}


def _use(principal: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}
    if condition:
        st["Condition"] = condition
    return st


def test_an_unknown_principal_is_anyone_and_the_finding_names_the_parameter() -> None:
    found = _judge(_policy(_use({"AWS": unknown("parameter ReaderArn (no default)")})))
    public = found["key_policy_public"]
    assert public.status is Status.FAIL
    assert public.evidence["unknown_values"] == ["parameter ReaderArn (no default)"]
    assert "parameter ReaderArn (no default)" in public.message
    assert public.resource_arn == "iac://stack.yaml#Key"
    assert public.location is not None and (public.location.file, public.location.line) == ("stack.yaml", 7)


def test_an_unknown_role_name_in_the_keys_own_account_stays_inside_the_account() -> None:
    role = "arn:aws:iam::111122223333:role/" + unknown("parameter RoleName (no default)")
    found = _judge(_policy(_use({"AWS": role})))
    assert found["key_policy_public"].status is Status.PASS
    assert found["key_policy_external_access"].status is Status.PASS
    assert found["key_policy_public"].evidence["unknown_values"] == ["parameter RoleName (no default)"]


def test_an_unknown_account_in_a_principal_is_anyone() -> None:
    role = "arn:aws:iam::" + unknown("parameter PartnerAccount (no default)") + ":root"
    assert _judge(_policy(_use({"AWS": role})))["key_policy_public"].status is Status.FAIL


def test_a_condition_with_an_unknown_value_is_assumed_satisfied() -> None:
    bounded = _use("*", {"StringEquals": {"aws:PrincipalOrgID": "o-abcdef1234"}})
    assert _judge(_policy(bounded))["key_policy_public"].status is Status.PASS
    open_org = _use("*", {"StringEquals": {"aws:PrincipalOrgID": unknown("parameter OrgId (no default)")}})
    assert _judge(_policy(open_org))["key_policy_public"].status is Status.FAIL


def test_a_deny_holding_an_unknown_is_not_relied_on() -> None:
    deny = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert _judge(_policy(deny))["key_policy_no_secure_transport"].status is Status.PASS
    shaky = dict(deny, Condition={"Bool": {"aws:SecureTransport": unknown("parameter Tls (no default)")}})
    assert _judge(_policy(shaky))["key_policy_no_secure_transport"].status is Status.FAIL


def test_not_action_with_an_unknown_becomes_every_action() -> None:
    st = {"Effect": "Allow", "Principal": "*", "NotAction": unknown("parameter Excluded"), "Resource": "*"}
    worst = worst_case_policy(_policy(st))
    assert worst is not None
    rewritten = json.loads(worst.text)["Statement"][1]
    assert rewritten["Action"] == "*" and "NotAction" not in rewritten


def test_a_policy_without_unknowns_is_judged_as_written() -> None:
    text = _policy(_use({"AWS": "arn:aws:iam::111122223333:role/app"}))
    worst = worst_case_policy(text)
    assert worst is not None and worst.text == text and worst.unknowns == []
    assert "unknown_values" not in _judge(text)["key_policy_public"].evidence


def test_a_wholly_unknown_policy_is_the_worst_policy() -> None:
    found = _judge(unknown("parameter KeyPolicy (no default)"))
    assert found["key_policy_public"].status is Status.FAIL
    assert found["key_policy_wildcard_actions"].status is Status.FAIL
    assert found["key_policy_public"].evidence["unknown_values"] == ["parameter KeyPolicy (no default)"]


def test_an_unknown_effect_may_be_allow() -> None:
    # Review finding: an unknown Effect was taken for a Deny and the statement dropped, hiding a public key.
    st = {"Effect": unknown("parameter Eff (no default)"), "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    assert _judge(_policy(st))["key_policy_public"].status is Status.FAIL


@pytest.mark.parametrize(
    "statement",
    [
        unknown("Fn::ImportValue Stmt"),
        {"Effect": "Allow", "Principal": {unknown("var.t (no default)"): ["*"]}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": unknown("parameter Cond (no default)"),
        },
    ],
    ids=["whole-statement", "principal-type", "whole-condition"],
)
def test_unknowns_in_structural_places_are_read_at_their_worst(statement: Any) -> None:
    found = _judge(_policy(statement))
    assert found["key_policy_public"].status is Status.FAIL
    assert found["key_policy_public"].evidence["unknown_values"]


def test_text_that_is_json_only_once_an_unknown_is_filled_in_is_any_policy() -> None:
    text = '{"Version": "2012-10-17", "Statement": ' + unknown("jsonencode(var.x)") + "}"
    assert _judge(text)["key_policy_public"].status is Status.FAIL


def test_an_unknown_identity_statement_is_everything_without_a_principal() -> None:
    worst = worst_case_policy(json.dumps({"Version": "2012-10-17", "Statement": [unknown("var.s")]}), "identity")
    assert worst is not None and json.loads(worst.text)["Statement"] == [
        {"Sid": "AnyStatement", "Effect": "Allow", "Action": "*", "Resource": "*"}
    ]
