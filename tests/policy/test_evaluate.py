"""evaluate.py: AWS's documented evaluation logic, rule by rule and operator by operator.

Each condition case names the documented rule it checks (IAM User Guide: "Condition operators",
"Conditions with multiple context keys or values", "Single-valued vs multivalued context keys",
"Policy variables"; KMS Developer Guide: "Key policies", "Default key policy", "Cross-account access").
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kmsguard.policy.evaluate import condition_matches, evaluate
from kmsguard.policy.model import Condition, Decision, Request
from kmsguard.policy.normalize import normalize, parse_and_normalize, request

ACCT = "111122223333"
OTHER = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCT}:role/app"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/app/s-1"
ABSENT = object()


def key_policy(*statements: dict[str, Any], version: str = "2012-10-17") -> Any:
    return parse_and_normalize(json.dumps({"Version": version, "Statement": list(statements)}))


def allow(principal: Any = None, action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal if principal is not None else {"AWS": ROLE},
        "Action": action,
        "Resource": "*",
    }
    st.update(extra)
    return st


def deny(principal: Any = "*", action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    return {**allow(principal, action, **extra), "Effect": "Deny"}


def decide(
    policy: Any, principal: str = ROLE, action: str = "kms:Decrypt", ctx: dict[str, Any] | None = None, **kw: Any
) -> Decision:
    return evaluate(policy, request(principal, action, KEY, ctx or {}), **kw).decision


# ----------------------------------------------------------------------------------------- conditions

# (operator, key, policy values, request value (ABSENT / str / list), condition holds?, because)
CASES: list[tuple[str, str, Any, Any, bool, str]] = [
    ("StringEquals", "kms:CallerAccount", ACCT, ACCT, True, "exact match"),
    ("StringEquals", "aws:PrincipalTag/team", "Ops", "ops", False, "StringEquals is case-sensitive"),
    (
        "StringEquals",
        "kms:ViaService",
        ["s3.us-east-1.amazonaws.com", "ebs.us-east-1.amazonaws.com"],
        "ebs.us-east-1.amazonaws.com",
        True,
        "several policy values are OR'ed",
    ),
    ("StringEquals", "kms:CallerAccount", ACCT, ABSENT, False, "absent key: a non-negated operator is false"),
    ("StringEquals", "kms:ViaService", "s3.x", "s3.*", False, "StringEquals has no wildcards"),
    ("StringNotEquals", "kms:CallerAccount", ACCT, OTHER, True, "negated match"),
    ("StringNotEquals", "kms:CallerAccount", [ACCT, OTHER], OTHER, False, "negated operator: values are NOR'ed"),
    ("StringNotEquals", "kms:CallerAccount", ACCT, ABSENT, True, "absent key: a negated operator is true"),
    ("StringEqualsIgnoreCase", "aws:PrincipalTag/team", "Ops", "oPS", True, "IgnoreCase"),
    ("StringNotEqualsIgnoreCase", "aws:PrincipalTag/team", "Ops", "OPS", False, "negated IgnoreCase"),
    (
        "StringLike",
        "aws:PrincipalArn",
        "arn:aws:iam::*:role/app-*",
        f"arn:aws:iam::{OTHER}:role/app-web",
        True,
        "* matches any run of characters",
    ),
    ("StringLike", "aws:PrincipalTag/v", "v?", "v1", True, "? matches one character"),
    ("StringLike", "aws:PrincipalTag/v", "v?", "v10", False, "? matches exactly one character"),
    ("StringLike", "aws:PrincipalTag/v", "app*", "app", True, "* matches the empty run"),
    ("StringLike", "aws:PrincipalTag/v", "App*", "app1", False, "StringLike is case-sensitive"),
    (
        "StringNotLike",
        "aws:PrincipalArn",
        "arn:aws:iam::*:role/admin-*",
        f"arn:aws:iam::{ACCT}:role/admin-1",
        False,
        "negated wildcard match",
    ),
    ("StringNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin-*", ROLE, True, "no pattern matches"),
    ("StringNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin-*", ABSENT, True, "negated on absent key"),
    ("StringEqualsIfExists", "kms:ViaService", "s3.us-east-1.amazonaws.com", ABSENT, True, "IfExists: absent is true"),
    (
        "StringEqualsIfExists",
        "kms:ViaService",
        "s3.us-east-1.amazonaws.com",
        "ec2.us-east-1.amazonaws.com",
        False,
        "IfExists: present key is tested normally",
    ),
    ("StringNotEqualsIfExists", "kms:ViaService", "s3.x", ABSENT, True, "IfExists on a negated operator"),
    ("NumericEquals", "kms:RotationPeriodInDays", "10", "10.0", True, "numbers compare by value"),
    ("NumericNotEquals", "kms:RotationPeriodInDays", "10", "11", True, "negated numeric"),
    ("NumericNotEquals", "kms:RotationPeriodInDays", "10", ABSENT, True, "negated numeric on absent key"),
    ("NumericLessThan", "kms:RotationPeriodInDays", "365", "180", True, "less than"),
    ("NumericLessThan", "kms:RotationPeriodInDays", "365", "365", False, "strictly less"),
    ("NumericLessThanEquals", "kms:RotationPeriodInDays", "365", "365", True, "less or equal"),
    ("NumericGreaterThan", "kms:ScheduleKeyDeletionPendingWindowInDays", "7", "30", True, "greater"),
    ("NumericGreaterThanEquals", "kms:ScheduleKeyDeletionPendingWindowInDays", "30", "29", False, "not >="),
    ("NumericLessThan", "kms:RotationPeriodInDays", "365", "lots", False, "a non-number never matches"),
    ("NumericLessThan", "kms:RotationPeriodInDays", "365", ABSENT, False, "absent key"),
    ("NumericLessThanIfExists", "kms:RotationPeriodInDays", "365", ABSENT, True, "IfExists"),
    ("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", "2025-06-01T12:00:00Z", True, "ISO 8601 dates"),
    ("DateGreaterThan", "aws:CurrentTime", "1700000000", "2024-01-01T00:00:00Z", True, "epoch seconds vs ISO"),
    ("DateEquals", "aws:CurrentTime", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", True, "same instant"),
    ("DateNotEquals", "aws:CurrentTime", "2024-01-01T00:00:00Z", ABSENT, True, "negated date on absent key"),
    ("DateLessThanEquals", "kms:ValidTo", "1735689600", "1735689600", True, "boundary"),
    ("DateGreaterThanEquals", "kms:ValidTo", "2025-01-01", "2024-12-31T23:59:59Z", False, "date-only is midnight UTC"),
    ("Bool", "aws:SecureTransport", "true", "true", True, "Bool"),
    ("Bool", "aws:SecureTransport", "false", "true", False, "Bool mismatch"),
    ("Bool", "aws:SecureTransport", "true", "True", True, "Bool ignores case"),
    ("Bool", "aws:SecureTransport", "false", ABSENT, False, "absent key: Bool is false"),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "true", ABSENT, True, "IfExists"),
    ("BinaryEquals", "aws:PrincipalTag/blob", "QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", True, "base64 bytes equal"),
    ("BinaryEquals", "aws:PrincipalTag/blob", "QmluYXJ5VmFsdWU=", "T3RoZXI=", False, "different bytes"),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.7", True, "in CIDR"),
    ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "203.0.113.0/24"], "198.51.100.1", False, "in no CIDR"),
    ("IpAddress", "aws:SourceIp", "2001:db8::/32", "2001:db8::1", True, "IPv6"),
    ("IpAddress", "aws:SourceIp", "203.0.113.9", "203.0.113.9", True, "a bare address is a /32"),
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24", ABSENT, False, "absent key"),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.1", True, "outside the range"),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.9", False, "inside the range"),
    ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", ABSENT, True, "negated on absent key"),
    ("ArnEquals", "aws:PrincipalArn", ROLE, ROLE, True, "exact ARN"),
    (
        "ArnLike",
        "aws:PrincipalArn",
        "arn:aws:iam::*:role/app",
        f"arn:aws:iam::{OTHER}:role/app",
        True,
        "wildcard inside one ARN part",
    ),
    (
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:iam::*:role/*",
        f"arn:aws:sts::{ACCT}:assumed-role/app/s",
        False,
        "each of the six parts is compared on its own",
    ),
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/App", ROLE, False, "ARN matching is case-sensitive"),
    ("ArnEquals", "aws:PrincipalArn", ROLE, "app", False, "a value that is not an ARN never matches"),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin*", ROLE, True, "negated ARN"),
    ("ArnNotEquals", "aws:PrincipalArn", ROLE, ROLE, False, "negated ARN, same"),
    ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin*", ABSENT, True, "negated on absent key"),
    ("Null", "aws:TokenIssueTime", "true", ABSENT, True, "Null true: key absent"),
    ("Null", "aws:TokenIssueTime", "true", "2024-01-01T00:00:00Z", False, "Null true: key present"),
    ("Null", "aws:TokenIssueTime", "false", "2024-01-01T00:00:00Z", True, "Null false: key present"),
    ("Null", "aws:TokenIssueTime", "false", ABSENT, False, "Null false: key absent"),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c", "a"], True, "some request value matches"),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c"], False, "no request value matches"),
    ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ABSENT, False, "ForAnyValue on an absent key is false"),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a", "b"], True, "every request value matches"),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a", "c"], False, "c matches no policy value"),
    ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ABSENT, True, "ForAllValues on an absent key is true"),
    ("ForAllValues:StringNotLike", "aws:TagKeys", "key1*", ["key2:audit"], True, "IAM guide example: match"),
    (
        "ForAllValues:StringNotLike",
        "aws:TagKeys",
        "key1*",
        ["key1:hr", "key1:personnel"],
        False,
        "IAM guide example: no match",
    ),
    ("ForAllValues:StringNotLike", "aws:TagKeys", "key1*", ABSENT, True, "IAM guide example: absent key matches"),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", "a", ["a", "b"], True, "b is not a"),
    ("ForAnyValue:StringNotEquals", "aws:TagKeys", "a", ["a"], False, "every value is a"),
    (
        "ForAnyValue:StringEqualsIfExists",
        "aws:TagKeys",
        "a",
        ABSENT,
        False,
        "the set operator decides an absent key, IfExists or not",
    ),
    ("ForAllValues:StringEquals", "aws:TagKeys", "a", [], True, "an empty set counts as absent"),
    ("StringEquals", "aws:TagKeys", "a", ["x", "a"], True, "no set operator: any request value may match"),
    ("StringNotEquals", "aws:TagKeys", "a", ["x", "a"], False, "negated, no set operator: no value may match"),
]


@pytest.mark.parametrize(
    ("operator", "key", "values", "given", "expected", "because"), CASES, ids=[f"{c[0]}-{c[5]}" for c in CASES]
)
def test_condition_operator(operator: str, key: str, values: Any, given: Any, expected: bool, because: str) -> None:
    policy = key_policy(allow(Condition={operator: {key: values}}))
    ctx = {} if given is ABSENT else {key: given}
    want = Decision.ALLOW if expected else Decision.IMPLICIT_DENY
    assert decide(policy, ctx=ctx) == want, because


def test_condition_operator_as_deny_inverts() -> None:
    """The same condition under Deny: a held condition denies (documented: a Deny applies when it matches)."""
    policy = key_policy(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(policy, ctx={"aws:SecureTransport": False}) == Decision.EXPLICIT_DENY
    assert decide(policy, ctx={"aws:SecureTransport": True}) == Decision.ALLOW
    assert decide(policy) == Decision.ALLOW  # absent key: Bool is false, the Deny does not apply


def test_multiple_keys_and_operators_are_anded() -> None:
    policy = key_policy(
        allow(
            Condition={
                "StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": "s3.us-east-1.amazonaws.com"},
                "Bool": {"aws:SecureTransport": "true"},
            }
        )
    )
    full = {"kms:CallerAccount": ACCT, "kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:SecureTransport": True}
    assert decide(policy, ctx=full) == Decision.ALLOW
    for missing in full:
        assert decide(policy, ctx={k: v for k, v in full.items() if k != missing}) == Decision.IMPLICIT_DENY
    assert decide(policy, ctx={**full, "aws:SecureTransport": False}) == Decision.IMPLICIT_DENY


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    policy = key_policy(allow(Condition={"StringEquals": {"KMS:EncryptionContext:Environment": "Production"}}))
    assert decide(policy, ctx={"kms:encryptioncontext:environment": "Production"}) == Decision.ALLOW
    assert decide(policy, ctx={"kms:EncryptionContext:Environment": "production"}) == Decision.IMPLICIT_DENY


# ------------------------------------------------------------------------------------ policy variables


@pytest.mark.parametrize(
    ("value", "ctx", "expected", "because"),
    [
        ("${aws:username}", {"aws:username": "alice", "kms:EncryptionContext:owner": "alice"}, True, "resolved"),
        ("${aws:username}", {"aws:username": "alice", "kms:EncryptionContext:owner": "bob"}, False, "different"),
        ("${aws:username}", {"kms:EncryptionContext:owner": "${aws:username}"}, False, "unresolved: no match"),
        ("${aws:PrincipalTag/team, 'none'}", {"kms:EncryptionContext:owner": "none"}, True, "default value"),
        (
            "${aws:PrincipalTag/team, 'none'}",
            {"aws:PrincipalTag/team": "ops", "kms:EncryptionContext:owner": "ops"},
            True,
            "tag wins over default",
        ),
        (
            "${aws:PrincipalAccount}-data",
            {"aws:PrincipalAccount": ACCT, "kms:EncryptionContext:owner": f"{ACCT}-data"},
            True,
            "variable inside text",
        ),
        ("a${*}b", {"kms:EncryptionContext:owner": "a*b"}, True, "${*} is a literal *"),
        (
            "${aws:username}",
            {"aws:username": ["a", "b"], "kms:EncryptionContext:owner": "a"},
            False,
            "a multi-valued key cannot be a variable",
        ),
    ],
)
def test_policy_variables_in_string_equals(value: str, ctx: dict[str, Any], expected: bool, because: str) -> None:
    policy = key_policy(allow(Condition={"StringEquals": {"kms:EncryptionContext:owner": value}}))
    assert (decide(policy, ctx=ctx) == Decision.ALLOW) is expected, because


def test_variables_in_like_patterns_are_literal_text() -> None:
    policy = key_policy(allow(Condition={"StringLike": {"kms:EncryptionContext:path": "${aws:username}/*"}}))
    assert decide(policy, ctx={"aws:username": "a", "kms:EncryptionContext:path": "a/x"}) == Decision.ALLOW
    # the substituted value "a*" must not act as a wildcard
    assert decide(policy, ctx={"aws:username": "a*", "kms:EncryptionContext:path": "ab/x"}) == Decision.IMPLICIT_DENY
    assert decide(policy, ctx={"aws:username": "a*", "kms:EncryptionContext:path": "a*/x"}) == Decision.ALLOW


def test_version_2008_has_no_variables() -> None:
    policy = key_policy(
        allow(Condition={"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}), version="2008-10-17"
    )
    assert decide(policy, ctx={"aws:username": "a", "kms:EncryptionContext:owner": "a"}) == Decision.IMPLICIT_DENY
    assert decide(policy, ctx={"kms:EncryptionContext:owner": "${aws:username}"}) == Decision.ALLOW


def test_variable_in_arn_condition() -> None:
    policy = key_policy(allow(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::${aws:PrincipalTag/bucket}"}}))
    ctx = {"aws:PrincipalTag/bucket": "logs", "aws:SourceArn": "arn:aws:s3:::logs"}
    assert decide(policy, ctx=ctx) == Decision.ALLOW
    assert decide(policy, ctx={**ctx, "aws:SourceArn": "arn:aws:s3:::other"}) == Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------- statements and principals


def test_explicit_deny_wins_and_is_listed_first() -> None:
    policy = key_policy(allow(), deny(action="kms:Decrypt"))
    result = evaluate(policy, request(ROLE, "kms:Decrypt", KEY))
    assert result.decision == Decision.EXPLICIT_DENY and result.matched_statements == (1, 0)
    assert decide(policy, action="kms:Encrypt") == Decision.ALLOW


def test_no_matching_statement_is_implicit_deny() -> None:
    policy = key_policy(allow(action="kms:Encrypt"))
    result = evaluate(policy, request(ROLE, "kms:Decrypt", KEY))
    assert result.decision == Decision.IMPLICIT_DENY and result.matched_statements == ()


def test_action_matching_is_case_insensitive_with_wildcards() -> None:
    policy = key_policy(allow(action=["kms:ReEncrypt*", "kms:GenerateDataKey*"]))
    assert decide(policy, action="KMS:reencryptfrom") == Decision.ALLOW
    assert decide(policy, action="kms:GenerateDataKeyPairWithoutPlaintext") == Decision.ALLOW
    assert decide(policy, action="kms:Decrypt") == Decision.IMPLICIT_DENY
    assert decide(key_policy(allow(action="*"))) == Decision.ALLOW


def test_notaction_allows_every_other_action() -> None:
    policy = key_policy({k: v for k, v in allow(NotAction=["kms:Decrypt", "kms:Put*"]).items() if k != "Action"})
    assert decide(policy, action="kms:Decrypt") == Decision.IMPLICIT_DENY
    assert decide(policy, action="kms:PutKeyPolicy") == Decision.IMPLICIT_DENY
    assert decide(policy, action="kms:Encrypt") == Decision.ALLOW


def test_resource_and_notresource() -> None:
    other_key = KEY.replace("1234abcd", "99999999")
    st = allow()
    st["Resource"] = KEY
    assert decide(key_policy(st)) == Decision.ALLOW
    st["Resource"] = other_key
    assert decide(key_policy(st)) == Decision.IMPLICIT_DENY
    st["Resource"] = f"arn:aws:kms:*:{ACCT}:key/*"
    assert decide(key_policy(st)) == Decision.ALLOW
    del st["Resource"]
    st["NotResource"] = other_key
    assert decide(key_policy(st)) == Decision.ALLOW
    st["NotResource"] = KEY
    assert decide(key_policy(st)) == Decision.IMPLICIT_DENY


def test_named_role_matches_itself_and_its_sessions_only() -> None:
    policy = key_policy(allow({"AWS": f"arn:aws:iam::{ACCT}:role/team/app"}))
    assert decide(policy, principal=f"arn:aws:iam::{ACCT}:role/team/app") == Decision.ALLOW
    assert decide(policy, principal=SESSION) == Decision.ALLOW
    assert decide(policy, principal=f"arn:aws:sts::{ACCT}:assumed-role/other/s") == Decision.IMPLICIT_DENY
    assert decide(policy, principal=f"arn:aws:iam::{ACCT}:user/app") == Decision.IMPLICIT_DENY


def test_named_session_matches_only_that_session() -> None:
    policy = key_policy(allow({"AWS": SESSION}))
    assert decide(policy, principal=SESSION) == Decision.ALLOW
    assert decide(policy, principal=SESSION.replace("s-1", "s-2")) == Decision.IMPLICIT_DENY
    assert decide(policy, principal=ROLE) == Decision.IMPLICIT_DENY


def test_user_principal() -> None:
    user = f"arn:aws:iam::{ACCT}:user/alice"
    policy = key_policy(allow({"AWS": user}))
    assert decide(policy, principal=user) == Decision.ALLOW
    assert decide(policy, principal=f"arn:aws:iam::{ACCT}:user/bob") == Decision.IMPLICIT_DENY


@pytest.mark.parametrize("root", [f"arn:aws:iam::{ACCT}:root", ACCT])
def test_account_root_principal_delegates_to_iam(root: str) -> None:
    policy = key_policy(allow({"AWS": root}))
    iam_allow = normalize(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]},
        kind="identity",
    )
    iam_other = normalize(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]},
        kind="identity",
    )
    res = evaluate(policy, request(ROLE, "kms:Decrypt", KEY))
    assert (res.decision, res.notes) == (Decision.IMPLICIT_DENY, ("delegated_to_iam", "iam_not_given"))
    assert decide(policy, iam_policies=[iam_allow]) == Decision.ALLOW
    res = evaluate(policy, request(ROLE, "kms:Decrypt", KEY), iam_policies=[iam_other])
    assert (res.decision, res.notes[-1]) == (Decision.IMPLICIT_DENY, "iam_does_not_allow")
    assert decide(policy, assume_iam_allows=True) == Decision.ALLOW
    # the root user itself needs no identity policy
    root_res = evaluate(policy, request(f"arn:aws:iam::{ACCT}:root", "kms:Decrypt", KEY))
    assert root_res.decision == Decision.ALLOW
    # another account's principals are not in the delegation
    assert decide(policy, principal=f"arn:aws:iam::{OTHER}:role/app", assume_iam_allows=True) == Decision.IMPLICIT_DENY


def test_iam_policy_deny_wins_even_over_a_direct_allow() -> None:
    policy = key_policy(allow())
    iam_deny = normalize(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]},
        kind="identity",
    )
    res = evaluate(policy, request(ROLE, "kms:Decrypt", KEY), iam_policies=[iam_deny], assume_iam_allows=True)
    assert res.decision == Decision.EXPLICIT_DENY and res.notes == ("iam_policy[0].Statement[0] denies",)


def test_key_policy_must_allow_even_if_iam_does() -> None:
    """KMS: IAM policies alone cannot give access to a KMS key; the key policy must allow it."""
    policy = key_policy(allow({"AWS": f"arn:aws:iam::{ACCT}:role/someone-else"}))
    assert decide(policy, assume_iam_allows=True) == Decision.IMPLICIT_DENY


def test_star_principal_same_account_is_direct_cross_account_needs_iam() -> None:
    policy = key_policy(allow("*"))
    assert decide(policy) == Decision.ALLOW
    ext = f"arn:aws:iam::{OTHER}:role/app"
    res = evaluate(policy, request(ext, "kms:Decrypt", KEY))
    assert (res.decision, res.notes) == (Decision.IMPLICIT_DENY, ("cross_account", "iam_not_given"))
    assert decide(policy, principal=ext, assume_iam_allows=True) == Decision.ALLOW
    assert decide(policy, principal="service:s3.amazonaws.com") == Decision.ALLOW
    assert decide(policy, principal="anonymous") == Decision.ALLOW


def test_cross_account_named_principal_needs_its_own_iam() -> None:
    ext_role = f"arn:aws:iam::{OTHER}:role/partner"
    policy = key_policy(allow({"AWS": ext_role}))
    assert decide(policy, principal=ext_role) == Decision.IMPLICIT_DENY
    assert decide(policy, principal=ext_role, assume_iam_allows=True) == Decision.ALLOW
    # naming the external account: its root user is allowed outright, its roles need their IAM
    policy = key_policy(allow({"AWS": OTHER}))
    assert decide(policy, principal=f"arn:aws:iam::{OTHER}:root") == Decision.ALLOW
    assert decide(policy, principal=ext_role) == Decision.IMPLICIT_DENY
    assert decide(policy, principal=ext_role, assume_iam_allows=True) == Decision.ALLOW


def test_key_account_parameter_overrides_the_resource() -> None:
    policy = key_policy(allow("*"))
    req = request(ROLE, "kms:Decrypt", "*")
    assert evaluate(policy, req).decision == Decision.ALLOW  # unknown key account: treated as same-account
    assert evaluate(policy, req, key_account=OTHER).decision == Decision.IMPLICIT_DENY


def test_service_principal() -> None:
    policy = key_policy(allow({"Service": "logs.us-east-1.amazonaws.com"}, action=["kms:Encrypt*", "kms:Decrypt*"]))
    assert decide(policy, principal="service:logs.us-east-1.amazonaws.com") == Decision.ALLOW
    assert decide(policy, principal="service:LOGS.us-east-1.amazonaws.com") == Decision.ALLOW
    assert decide(policy, principal="service:s3.amazonaws.com") == Decision.IMPLICIT_DENY
    assert decide(policy, principal=ROLE) == Decision.IMPLICIT_DENY


def not_principal_deny(*listed: str) -> dict[str, Any]:
    return {k: v for k, v in deny(NotPrincipal={"AWS": list(listed)}).items() if k != "Principal"}


def test_notprincipal_deny_needs_account_and_role_listed() -> None:
    """IAM guide: with NotPrincipal in a Deny, list the account as well as the role, else the account (and so
    the role) is denied. A session is a level of its own: listing its role does not exempt it."""
    both = key_policy(allow("*"), not_principal_deny(ROLE, ACCT))
    assert decide(both, principal=SESSION) == Decision.EXPLICIT_DENY
    assert decide(both, principal=ROLE) == Decision.ALLOW
    assert decide(both, principal=f"arn:aws:iam::{ACCT}:role/other") == Decision.EXPLICIT_DENY
    role_only = key_policy(allow("*"), not_principal_deny(ROLE))
    assert decide(role_only, principal=SESSION) == Decision.EXPLICIT_DENY
    account_only = key_policy(allow("*"), not_principal_deny(ACCT))
    assert decide(account_only, principal=f"arn:aws:iam::{ACCT}:root") == Decision.ALLOW
    assert decide(account_only, principal=SESSION) == Decision.EXPLICIT_DENY


def test_notprincipal_exempts_a_session_only_when_session_role_and_account_are_listed() -> None:
    """IAM guide, "AWS JSON policy elements: NotPrincipal": AWS checks the account, then the role, then the
    assumed-role session, which is identified by its session ARN; the guide's example lists all three."""
    all_three = key_policy(allow("*"), not_principal_deny(SESSION, ROLE, ACCT))
    assert decide(all_three, principal=SESSION) == Decision.ALLOW
    assert decide(all_three, principal=f"arn:aws:sts::{ACCT}:assumed-role/app/s-2") == Decision.EXPLICIT_DENY
    no_role = key_policy(allow("*"), not_principal_deny(SESSION, ACCT))
    assert decide(no_role, principal=SESSION) == Decision.EXPLICIT_DENY


def test_notprincipal_allow_applies_to_everyone_else() -> None:
    """Unsupported by AWS but evaluated the same way as with Deny: excluded only when every level is listed."""
    policy = key_policy({k: v for k, v in allow(NotPrincipal={"AWS": [ROLE, ACCT]}).items() if k != "Principal"})
    assert decide(policy, principal=ROLE) == Decision.IMPLICIT_DENY
    assert decide(policy, principal=f"arn:aws:iam::{ACCT}:role/other") == Decision.ALLOW


def test_deleted_principal_unique_id_matches_no_one() -> None:
    assert decide(key_policy(allow({"AWS": "AROAEXAMPLEID1234567"}))) == Decision.IMPLICIT_DENY


def test_identity_policy_evaluated_on_its_own() -> None:
    ident = normalize(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
            ],
        },
        kind="identity",
    )
    assert decide(ident) == Decision.ALLOW
    assert decide(ident, action="kms:ScheduleKeyDeletion") == Decision.EXPLICIT_DENY


def test_hand_built_request_with_mixed_case_context_is_accepted() -> None:
    policy = key_policy(allow(Condition={"StringEquals": {"kms:CallerAccount": ACCT}}))
    req = Request(ROLE, "kms:Decrypt", KEY, context={"KMS:CallerAccount": ACCT})  # type: ignore[dict-item]
    assert evaluate(policy, req).decision == Decision.ALLOW
    assert evaluate(policy, replace(req, context={})).decision == Decision.IMPLICIT_DENY


def test_compiled_policy_cache_does_not_leak_between_equal_looking_policies() -> None:
    a = key_policy(allow(action="kms:Encrypt"))
    b = key_policy(allow(action="kms:Decrypt"))
    assert decide(a) == Decision.IMPLICIT_DENY and decide(b) == Decision.ALLOW
    assert decide(a) == Decision.IMPLICIT_DENY


def test_condition_matches_helper() -> None:
    cond = Condition("StringLike", "aws:principalarn", ("arn:aws:iam::*:role/app",))
    assert condition_matches(cond, {"aws:principalarn": (ROLE,)})
    assert not condition_matches(cond, {})
