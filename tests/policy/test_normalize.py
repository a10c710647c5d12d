"""normalize.py: the model's normalisation rules, request building and the implicit context helper."""

from __future__ import annotations

import json

import pytest

from kmsguard.policy.errors import PolicyNormalizeError, PolicyParseError
from kmsguard.policy.model import Condition, Principal
from kmsguard.policy.normalize import (
    normalize,
    parse_and_normalize,
    principal_info,
    request,
    with_implicit_context,
)
from kmsguard.policy.parse import parse_policy

ACCT = "111122223333"


def one(**kw: object) -> dict:
    st = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
    st.update(kw)
    return {"Version": "2012-10-17", "Statement": [{k: v for k, v in st.items() if v is not None}]}


def test_single_values_become_tuples_and_lists_stay_lists() -> None:
    p = normalize(one(Action=["kms:Encrypt", "kms:Decrypt"], Resource="*"))
    st = p.statements[0]
    assert st.actions == ("kms:encrypt", "kms:decrypt")
    assert st.resources == ("*",)
    assert st.not_actions is None and st.not_resources is None and st.not_principals is None


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_star_forms_are_one_principal(principal: object) -> None:
    assert normalize(one(Principal=principal)).statements[0].principals == (Principal("AWS", "*"),)


def test_account_shorthand_becomes_root_arn_and_other_kinds_keep_their_kind() -> None:
    st = normalize(
        one(Principal={"AWS": [ACCT, f"arn:aws:iam::{ACCT}:role/app"], "Service": "logs.amazonaws.com"})
    ).statements[0]
    assert st.principals == (
        Principal("AWS", f"arn:aws:iam::{ACCT}:root"),
        Principal("AWS", f"arn:aws:iam::{ACCT}:role/app"),
        Principal("Service", "logs.amazonaws.com"),
    )


def test_notprincipal_is_normalised_the_same_way() -> None:
    st = normalize(one(Principal=None, NotPrincipal={"AWS": ACCT})).statements[0]
    assert st.not_principals == (Principal("AWS", f"arn:aws:iam::{ACCT}:root"),)


def test_actions_lowercased_keys_lowercased_values_kept() -> None:
    st = normalize(
        one(
            Action="KMS:GenerateDataKey*",
            Condition={
                "ForAllValues:StringEqualsIfExists": {"kms:EncryptionContextKeys": ["Env", "App"]},
                "Bool": {"aws:SecureTransport": True},
                "NumericLessThan": {"kms:RotationPeriodInDays": 365},
            },
        )
    ).statements[0]
    assert st.actions == ("kms:generatedatakey*",)
    assert st.conditions == (
        Condition("StringEquals", "kms:encryptioncontextkeys", ("Env", "App"), True, "ForAllValues"),
        Condition("Bool", "aws:securetransport", ("true",)),
        Condition("NumericLessThan", "kms:rotationperiodindays", ("365",)),
    )


def test_missing_blocks_are_none_not_empty() -> None:
    st = normalize(one()).statements[0]
    assert st.conditions == ()
    d = one()
    del d["Statement"][0]["Resource"]
    assert normalize(d).statements[0].resources is None


def test_single_statement_object_and_metadata() -> None:
    p = normalize({"Version": "2012-10-17", "Id": "key-default-1", "Statement": one()["Statement"][0]})
    assert (p.kind, p.version, p.id, len(p.statements), p.statements[0].index) == (
        "key",
        "2012-10-17",
        "key-default-1",
        1,
        0,
    )


def test_identity_policy_kind_comes_from_the_raw_policy() -> None:
    raw = parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}),
        kind="identity",
    )
    p = normalize(raw)
    assert p.kind == "identity" and p.statements[0].principals is None


@pytest.mark.parametrize(
    "bad",
    [
        {"Statement": 5},
        one(Effect="Permit"),
        one(Principal={"Lambda": "x"}),
        one(Condition={"StringEqualz": {"a:b": "c"}}),
        one(Condition={"StringEquals": {"a:b": {"x": 1}}}),
        one(Action=None),
        one(NotAction="kms:Encrypt"),
        one(NotPrincipal="*"),
        one(NotResource="*"),
    ],
)
def test_shapes_the_model_cannot_hold_raise(bad: dict) -> None:
    with pytest.raises(PolicyNormalizeError):
        normalize(bad)


def test_parse_and_normalize_raises_parse_errors() -> None:
    with pytest.raises(PolicyParseError, match=r"^p\.json:"):
        parse_and_normalize(json.dumps(one(Action="kms:Decryptt")), source="p.json")


def test_request_normalises_keys_and_values_and_adds_nothing() -> None:
    r = request(
        f"arn:aws:iam::{ACCT}:role/app",
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:111122223333:key/k",
        {"aws:SecureTransport": True, "aws:TagKeys": ["a", "b"], "AWS:tagkeys": "c", "Kms:EncryptionContext:App": "X"},
    )
    assert dict(r.context) == {
        "aws:securetransport": ("true",),
        "aws:tagkeys": ("a", "b", "c"),
        "kms:encryptioncontext:app": ("X",),
    }
    assert r.principal_account is None


def test_request_account_shorthand_principal() -> None:
    assert request(ACCT, "kms:Decrypt", "*").principal == f"arn:aws:iam::{ACCT}:root"


def test_with_implicit_context_adds_what_aws_always_sends_but_never_overrides() -> None:
    r = with_implicit_context(
        request(
            f"arn:aws:sts::{ACCT}:assumed-role/app/s1", "kms:Decrypt", "*", {"aws:PrincipalAccount": "999999999999"}
        )
    )
    assert r.context["aws:principalarn"] == (f"arn:aws:iam::{ACCT}:role/app",)
    assert r.context["kms:calleraccount"] == (ACCT,)
    assert r.context["aws:principalaccount"] == ("999999999999",)  # the caller's value wins
    assert r.context["aws:principaltype"] == ("AssumedRole",)
    svc = with_implicit_context(request("service:logs.us-east-1.amazonaws.com", "kms:Decrypt", "*"))
    assert svc.context["aws:principalisawsservice"] == ("true",)
    assert "kms:calleraccount" not in svc.context
    user = with_implicit_context(request(f"arn:aws:iam::{ACCT}:user/ops/alice", "kms:Decrypt", "*"))
    assert user.context["aws:username"] == ("alice",)


@pytest.mark.parametrize(
    ("principal", "kind", "account", "name"),
    [
        (f"arn:aws:iam::{ACCT}:root", "root", ACCT, None),
        (ACCT, "root", ACCT, None),
        (f"arn:aws:iam::{ACCT}:user/a/b/carol", "user", ACCT, "carol"),
        (f"arn:aws:iam::{ACCT}:role/path/app", "role", ACCT, "app"),
        (f"arn:aws:sts::{ACCT}:assumed-role/app/sess", "session", ACCT, "app"),
        (f"arn:aws:sts::{ACCT}:federated-user/bob", "federated-user", ACCT, "bob"),
        ("service:S3.amazonaws.com", "service", None, "s3.amazonaws.com"),
        ("*", "anonymous", None, None),
        ("garbage", "unknown", None, None),
    ],
)
def test_principal_info(principal: str, kind: str, account: str | None, name: str | None) -> None:
    info = principal_info(principal)
    assert (info.kind, info.account, info.name) == (kind, account, name)


def test_session_tokens_cover_its_role() -> None:
    info = principal_info(f"arn:aws:sts::{ACCT}:assumed-role/app/sess")
    assert f"role:{ACCT}/app" in info.direct_tokens
    assert info.levels[0] == frozenset({f"acct:{ACCT}"})


def test_lenient_parse_accepts_what_kms_accepts_and_strict_does_not() -> None:
    doc = {
        "Statement": [
            {"Sid": "a", "Effect": "Allow", "Principal": "*", "Action": ["kms:NewFutureAction", "kms:Future*"],
             "Resource": "*"},
            {"Sid": "a", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
        ]
    }  # fmt: skip
    text = json.dumps(doc)
    with pytest.raises(PolicyParseError):
        parse_and_normalize(text)
    pol = parse_and_normalize(text, strict=False)
    assert pol.version == "2008-10-17"  # no Version: the old language, without policy variables
    assert pol.statements[0].actions == ("kms:newfutureaction", "kms:future*")
    assert [s.sid for s in pol.statements] == ["a", "a"]
    warnings = {p.code for p in parse_policy(text, strict=False).warnings}
    assert {"unknown-action", "duplicate-sid", "missing-version"} <= warnings


@pytest.mark.parametrize(
    "text",
    ["{nope", "[]", json.dumps({"Version": "2012-10-17"}), json.dumps({"Version": "2012-10-17", "Statement": 3})],
)
def test_lenient_parse_still_rejects_what_is_not_a_policy(text: str) -> None:
    with pytest.raises(PolicyParseError):
        parse_and_normalize(text, strict=False)


def test_lenient_missing_version_does_not_substitute_variables() -> None:
    from kmsguard.policy.evaluate import evaluate

    st = {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}}  # fmt: skip
    pol = parse_and_normalize(json.dumps({"Statement": [st]}), strict=False)
    ctx = {"aws:username": "bob", "kms:EncryptionContext:user": "bob"}
    literal = {"kms:EncryptionContext:user": "${aws:username}"}
    key, bob = "arn:aws:kms:us-east-1:111122223333:key/k", "arn:aws:iam::111122223333:user/bob"
    assert evaluate(pol, request(bob, "kms:Decrypt", key, ctx)).decision == "implicit_deny"
    assert evaluate(pol, request(bob, "kms:Decrypt", key, literal)).decision == "allow"
