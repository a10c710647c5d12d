"""diff_policies: gained and lost access as confirmed requests (complete, sorted, the same on every run),
the examples labelled as examples, and the admin lock-out test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from kmsguard.policy.actions import KMS_ACTIONS
from kmsguard.policy.diff import ALL, AccessChange, diff_policies
from kmsguard.policy.evaluate import evaluate
from kmsguard.policy.generate import generate_key_policy
from kmsguard.policy.model import Decision, Request
from kmsguard.policy.normalize import parse_and_normalize, request
from kmsguard.policy.questions import load
from kmsguard.policy.solver import Identity, Question, prove

K = "111122223333"
X = "444455556666"
ORG = "o-abcdefghij"
ADMIN = f"arn:aws:iam::{K}:role/Admin"
APP = f"arn:aws:iam::{K}:role/App"
KEY_ARN = f"arn:aws:kms:eu-west-1:{K}:key/0f1e2d3c-aaaa-bbbb-cccc-000011112222"
GUIDE = generate_key_policy(K, [ADMIN], [APP])


def with_statements(base: dict[str, Any], *extra: dict[str, Any], drop: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    doc = json.loads(json.dumps(base))
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") not in drop] + list(extra)
    return json.dumps(doc)


def decision(text: str, req: Request, *, iam: bool = True) -> Decision:
    return evaluate(parse_and_normalize(text), req, assume_iam_allows=iam, key_account=K).decision


def confirmed(allows: str, denies: str, change: AccessChange, *, iam: bool = True) -> bool:
    """The change's example is allowed by ``allows`` and not by ``denies``."""
    return (
        decision(allows, change.example, iam=iam) is Decision.ALLOW
        and decision(denies, change.example, iam=iam) is not Decision.ALLOW
    )


def test_new_external_grant_is_gained_access() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(GUIDE, {"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:Decrypt", "Resource": "*"})
    d = diff_policies(old, new, K)
    assert d.lost == [] and d.uncertain == []
    assert [(c.action, c.principal_account) for c in d.gained] == [("kms:decrypt", X)]
    assert all(confirmed(new, old, c) for c in d.gained)
    assert d.admin_lockout is False


def test_removing_usage_reports_every_lost_action_once() -> None:
    """The complete set: every action App could perform by the key policy alone and no longer can (an
    oracle from the evaluator over the whole catalogue), not the first 8 the solver happens to find."""
    old = json.dumps(GUIDE)
    new = with_statements(GUIDE, drop={"KeyUsageForEncryption"})
    ctx = {"aws:SecureTransport": "true", "kms:CallerAccount": K}
    expected = sorted(
        a.lower()
        for a in KMS_ACTIONS
        if decision(old, request(APP, a, KEY_ARN, ctx), iam=False) is Decision.ALLOW
        and decision(new, request(APP, a, KEY_ARN, ctx), iam=False) is not Decision.ALLOW
    )
    assert len(expected) > 8  # more than the old per-class cap, or this test proves nothing
    d = diff_policies(old, new, K, key_arn=KEY_ARN)
    assert d.gained == [] and d.uncertain == []
    assert [c.who for c in d.lost] == [APP] * len(expected)
    assert [c.action for c in d.lost] == expected  # sorted, each once
    assert all(confirmed(old, new, c, iam=False) for c in d.lost)  # allowed before, not after


def test_lockout_when_no_one_can_put_the_policy_any_more() -> None:
    new = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": APP}, "Action": "kms:Decrypt", "Resource": "*"}],
        }
    )
    d = diff_policies(json.dumps(GUIDE), new, K)
    assert d.admin_lockout is True
    assert (d.administrable_before, d.administrable_after) == (True, False)


def test_no_lockout_while_root_delegation_allows_putkeypolicy() -> None:
    new = with_statements(GUIDE, drop={"KeyAdministration"})
    assert diff_policies(json.dumps(GUIDE), new, K).admin_lockout is False


def test_identical_policies_have_no_difference() -> None:
    d = diff_policies(json.dumps(GUIDE), json.dumps(GUIDE), K)
    assert (d.gained, d.lost, d.admin_lockout, d.uncertain) == ([], [], False, [])


def test_a_change_the_solver_cannot_show_is_listed_as_uncertain_not_dropped() -> None:
    """A policy variable in a condition value is approximated by the solver; its example is then not
    confirmed by the evaluator. The change may well be real (a user named like the context value), so it is
    reported as undecided rather than silently left out."""
    old = json.dumps(GUIDE)
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": X},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
    }
    d = diff_policies(old, with_statements(GUIDE, grant), K, key_arn=KEY_ARN)
    assert d.gained == []
    assert d.uncertain == [
        f"any principal of account {X}: kms:Decrypt gained: the solver's example is not confirmed by the evaluator"
    ]
    assert d.to_dict()["uncertain"] == d.uncertain


# --- NotPrincipal: a role's sessions are not exempt when only the role is listed ----------------------------

ADMIN_ONLY = {
    "Sid": "OnlyAdminsChangeThePolicy",
    "Effect": "Deny",
    # The role and its account, as the IAM guide advises for users; a role's sessions are a level of their
    # own ("AWS JSON policy elements: NotPrincipal": its example lists the session, the role and the account).
    "NotPrincipal": {"AWS": [ADMIN, K]},
    "Action": "kms:*",
    "Resource": "*",
}


def test_a_notprincipal_listing_the_admin_role_locks_its_sessions_out() -> None:
    """The guide's policy without IAM delegation: Admin's sessions are the only administrators. A Deny
    whose NotPrincipal lists the Admin role and the account (but no session) leaves the root user and the
    role itself out of the Deny, yet every session of Admin is denied: nobody can call PutKeyPolicy any
    more, which is what the fix plan's lock-out guard (``admin_lockout``) must see."""
    old = with_statements(GUIDE, drop={"EnableIAMUserPermissions"})
    new = with_statements(json.loads(old), ADMIN_ONLY)
    d = diff_policies(old, new, K, key_arn=KEY_ARN)
    assert (d.administrable_before, d.administrable_after, d.admin_lockout) == (True, False, True)
    lost = [c for c in d.lost if c.who.startswith(f"any session of {ADMIN}")]
    assert "kms:putkeypolicy" in {c.action for c in lost}
    assert all(c.principal.startswith(f"arn:aws:sts::{K}:assumed-role/Admin/") for c in lost)
    assert all(confirmed(old, new, c, iam=False) for c in lost)


def test_listing_the_admin_role_alone_also_locks_it_out() -> None:
    old = with_statements(GUIDE, drop={"EnableIAMUserPermissions"})
    new = with_statements(json.loads(old), {**ADMIN_ONLY, "NotPrincipal": {"AWS": ADMIN}})
    assert diff_policies(old, new, K).admin_lockout is True


def test_listing_the_sessions_keeps_the_key_administrable() -> None:
    """Control: with the session listed too (the guide's example), that session still administers."""
    session = f"arn:aws:sts::{K}:assumed-role/Admin/alice"
    old = with_statements(GUIDE, drop={"EnableIAMUserPermissions"})
    new = with_statements(json.loads(old), {**ADMIN_ONLY, "NotPrincipal": {"AWS": [session, ADMIN, K]}})
    assert diff_policies(old, new, K).admin_lockout is False


# --- examples are labelled; the key is the real one ----------------------------------------------------------


def test_classes_are_described_and_their_examples_labelled() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(
        GUIDE,
        {"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:Decrypt", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        },
    )
    out = diff_policies(old, new, K, key_arn=KEY_ARN).to_dict()
    by_who = {g["principal"]: g for g in out["gained"]}
    outside = next(w for w in by_who if w.startswith(f"any principal of account {X} (for example "))
    assert by_who[outside]["example"]["principal"] in outside  # the example named is the example given
    assert any(w.startswith(f"any principal of organisation {ORG} ") and "(for example " in w for w in by_who)
    assert {g["resource"] for g in out["gained"]} == {KEY_ARN}  # the real key, never a placeholder
    assert {g["example"]["resource"] for g in out["gained"]} == {KEY_ARN}
    assert all(not g["example"]["resource"].endswith("1234abcd-12ab-34cd-56ef-1234567890ab") for g in out["gained"])


def test_without_a_key_arn_the_resource_says_it_is_an_example() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(GUIDE, {"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:Decrypt", "Resource": "*"})
    (change,) = diff_policies(old, new, K).to_dict()["gained"]
    assert change["resource"] == f"this key of account {K} (for example {change['example']['resource']})"


# --- deterministic: the same on every run, whatever z3 did before -------------------------------------------

_SCRIPT = """
import json, sys
from kmsguard.policy.diff import diff_policies
old, new, account, key = json.load(sys.stdin)
print(json.dumps(diff_policies(old, new, account, key_arn=key).to_dict(), sort_keys=True))
"""


def _busy_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "kms:*",
                    "Resource": "*",
                    "Condition": {
                        "StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/*", "kms:EncryptionContext:app": "a*"},
                        "NumericLessThan": {"kms:RecipientAttestation:ImageSha384": "5"},
                    },
                }
            ],
        }
    )


def test_the_same_diff_every_time_and_in_a_fresh_process() -> None:
    old = json.dumps(GUIDE)
    new = with_statements(
        GUIDE,
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["kms:Decrypt", "kms:Encrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalOrgID": ORG},
                "StringLike": {"kms:EncryptionContext:app": "a*"},
            },
        },
        {"Effect": "Allow", "Principal": {"AWS": X}, "Action": "kms:*", "Resource": "*"},
        drop={"KeyUsageForEncryption"},
    )
    first = json.dumps(diff_policies(old, new, K, key_arn=KEY_ARN).to_dict(), sort_keys=True)
    # Other z3 work in between (before each encoder had its own context, this changed the examples).
    prove(load(_busy_policy()), Question(ALL, Identity(exclude_accounts=frozenset({K})), K))
    second = json.dumps(diff_policies(old, new, K, key_arn=KEY_ARN).to_dict(), sort_keys=True)
    assert second == first
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    fresh = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        input=json.dumps([old, new, K, KEY_ARN]),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert fresh.stdout.strip() == first
    gained = json.loads(first)["gained"]
    assert len(gained) > 8 and gained == sorted(gained, key=lambda g: (g["principal"], g["action"].lower()))
