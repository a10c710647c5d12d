"""Nothing the trail analysis could not read or judge is silent (issue 13, section 3).

Log files that failed are ERROR findings (one per reason) in every command that analyses logs, and are never
recorded in the cache as done: an S3 error that has passed is read again, and a file that failed part-way
leaves none of its rows. A policy the engine cannot analyse, a key policy the conformance check cannot read and
key_unused on logs shorter than its window are ERROR findings of their checks, not notes a scan drops.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kmsguard.aws.options import AwsOptions
from kmsguard.checks.trail import FILES_LISTED, failure_reason
from kmsguard.cli.main import app
from kmsguard.model.finding import Finding, Status
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot
from kmsguard.snapshot_io import save_snapshot
from kmsguard.trail import sources
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, T0, user

R = "us-east-1"
KEY = key_arn(ACCT, R, 9)
IDLE = key_arn(ACCT, R, 10)
BOB = user("bob")
DAY_DIR = f"AWSLogs/{ACCT}/CloudTrail/{R}/2024/05/02"
BAD_POLICY = {  # JSON, but the engine refuses it (policy.errors.PolicyParseError): an Effect AWS does not know
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Maybe", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}
GOOD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}
runner = CliRunner()


def good_logs(root: Path, hours: int = 4) -> list[Path]:
    """Four trail files, one Decrypt each, on day 0."""
    return write_trail_files(root, [event("Decrypt", KEY, BOB, T0 + timedelta(hours=h)) for h in range(hours)])


def trail_bytes(n: int) -> bytes:
    recs = [event("Decrypt", KEY, BOB, T0 + timedelta(days=1, seconds=i)) for i in range(n)]
    return gzip.compress(json.dumps({"Records": recs}).encode())


def truncated_file(root: Path, n: int = 200) -> Path:
    """A gzipped trail file of ``n`` Decrypts on day 1, cut at two thirds: its first records inflate."""
    path = root / DAY_DIR / f"{ACCT}_CloudTrail_{R}_20240502T0000Z_cut.json.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = trail_bytes(n)
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def by_check(findings: list[Finding], check_id: str) -> list[Finding]:
    return [f for f in findings if f.check_id == check_id]


def run(root: Path, cache: Path, snapshot: Snapshot | None = None, **kw: Any) -> TrailReport:
    return analyze([str(root)], snapshot, TrailOptions(cache_dir=cache, workers=1, **kw))


# --- the cache: a failed file is never done, and leaves no rows -------------------------------------------------


def test_a_file_that_failed_part_way_leaves_no_rows_and_is_read_again(tmp_path: Path) -> None:
    logs, cache = tmp_path / "logs", tmp_path / "cache"
    good = good_logs(logs)
    bad = truncated_file(logs)

    first = run(logs, cache)
    (st,) = first.ingest.failed
    assert st.file == str(bad) and st.records > 0  # it failed part-way, after some records were read
    assert first.events == 4 and first.ingest.kms_events == 4  # none of those records is analysed
    (f,) = by_check(first.findings, "trail_logs_unreadable")
    assert f.status is Status.ERROR and f.resource_arn == str(bad)
    assert (f.account, f.region) == (ACCT, R)  # from the AWSLogs path
    assert f.evidence["reason"] == "truncated or corrupt gzip" and f.evidence["failed"][0]["error"] == st.error
    assert "could not read CloudTrail log file" in f.message and "truncated or corrupt gzip" in f.message

    # Not recorded as done: the next run reads it again (and only it).
    again = run(logs, cache)
    assert (again.ingest.files_read, again.ingest.files_cached) == (1, len(good))
    assert again.events == 4 and [s.file for s in again.ingest.failed] == [str(bad)]

    # Once the file is whole, it is read and counted once.
    bad.write_bytes(trail_bytes(200))
    fixed = run(logs, cache)
    assert fixed.ingest.files_read == 1 and not fixed.ingest.failed
    assert fixed.events == 204 and not by_check(fixed.findings, "trail_logs_unreadable")


def test_a_streamed_file_that_fails_after_rows_were_written_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kmsguard.trail import decode

    # Every file is streamed, in batches small enough that rows are written before the truncation is met.
    monkeypatch.setattr(decode, "STREAM_THRESHOLD", 1000)
    monkeypatch.setattr(decode, "BATCH_ROWS", 7)
    logs, cache = tmp_path / "logs", tmp_path / "cache"
    good_logs(logs)
    bad = truncated_file(logs, 2000)
    r = run(logs, cache)
    (st,) = r.ingest.failed
    assert st.file == str(bad) and st.records > decode.BATCH_ROWS
    assert r.events == 4
    rows = [name for part in (cache / "parts").glob("*.parquet") for name in pq.read_table(part)["file"].to_pylist()]
    assert len(rows) == 4 and str(bad) not in rows


def test_a_cache_that_recorded_a_failed_file_as_done_reads_it_again(tmp_path: Path) -> None:
    """A manifest written before failed files were left out of it: the file and its part's other files are read
    again, and no event is counted twice."""
    logs, cache = tmp_path / "logs", tmp_path / "cache"
    paths = good_logs(logs)
    assert run(logs, cache).events == 4
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["files"][str(paths[0])]["stats"]["error"] = "truncated or corrupt gzip after 0 records (old run)"
    (cache / "manifest.json").write_text(json.dumps(manifest))
    r = run(logs, cache)
    assert r.ingest.files_read >= 1 and r.events == 4 and not r.ingest.failed


def test_an_s3_error_that_has_passed_is_not_permanent(aws, client, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The first GetObject of one file is refused (AccessDenied through the fault proxy, in front of the real moto
    server); the next run reads that file, and only it."""
    s3 = client("s3")
    s3.create_bucket(Bucket="trail-bucket")
    logs = tmp_path / "logs"
    paths = good_logs(logs)
    for p in paths:
        s3.put_object(Bucket="trail-bucket", Key=str(p.relative_to(logs)), Body=p.read_bytes())
    refused = str(paths[1].relative_to(logs))
    proxy.fail(f"GET /trail-bucket/{refused}", "AccessDenied", status=403, times=1)
    sources._CLIENTS.clear()
    opts = AwsOptions(endpoint_url=proxy.endpoint_url)
    src, cache = f"s3://trail-bucket/AWSLogs/{ACCT}/", tmp_path / "cache"

    first = analyze([src], None, TrailOptions(cache_dir=cache, aws=opts, workers=1))
    (st,) = first.ingest.failed
    assert st.file == f"s3://trail-bucket/{refused}" and first.events == 3

    second = analyze([src], None, TrailOptions(cache_dir=cache, aws=opts, workers=1))
    assert second.ingest.files_read == 1 and not second.ingest.failed and second.events == 4
    assert not by_check(second.findings, "trail_logs_unreadable")

    # The first run said what failed, in kmsguard's words with AWS's code.
    assert (st.error or "").startswith("S3 GetObject failed with AccessDenied (")
    (f,) = by_check(first.findings, "trail_logs_unreadable")
    assert f.status is Status.ERROR and f.evidence["reason"] == "S3 GetObject failed with AccessDenied"


# --- failed files: one finding per reason ------------------------------------------------------------------------


def test_failed_files_make_one_bounded_finding_per_reason(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    good_logs(logs)
    flat = logs / "exports"
    flat.mkdir()
    for i in range(FILES_LISTED + 5):
        (flat / f"broken-{i:02}.json").write_bytes(b"\x00 not json")
    (flat / "other.json").write_text(json.dumps({"configurationItems": []}))
    r = run(logs, tmp_path / "cache")
    found = {f.evidence["reason"]: f for f in by_check(r.findings, "trail_logs_unreadable")}
    assert set(found) == {"not JSON", "JSON of another shape"}
    many = found["not JSON"]
    assert many.status is Status.ERROR and many.evidence["files"] == FILES_LISTED + 5
    assert len(many.evidence["failed"]) == FILES_LISTED  # bounded, the count says the rest
    assert many.resource_arn == f"{flat}/" and f"{FILES_LISTED + 5} CloudTrail log files under {flat}/" in many.message
    assert (many.account, many.region) == ("unknown", "unknown")  # a flat directory names neither
    assert found["JSON of another shape"].resource_arn == str(flat / "other.json")
    assert r.events == 4


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("truncated or corrupt gzip after 12 records (Error -3 while decompressing)", "truncated or corrupt gzip"),
        ("invalid UTF-8 at byte 17 (unexpected byte)", "invalid UTF-8"),
        ("JSON of another shape (object without Records), not CloudTrail records", "JSON of another shape"),
        (
            "S3 GetObject failed with NoSuchKey (The specified key does not exist.)",
            "S3 GetObject failed with NoSuchKey",
        ),
        ("cannot read: Permission denied", "cannot read: Permission denied"),
    ],
)
def test_failure_reason_drops_only_the_particulars(error: str, reason: str) -> None:
    assert failure_reason(error) == reason


# --- the commands that analyse logs: trail analyze, scan --trail, report --trail ---------------------------------


def snapshot(*keys: str, at: datetime = T0 + timedelta(days=10)) -> Snapshot:
    def key(arn: str) -> Key:
        return Key(
            arn=arn,
            key_id=arn.rsplit("/", 1)[1],
            account=ACCT,
            region=R,
            key_manager="CUSTOMER",
            key_state="Enabled",
            creation_date=T0 - timedelta(days=365),
            policy=json.dumps(GOOD_POLICY),
        )

    return Snapshot(
        kmsguard_version="test",
        collected_at=at,
        accounts=[AccountSnapshot(account_id=ACCT, regions=[RegionSnapshot(region=R, keys=[key(k) for k in keys])])],
    )


@pytest.fixture
def one_good_one_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(logs, corrupt file, snapshot file): one good trail file and one that is not JSON; the trail cache in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    logs = tmp_path / "logs"
    good_logs(logs, hours=1)
    corrupt = logs / DAY_DIR / f"{ACCT}_CloudTrail_{R}_20240502T0000Z_corrupt.json.gz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(gzip.compress(b'{"Records": [{"eventVersion": "1.08", '))
    snap = tmp_path / "snapshot.json"
    save_snapshot(snapshot(KEY), snap)
    return logs, corrupt, snap


def unreadable(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in findings if f["check_id"] == "trail_logs_unreadable"]


def test_trail_analyze_reports_the_corrupt_file(one_good_one_corrupt: tuple[Path, Path, Path], tmp_path: Path) -> None:
    logs, corrupt, _ = one_good_one_corrupt
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["trail", "analyze", str(logs), "-f", "json", "-o", str(out), "-q"])
    assert res.exit_code != 2, res.output
    doc = json.loads(out.read_text())
    (f,) = unreadable(doc["findings"])
    assert f["status"] == "ERROR" and f["resource_arn"] == str(corrupt) and f["account"] == ACCT
    assert doc["trail_usage"]["events"] == 1  # the good file was analysed
    assert doc["summary"]["by_status"]["ERROR"] == 1


def test_scan_with_trail_reports_the_corrupt_file(
    one_good_one_corrupt: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    logs, corrupt, snap = one_good_one_corrupt
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["scan", "--from-snapshot", str(snap), "--trail", str(logs), "-f", "json", "-o", str(out), "-q"]
    )
    assert res.exit_code != 2, res.output
    doc = json.loads(out.read_text())
    (f,) = unreadable(doc["findings"])
    assert f["status"] == "ERROR" and f["resource_arn"] == str(corrupt)
    assert "the KMS events in it are not analysed" in f["message"]
    assert doc["trail_usage"]["events"] == 1


def test_report_with_trail_reports_the_corrupt_file(
    one_good_one_corrupt: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    logs, corrupt, snap = one_good_one_corrupt
    out = tmp_path / "cmmc.json"
    args = ["report", "--framework", "cmmc-l2", "-f", "json", "-o", str(out), "--from-snapshot", str(snap)]
    res = runner.invoke(app, [*args, "--trail", str(logs), "-q"])
    assert res.exit_code != 2, res.output
    doc = json.loads(out.read_text())
    # The audit-review controls the trail checks support list it among their errors.
    controls = {c["id"]: c for c in doc["controls"]}
    (f,) = unreadable(controls["AU.L2-3.3.5"]["errors"])
    assert f["status"] == "ERROR" and f["resource_arn"] == str(corrupt)


# --- policies the engine cannot judge ----------------------------------------------------------------------------


def test_put_key_policy_the_engine_cannot_analyse_is_an_error_finding(tmp_path: Path) -> None:
    known, unknown = KEY, key_arn(ACCT, R, 11)
    admin = user("admin")
    t = T0 + timedelta(hours=1)
    records = [
        event("CreateKey", known, admin, T0, params={"policy": json.dumps(GOOD_POLICY)}),
        # Previous policy known (CreateKey): the diff fails on the new one.
        event("PutKeyPolicy", known, admin, t, params={"policyName": "default", "policy": json.dumps(BAD_POLICY)}),
        # No previous policy: the analysis of the new one fails.
        event("PutKeyPolicy", unknown, admin, t, params={"policyName": "default", "policy": json.dumps(BAD_POLICY)}),
    ]
    write_trail_files(tmp_path / "logs", records)
    r = run(tmp_path / "logs", tmp_path / "cache")
    found = {f.resource_arn: f for f in by_check(r.findings, "trail_policy_widened")}
    assert set(found) == {known, unknown}
    for f in found.values():
        assert f.status is Status.ERROR
        assert f.message.startswith("could not judge PutKeyPolicy ") and "the policy engine failed" in f.message
        assert 'Effect must be "Allow" or "Deny"' in f.evidence["error"]
        assert f.evidence["new_policy"] == json.dumps(BAD_POLICY)
    assert not r.notes


def test_key_policy_conformance_cannot_read_is_an_error_finding(tmp_path: Path) -> None:
    write_trail_files(tmp_path / "logs", [event("Decrypt", KEY, BOB, T0 + timedelta(hours=h)) for h in range(3)])
    snap = snapshot(KEY)
    snap.accounts[0].regions[0].keys[0].policy = json.dumps(BAD_POLICY)
    r = run(tmp_path / "logs", tmp_path / "cache", snap)
    (f,) = by_check(r.findings, "trail_use_not_allowed_by_policy")
    assert f.status is Status.ERROR and f.resource_arn == KEY
    assert "could not judge whether the calls" in f.message and "key policy could not be read" in f.message
    assert not r.notes


# --- key_unused on logs shorter than its window (section 4, item 9) ----------------------------------------------


def test_key_unused_on_short_logs_says_it_cannot_tell(tmp_path: Path) -> None:
    # Three days of logs; KEY is used in them, IDLE is not.
    write_trail_files(tmp_path / "logs", [event("Decrypt", KEY, BOB, T0 + timedelta(days=d)) for d in range(4)])
    r = run(tmp_path / "logs", tmp_path / "cache", snapshot(KEY, IDLE))
    (f,) = by_check(r.findings, "key_unused")
    assert f.status is Status.ERROR and f.resource_arn == IDLE
    assert "cannot tell whether it is unused: the logs cover only 3.0 of the 90 days" in f.message
    assert f.evidence["covered_days"] == 3.0 and f.evidence["days"] == 90

    from kmsguard.trail.detections import Params

    judged = run(tmp_path / "logs", tmp_path / "cache", snapshot(KEY, IDLE), params=Params(unused_days=2))
    (f,) = by_check(judged.findings, "key_unused")
    assert f.status is Status.FAIL and f.resource_arn == IDLE


def test_key_unused_on_logs_without_kms_events_says_it_cannot_tell(tmp_path: Path) -> None:
    other = event("Decrypt", KEY, BOB, T0)
    other["eventSource"] = "s3.amazonaws.com"
    write_trail_files(tmp_path / "logs", [other])
    r = run(tmp_path / "logs", tmp_path / "cache", snapshot(KEY))
    (f,) = by_check(r.findings, "key_unused")
    assert f.status is Status.ERROR and f.message.endswith(
        "cannot tell whether it is unused: the logs hold no KMS events"
    )


def test_scan_checks_key_unused_with_short_logs_and_unused_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    logs = tmp_path / "logs"
    write_trail_files(logs, [event("Decrypt", KEY, BOB, T0 + timedelta(days=d)) for d in range(4)])
    snap = tmp_path / "snapshot.json"
    save_snapshot(snapshot(KEY, IDLE), snap)
    out = tmp_path / "r.json"
    base = ["scan", "--from-snapshot", str(snap), "--trail", str(logs), "--checks", "key_unused", "-f", "json"]

    res = runner.invoke(app, [*base, "-o", str(out), "-q"])
    assert res.exit_code != 2, res.output
    (f,) = json.loads(out.read_text())["findings"]
    assert (f["check_id"], f["status"], f["resource_arn"]) == ("key_unused", "ERROR", IDLE)
    assert "logs cover only 3.0 of the 90 days" in f["message"]

    res = runner.invoke(app, [*base, "--unused-days", "3", "-o", str(out), "-q"])
    assert res.exit_code == 1, res.output
    (f,) = json.loads(out.read_text())["findings"]
    assert (f["check_id"], f["status"], f["resource_arn"]) == ("key_unused", "FAIL", IDLE)
    assert "in the 3 days to" in f["message"]

    bad = runner.invoke(app, [*base, "--unused-days", "0"])
    assert bad.exit_code == 2 and "--unused-days" in bad.output
