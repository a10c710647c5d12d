"""metric_pattern: CloudWatch Logs filter patterns parsed and evaluated like CloudWatch does."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kmsguard.checks.metric_pattern import PatternError, matches, parse

from .builders import GUIDE_DECRYPT_PATTERN, GUIDE_POLICY_PATTERN

# The KMS Developer Guide's example records (tests/data/cloudtrail/README.md: source and licence).
DEVGUIDE = Path(__file__).resolve().parents[1] / "data" / "cloudtrail" / "kms_devguide_examples.json"


@pytest.fixture(scope="module")
def devguide_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(DEVGUIDE.read_text())["Records"]
    return records


# The example document of the CloudWatch Logs "JSON compound conditions" section, in our own words.
DOC = {
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "SomeObject": None,
    "ThisFlag": True,
    "latency": 750,
    "ratio": 0.25,
}


# --- the guide's two patterns against real CloudTrail records ----------------------------------------------


def test_guide_policy_pattern_matches_exactly_the_three_events_in_the_devguide_records(devguide_records):
    pattern = parse(GUIDE_POLICY_PATTERN)
    matched = Counter(r["eventName"] for r in devguide_records if pattern.matches(r))
    expected = Counter(
        r["eventName"]
        for r in devguide_records
        if r["eventSource"] == "kms.amazonaws.com"
        and r["eventName"] in {"PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey"}
    )
    assert matched == expected
    assert set(matched) == {"PutKeyPolicy", "ScheduleKeyDeletion", "DisableKey"}


def test_guide_decrypt_pattern_matches_only_failed_decrypts(devguide_records):
    pattern = parse(GUIDE_DECRYPT_PATTERN)
    matched = [r for r in devguide_records if pattern.matches(r)]
    decrypts = [r for r in devguide_records if r["eventName"] == "Decrypt"]
    assert len(decrypts) > len(matched) >= 1  # successful Decrypts exist in the data and are not matched
    assert all(r["eventName"] == "Decrypt" and r.get("errorCode") for r in matched)
    failed_other = [r for r in devguide_records if r.get("errorCode") and r["eventName"] != "Decrypt"]
    assert failed_other and not any(pattern.matches(r) for r in failed_other)


def test_non_kms_events_never_match_the_guide_patterns(devguide_records):
    others = [r for r in devguide_records if r["eventSource"] != "kms.amazonaws.com"]
    assert others
    for text in (GUIDE_POLICY_PATTERN, GUIDE_DECRYPT_PATTERN):
        assert not any(matches(text, r) for r in others)


def test_text_terms_match_against_the_event_json(devguide_records):
    put = next(r for r in devguide_records if r["eventName"] == "PutKeyPolicy")
    cancel = next(r for r in devguide_records if r["eventName"] == "CancelKeyDeletion")
    assert matches("PutKeyPolicy", put)
    assert not matches("PutKeyPolicy", cancel)
    assert matches("?PutKeyPolicy ?CancelKeyDeletion", put)
    assert matches("?PutKeyPolicy ?CancelKeyDeletion", cancel)
    assert matches('"kms.amazonaws.com" -ScheduleKeyDeletion', put)
    assert not matches("CancelKeyDeletion -Alice", cancel)  # excluded term present
    assert matches('"eventName":"PutKeyPolicy"', put)  # a quoted phrase of the compact JSON text


# --- JSON syntax -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ $.eventType = "UpdateTrail" }', True),
        ("{$.eventType=UpdateTrail}", True),
        ("{ $.eventType = updatetrail }", False),  # case-sensitive
        ("{ $.eventType = Update* }", True),  # prefix
        ("{ $.eventType = *Trail }", True),  # suffix
        ('{ $.eventType = "*dateTr*" }', True),  # contains, quoted wildcards still wildcards
        ("{ $.eventType = Up*Trail }", False),  # a * inside a value is literal
        ("{ $.eventType = * }", True),
        ("{ $.missing = * }", False),
        ("{ $.sourceIPAddress != 123.123.* }", True),
        ("{ $.sourceIPAddress != 111.111.* }", False),
        ('{ $.actions[0] = "GET" }', True),
        ("{ $.actions[5] = GET }", False),
        ("{ $.users[1].id = 3 }", True),
        ('{ $.users[0].email = "John.Doe@example.com" }', True),
        ("{ $.coordinates[1][2] = 6 }", True),
        ("{ $.SomeObject IS NULL }", True),
        ("{ $.user IS NULL }", False),
        ("{ $.SomeOtherObject NOT EXISTS }", True),
        ("{ $.SomeObject NOT EXISTS }", False),  # present with a null value is not "not exists"
        ("{ $.ThisFlag IS TRUE }", True),
        ("{ $.ThisFlag IS FALSE }", False),
        ("{ $.latency >= 500 }", True),
        ("{ $.latency > +1000 }", False),
        ("{ $.latency < 10e3 }", True),
        ("{ $.ratio <= 0.25 }", True),
        ("{ $.latency = 750 }", True),
        ("{ $.latency != 750 }", False),
        ("{ $.latency = 7* }", True),  # wildcards compare a number's text
        ("{ $.eventType = %^Up.*ail$% }", True),
        ("{ $.eventType = %^Trail% }", False),
    ],
)
def test_json_conditions(pattern: str, expected: bool) -> None:
    assert matches(pattern, DOC) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        # && binds tighter than ||: a || (b && c)
        ('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = x && $.actions[2] = y }', True),
        ('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = x) && $.actions[2] = y }', False),
    ],
)
def test_compound_precedence(pattern: str, expected: bool) -> None:
    assert matches(pattern, DOC) is expected


def test_comparisons_on_non_value_nodes_are_false_both_ways() -> None:
    # The selector must point to a string or number; an array, object, null or absent field fails = and !=.
    for sel in ("$.users", "$.user", "$.SomeObject", "$.nope", "$.ThisFlag"):
        assert not matches(f"{{ {sel} = 1 }}", DOC)
        assert not matches(f"{{ {sel} != 1 }}", DOC)


def test_quoted_strings_keep_special_characters_and_escapes() -> None:
    event = {"msg": 'say "hi" && (bye) || $x'}
    assert matches(r'{ $.msg = "say \"hi\" && (bye) || $x" }', event)
    assert not matches(r'{ $.msg = "say \"hi\"" }', event)


def test_keywords_are_case_insensitive_and_whitespace_free() -> None:
    assert matches("{ $.SomeObject is null }", DOC)
    assert matches("{($.eventType=UpdateTrail)&&($.latency>=500)}", DOC)


def test_parse_once_evaluate_many() -> None:
    pattern = parse("{ $.n > 1 }")
    assert [pattern.matches({"n": i}) for i in range(4)] == [False, False, True, True]
    assert pattern.kind == "json"


# --- text patterns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message_event", "expected"),
    [
        ("", {"m": "anything"}, True),
        ('""', {"m": "anything"}, True),
        ("ERROR", {"m": "Exiting with ERRORCODE: -1"}, True),  # a term matches inside a word
        ("ERROR Exception", {"m": "[ERROR] Unhandled Exception"}, True),
        ("ERROR Exception", {"m": "[ERROR] Unhandled"}, False),
        ("ERROR -Exiting", {"m": "Exiting with ERRORCODE"}, False),
        ("ERROR - Exiting", {"m": "ERROR in Exiting"}, False),
        ("?ERROR ?WARN", {"m": "WARN message"}, True),
        ("?ERROR ?WARN", {"m": "INFO message"}, False),
        ('"Failed to process"', {"m": "[WARN] Failed to process the request"}, True),
        ('"Failed to process"', {"m": "Failed, to process"}, False),
        ("%[Ee]rror%", {"m": "an error"}, True),
        ("error", {"m": "ERROR"}, False),  # case-sensitive
    ],
)
def test_text_patterns(pattern: str, message_event: dict[str, str], expected: bool) -> None:
    assert matches(pattern, message_event) is expected


# --- malformed patterns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("{ $.a EXISTS }", "comparison operator"),  # there is no EXISTS keyword (use = *)
        ("{ $.a = }", "expected a value"),
        ("{ ($.a = 1 }", "missing ')'"),
        ("{ $.a > abc }", "needs a number"),
        ('{ $.a = "open }', "unterminated quoted string"),
        ("{ a = 1 }", "selector"),
        ("{ $ = 1 }", "at least one property"),
        ("{ $.a = 1 ", "must end with '}'"),
        ("{ }", "empty"),
        ("{ $.a = 1 && }", "selector"),
        ("{ $.a = 1 $.b = 2 }", "unexpected"),
        ("{ $.a IS MAYBE }", "NULL, TRUE or FALSE"),
        ("{ $.a = %(% }", "regular expression"),
        ("[ip, user, status_code = 4*]", "space-delimited"),
        ('ERROR "unterminated', "unterminated"),
    ],
)
def test_malformed_patterns_raise_a_pattern_error_naming_the_problem(pattern: str, fragment: str) -> None:
    with pytest.raises(PatternError) as exc:
        parse(pattern)
    assert fragment in str(exc.value)


def test_error_positions_point_into_the_original_pattern() -> None:
    text = "{ $.eventName = PutKeyPolicy && $.x >> 1 }"
    with pytest.raises(PatternError) as exc:
        parse(text)
    second_gt = text.index(">>") + 1  # 0-based index of the stray '>'
    assert f"character {second_gt + 1}" in str(exc.value)
