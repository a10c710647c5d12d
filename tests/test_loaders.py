"""Every loader against hostile input, and every output written atomically (issue 14, section 4).

What a loader is fed -- a snapshot, kmsguard.yaml, a fix journal, a JSON report, a key policy inside a
snapshot, an SQS message -- may be careless or hostile: nested 5,000 deep (``json`` and PyYAML recurse per
level), not UTF-8, or holding a lone UTF-16 surrogate (``"\\ud800"``, which decodes but can never be written
out). Each CLI run here must end with exit 2 and one line naming the file and where, never a traceback
(``catch_exceptions=False``: an uncaught exception fails the test). Policy files are tested with the policy
commands in tests/policy/test_cli_policy.py, kmsguard.yaml's messages in tests/test_config_file.py.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from checks.builders import ACCOUNT, key, snapshot
from kmsguard.checks.registry import load_builtin_checks
from kmsguard.cli.main import app
from kmsguard.config import ScanConfig
from kmsguard.fileio import MAX_DEPTH, LoadError, load_yaml, loads_json, write_atomic
from kmsguard.model.finding import Status
from kmsguard.model.snapshot import IamInventory, IamPolicy, IamPrincipal, Snapshot
from kmsguard.monitor.events import key_event
from kmsguard.pipeline import judge
from kmsguard.snapshot_io import save_snapshot, snapshot_bytes
from kmsguard.store.schema import KeyRow
from kmsguard.web.keyview import key_view

runner = CliRunner()
DEEP = "[" * 5000
ROLE = f"arn:aws:iam::{ACCOUNT}:role/App"
GOOD_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)
# A lone surrogate escaped in the policy's own JSON (the snapshot holds it as six plain characters).
SURROGATE_POLICY = GOOD_POLICY.replace('"Effect"', '"Sid": "\\ud800", "Effect"')


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_refused(res: Any, path: Path, *words: str) -> None:
    """Exit 2, one line, naming the file and each of ``words``."""
    out = res.output.strip()
    assert res.exit_code == 2, out
    assert "\n" not in out and "Traceback" not in out, out
    assert str(path) in out, out
    for w in words:
        assert w in out, out


def good_snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "good.json"
    save_snapshot(snapshot(keys=[key(policy=GOOD_POLICY)]), path)
    return path


# --- the snapshot loader (scan --from-snapshot and every command reading one) ---------------------------------


def _snapshot_text() -> str:
    return snapshot_bytes(snapshot(keys=[key(policy=GOOD_POLICY, description="payments")])).decode()


def _bad_snapshots() -> list[tuple[str, bytes, list[str]]]:
    text = _snapshot_text()
    col = text.index('"payments"') + 2  # 1-based column of the first character inside the quotes
    head = '{"notes":'  # a member the schema does not know, nested too deeply to be read at all ("{" is level 1)
    return [
        ("deep", DEEP.encode(), [f"nested deeper than {MAX_DEPTH} levels at line 1 column {MAX_DEPTH + 1}"]),
        (
            "deep field",
            (head + "[" * 100 + "]" * 100 + "," + text[1:]).encode(),
            [f"nested deeper than {MAX_DEPTH} levels at line 1 column {len(head) + MAX_DEPTH}"],
        ),
        (
            "lone surrogate",
            text.replace('"payments"', '"\\ud800payments"').encode(),
            ["accounts[0].regions[0].keys[0].description", "lone surrogate \\ud800", f"line 1 column {col}"],
        ),
        ("not UTF-8", text.replace('"payments"', '"pay\xffments"').encode("latin-1"), ["not UTF-8 text at line 1"]),
    ]


@pytest.mark.parametrize(("content", "words"), [c[1:] for c in _bad_snapshots()], ids=[c[0] for c in _bad_snapshots()])
@pytest.mark.parametrize(
    "command", [["scan", "--from-snapshot"], ["trail", "analyze", "--snapshot"]], ids=["scan", "trail"]
)
def test_a_hostile_snapshot_is_refused_naming_the_file_and_where(
    tmp_path: Path, command: list[str], content: bytes, words: list[str]
) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(content)
    logs = tmp_path / "logs"
    logs.mkdir()
    extra = [str(logs)] if command[0] == "trail" else []  # trail analyze needs a source to look at
    assert_refused(cli(*command, str(path), *extra), path, *words)


def test_a_corrupt_gzip_snapshot_is_refused(tmp_path: Path) -> None:
    packed = gzip.compress(_snapshot_text().encode())
    path = tmp_path / "snap.json.gz"
    path.write_bytes(packed[:20] + bytes(16) + packed[36:])  # the deflate stream damaged
    assert_refused(cli("scan", "--from-snapshot", str(path)), path, "cannot read")


# --- kmsguard.yaml (--config) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (DEEP.encode(), ["line 1: nested deeper than"]),
        (b"required_tags: [Owner]\nenvironment_tag: \xffEnv\n", ["line 2: not UTF-8 text"]),
        (b'required_tags: [Owner]\nenvironment_tag: "\\ud800"\n', ["line 2: a lone surrogate \\ud800"]),
    ],
    ids=["deep", "not UTF-8", "lone surrogate"],
)
def test_a_hostile_config_is_refused_naming_the_line(tmp_path: Path, content: bytes, words: list[str]) -> None:
    cfg = tmp_path / "kmsguard.yaml"
    cfg.write_bytes(content)
    assert_refused(cli("scan", "--from-snapshot", str(good_snapshot(tmp_path)), "--config", str(cfg)), cfg, *words)


# --- the fix journal and the JSON report fix reads ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line2", "words"),
    [
        (DEEP, ["line 2: not a journal entry", f"nested deeper than {MAX_DEPTH} levels at column {MAX_DEPTH + 1}"]),
        ('{"type": "before", "seq": 1, "action": {"key": "\\udc00"}}', ["line 2:", "action.key", "lone surrogate"]),
        ('{"type": "be', ["line 2: not a journal entry (not JSON at column"]),
    ],
    ids=["deep", "lone surrogate", "torn"],
)
def test_a_hostile_journal_is_refused_naming_the_line(tmp_path: Path, line2: str, words: list[str]) -> None:
    journal = tmp_path / "journal.json"
    journal.write_text('{"type": "header", "version": 2}\n' + line2 + "\n")
    assert_refused(cli("fix", "--rollback", str(journal)), journal, *words)


def test_a_hostile_report_is_refused_by_fix_from_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"findings":\n' + DEEP)  # "{" is level 1: the 64th "[" is one too many
    assert_refused(cli("fix", "--from-report", str(report)), report, "nested deeper than", "line 2 column 64")


# --- one bad policy inside a snapshot: ERROR on that key, the rest judged -----------------------------------


def _estate_with_bad_documents() -> tuple[Snapshot, dict[str, str]]:
    """A good key beside keys whose policy is nested 5,000 deep, holds a lone surrogate, or is not JSON; an
    IAM role whose trust and inline policies are nested 5,000 deep, and such a customer managed policy."""
    bad = {"deep": DEEP, "surrogate": SURROGATE_POLICY, "not json": "Statement: allow"}
    keys = {name: key(policy=text) for name, text in bad.items()}
    good = key(policy=GOOD_POLICY)
    snap = snapshot(keys=[good, *keys.values()])
    acct = snap.accounts[0]
    acct.iam = IamInventory(
        principals=[IamPrincipal(arn=ROLE, name="App", kind="role", trust_policy=DEEP, inline_policies={"p": DEEP})]
    )
    acct.iam_policies = [IamPolicy(arn=f"{ROLE}/inline/p", name="p", kind="inline", document=DEEP, attached_to=[ROLE])]
    return snap, {"good": good.arn} | {name: k.arn for name, k in keys.items()}


def test_one_bad_key_policy_is_an_error_on_that_key_and_the_rest_is_judged() -> None:
    snap, arns = _estate_with_bad_documents()
    result = judge(snap, ScanConfig())
    policy_checks = {cid for cid, s in load_builtin_checks().items() if s.family in ("policy", "access")}
    by_key: dict[str, dict[str, Any]] = {}
    for f in result.findings:
        by_key.setdefault(f.resource_arn, {})[f.check_id] = f
    expected = {"deep": "nested deeper than", "surrogate": "lone surrogate", "not json": "invalid JSON"}
    for name, words in expected.items():
        judged = {cid: f for cid, f in by_key[arns[name]].items() if cid in policy_checks}
        assert len(judged) >= 6, (name, sorted(judged))  # each key-policy check and each access check said so
        for cid, f in judged.items():
            assert f.status is Status.ERROR and words in f.message, (name, cid, f.message)
    good = {cid: f.status for cid, f in by_key[arns["good"]].items() if cid in policy_checks}
    assert good and Status.ERROR not in good.values(), good
    [iam] = [f for f in result.findings if f.check_id == "iam_policy_allows_decrypt_all_keys"]
    assert iam.status is Status.ERROR and "nested deeper than" in iam.message


def test_scan_of_a_snapshot_with_one_bad_key_policy_completes(tmp_path: Path) -> None:
    snap, arns = _estate_with_bad_documents()
    path, out = tmp_path / "snap.json", tmp_path / "report.json"
    save_snapshot(snap, path)
    res = cli("scan", "--from-snapshot", str(path), "-f", "json", "-o", str(out))
    assert res.exit_code == 1, res.output  # ERROR findings: not a clean pass, not a crash
    findings = json.loads(out.read_text())["findings"]
    errors = {f["resource_arn"] for f in findings if f["status"] == "ERROR" and f["check_id"] == "key_policy_public"}
    assert errors == {arns["deep"], arns["surrogate"], arns["not json"]}
    assert any(f["resource_arn"] == arns["good"] and f["status"] == "PASS" for f in findings)


# --- documents read outside the CLI: the dashboard's key page, SQS events -----------------------------------


def test_the_dashboard_key_page_of_a_deeply_nested_policy_shows_the_reason() -> None:
    row = KeyRow(data=key(policy=DEEP).model_dump_json())
    view = key_view(row)
    assert view.statements == [] and "nested deeper than" in (view.analysis_error or "")


def test_an_sqs_message_nested_5000_deep_is_no_key_event() -> None:
    assert key_event(DEEP) is None
    assert key_event(json.dumps({"Type": "Notification", "Message": DEEP})) is None


# --- the limits themselves ---------------------------------------------------------------------------------


def test_paired_surrogates_and_escaped_backslashes_are_text() -> None:
    assert loads_json('{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001f600", "b": "\\ud800"}
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_json(nested) is not None  # the limit itself is allowed
    with pytest.raises(LoadError, match=f"at line 1 column {MAX_DEPTH + 1}"):
        loads_json("[" + nested + "]")
    assert loads_json('"' + "[" * 200 + '"') == "[" * 200  # brackets inside a string do not nest
    with pytest.raises(LoadError, match="line 2 column 15") as e:  # a raw one, in text that did not come as bytes
        loads_json('{"a":\n "ok", "b": ["\ud800"]}')
    assert e.value.field == "b[0]"


def test_deep_yaml_in_block_style_is_refused_at_its_line() -> None:
    block = "".join("  " * i + "- \n" for i in range(MAX_DEPTH)) + "  " * MAX_DEPTH + "- x\n"
    with pytest.raises(LoadError) as e:
        load_yaml(block)
    assert e.value.line == MAX_DEPTH + 1 and "nested deeper than" in str(e.value)
    assert load_yaml("a: [1, {b: c}]\n")[1] == {"a": [1, {"b": "c"}]}


# --- outputs are written atomically -------------------------------------------------------------------------


def _run_with_file_size_limit(args: list[str], limit: int) -> subprocess.CompletedProcess[str]:
    """The real CLI in a process that may not write a file past ``limit`` bytes: the write fails with EFBIG
    half-way, as on a full disk (Python ignores SIGXFSZ, so the write raises instead of killing it)."""

    def limit_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "kmsguard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit_size,  # runs in the child between fork and exec: only sets the limit
    )


@pytest.mark.parametrize("output", [["-f", "csv", "-o"], ["-q", "--snapshot-out"]], ids=["report", "snapshot"])
def test_a_run_that_fails_while_writing_leaves_the_previous_file_intact(tmp_path: Path, output: list[str]) -> None:
    keys = [key(policy=GOOD_POLICY, tags={}, aliases=[]) for _ in range(20)]  # many findings: a big report
    snap = tmp_path / "snap.json"
    save_snapshot(snapshot(keys=keys), snap)
    keep = tmp_path / "keep.csv"
    keep.write_text("the previous run's report\n")
    res = _run_with_file_size_limit(["scan", "--from-snapshot", str(snap), *output, str(keep)], limit=4096)
    assert res.returncode == 2, res.stderr
    assert f"cannot write {'snapshot ' if 'snapshot' in output[-1] else ''}{keep}" in res.stderr
    assert keep.read_text() == "the previous run's report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv", "snap.json"]  # no temporary file left


def test_atomic_write_keeps_the_mode_and_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "keep.csv"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o600)
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["keep.csv"]


def test_atomic_write_writes_through_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, b"report")
    reader.join(timeout=10)
    assert got == [b"report"] and stat.S_ISFIFO(fifo.stat().st_mode)
