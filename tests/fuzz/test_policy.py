"""`kmsguard policy validate/analyze/diff/simulate` on hostile policy files: exit 2 naming the file, or a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import seeds
from .harness import Tally, budget, run
from .mutations import byte_mutants, json_text, tree_mutants

ACCOUNT = seeds.ACCOUNT
PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:role/app"
SIMULATE = ["--account", ACCOUNT, "--principal", PRINCIPAL, "--action", "kms:Decrypt"]
COMMANDS = ["validate", "analyze", "diff-old", "diff-new", "simulate", "simulate-iam"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy")
    (path / "good.json").write_bytes(seeds.policy_files()[0])
    return path


def policy_command(work: Path, data: bytes, command: str, tally: Tally) -> None:
    """One policy command with the hostile file where that command reads a policy."""
    bad, good = work / "policy.json", work / "good.json"
    bad.write_bytes(data)
    args: dict[str, list[str | Path]] = {
        "validate": ["policy", "validate", bad],
        "analyze": ["policy", "analyze", bad, "--account", ACCOUNT],
        "diff-old": ["policy", "diff", bad, good, "--account", ACCOUNT],
        "diff-new": ["policy", "diff", good, bad, "--account", ACCOUNT],
        "simulate": ["policy", "simulate", bad, *SIMULATE],
        "simulate-iam": ["policy", "simulate", good, *SIMULATE, "--iam-policy", bad],
    }
    run(tally, args[command], [bad])


@budget(100)
@given(data=byte_mutants(seeds.policy_files()), command=st.sampled_from(COMMANDS))
def test_byte_mutated_policies(work: Path, tally: Tally, data: bytes, command: str) -> None:
    policy_command(work, data, command, tally)


@budget(100)
@given(data=tree_mutants(seeds.policies(), json_text), command=st.sampled_from(COMMANDS))
def test_policies_with_wrong_types_and_hostile_values(work: Path, tally: Tally, data: bytes, command: str) -> None:
    policy_command(work, data, command, tally)


# Generated policies: the grammar of a key policy, well-formed as a rule so that the engines behind the parser
# (evaluation, the z3 solver, the diff) get the input, with invalid choices weighted in at every element.
ARN_VALUES = [f"arn:aws:iam::{ACCOUNT}:role/*", "arn:aws:iam::*:root", "*"]
ACTIONS = st.sampled_from(
    ["kms:*", "kms:Decrypt", "kms:Create*", "kms:PutKeyPolicy", "kms:*Key*", "*", "kms:", "s3:Get*"]
)
AWS_PRINCIPALS = st.sampled_from(
    [
        f"arn:aws:iam::{ACCOUNT}:root",
        "444455556666",
        f"arn:aws:iam::{ACCOUNT}:role/app",
        "arn:aws:iam::*:role/x",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s",
        "AROAEXAMPLEID",
        "*",
        "arn:",
    ]
)
PRINCIPALS = st.one_of(
    st.just("*"),
    st.fixed_dictionaries({"AWS": AWS_PRINCIPALS | st.lists(AWS_PRINCIPALS, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"Service": st.sampled_from(["s3.amazonaws.com", "logs.us-east-1.amazonaws.com", "*", ""])}),
    st.fixed_dictionaries({"Federated": st.text(max_size=10)}),
)
STRING_KEYS = [
    "kms:CallerAccount",
    "aws:PrincipalOrgID",
    "kms:ViaService",
    "kms:EncryptionContext:app",
    "kms:EncryptionContextKeys",
    "aws:PrincipalTag/team",
    "kms:RequestAlias",
    "aws:PrincipalArn",
]
STRINGS = st.sampled_from(
    [ACCOUNT, "444455556666", "o-a1b2c3d4e5", "s3.us-east-1.amazonaws.com", "app", "alias/*", "*"]
)
# Each operator with keys and values it takes, so that most conditions are valid and reach the solver.
CONDITIONS = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "StringEquals",
                "StringLike",
                "StringNotEquals",
                "ForAnyValue:StringEquals",
                "ForAllValues:StringLike",
                "StringEqualsIfExists",
                "StringNotLike",
            ]
        ),
        st.sampled_from(STRING_KEYS),
        STRINGS | st.lists(STRINGS, min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("Bool"),
        st.sampled_from(["aws:SecureTransport", "kms:GrantIsForAWSResource"]),
        st.sampled_from(["true", "false", True]),
    ),
    st.tuples(st.just("Null"), st.sampled_from(STRING_KEYS), st.sampled_from(["true", "false"])),
    st.tuples(
        st.sampled_from(["DateGreaterThan", "DateLessThan"]),
        st.just("aws:CurrentTime"),
        st.sampled_from(["2024-01-01T00:00:00Z", "2030-12-31T23:59:59Z"]),
    ),
    st.tuples(
        st.sampled_from(["IpAddress", "NotIpAddress"]),
        st.just("aws:SourceIp"),
        st.sampled_from(["10.0.0.0/8", "192.0.2.1/32", "::1/128"]),
    ),
    st.tuples(st.sampled_from(["ArnLike", "ArnNotEquals"]), st.just("aws:PrincipalArn"), st.sampled_from(ARN_VALUES)),
    # And now and then anything: an unknown operator or key, values of the wrong type.
    st.tuples(st.text(max_size=12), st.text(max_size=12), st.booleans() | st.integers() | st.none() | st.text()),
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, object]:
    weighted = lambda usual, *odd: st.sampled_from([usual] * 5 + list(odd))  # noqa: E731
    out: dict[str, object] = {"Effect": draw(st.sampled_from(["Allow"] * 6 + ["Deny"] * 3 + ["allow"]))}
    out[draw(weighted("Principal", "NotPrincipal"))] = draw(PRINCIPALS)
    out[draw(weighted("Action", "NotAction"))] = draw(ACTIONS | st.lists(ACTIONS, min_size=1, max_size=3))
    out[draw(weighted("Resource", "NotResource"))] = draw(weighted("*", "arn:aws:kms:*:*:key/*", ""))
    if draw(st.booleans()):
        condition: dict[str, dict[str, object]] = {}
        for operator, key, values in draw(st.lists(CONDITIONS, min_size=1, max_size=3)):
            condition.setdefault(operator, {})[key] = values
        out["Condition"] = condition
    if draw(st.booleans()):
        out["Sid"] = draw(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True) | st.text(max_size=6))
    return out


POLICIES = st.fixed_dictionaries(
    {
        "Version": st.sampled_from(["2012-10-17"] * 6 + ["2008-10-17", "2024-01-01"]),
        "Statement": st.lists(statements(), min_size=1, max_size=4) | statements(),
    },
    optional={"Id": st.text(max_size=8)},
)


@budget(80)
@given(doc=POLICIES, command=st.sampled_from(COMMANDS))
def test_generated_policies(work: Path, tally: Tally, doc: dict[str, object], command: str) -> None:
    policy_command(work, json_text(doc).encode(), command, tally)
