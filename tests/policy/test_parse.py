"""parse.py: every validation rule, with the JSON path and line/column it reports."""

from __future__ import annotations

import json

import pytest

from kmsguard.policy.errors import PolicyParseError, Problem
from kmsguard.policy.parse import KEY_POLICY_MAX_BYTES, format_path, parse_policy, validate_policy

ACCT = "111122223333"


def doc(*statements: dict, version: str | None = "2012-10-17", **top: object) -> str:
    d: dict[str, object] = {}
    if version is not None:
        d["Version"] = version
    d.update(top)
    d["Statement"] = list(statements)
    return json.dumps(d, indent=2)


def stmt(**kw: object) -> dict:
    base: dict[str, object] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def codes(problems: list[Problem], severity: str | None = None) -> list[str]:
    return [p.code for p in problems if severity is None or p.severity == severity]


def test_valid_default_policy_has_no_problems() -> None:
    assert validate_policy(doc(stmt(Sid="Enable IAM User Permissions"))) == []


def test_json_syntax_error_has_line_and_column() -> None:
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",}\n  ]\n}'
    [problem] = validate_policy(text)
    assert (problem.code, problem.line, problem.column) == ("json", 4, 24)
    with pytest.raises(PolicyParseError, match=r"^k\.json:4:24: error: invalid JSON"):
        parse_policy(text, source="k.json")


def test_nan_is_rejected() -> None:
    assert codes(validate_policy('{"Version": NaN}')) == ["json"]


def test_not_an_object() -> None:
    assert codes(validate_policy("[1, 2]")) == ["not-an-object"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (doc(stmt(), version=None), "missing-version"),
        (doc(stmt(), version="2012-10-18"), "bad-version"),
        (json.dumps({"Version": "2012-10-17"}), "missing-statement"),
        (json.dumps({"Version": "2012-10-17", "Statement": []}), "empty-statement"),
        (json.dumps({"Version": "2012-10-17", "Statement": "x"}), "bad-statement"),
        (doc(stmt(), Foo=1), "unknown-element"),
    ],
)
def test_document_level_errors(text: str, code: str) -> None:
    assert code in codes(validate_policy(text), "error")


def test_old_version_is_a_warning() -> None:
    assert codes(validate_policy(doc(stmt(), version="2008-10-17"))) == ["old-version"]


def test_single_statement_object_is_accepted() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": stmt()})
    assert validate_policy(text) == []


def test_unknown_statement_element_suggests_the_spelling() -> None:
    [p] = validate_policy(doc(stmt(Actions="kms:Decrypt")))
    assert p.code == "unknown-element" and "did you mean 'Action'" in p.message
    assert p.path == "Statement[0].Actions"


@pytest.mark.parametrize("effect", ["allow", "Permit", 1])
def test_effect_must_be_allow_or_deny(effect: object) -> None:
    assert codes(validate_policy(doc(stmt(Effect=effect)))) == ["bad-effect"]


def test_missing_effect() -> None:
    assert "missing-effect" in codes(validate_policy(doc(stmt(Effect=None))))


def test_action_and_notaction_both_or_neither() -> None:
    assert codes(validate_policy(doc(stmt(NotAction="kms:Decrypt")))) == ["both-action"]
    assert codes(validate_policy(doc(stmt(Action=None)))) == ["missing-action"]


def test_principal_and_notprincipal_both_or_missing_in_key_policy() -> None:
    assert codes(validate_policy(doc(stmt(NotPrincipal={"AWS": "*"})))) == ["both-principal"]
    assert codes(validate_policy(doc(stmt(Principal=None)))) == ["missing-principal"]


def test_identity_policy_has_no_principal() -> None:
    ok = doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    assert validate_policy(ok, kind="identity") == []
    bad = doc(stmt())
    assert codes(validate_policy(bad, kind="identity")) == ["principal-in-identity-policy"]


def test_notprincipal_with_allow_is_a_warning() -> None:
    problems = validate_policy(doc(stmt(Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{ACCT}:root"})))
    assert codes(problems) == ["notprincipal-allow"]


def test_unknown_kms_action_suggests_the_real_one() -> None:
    [p] = validate_policy(doc(stmt(Action=["kms:Encrypt", "kms:Decryptt"])))
    assert p.code == "unknown-action" and "kms:Decrypt'" in p.message
    assert p.path == "Statement[0].Action[1]"


def test_wildcard_action_matching_nothing_is_an_error() -> None:
    assert codes(validate_policy(doc(stmt(Action="kms:Frobnicate*")))) == ["unknown-action"]
    assert validate_policy(doc(stmt(Action=["kms:Get*", "kms:*Key", "kms:?ecrypt"]))) == []


def test_action_case_does_not_matter() -> None:
    assert validate_policy(doc(stmt(Action="KMS:decrypt"))) == []


def test_malformed_action() -> None:
    assert codes(validate_policy(doc(stmt(Action="Decrypt")))) == ["bad-action"]


def test_non_kms_action_is_a_warning_in_a_key_policy_only() -> None:
    problems = validate_policy(doc(stmt(Action=["s3:GetObject"])))
    assert [(p.severity, p.code) for p in problems] == [("warning", "non-kms-action")]
    identity = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert validate_policy(identity, kind="identity") == []


@pytest.mark.parametrize(
    ("principal", "code"),
    [
        ({"AWS": "arn:aws:iam::12345:root"}, "bad-account-id"),
        ({"AWS": "1234567890"}, "bad-account-id"),
        ({"AWS": f"arn:aws:iam::{ACCT}:role/*"}, "wildcard-principal-arn"),
        ({"AWS": "arn:aws:iam::*:root"}, "wildcard-principal-arn"),
        ({"AWS": f"arn:aws:iam::{ACCT}:group/admins"}, "group-principal"),
        ({"AWS": f"arn:aws:iam::{ACCT}:thing/x"}, "bad-principal"),
        ({"AWS": "not-an-arn"}, "bad-principal"),
        ({"AWS": f"arn:aws:sts::{ACCT}:assumed-role/onlyrole"}, "bad-principal"),
        ({"Service": "*"}, "wildcard-service-principal"),
        ({"Lambda": "x"}, "unknown-principal-type"),
        ({"AWS": []}, "bad-principal"),
        ("arn:aws:iam::111122223333:root", "bad-principal"),
    ],
)
def test_bad_principals(principal: object, code: str) -> None:
    assert code in codes(validate_policy(doc(stmt(Principal=principal))), "error")


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ACCT},
        {"AWS": [f"arn:aws:iam::{ACCT}:user/ops/alice", f"arn:aws:iam::{ACCT}:role/service-role/app"]},
        {"AWS": f"arn:aws:sts::{ACCT}:assumed-role/app/session-1"},
        {"AWS": f"arn:aws-us-gov:iam::{ACCT}:root"},
        {"Service": ["logs.us-east-1.amazonaws.com", "s3.amazonaws.com"]},
        {"Federated": "cognito-identity.amazonaws.com"},
    ],
)
def test_good_principals(principal: object) -> None:
    assert validate_policy(doc(stmt(Principal=principal))) == []


def test_deleted_principal_unique_id_is_a_warning() -> None:
    assert codes(validate_policy(doc(stmt(Principal={"AWS": "AROAEXAMPLEID1234567"})))) == ["unique-id-principal"]


def test_unknown_condition_operator_with_prefixes() -> None:
    cond = {
        "ForAnyValue:StringEqualz": {"aws:TagKeys": "a"},
        "StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"},
        "ForAllValues:StringLikeIfExists": {"aws:TagKeys": "a*"},
        "ForSomeValues:StringLike": {"aws:TagKeys": "a*"},
        "NullIfExists": {"aws:SourceVpc": "true"},
    }
    problems = validate_policy(doc(stmt(Condition=cond)))
    bad = sorted(p.path for p in problems if p.code == "unknown-operator")
    assert bad == [
        "Statement[0].Condition.ForAnyValue:StringEqualz",
        "Statement[0].Condition.ForSomeValues:StringLike",
        "Statement[0].Condition.NullIfExists",
    ]


def test_operator_in_other_case_is_a_warning() -> None:
    problems = validate_policy(doc(stmt(Condition={"stringequals": {"kms:CallerAccount": ACCT}})))
    assert codes(problems) == ["operator-case"]


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("NumericLessThan", "ten"),
        ("DateGreaterThan", "yesterday"),
        ("IpAddress", "10.0.0.300/8"),
        ("Null", "maybe"),
        ("Bool", "yes"),
    ],
)
def test_condition_values_are_type_checked(op: str, value: str) -> None:
    problems = validate_policy(doc(stmt(Condition={op: {"aws:SourceIp": value}})))
    assert "bad-condition-value" in codes(problems, "error")


def test_unknown_kms_condition_key_is_a_warning_and_tag_prefixes_are_known() -> None:
    cond = {"StringEquals": {"kms:CallerAcount": ACCT, "aws:PrincipalTag/team": "x", "kms:EncryptionContext:app": "y"}}
    problems = validate_policy(doc(stmt(Condition=cond)))
    assert [(p.code, p.path.rsplit(".", 1)[-1]) for p in problems] == [("unknown-condition-key", "kms:CallerAcount")]


def test_duplicate_sid() -> None:
    text = doc(stmt(Sid="A"), stmt(Sid="B"), stmt(Sid="A"))
    [p] = validate_policy(text)
    assert p.code == "duplicate-sid" and p.path == "Statement[2].Sid" and "Statement[0]" in p.message


def test_duplicate_json_key_is_a_warning_with_position() -> None:
    text = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Effect": "Deny",\n'
        ' "Principal": "*", "Action": "kms:*", "Resource": "*"}]}'
    )
    [p] = validate_policy(text)
    assert (p.code, p.path, p.line, p.column) == (
        "duplicate-key",
        "Statement[0].Effect",
        1,
        text.index('"Effect": "D') + 1,
    )


def test_size_limit_is_32768_bytes() -> None:
    base = doc(stmt(Sid="x"))

    def padded(total: int) -> str:
        return base.replace('"Sid": "x"', '"Sid": "x' + "a" * (total - len(base.encode())) + '"')

    assert len(padded(KEY_POLICY_MAX_BYTES).encode()) == KEY_POLICY_MAX_BYTES
    assert validate_policy(padded(KEY_POLICY_MAX_BYTES)) == []
    assert codes(validate_policy(padded(KEY_POLICY_MAX_BYTES + 1))) == ["too-large"]
    # multi-byte characters count as bytes, not characters
    text = padded(KEY_POLICY_MAX_BYTES).replace("xa", "xé", 1)
    assert len(text) == KEY_POLICY_MAX_BYTES and codes(validate_policy(text)) == ["too-large"]


def test_problem_positions_point_at_the_element() -> None:
    text = doc(stmt(), stmt(Action=["kms:Encrypt", "kms:Decryptt"]))
    [p] = validate_policy(text)
    line = text.splitlines()[p.line - 1]  # type: ignore[operator]
    assert line[p.column - 1 :].startswith('"kms:Decryptt"')  # type: ignore[operator]


def test_parse_policy_returns_warnings_and_raises_with_count() -> None:
    raw = parse_policy(doc(stmt(Action="s3:GetObject")), source="p.json")
    assert [w.code for w in raw.warnings] == ["non-kms-action"]
    with pytest.raises(PolicyParseError) as exc:
        parse_policy(doc(stmt(Effect="allow", Action="kms:Nope")), source="p.json")
    assert "(and 1 more error)" in str(exc.value)
    assert [p.code for p in exc.value.problems] == ["bad-effect", "unknown-action"]


def test_format_path() -> None:
    assert format_path(("Statement", 2, "Condition")) == "Statement[2].Condition"
    assert format_path(()) == ""


def test_bom_is_tolerated() -> None:
    assert validate_policy("\ufeff" + doc(stmt())) == []
