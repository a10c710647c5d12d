from __future__ import annotations

import json

import pytest
from report_sample import BUCKET, KEY_A, KEY_B, sample_findings

from kmsguard.report._common import dumps_pretty, name_list, short_resource


@pytest.mark.parametrize(
    ("value", "depth", "lines"),
    [
        ({"a": [1, {"b": "x|\ny"}], "c": {}, "d": [], "e": None}, 1, ["{", '  "a": [1, {"b": "x|\\ny"}],']),
        ({"a": [1, 2]}, 5, ["{", '  "a": [', "    1,", "    2", "  ]", "}"]),
        ([], 3, ["[]"]),
    ],
)
def test_dumps_pretty_is_json_laid_out_by_depth(value: object, depth: int, lines: list[str]) -> None:
    text = dumps_pretty(value, inline_depth=depth)
    assert json.loads(text) == value
    assert text.splitlines()[: len(lines)] == lines


def test_dumps_pretty_one_item_per_line() -> None:
    value = {"meta": {"n": 2}, "items": [{"k": 1}, {"k": [2, 3]}]}
    text = dumps_pretty(value, inline_depth=5, one_per_line=frozenset({"items"}))
    assert json.loads(text) == value
    assert '    {"k": 1},' in text.splitlines()
    assert '    {"k": [2, 3]}' in text.splitlines()


def test_short_resource_names() -> None:
    by_arn = {f.resource_arn: f for f in sample_findings() if f.status.value == "FAIL"}
    assert short_resource(by_arn[KEY_A]) == "alias/prod-data"  # a key's alias from its evidence
    assert short_resource(by_arn[BUCKET]) == "payroll-exports"  # not the alias of the bucket's key
    assert short_resource(by_arn[KEY_B]) == "key/2222bbbb-0000-0000-0000-000000000002"
    assert short_resource(by_arn["arn:aws:::111122223333:us-east-1"]) == "account 111122223333"
    odd = by_arn[KEY_B].model_copy(update={"resource_arn": "not-an-arn"})
    assert short_resource(odd) == "not-an-arn"


def test_name_list_caps_long_lists() -> None:
    assert name_list([]) == "none"
    assert name_list(["a", "b"]) == "a, b"
    assert name_list([str(i) for i in range(25)], limit=3) == "0, 1, 2 and 22 more"
