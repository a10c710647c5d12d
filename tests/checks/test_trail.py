"""The trail family as registered checks: facts on the Snapshot, judged through the same pipeline as any check.

The end-to-end cases (logs -> SQL -> facts -> findings) are in tests/trail; these hold what going through the
registry must give: check selection, per-check options, severity overrides and mutes apply to trail findings,
the facts survive a snapshot file, trust is the scan's, and a grant explains a call only when it surely does.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from kmsguard.config import CheckOptions, ScanConfig
from kmsguard.model.finding import Severity, Status
from kmsguard.model.snapshot import Grant, Snapshot
from kmsguard.model.trail import AdminEvents, CrossAccountUse, GrantIssued, KeyUse, PolicyChange, TrailFacts
from kmsguard.mutes import Mute
from kmsguard.pipeline import family, judge
from kmsguard.policy.grants import grant_covers

from .builders import ACCOUNT, OTHER_ACCOUNT, key, snapshot

T = 1_717_977_600  # 2024-06-10T00:00:00Z
SIBLING = "777788889999"


def _with(snap: Snapshot, facts: TrailFacts) -> Snapshot:
    snap.trail = facts
    return snap


def _disabled(k_arn: str) -> TrailFacts:
    return TrailFacts(
        admin_events=[AdminEvents(key=k_arn, event_name="DisableKey", calls=1, first_ts=T, last_ts=T, events=[])]
    )


def test_without_facts_the_family_yields_nothing() -> None:
    k = key()
    result = judge(snapshot([k]), only=family("trail"))
    assert result.findings == []


def test_check_selection_options_overrides_and_mutes_apply_to_trail_findings() -> None:
    k = key()
    snap = _with(snapshot([k]), _disabled(k.arn))

    plain = judge(snap, only=family("trail")).findings
    assert ("trail_key_disabled", Status.FAIL, Severity.HIGH) in [(f.check_id, f.status, f.severity) for f in plain]
    # The facts hold no window (no events): key_unused cannot judge the key, and says so.
    assert [(f.check_id, f.status) for f in plain if f.check_id == "key_unused"] == [("key_unused", Status.ERROR)]

    overridden = judge(snap, ScanConfig(severity_overrides={"trail_key_disabled": Severity.LOW})).findings
    assert [f.severity for f in overridden if f.check_id == "trail_key_disabled"] == [Severity.LOW]

    off = ScanConfig(checks={"trail_key_disabled": CheckOptions(enabled=False)})
    assert not [f for f in judge(snap, off).findings if f.check_id == "trail_key_disabled"]
    assert not [f for f in judge(snap, skip=["trail_key_disabled"]).findings if f.check_id == "trail_key_disabled"]

    muted = judge(
        snap,
        ScanConfig(mutes=[Mute(check="trail_key_disabled", reason="maintenance window")]),
        today=date(2026, 1, 1),
    ).findings
    (f,) = [f for f in muted if f.check_id == "trail_key_disabled"]
    assert f.status is Status.MUTED and f.mute_reason == "maintenance window"


def test_the_facts_round_trip_through_a_snapshot_file() -> None:
    k = key()
    snap = _with(snapshot([k]), _disabled(k.arn))
    again = Snapshot.model_validate_json(snap.model_dump_json())
    assert again.trail == snap.trail
    assert [f.check_id for f in judge(again, only=["trail_key_disabled"]).findings] == ["trail_key_disabled"]


def _cross(k_arn: str, principal_account: str) -> TrailFacts:
    return TrailFacts(
        cross_account=[
            CrossAccountUse(
                key=k_arn,
                key_account=ACCOUNT,
                principal_account=principal_account,
                calls=3,
                principals=1,
                first_ts=T,
                last_ts=T,
            )
        ],
        external_grants=[
            GrantIssued(
                key=k_arn,
                key_account=ACCOUNT,
                grantee_account=principal_account,
                grantees=[f"arn:aws:iam::{principal_account}:role/app"],
                calls=1,
                first_ts=T,
                last_ts=T,
            )
        ],
    )


@pytest.mark.parametrize("check_id", ["trail_cross_account_use", "trail_grant_external"])
def test_a_scanned_sibling_account_is_trusted_as_the_scans_policy_checks_trust_it(check_id: str) -> None:
    k = key()
    # The scan read both accounts: the sibling is not outside (policy.trust, as key_policy_external_access).
    both = _with(snapshot([k, key(account=SIBLING)]), _cross(k.arn, SIBLING))
    assert not [f for f in judge(both, only=[check_id]).findings]
    # A third account the scan did not read is outside, unless configured as trusted.
    third = _with(snapshot([k]), _cross(k.arn, OTHER_ACCOUNT))
    assert [f.status for f in judge(third, only=[check_id]).findings] == [Status.FAIL]
    trusted = ScanConfig(trusted_accounts=[OTHER_ACCOUNT])
    assert not judge(third, trusted, only=[check_id]).findings


ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
# The key policy names only the admin role: the app role's use must come from a grant, or it is a finding.
ADMIN_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def _use(k_arn: str, action: str) -> TrailFacts:
    return TrailFacts(
        uses=[
            KeyUse(
                key=k_arn,
                principal=ROLE,
                principal_arn=ROLE,
                principal_type="IAMUser",
                principal_account=ACCOUNT,
                action=action,
                calls=2,
                first_ts=T,
                last_ts=T,
            )
        ]
    )


@pytest.mark.parametrize(
    ("operations", "constraints", "action", "explained"),
    [
        (["Decrypt"], None, "Decrypt", True),
        (["Encrypt"], None, "Decrypt", False),  # not the operation the call needed
        # A constraint the log cannot show was met counts as not met (as key-policy context conditions do).
        (["Decrypt"], {"EncryptionContextSubset": {"app": "billing"}}, "Decrypt", False),
        # CloudTrail's one ReEncrypt is the grant's ReEncryptFrom (or ReEncryptTo).
        (["ReEncryptFrom"], None, "ReEncrypt", True),
        # Constraints bind only operations that take an encryption context: Sign does not.
        (["Sign"], {"EncryptionContextEquals": {"app": "billing"}}, "Sign", True),
    ],
)
def test_a_grant_explains_a_call_only_when_it_surely_covers_it(
    operations: list[str], constraints: dict[str, dict[str, str]] | None, action: str, explained: bool
) -> None:
    assert grant_covers(operations, constraints, action) is explained
    grant = Grant(grant_id="g1", grantee_principal=ROLE, operations=operations, constraints=constraints)
    k = key(policy=ADMIN_ONLY, grants=[grant])
    found = judge(_with(snapshot([k]), _use(k.arn, action)), only=["trail_use_not_allowed_by_policy"]).findings
    assert [f.status for f in found] == ([] if explained else [Status.FAIL])


def test_trail_and_drift_grade_a_policy_change_on_one_scale() -> None:
    from kmsguard.policy.diff import diff_policies

    def policy(*principals: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": p}, "Action": "kms:*", "Resource": "*"}
                    for p in (f"arn:aws:iam::{ACCOUNT}:role/admin", *principals)
                ],
            }
        )

    base = policy()
    inside = diff_policies(base, policy(f"arn:aws:iam::{ACCOUNT}:role/app"), ACCOUNT)
    outside = diff_policies(base, policy(f"arn:aws:iam::{OTHER_ACCOUNT}:root"), ACCOUNT)
    removed = diff_policies(policy(f"arn:aws:iam::{ACCOUNT}:role/app"), base, ACCOUNT)
    assert inside.severity(ACCOUNT) is Severity.MEDIUM
    assert outside.severity(ACCOUNT) is Severity.HIGH
    assert removed.severity(ACCOUNT) is None


ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"


def _policy_doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _change(k_arn: str, old: str, new: str) -> TrailFacts:
    def event(name: str, ts: int, policy: str) -> PolicyChange:
        return PolicyChange(key=k_arn, key_account=ACCOUNT, event_name=name, ts=ts, event_id=name, policy=policy)

    return TrailFacts(policy_changes=[event("CreateKey", T, old), event("PutKeyPolicy", T + 60, new)])


def test_a_put_key_policy_that_only_locks_the_administrators_out_is_critical() -> None:
    # Nothing gained, every administrator gone: the worst change the trail sees, as drift grades it (critical).
    k = key()
    old = _policy_doc({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"})
    new = _policy_doc({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:Decrypt", "Resource": "*"})
    (f,) = judge(_with(snapshot([k]), _change(k.arn, old, new)), only=["trail_policy_widened"]).findings
    assert f.severity is Severity.CRITICAL and f.evidence["admin_lockout"] is True
    assert "locked every administrator out" in f.message
    # A change that neither gains access nor locks anyone out (a Sid added) is no finding.
    renamed = _policy_doc(
        {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"}
    )
    assert judge(_with(snapshot([k]), _change(k.arn, old, renamed)), only=["trail_policy_widened"]).findings == []


def test_a_logged_reencrypt_is_allowed_by_either_permission_it_needs() -> None:
    # CloudTrail logs ReEncrypt; a key policy grants kms:ReEncryptFrom (or To): the call is allowed, not a finding.
    policy = _policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:ReEncryptFrom", "Resource": "*"},
    )
    k = key(policy=policy)
    found = judge(_with(snapshot([k]), _use(k.arn, "ReEncrypt")), only=["trail_use_not_allowed_by_policy"]).findings
    assert found == []
    denied = key(policy=ADMIN_ONLY)
    (f,) = judge(
        _with(snapshot([denied]), _use(denied.arn, "ReEncrypt")), only=["trail_use_not_allowed_by_policy"]
    ).findings
    assert f.evidence["uses"][0]["action"] == "kms:ReEncrypt"


def test_a_snapshot_without_logs_is_written_as_before_the_trail_facts_existed() -> None:
    k = key()
    plain = snapshot([k])
    assert "trail" not in json.loads(plain.model_dump_json())
    with_logs = _with(snapshot([k]), _disabled(k.arn))
    assert json.loads(with_logs.model_dump_json())["trail"]["admin_events"][0]["event_name"] == "DisableKey"
