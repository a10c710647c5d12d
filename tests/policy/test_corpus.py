"""The hand-checked corpus (tests/policy/corpus/*.yaml): every request's decision, and the property that
normalising never changes a decision.

Each corpus file holds one policy and requests with the expected decision and a one-line "because" naming
the documented rule. ``iam: assume`` means the caller's identity policies allow (--assume-iam-allows);
a list under ``iam`` is the caller's identity policies.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.model import EvaluationResult, Policy
from kmsguard.policy.normalize import normalize, parse_and_normalize, request

CORPUS = Path(__file__).parent / "corpus"
DECISIONS = {"allow", "explicit_deny", "implicit_deny"}


@cache
def load_corpus() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["file"] = path.name
        cases.append(doc)
    return cases


def requests() -> list[tuple[dict[str, Any], int, dict[str, Any]]]:
    return [(case, i, req) for case in load_corpus() for i, req in enumerate(case["requests"])]


def run(
    policy: Policy, case: dict[str, Any], req: dict[str, Any], context: dict[str, Any] | None = None
) -> EvaluationResult:
    iam = req.get("iam")
    iam_policies = [normalize(p, kind="identity") for p in iam] if isinstance(iam, list) else None
    r = request(req["principal"], req["action"], case["key_arn"], req.get("context") if context is None else context)
    return evaluate(
        policy, r, iam_policies=iam_policies, assume_iam_allows=iam == "assume", key_account=req.get("key_account")
    )


def test_corpus_size_and_shape() -> None:
    cases = load_corpus()
    assert len(cases) >= 80
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names)
    for case in cases:
        assert case["requests"], case["file"]
        for req in case["requests"]:
            assert req["expect"] in DECISIONS, (case["file"], req)
            assert "guide" in str(req.get("because", "")).lower(), (case["file"], req)  # cites a documented rule
    seen = {req["expect"] for _, _, req in requests()}
    assert seen == DECISIONS


def test_corpus_covers_every_condition_operator() -> None:
    from kmsguard.policy.actions import BASE_OPERATORS

    used: set[str] = set()
    for case in load_corpus():
        for stmt in case["policy"]["Statement"]:
            for op in stmt.get("Condition", {}):
                used.add(op)
    bases = {re.sub(r"IfExists$", "", op.split(":")[-1]) for op in used}
    assert set(BASE_OPERATORS) <= bases
    assert any(op.startswith("ForAnyValue:") for op in used) and any(op.startswith("ForAllValues:") for op in used)
    assert any(op.endswith("IfExists") for op in used)


@pytest.mark.parametrize(("case", "index", "req"), requests(), ids=[f"{c['file'][:-5]}#{i}" for c, i, _ in requests()])
def test_corpus_request(case: dict[str, Any], index: int, req: dict[str, Any]) -> None:
    policy = parse_and_normalize(json.dumps(case["policy"]), source=case["file"])
    result = run(policy, case, req)
    assert result.decision.value == req["expect"], f"{case['file']} request {index}: expected because {req['because']}"


# ----------------------------------------------------------------- normalising never changes a decision

_ROOT = re.compile(r"arn:aws:iam::(\d{12}):root")


def _variant(value: Any, rng: random.Random, where: str, in_list: bool = False) -> Any:
    """Rewrite a raw policy fragment into an equivalent raw form."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k
            if where == "Condition-block":  # condition keys are case-insensitive
                key = "".join(c.upper() if rng.random() < 0.3 else c for c in k)
            child = {"Condition": "Condition-op", "Condition-op": "Condition-block"}.get(where, k)
            out[key] = _variant(v, rng, child)
        return out
    if isinstance(value, list):
        items = [_variant(v, rng, where, in_list=True) for v in value]
        if len(items) == 1 and rng.random() < 0.5 and where not in ("Statement",):
            return items[0]  # a one-element list is the same as its single value
        return items
    if isinstance(value, str):
        if where == "AWS":
            m = _ROOT.fullmatch(value)
            if m and rng.random() < 0.5:
                value = m.group(1)  # account-id shorthand
            elif re.fullmatch(r"\d{12}", value) and rng.random() < 0.5:
                value = f"arn:aws:iam::{value}:root"
        if where in ("Action", "NotAction"):
            value = "".join(c.upper() if rng.random() < 0.3 else c.lower() for c in value)
        if (
            not in_list
            and rng.random() < 0.3
            and where not in ("Version", "Effect", "Sid", "Principal", "NotPrincipal")
        ):
            return [value]  # a single value is the same as a one-element list
        return value
    return value


def raw_variant(policy: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {"Version": policy["Version"], "Statement": []}
    for stmt in policy["Statement"]:
        new: dict[str, Any] = {}
        for k, v in stmt.items():
            if k in ("Principal", "NotPrincipal") and v == "*" and rng.random() < 0.5:
                new[k] = {"AWS": "*"}
            elif k in ("Principal", "NotPrincipal") and v == {"AWS": "*"} and rng.random() < 0.5:
                new[k] = "*"
            else:
                new[k] = _variant(v, rng, k)
        out["Statement"].append(new)
    if len(out["Statement"]) == 1 and rng.random() < 0.5:
        out["Statement"] = out["Statement"][0]
    return out


def context_variant(context: dict[str, Any] | None, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (context or {}).items():
        key = "".join(c.upper() if rng.random() < 0.3 else c for c in k)
        out[key] = [v] if isinstance(v, str) and rng.random() < 0.5 else v
    return out


@settings(max_examples=300, deadline=None)
@given(pick=st.integers(min_value=0), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_normalising_never_changes_a_decision(pick: int, seed: int) -> None:
    all_requests = requests()
    case, _, req = all_requests[pick % len(all_requests)]
    rng = random.Random(seed)
    original = parse_and_normalize(json.dumps(case["policy"]))
    variant_text = json.dumps(raw_variant(case["policy"], rng), indent=rng.choice([None, 2]))
    variant = parse_and_normalize(variant_text)
    assert variant == original  # the same model, so trivially the same decisions; checked below anyway
    expected = run(original, case, req).decision
    assert run(variant, case, req, context_variant(req.get("context"), rng)).decision == expected
