"""`fix --rollback` is not a way to change keys: against the real moto server over HTTP, a journal that is not
this user's, or whose entries do not hang together, changes nothing; every restore is shown (policy diff with
access, deletion, rotation) and analysed (lock-out, public and external access) before anything is asked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.testing
from typer.testing import CliRunner, Result

from kmsguard.fix.journal import Journal

from .conftest import ACCOUNT, APP, ROOT, cli_app, make_key, messy_policy, root_statement

Run = Callable[..., Result]
PUBLIC = {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}


def _apply(run: Run, journal: Path, *args: str) -> None:
    result = run("--apply", "--yes", "--journal", str(journal), *args)
    assert result.exit_code == 0, result.output


def _edit(path: Path, line_no: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit one line of a journal as a person with a text editor would (its MAC left as it was)."""
    lines = path.read_text().splitlines()
    obj = json.loads(lines[line_no - 1])
    change(obj)
    lines[line_no - 1] = json.dumps(obj, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")


def _policy(kms: Any, arn: str) -> str:
    return str(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])


def _state(kms: Any, arn: str) -> str:
    return str(kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"])


# -- the first reproduction: a hand-written journal scheduling deletion of an untouched key -------------


def _hand_written(path: Path, arn: str, header: dict[str, Any]) -> Path:
    action = {
        "action": "cancel_key_deletion",
        "check_id": "key_pending_deletion",
        "account": ACCOUNT,
        "region": "us-east-1",
        "resource_arn": arn,
        "before": {"key_state": "PendingDeletion", "deletion_date": None},
        "after": {"key_state": "Enabled"},
    }
    lines = [
        header,
        {"type": "before", "seq": 1, "action": action, "prior": {"key_state": "PendingDeletion"}},
        {"type": "result", "seq": 1, "status": "applied"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ({"type": "header", "version": 1}, "not signed"),
        ({"type": "header", "version": 2, "key_id": "0123456789abcdef"}, "signed with another journal key"),
    ],
)
def test_a_hand_written_journal_cannot_schedule_deletion_of_a_key_kmsguard_never_touched(
    aws: Any, client: Any, run: Run, tmp_path: Path, header: dict[str, Any], problem: str
) -> None:
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    make_key(kms)  # this user has used kmsguard before: a journal key exists
    _apply(run, tmp_path / "real.json", "--checks", "key_rotation_disabled")
    journal = _hand_written(tmp_path / "forged.json", arn, header)

    refused = run("--rollback", str(journal), "--yes")
    assert refused.exit_code == 2, refused.output
    assert str(journal) in refused.output and problem in refused.output and "--force" in refused.output
    assert _state(kms, arn) == "Enabled"

    forced = run("--rollback", str(journal), "--yes", "--force")
    assert forced.exit_code == 1, forced.output
    assert "refused  cancel_key_deletion" in forced.stdout and "needs a verified journal" in forced.stdout
    assert f"aws kms schedule-key-deletion --key-id {arn}" in forced.stdout
    assert _state(kms, arn) == "Enabled"


# -- the second reproduction: a real journal whose prior policy was edited to make a key public ---------


def test_a_real_journal_whose_prior_policy_was_edited_to_make_a_key_public_is_refused(
    aws: Any, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    original = messy_policy(root_statement())  # no DenyInsecureTransport: fix adds it
    arn = make_key(kms, policy=original, rotation_days=365)
    journal = tmp_path / "j.json"
    _apply(run, journal, "--checks", "key_policy_no_secure_transport")
    fixed = _policy(kms, arn)
    public = messy_policy(root_statement(), PUBLIC)

    def make_public(obj: dict[str, Any]) -> None:
        obj["prior"]["policy"] = public

    _edit(journal, 3, make_public)  # line 2 is the plan, line 3 the change
    refused = run("--rollback", str(journal), "--yes")
    assert refused.exit_code == 2, refused.output
    assert f"{journal}: line 3 does not match its MAC: the journal was edited" in refused.output

    # --force reviews it, and the edited prior is not what the plan recorded before applying.
    forced = run("--rollback", str(journal), "--yes", "--force")
    assert forced.exit_code == 1, forced.output
    assert "not the state the plan recorded before applying" in forced.stdout
    assert _policy(kms, arn) == fixed

    # Edited consistently (the plan's "before" too): the public/external analysis stops it, showing the diff.
    def and_the_plan(obj: dict[str, Any]) -> None:
        obj["action"]["before"]["policy"] = public

    _edit(journal, 3, and_the_plan)
    forced = run("--rollback", str(journal), "--yes", "--force")
    assert forced.exit_code == 1, forced.output
    out = forced.stdout
    assert "NOT VERIFIED" in out and "policy diff:" in out and '+      "Sid": "Everyone"' in out
    assert "! restoring opens the key to anyone (public)" in out
    assert "cannot open a key to anyone (public)" in out
    assert _policy(kms, arn) == fixed


# -- consistency -------------------------------------------------------------------------------------------------


def test_a_change_without_an_applied_result_is_not_restored(aws: Any, client: Any, run: Run, tmp_path: Path) -> None:
    kms = client("kms")
    arn = make_key(kms)
    journal = tmp_path / "j.json"
    _apply(run, journal, "--checks", "key_rotation_disabled")
    # The last line, the result, cut off (as if the run had stopped mid-call): the rest still verifies.
    journal.write_text("".join(line + "\n" for line in journal.read_text().splitlines()[:-1]))
    result = run("--rollback", str(journal), "--yes")
    assert result.exit_code == 1, result.output
    assert "no result was recorded" in result.stdout and "0 restored or unchanged, 1 not restored" in result.stdout
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True


def _signed(path: Path, action: dict[str, Any], detail: dict[str, Any], prior: dict[str, Any]) -> Path:
    """A verified journal with these contents, written by the real writer with this user's key."""
    with Journal(path) as jr:
        jr.result(jr.before(action, detail, prior), "applied")
    return path


def _policy_action(arn: str, before: str, after: str) -> dict[str, Any]:
    return {
        "action": "tighten_key_policy",
        "check_id": "key_policy_no_secure_transport",
        "account": ACCOUNT,
        "region": "us-east-1",
        "resource_arn": arn,
        "before": {"policy": before},
        "after": {"policy": after},
        "impact": {},
    }


def test_even_a_verified_entry_must_hang_together(aws: Any, client: Any, run: Run, tmp_path: Path) -> None:
    kms = client("kms")
    shown, other = make_key(kms), make_key(kms)
    now = {k: _policy(kms, k) for k in (shown, other)}
    wide = messy_policy(root_statement(), PUBLIC)
    # The entry shows one key, but its calls would go to another.
    action = _policy_action(shown, wide, now[shown])
    target = _signed(tmp_path / "target.json", action, {"key_id": other.rsplit("/", 1)[-1]}, {"policy": wide})
    result = run("--rollback", str(target), "--yes")
    assert result.exit_code == 1 and f"the entry changes key {other.rsplit('/', 1)[-1]}, not {shown}" in result.stdout
    # The prior state is not the one the plan recorded before applying.
    prior = _signed(tmp_path / "prior.json", _policy_action(shown, now[shown], now[shown]), {}, {"policy": wide})
    result = run("--rollback", str(prior), "--yes")
    assert result.exit_code == 1 and "not the state the plan recorded before applying" in result.stdout
    # A deletion this journal did not see scheduled (the plan's before says Enabled) is not scheduled.
    cancel = {
        "action": "cancel_key_deletion",
        "check_id": "key_pending_deletion",
        "account": ACCOUNT,
        "region": "us-east-1",
        "resource_arn": shown,
        "before": {"key_state": "Enabled"},
        "after": {"key_state": "Enabled"},
    }
    deletion = _signed(tmp_path / "deletion.json", cancel, {}, {"key_state": "PendingDeletion"})
    result = run("--rollback", str(deletion), "--yes", "--force")
    assert result.exit_code == 1 and "not the state the plan recorded" in result.stdout
    assert {k: _policy(kms, k) for k in (shown, other)} == now
    assert _state(kms, shown) == _state(kms, other) == "Enabled"


# -- what is shown and analysed before asking -------------------------------------------------------------------


def test_a_cancelled_deletion_is_rescheduled_only_from_its_own_verified_journal_and_says_so(
    aws: Any, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=30)
    journal = tmp_path / "j.json"
    _apply(run, journal, "--cancel-deletion", "--checks", "key_pending_deletion")
    assert _state(kms, arn) == "Enabled"
    result = run("--rollback", str(journal), "--yes")
    assert result.exit_code == 0, result.output
    assert f"schedule deletion of {arn} in 7 days (it is Enabled now" in result.stdout
    assert _state(kms, arn) == "PendingDeletion"


def test_the_review_is_shown_before_the_question_and_no_changes_nothing(
    aws: Any, client: Any, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kms = client("kms")
    arn = make_key(kms)
    journal = tmp_path / "j.json"
    _apply(run, journal, "--checks", "key_rotation_disabled", "--rotation-days", "180")
    # CliRunner's stdin is not a terminal, and without one fix demands --yes: pretend it is one.
    monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    args = ["fix", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "--rollback", str(journal)]
    result = CliRunner().invoke(cli_app(), args, input="n\n")
    assert result.exit_code == 2 and "not confirmed; nothing changed" in result.output
    operation = f"rotation of {arn}: on, every 180 days -> off"
    assert result.output.index(operation) < result.output.index("Carry out these 1 restore(s)?")
    assert "signed with this user's journal key" in result.output
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True


def test_restoring_a_public_policy_from_a_verified_journal_warns_and_reports_the_analysis(
    aws: Any, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    public = messy_policy(root_statement(), PUBLIC)
    arn = make_key(kms, policy=public, rotation_days=365)
    journal = tmp_path / "j.json"
    _apply(run, journal, "--checks", "key_policy_public")
    assert _policy(kms, arn) != public
    result = run("--rollback", str(journal), "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verified"] is True and doc["problem"] is None
    [restored] = doc["results"]
    assert restored["status"] == "restored"
    analysis = restored["analysis"]
    assert analysis["opens_to"] == ["anyone (public)"] and analysis["admin_lockout"] is False
    assert analysis["effective_access"]["judged"] is True
    assert any(line.startswith("+") and "Everyone" in line for line in analysis["policy_diff"])
    assert any(c["action"] == "kms:Decrypt" for c in analysis["key_policy"]["gained"])
    assert "! restoring opens the key to anyone (public)" in restored["warnings"]
    assert "! restoring opens the key to anyone (public)" in result.stderr  # the review, beside the JSON
    assert _policy(kms, arn) == public


def test_a_restore_that_locks_out_every_administrator_is_refused_unless_forced(
    aws: Any, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    managed = messy_policy(root_statement())
    arn = make_key(kms, policy=managed)
    only_use = messy_policy(
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": APP}, "Action": "kms:Encrypt", "Resource": "*"}
    )
    journal = _signed(tmp_path / "j.json", _policy_action(arn, only_use, managed), {}, {"policy": only_use})
    result = run("--rollback", str(journal), "--yes")
    assert result.exit_code == 1, result.output
    assert "leaves no principal able to administer the key (kms:PutKeyPolicy)" in result.stdout
    assert "would lock out every administrator of the key; --force to restore anyway" in result.stdout
    assert f"{ROOT} loses" in result.stdout  # the access change is named
    assert _policy(kms, arn) == managed
    forced = run("--rollback", str(journal), "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert _policy(kms, arn) == only_use


def test_hand_made_entries_with_wrong_fields_are_refused_without_a_traceback(
    aws: Any, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    policy = _policy(kms, arn)
    not_text = _policy_action(arn, 12, policy)  # type: ignore[arg-type]
    no_after = {**_policy_action(arn, "{}", policy), "action": "enable_rotation", "before": {}}
    del no_after["after"]
    lines: list[dict[str, Any]] = [{"type": "header", "version": 1}]
    for seq, (action, prior) in enumerate([(not_text, {"policy": 12}), (no_after, {})], 1):
        lines += [
            {"type": "before", "seq": seq, "action": action, "prior": prior},
            {"type": "result", "seq": seq, "status": "applied"},
        ]
    journal = tmp_path / "hand.json"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run("--rollback", str(journal), "--yes", "--force")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout.count("refused") == 4  # each entry: in the review and in the results
    assert "the entry is incomplete or malformed (AttributeError" in result.stdout  # the policy is not text
    assert "the entry is incomplete or malformed (KeyError: 'after')" in result.stdout
    assert _policy(kms, arn) == policy and kms.get_key_rotation_status(KeyId=arn)["RotationPeriodInDays"] == 365
