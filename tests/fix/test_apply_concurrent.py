"""`fix --apply` at the quota: actions run concurrently, one group per resource on a bounded pool, and the journal
stays one valid, signed chain; outcomes come back in plan order; a terminal gets a progress bar, a pipe nothing new.

AWS is the real moto server over HTTP (tests/conftest.py); the fault proxy in front of it slows chosen answers, so
which action ends first is decided by the server, not by a mock. Plans are built by hand where the planner is
not what is tested (apply needs only the actions), by the real planner through the CLI elsewhere.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from faultproxy import FaultProxy
from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.demo.emulator import Emulator
from kmsguard.fix.apply import Outcome, Sessions, apply_plan, groups
from kmsguard.fix.journal import Journal, load_journal
from kmsguard.fix.plan import Action, Plan
from kmsguard.policy.defaults import DENY_INSECURE_TRANSPORT

from .conftest import ACCOUNT, make_key, messy_policy, root_statement


def rotation(arn: str, region: str = "us-east-1", account: str = ACCOUNT) -> Action:
    return Action(
        "enable_rotation",
        "key_rotation_disabled",
        account,
        region,
        arn,
        before={"rotation_enabled": False, "rotation_period_days": None},
        after={"rotation_enabled": True, "rotation_period_days": 365},
        detail={"key_id": arn.rsplit("/", 1)[-1]},
    )


def tighten(arn: str, before: str, after: str) -> Action:
    return Action(
        "tighten_key_policy",
        "key_policy_no_secure_transport",
        ACCOUNT,
        "us-east-1",
        arn,
        before={"policy": before},
        after={"policy": after},
        detail={"key_id": arn.rsplit("/", 1)[-1]},
    )


def sessions_for(endpoint: str, **opts: Any) -> Sessions:
    options = AwsOptions(regions=["us-east-1"], endpoint_url=endpoint, **opts)
    return Sessions(SessionFactory(options), options.role_name)


def test_concurrent_apply_keeps_the_journal_one_valid_chain_and_outcomes_in_plan_order(
    aws: Emulator, client: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    kms = client("kms")
    keys = [make_key(kms) for _ in range(8)]
    policy = messy_policy(root_statement())
    secured = messy_policy(root_statement(), DENY_INSECURE_TRANSPORT)
    kms.put_key_policy(KeyId=keys[3], PolicyName="default", Policy=policy)
    # Key 3 has two actions: they run in plan order, one after the other, whatever the pool does.
    actions = [rotation(k) for k in keys[:4]] + [tighten(keys[3], policy, secured)] + [rotation(k) for k in keys[4:]]
    plan = Plan(actions=actions)
    # The first action's answer is dripped slowly (the change lands at once): with the actions run one after
    # another it would end first; run concurrently, every other action ends before it.
    slow = keys[0].rsplit("/", 1)[-1]
    proxy.drip("EnableKeyRotation", interval=0.5, contains=slow)
    aws.reset_request_counts()
    seen: list[Outcome] = []
    with Journal(tmp_path / "j.json") as jr:
        outcomes = apply_plan(plan, sessions_for(proxy.endpoint_url), jr, seen.append, max_workers=4)

    assert [o.action for o in outcomes] == actions  # plan order, whatever order they ended in
    assert all(o.status == "applied" for o in outcomes), [o.message for o in outcomes]
    assert seen[-1].action is actions[0] and len(seen) == len(actions)  # the slow one ended last
    journal = load_journal(tmp_path / "j.json")
    assert journal.verified, journal.problem  # one MAC chain, whatever thread wrote each line
    assert [e.seq for e in journal.entries] == list(range(1, len(actions) + 1))  # unique, no gaps
    assert all(e.status == "applied" for e in journal.entries)
    assert journal.plan is not None and [a["resource_arn"] for a in journal.plan] == [a.resource_arn for a in actions]
    for e in journal.entries:  # each change names its plan action
        assert e.index is not None and e.action == actions[e.index].to_dict()
    on_key_3 = [e.index for e in sorted(journal.entries, key=lambda e: e.seq) if e.action["resource_arn"] == keys[3]]
    assert on_key_3 == [3, 4]  # one resource's actions in plan order
    counts = aws.request_counts()
    assert counts[("kms", "EnableKeyRotation")] == 8 and counts[("kms", "PutKeyPolicy")] == 1  # each once
    assert all(kms.get_key_rotation_status(KeyId=k)["KeyRotationEnabled"] for k in keys)
    assert kms.get_key_policy(KeyId=keys[3], PolicyName="default")["Policy"] == secured


def test_sessions_assume_a_role_once_per_account_however_many_threads_ask(aws: Emulator) -> None:
    sessions = sessions_for(aws.endpoint_url)
    other = "210987654321"
    start = threading.Barrier(8)
    got: list[Any] = []

    def ask() -> None:
        start.wait()
        got.append(sessions.get(other))

    aws.reset_request_counts()
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert aws.request_counts().get(("sts", "AssumeRole")) == 1
    assert len({id(s) for s in got}) == 1 and got[0].account_id == other


def test_groups_keep_a_resources_actions_together_and_take_regions_in_turn() -> None:
    east = [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/e{i}" for i in range(3)]
    west = [f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/w{i}" for i in range(2)]
    actions = [rotation(k) for k in east] + [rotation(k, "eu-west-1") for k in west]
    actions.insert(1, tighten(east[0], "{}", "{}"))  # a second action on e0, later in the plan
    work = groups(list(enumerate(actions)))
    assert [[i for i, _ in g] for g in work] == [[0, 1], [4], [2], [5], [3]]  # e0, w0, e1, w1, e2


def _kmsguard(*args: str, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kmsguard.cli.main", *args], **kw)


def test_a_terminal_gets_a_progress_bar_over_the_actions_and_a_pipe_gets_nothing_new(
    aws: Emulator, client: Any, tmp_path: Path
) -> None:
    kms = client("kms")
    for _ in range(3):
        make_key(kms)
    base = ["fix", "--apply", "--yes", "--checks", "key_rotation_disabled", "--endpoint-url", aws.endpoint_url]
    base += ["--regions", "us-east-1"]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)

    # stdout and stderr on a terminal (a pseudo-terminal here): the bar is drawn over the actions.
    primary, secondary = pty.openpty()
    proc = _kmsguard(*base, "--journal", str(tmp_path / "tty.json"), stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 120)
        try:
            chunk = os.read(primary, 65536) if ready else b""
        except OSError:  # the child closed the terminal
            chunk = b""
        if not chunk:
            break
        screen += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "actions" in text and "3/3" in text, text  # the bar's row, drawn a last time as it ends

    # A pipe: stderr says where the journal is, and nothing more.
    journal = tmp_path / "pipe.json"
    for k in kms.list_keys()["Keys"]:
        kms.disable_key_rotation(KeyId=k["KeyId"])
    piped = _kmsguard(*base, "--journal", str(journal), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = piped.communicate(timeout=120)
    assert piped.returncode == 0, err.decode()
    assert err.decode() == f"journal: {journal}\n"
    assert out.decode().count("applied  enable_rotation") == 3
    assert json.loads(journal.read_text().splitlines()[1])["type"] == "plan"
