"""Journals written before ``check_ids``: each action named its checks in one comma-joined ``check_id``.

Such a journal is signed like any other (the MAC covers its bytes as written), so it must still verify, resume
with its own plan (the ids read as a list: verification re-runs each check) and roll back. The old writer is the
real ``Journal`` with the actions put in the old form just before they are signed, as that kmsguard wrote them;
AWS is the real moto server over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import Emulator
from kmsguard.fix.apply import Sessions, apply_plan, planned, resume_state
from kmsguard.fix.journal import Journal, load_journal
from kmsguard.fix.plan import Action
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.pipeline import judge

from .conftest import ADMIN, OUTSIDER, make_key, messy_policy, root_statement


def _old(action: dict[str, Any]) -> dict[str, Any]:
    """An action as kmsguard wrote it before check_ids: ``check_id`` second, the ids comma-joined."""
    rest = {k: v for k, v in action.items() if k not in ("action", "check_ids")}
    return {"action": action["action"], "check_id": ",".join(action["check_ids"]), **rest}


class _OldJournal(Journal):
    def plan(self, actions: list[dict[str, Any]]) -> None:
        super().plan([_old(a) for a in actions])

    def before(
        self, action: dict[str, Any], detail: dict[str, Any], prior: dict[str, Any], index: int | None = None
    ) -> int:
        return super().before(_old(action), detail, prior, index)


def test_a_journal_naming_comma_joined_check_ids_verifies_resumes_and_rolls_back(
    aws: Emulator, client: Any, run: Any, tmp_path: Path
) -> None:
    kms = client("kms")
    original = messy_policy(
        root_statement(),
        {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": OUTSIDER}, "Action": "kms:Decrypt", "Resource": "*"},
    )
    arn = make_key(kms, policy=original)
    options = AwsOptions(regions=["us-east-1"], endpoint_url=aws.endpoint_url)
    snap = collect_snapshot(options)
    plan = build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions())
    assert [a.action for a in plan.actions] == ["enable_rotation", "tighten_key_policy"]
    rewrite_ids = plan.actions[1].check_ids
    assert len(rewrite_ids) > 1 and list(rewrite_ids) == sorted(rewrite_ids)

    sessions = Sessions(SessionFactory(options), options.role_name)

    # Stopped before its first action: the resume applies the old plan, each id read apart for verification.
    stopped = tmp_path / "stopped.json"
    with _OldJournal(stopped) as jr:
        jr.plan([planned(a) for a in plan.actions])
    assert f'"check_id":"{",".join(rewrite_ids)}"' in stopped.read_text()
    found = load_journal(stopped)
    assert found.verified and found.plan is not None
    state = resume_state(found)
    assert state.actions == plan.actions and state.not_started == [0, 1]
    resumed = run("--apply", "--resume", str(stopped), "--yes")
    assert resumed.exit_code == 0, resumed.output  # verification re-ran each of the rewrite's checks: all pass
    assert "2 applied, 0 skipped, 0 failed" in resumed.stdout
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] != original
    assert run("--rollback", str(stopped), "--yes").exit_code == 0
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original

    # Written whole in the old form (plan and before lines): verified and rolled back.
    old = tmp_path / "old.json"
    with _OldJournal(old) as jr:
        assert [o.status for o in apply_plan(plan, sessions, jr, max_workers=1)] == ["applied", "applied"]
    assert "check_ids" not in old.read_text() and load_journal(old).verified
    rolled = run("--rollback", str(old), "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == original
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"check_id": ["key_rotation_disabled"]}, "check_id is not text"),
        ({"check_ids": "key_rotation_disabled"}, "check_ids is not a list of text"),
        ({}, "check_ids is not a list of text"),
    ],
)
def test_an_action_naming_its_checks_wrongly_is_refused_saying_how(raw: dict[str, Any], message: str) -> None:
    base = {"action": "enable_rotation", "account": "1", "region": "r", "resource_arn": "a", "before": {}, "after": {}}
    with pytest.raises((TypeError, ValueError), match=message):
        Action.from_dict(base | raw)


def test_a_plan_entry_carries_check_ids_and_the_deprecated_comma_joined_check_id() -> None:
    # Scripts that read check_id keep working for one release; a reader gets check_ids back whichever it finds.
    base = {"action": "put_key_policy", "account": "1", "region": "r", "resource_arn": "a", "before": {}, "after": {}}
    action = Action.from_dict(base | {"check_ids": ["key_policy_public", "key_policy_wildcard_actions"]})
    written = action.to_dict()
    assert written["check_ids"] == ["key_policy_public", "key_policy_wildcard_actions"]
    assert written["check_id"] == "key_policy_public,key_policy_wildcard_actions"
    assert Action.from_dict(written) == action
