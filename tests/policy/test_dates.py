"""Date condition values: one parser (``parse.parse_date``) for the validator, the evaluator and the solver.

IAM guide, "Condition operators", Date condition operators: "You must specify date/time values with one
of the W3C implementations of the ISO 8601 date formats or in epoch (UNIX) time." The W3C profile
(www.w3.org/TR/NOTE-datetime) is YYYY-MM, YYYY-MM-DD, then THH:MM, :SS and .fraction with a zone designator
Z or +HH:MM; RFC 3339 (section 5.6) allows "t" and "z" in lower case. Epoch time is whole seconds.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import Decision
from kmsguard.policy.normalize import normalize, parse_and_normalize, request
from kmsguard.policy.parse import date_text, parse_date, validate_policy
from kmsguard.policy.solver import Identity, Question, fixed, prove

K = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{K}:key/k"
T = Decimal(1700000000)  # 2023-11-14T22:13:20Z

FORMS = [
    ("1700000000", T),  # epoch seconds
    ("2023-11-14T22:13:20Z", T),
    ("2023-11-14T22:13:20z", T),  # lower-case zone designator (RFC 3339 5.6)
    ("2023-11-14t22:13:20z", T),
    ("2023-11-14T23:13:20+01:00", T),
    ("2023-11-14T22:13:20.5Z", T + Decimal("0.5")),  # W3C: fractions of a second in the ISO form
    ("2023-11-14T22:13Z", T - 20),
    ("2023-11-14T22:13:20", T),  # no zone: read as UTC
    ("2023-11-14", Decimal(1699920000)),
    ("2023-11", Decimal(1698796800)),
    ("1700000000.5", None),  # epoch time is whole seconds
    ("1.7e9", None),  # neither form
    ("NaN", None),
    ("Infinity", None),
    ("2023-02-30", None),
    ("2023-11-14T22:13:20+24:00", None),
    ("14/11/2023", None),
]


@pytest.mark.parametrize(("text", "seconds"), FORMS)
def test_parse_date_accepts_exactly_the_documented_forms(text: str, seconds: Decimal | None) -> None:
    assert parse_date(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), FORMS)
def test_the_validator_rejects_what_the_parser_rejects(text: str, seconds: Decimal | None) -> None:
    doc = {"Version": "2012-10-17", "Statement": [allow_before(text)]}
    errors = [p for p in validate_policy(json.dumps(doc)) if p.severity == "error"]
    assert (errors == []) is (seconds is not None), errors
    if seconds is None:
        assert "whole epoch seconds" in errors[0].message


def allow_before(value: str) -> dict[str, object]:
    return {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": value}},
    }


@pytest.mark.parametrize("policy_value", ["1700000000.5", "1.7e9", "2023-11-14T22:13:20z", "2023-11-14T22:13:20.5Z"])
@pytest.mark.parametrize(
    "request_value", ["1700000000", "1700000000.5", "2023-11-14T22:13:20z", "2023-11-14T22:13:21Z"]
)
def test_evaluator_and_solver_read_dates_alike(policy_value: str, request_value: str) -> None:
    """The three values the two parsers used to disagree on, as policy values and as request values."""
    # A value AWS would refuse still has to be read alike by both (``normalize`` does not validate).
    policy = normalize({"Version": "2012-10-17", "Statement": [allow_before(policy_value)]})
    req = request(f"arn:aws:iam::{K}:role/App", "kms:Decrypt", KEY, {"aws:CurrentTime": request_value})
    by_evaluator = evaluate(policy, req, assume_iam_allows=True, key_account=K).decision is Decision.ALLOW
    q = Question(
        ("kms:decrypt",),
        Identity(principal=f"arn:aws:iam::{K}:role/App"),
        K,
        resource=KEY,
        fixed_context=fixed({"aws:currenttime": [request_value]}),
    )
    by_solver = not prove(policy, q).proved
    assert by_solver is by_evaluator
    p, r = parse_date(policy_value), parse_date(request_value)
    assert by_evaluator is (p is not None and r is not None and r < p)


def test_solver_dates_read_back_to_the_same_instant() -> None:
    """A solver example's date is written so that the one parser reads it back exactly (fractions kept)."""
    for seconds in (T, T + Decimal("0.25"), Decimal(-1) + Decimal("0.5")):
        assert parse_date(date_text(seconds)) == seconds
    policy = parse_and_normalize(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        **allow_before("2023-11-14T22:13:20.75Z"),
                        "Condition": {
                            "DateGreaterThan": {"aws:CurrentTime": "2023-11-14T22:13:20.5Z"},
                            "DateLessThan": {"aws:CurrentTime": "2023-11-14T22:13:20.75Z"},
                        },
                    }
                ],
            }
        )
    )
    proof = prove(policy, Question(("kms:decrypt",), Identity(principal=f"arn:aws:iam::{K}:role/App"), K))
    assert proof.status == "counterexample" and proof.request is not None
    (value,) = proof.request.context["aws:currenttime"]
    assert T + Decimal("0.5") < (parse_date(value) or 0) < T + Decimal("0.75")
