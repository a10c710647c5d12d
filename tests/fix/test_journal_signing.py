"""The fix journal is signed: a MAC chain over its lines with this user's journal key, created on first use.

These tests write journals with the real writer (``Journal``) and tamper with the file as a person would; no AWS
is needed to tell a good journal from an edited, foreign or unsigned one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from kmsguard.fix.journal import KEY_ENV, Journal, JournalError, load_journal, read_journal

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
OTHER = "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000"


def _action(arn: str) -> dict[str, object]:
    return {
        "action": "enable_rotation",
        "check_id": "key_rotation_disabled",
        "account": "123456789012",
        "region": "us-east-1",
        "resource_arn": arn,
        "before": {"rotation_enabled": False, "rotation_period_days": None},
        "after": {"rotation_enabled": True, "rotation_period_days": 365},
        "impact": {},
    }


def write_journal(path: Path) -> Path:
    """Two applied rotation changes, as apply writes them: header, before, result, before, result."""
    with Journal(path) as jr:
        for arn in (KEY, OTHER):
            seq = jr.before(_action(arn), {"key_id": arn.rsplit("/", 1)[-1]}, {"rotation_enabled": False})
            jr.result(seq, "applied")
    return path


def test_the_key_is_created_on_first_use_mode_0600_and_never_written_into_the_journal(
    journal_key: Path, tmp_path: Path
) -> None:
    assert not journal_key.exists()
    path = write_journal(tmp_path / "j.json")
    assert stat.S_IMODE(journal_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal_key.parent.stat().st_mode) == 0o700
    secret = journal_key.read_text().strip()
    assert len(secret) == 64 and secret not in path.read_text()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["version"] == 3 and len(lines[0]["key_id"]) == 16
    assert all(len(line["mac"]) == 64 for line in lines)
    journal = load_journal(path)
    assert journal.verified and journal.problem is None
    assert [(e.action["resource_arn"], e.status) for e in journal.entries] == [(KEY, "applied"), (OTHER, "applied")]
    # A second journal reuses the key.
    write_journal(tmp_path / "j2.json")
    assert journal_key.read_text().strip() == secret and load_journal(tmp_path / "j2.json").verified


def _edit_value(lines: list[str]) -> list[str]:
    lines[1] = lines[1].replace('"rotation_enabled":false', '"rotation_enabled":true', 1)
    return lines


def _drop_line(lines: list[str]) -> list[str]:
    return lines[:2] + lines[3:]  # the first change's result


def _swap_lines(lines: list[str]) -> list[str]:
    lines[2], lines[3] = lines[3], lines[2]  # result 1 after before 2: still a well-formed journal
    return lines


def _append_by_hand(lines: list[str]) -> list[str]:
    forged = {"type": "before", "seq": 3, "action": _action(KEY), "detail": {}, "prior": {"rotation_enabled": True}}
    return [*lines, json.dumps(forged)]


def _reformat(lines: list[str]) -> list[str]:
    return [json.dumps(json.loads(line), indent=None) for line in lines]  # same data, other spacing


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_edit_value, "line 2 does not match its MAC"),
        (_drop_line, "line 3 does not match its MAC"),
        (_swap_lines, "line 3 does not match its MAC"),
        (_append_by_hand, "line 6 has no MAC"),
        (_reformat, "line 1 does not match its MAC"),
    ],
)
def test_an_edited_journal_is_readable_but_not_verified_and_says_which_line(
    tmp_path: Path, tamper: Callable[[list[str]], list[str]], problem: str
) -> None:
    path = write_journal(tmp_path / "j.json")
    path.write_text("\n".join(tamper(path.read_text().splitlines())) + "\n")
    journal = load_journal(path)
    assert not journal.verified
    assert journal.problem is not None and problem in journal.problem and "edited" in journal.problem
    assert journal.entries  # still readable for inspection


def test_a_journal_signed_with_another_key_is_foreign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_key: Path
) -> None:
    path = write_journal(tmp_path / "j.json")
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "other" / "journal.key"))
    write_journal(tmp_path / "mine.json")  # this "user" now has a key of their own
    journal = load_journal(path)
    assert journal.problem is not None and "signed with another journal key" in journal.problem
    assert load_journal(tmp_path / "mine.json").verified


def test_without_a_key_a_signed_journal_cannot_be_checked_and_no_key_is_made_by_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_journal(tmp_path / "j.json")
    missing = tmp_path / "nowhere" / "journal.key"
    monkeypatch.setenv(KEY_ENV, str(missing))
    journal = load_journal(path)
    assert journal.problem is not None and "no journal key" in journal.problem and str(missing) in journal.problem
    assert not missing.exists()


def test_the_key_location_follows_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    write_journal(tmp_path / "j.json")
    assert (tmp_path / "xdg" / "kmsguard" / "journal.key").is_file()


@pytest.mark.skipif(
    os.name != "posix",
    reason="needs POSIX file modes (the key's 0644 bits): this OS has none, which no package can add; "
    ".ci/run runs on Linux, where this test always runs",
)
def test_a_key_other_users_can_read_is_refused_naming_it(tmp_path: Path, journal_key: Path) -> None:
    path = write_journal(tmp_path / "j.json")
    journal_key.chmod(0o644)
    with pytest.raises(JournalError, match=r"readable or writable by other users \(mode 644\); run chmod 600"):
        Journal(tmp_path / "j2.json")
    assert not (tmp_path / "j2.json").exists()  # no empty journal left behind
    journal = load_journal(path)
    assert journal.problem is not None and str(journal_key) in journal.problem


def test_a_version_1_journal_is_read_but_reported_unsigned(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    lines = [
        {"type": "header", "version": 1, "started_at": "2026-01-01T00:00:00+00:00"},
        {"type": "before", "seq": 1, "action": _action(KEY), "detail": {}, "prior": {"rotation_enabled": False}},
        {"type": "result", "seq": 1, "status": "applied"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [e.status for e in read_journal(path)] == ["applied"]
    journal = load_journal(path)
    assert journal.version == 1 and journal.problem is not None and "not signed" in journal.problem


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"type": "before", "seq": 1, "action": {}, "prior": {}}'], "line 1: not a kmsguard fix journal"),
        (['{"type": "header", "version": 1}', '{"type": "result", "seq": 1, "status": "applied"}'], "no before"),
        (
            [
                '{"type": "header", "version": 1}',
                '{"type": "before", "seq": 1, "action": {}, "prior": {}}',
                '{"type": "result", "seq": 1, "status": "applied"}',
                '{"type": "result", "seq": 1, "status": "applied"}',
            ],
            "line 4: not a journal entry (a second result for change 1)",
        ),
        (
            ['{"type": "header", "version": 1}', '{"type": "before", "seq": 1, "action": "x", "prior": {}}'],
            "line 2: not a journal entry (action, detail and prior must be objects)",
        ),
        (
            [
                '{"type": "header", "version": 1}',
                '{"type": "before", "seq": 1, "action": {}, "prior": {}}',
                '{"type": "result", "seq": 1, "status": "restored"}',
            ],
            "unknown status 'restored'",
        ),
    ],
)
def test_a_malformed_journal_is_an_error_naming_the_file_and_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match=re.escape(message)) as e:
        read_journal(path)
    assert str(path) in str(e.value)
