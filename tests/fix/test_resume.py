"""`fix --apply` interrupted (Ctrl-C, a crash) and resumed from its journal: no action is applied twice or skipped,
the resume continues the journal's signed chain, and one rollback undoes both runs.

AWS is the real moto server over HTTP (tests/conftest.py). Mutating calls are counted at the server (the emulator's
request counter): that count, not kmsguard's word, shows each action was applied exactly once. Interruptions are
real: SIGINT and SIGKILL sent to a `kmsguard fix --apply` process, with the fault proxy holding chosen answers so
the signal lands mid-apply; a crash between the two calls of one action is made with the journal's own writer.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from faultproxy import FaultProxy
from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot
from kmsguard.demo.emulator import Emulator
from kmsguard.fix.actions import KINDS
from kmsguard.fix.apply import Interrupted, Outcome, Sessions, apply_plan, planned, resume_state
from kmsguard.fix.journal import Journal, JournalKey, load_journal
from kmsguard.fix.plan import Plan
from kmsguard.fix.planner import FixOptions, build_plan
from kmsguard.pipeline import judge

from .conftest import make_key

Run = Callable[..., Result]
ROTATION = ("--checks", "key_rotation_disabled")


def _plan(endpoint: str, **opts: Any) -> tuple[AwsOptions, Plan]:
    options = AwsOptions(regions=["us-east-1"], endpoint_url=endpoint)
    snap = collect_snapshot(options)
    return options, build_plan(snap, judge(snap, warn=lambda _m: None).findings, FixOptions(**opts))


def _rotation(kms: Any, arns: list[str]) -> list[bool]:
    return [bool(kms.get_key_rotation_status(KeyId=a)["KeyRotationEnabled"]) for a in arns]


def _calls(aws: Emulator, operation: str) -> int:
    return aws.request_counts().get(("kms", operation), 0)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lines(path: Path, kind: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [
        o
        for o in (json.loads(line) for line in path.read_text().splitlines() if line.endswith("}"))
        if o["type"] == kind
    ]


def _kmsguard(*args: str) -> subprocess.Popen[str]:
    """`kmsguard ...` in its own process (the journal key and fake credentials come with the environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "kmsguard.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


# -- Ctrl-C ----------------------------------------------------------------------------------------------------


def test_ctrl_c_mid_apply_then_resume_applies_every_action_once_and_rollback_undoes_both_runs(
    aws: Emulator, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    keys = [make_key(kms) for _ in range(10)]
    options, plan = _plan(aws.endpoint_url, checks=frozenset({"key_rotation_disabled"}))
    assert len(plan.actions) == 10
    journal = tmp_path / "j.json"
    aws.reset_request_counts()

    def ctrl_c(_o: Outcome) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread while an outcome is shown

    with Journal(journal) as jr, pytest.raises(Interrupted) as stopped:
        apply_plan(plan, Sessions(SessionFactory(options), options.role_name), jr, ctrl_c, max_workers=2)
    ended, not_started = stopped.value.outcomes, stopped.value.not_started
    assert 1 <= len(ended) <= 4 and len(ended) + len(not_started) == 10  # only what was in flight finished
    found = load_journal(journal)
    assert found.verified and all(e.status == "applied" for e in found.entries)  # in flight: results recorded
    state = resume_state(found)
    assert len(state.earlier) == len(ended) and not state.in_doubt and len(state.not_started) == len(not_started)

    resumed = run("--apply", "--resume", str(journal), "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(not_started)} applied, 0 skipped, 0 failed (and {len(ended)} ended in the earlier run)" in (
        resumed.stdout
    )
    assert _calls(aws, "EnableKeyRotation") == 10  # each action exactly once over both runs
    assert _rotation(kms, keys) == [True] * 10
    after = load_journal(journal)
    assert after.verified and len(after.entries) == 10 and all(e.status == "applied" for e in after.entries)

    back = run("--rollback", str(journal), "--yes")
    assert back.exit_code == 0, back.output
    assert _rotation(kms, keys) == [False] * 10  # both runs undone from the one journal
    assert _calls(aws, "DisableKeyRotation") == 10


def test_sigint_ends_what_is_in_flight_exits_130_and_its_resume_command_finishes_the_plan(
    aws: Emulator, client: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    kms = client("kms")
    n = 12  # three times the pool's threads: some actions are still waiting at Ctrl-C
    keys = [make_key(kms) for _ in range(n)]
    proxy.drip("EnableKeyRotation", interval=0.3)  # every change lands at once; its answer takes about a second
    journal = tmp_path / "j.json"
    where = ["--endpoint-url", proxy.endpoint_url, "--regions", "us-east-1", "--concurrency", "4"]
    aws.reset_request_counts()
    proc = _kmsguard("fix", "--apply", "--yes", *ROTATION, "--journal", str(journal), *where)
    _wait_for(lambda: bool(_lines(journal, "before")) or proc.poll() is not None, "the first change")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)

    assert proc.returncode == 130, err
    command = f"kmsguard fix --apply --resume {journal} --concurrency 4 --endpoint-url {proxy.endpoint_url}"
    assert command in err and "interrupted:" in err
    befores, results = _lines(journal, "before"), _lines(journal, "result")
    assert 0 < len(befores) < n and len(results) == len(befores)  # what was in flight finished and was recorded
    assert f"{len(befores)} action(s) ended (each journalled), {n - len(befores)} not started" in " ".join(err.split())
    assert out.count("applied  enable_rotation") == len(befores)

    again = _kmsguard(*shlex.split(command)[1:], "--yes")  # the printed command, as printed
    out, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    assert f"{n - len(befores)} applied, 0 skipped, 0 failed (and {len(befores)} ended in the earlier run)" in out
    assert _calls(aws, "EnableKeyRotation") == n
    assert _rotation(kms, keys) == [True] * n


# -- a crash ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reached_aws", "message"),
    [
        ("drip", True, "completed before the interruption"),  # the change landed; its answer never came back
        ("hang", False, "applied"),  # the call never reached AWS
    ],
)
def test_after_a_crash_mid_change_the_action_in_doubt_is_re_read_and_never_applied_twice(
    aws: Emulator, client: Any, proxy: FaultProxy, run: Run, tmp_path: Path, fault: str, reached_aws: bool, message: str
) -> None:
    kms = client("kms")
    keys = [make_key(kms) for _ in range(6)]
    victim = keys[2]
    if fault == "drip":
        proxy.drip("EnableKeyRotation", interval=10, contains=victim.rsplit("/", 1)[-1])
    else:
        proxy.hang("EnableKeyRotation", contains=victim.rsplit("/", 1)[-1])
    journal = tmp_path / "j.json"
    aws.reset_request_counts()
    # One Region: every Region the scan asks moto about makes the server's resets slower for the next tests.
    where = ["--endpoint-url", proxy.endpoint_url, "--regions", "us-east-1", "-q"]
    proc = _kmsguard("fix", "--apply", "--yes", *ROTATION, "--journal", str(journal), *where)

    def stuck_on_the_victim() -> bool:
        befores, results = _lines(journal, "before"), _lines(journal, "result")
        return len(befores) == 6 and len(results) == 5 and _calls(aws, "EnableKeyRotation") == 5 + reached_aws

    _wait_for(lambda: stuck_on_the_victim() or proc.poll() is not None, "the other changes and the victim's call")
    proc.kill()  # SIGKILL: nothing is cleaned up
    proc.communicate(timeout=60)
    crashed = load_journal(journal)
    [in_doubt] = [e for e in crashed.entries if e.status is None]
    assert crashed.verified and in_doubt.action["resource_arn"] == victim
    assert _rotation(kms, [victim]) == [reached_aws]

    resumed = run("--apply", "--resume", str(journal), "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert f"applied  enable_rotation {victim}: {message}" in resumed.stdout
    assert "1 applied, 0 skipped, 0 failed (and 5 ended in the earlier run)" in resumed.stdout
    assert _calls(aws, "EnableKeyRotation") == 6  # the victim's change made once, whichever run made it
    assert _rotation(kms, keys) == [True] * 6
    done = load_journal(journal)
    assert done.verified and [e.status for e in done.entries] == ["applied"] * 6  # the one entry per action
    assert run("--rollback", str(journal), "--yes").exit_code == 0
    assert _rotation(kms, keys) == [False] * 6


def test_a_crash_between_the_calls_of_one_action_is_recorded_partial_and_rollback_restores_it(
    aws: Emulator, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    arn = make_key(kms, rotation_days=365)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    options, plan = _plan(aws.endpoint_url, checks=frozenset({"key_pending_deletion"}), cancel_deletion=True)
    [action] = plan.actions
    journal = tmp_path / "j.json"
    # The run as far as it got: plan and before written, CancelKeyDeletion made, then the process died before
    # EnableKey and before the result line.
    session = Sessions(SessionFactory(options), options.role_name).get(action.account)
    prior = KINDS[action.action].read(action.to_dict(), action.detail, session)
    with Journal(journal) as jr:
        jr.plan([planned(action)])
        jr.before(action.to_dict(), action.detail, prior, 0)
    kms.cancel_key_deletion(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"

    resumed = run("--apply", "--resume", str(journal), "--yes")
    assert resumed.exit_code == 1, resumed.output
    assert "partly applied before the interruption" in resumed.stdout
    assert [e.status for e in load_journal(journal).entries] == ["partial"]
    back = run("--rollback", str(journal), "--yes")
    assert back.exit_code == 0, back.output
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"


# -- what cannot be resumed ------------------------------------------------------------------------------------


def test_resuming_a_journal_whose_plan_has_ended_says_so_and_changes_nothing(
    aws: Emulator, client: Any, run: Run, tmp_path: Path
) -> None:
    kms = client("kms")
    make_key(kms)
    make_key(kms)
    journal = tmp_path / "j.json"
    assert run("--apply", "--yes", *ROTATION, "--journal", str(journal)).exit_code == 0
    written = journal.read_bytes()
    aws.reset_request_counts()
    result = run("--apply", "--resume", str(journal))  # no --yes: there is nothing to confirm
    assert result.exit_code == 0, result.output
    assert "every action of its plan has ended (2 applied, 0 skipped, 0 failed); nothing to resume" in result.output
    assert _calls(aws, "EnableKeyRotation") == 0 and journal.read_bytes() == written


def planned_dict(journal: Path) -> dict[str, Any]:
    """The first planned action of a journal, as its plan line holds it."""
    found = load_journal(journal)
    assert found.plan is not None
    return dict(found.plan[0])


def _signed_v2(path: Path) -> Path:
    """A version 2 journal (signed, without a plan), as kmsguard wrote them before resumable journals."""
    key = JournalKey.load(create=True)
    assert key is not None
    text = json.dumps(
        {"type": "header", "version": 2, "started_at": "2026-01-01T00:00:00+00:00", "key_id": key.key_id},
        separators=(",", ":"),
    )
    path.write_text(f'{text[:-1]},"mac":"{key.mac("", text)}"}}\n')
    return path


@pytest.fixture
def stopped(aws: Emulator, client: Any, tmp_path: Path) -> tuple[Path, list[str]]:
    """Two keys without rotation and the journal of an apply that stopped before its first action."""
    kms = client("kms")
    keys = [make_key(kms), make_key(kms)]
    _, plan = _plan(aws.endpoint_url, checks=frozenset({"key_rotation_disabled"}))
    path = tmp_path / "stopped.json"
    with Journal(path) as jr:
        jr.plan([planned(a) for a in plan.actions])
    return path, keys


def test_an_edited_journal_is_not_resumed_even_with_force(
    aws: Emulator, client: Any, run: Run, stopped: tuple[Path, list[str]]
) -> None:
    journal, keys = stopped
    lines = journal.read_text().splitlines()
    lines[1] = lines[1].replace('"rotation_period_days":365', '"rotation_period_days":90', 1)
    journal.write_text("\n".join(lines) + "\n")
    aws.reset_request_counts()
    refused = run("--apply", "--resume", str(journal), "--yes")
    assert refused.exit_code == 2, refused.output
    assert "line 2 does not match its MAC: the journal was edited; refusing to resume from it" in refused.output
    forced = run("--apply", "--resume", str(journal), "--yes", "--force")
    assert forced.exit_code == 2 and "--force cannot change it" in forced.output
    assert _calls(aws, "EnableKeyRotation") == 0 and _rotation(client("kms"), keys) == [False, False]


def test_a_journal_another_run_holds_is_not_resumed(run: Run, stopped: tuple[Path, list[str]]) -> None:
    journal, _ = stopped
    holder, _found = Journal.reopen(journal)  # another run resuming it right now
    with holder:
        result = run("--apply", "--resume", str(journal), "--yes")
    assert result.exit_code == 2 and "in use by another kmsguard run" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--apply", "--resume", "{missing}", "--yes"], "no such file"),
        (["--apply", "--resume", "{report}", "--yes"], "line 1: not a journal entry"),
        (["--apply", "--resume", "{v2}", "--yes"], "holds no plan to resume (a version 2 journal"),
        (["--apply", "--resume", "{odd_plan}", "--yes"], "action 0 of the plan: account is not text"),
        (["--resume", "{stopped}", "--yes"], "--resume carries on an interrupted --apply"),
        (["--apply", "--resume", "{stopped}", "--yes", "--checks", "key_rotation_disabled"], "--checks cannot"),
        (["--apply", "--resume", "{stopped}", "--yes", "--journal", "{v2}"], "drop --journal"),
        (["--apply", "--resume", "{stopped}", "--rollback", "{stopped}"], "alternatives"),
        (["--apply", "--resume", "{stopped}"], "need a confirmation"),  # stdin is not a terminal here
    ],
)
def test_what_cannot_be_resumed_is_a_one_line_error_exit_2(
    run: Run, stopped: tuple[Path, list[str]], tmp_path: Path, args: list[str], message: str
) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"findings": []}\n')
    paths = {"missing": tmp_path / "missing.json", "report": report, "v2": _signed_v2(tmp_path / "v2.json")}
    paths["stopped"] = stopped[0]
    with Journal(tmp_path / "odd.json") as jr:  # signed, by the real writer, with a plan no apply would write
        jr.plan([{**planned_dict(stopped[0]), "account": 123456789012}])
    paths["odd_plan"] = tmp_path / "odd.json"
    result = run(*[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("error:") == 1, result.output
