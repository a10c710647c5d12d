"""End to end over the cache with DuckDB: every finding on a synthetic account, and the real samples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kmsguard.checks.trail import TRAIL_CHECK_IDS
from kmsguard.model.finding import Severity
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.synth import write_trail_files

from . import scenario as sc
from .conftest import OTHER, SAMPLES


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> TrailReport:
    root = tmp_path_factory.mktemp("logs")
    sc.write_logs(root)
    (root / "corrupt.json").write_bytes(b"{not a trail file")  # trail_logs_unreadable's scenario
    return analyze([str(root)], sc.snapshot(), TrailOptions(cache_dir=root / "cache", workers=1))


def by_check(r: TrailReport) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in r.findings:
        out.setdefault(f.check_id, []).append(f)
    return out


def test_every_trail_check_fires_on_its_scenario(report: TrailReport) -> None:
    found = by_check(report)
    assert set(found) == set(TRAIL_CHECK_IDS)


def test_administrative_events_name_key_and_carry_events(report: TrailReport) -> None:
    found = by_check(report)
    for cid in (
        "trail_key_deletion_scheduled",
        "trail_key_disabled",
        "trail_rotation_disabled",
        "trail_alias_deleted",
        "trail_key_material_imported",
        "trail_key_material_deleted",
    ):
        (f,) = found[cid]  # exactly one: the failed DisableKey on K_BUSY is not a finding
        assert f.resource_arn == sc.K_ADMIN
        assert f.evidence["events"][0]["principal"] == sc.INTRUDER
        assert f.evidence["window"]["start"] is not None
    assert found["trail_alias_deleted"][0].evidence["aliases"] == ["alias/payments"]


def test_policy_widened_judged_by_diff_against_the_create_key_policy(report: TrailReport) -> None:
    (f,) = by_check(report)["trail_policy_widened"]
    assert f.evidence["judged_by"] == "diff" and f.evidence["gained"]
    assert f.severity is Severity.HIGH


def test_grant_to_outside_account_only(report: TrailReport) -> None:
    (f,) = by_check(report)["trail_grant_external"]
    assert f.evidence["grantee_account"] == OTHER


def test_burst_counts_only_the_window_above_threshold(report: TrailReport) -> None:
    (f,) = by_check(report)["trail_decrypt_failure_burst"]
    assert f.resource_arn == sc.K_PROBED and f.evidence["errors"] == 8
    assert f.evidence["error_codes"] == ["AccessDenied"] and len(f.evidence["events"]) <= 10


def test_spike_is_the_injected_hour_and_services_are_ignored(report: TrailReport) -> None:
    spikes = by_check(report)["trail_usage_spike"]
    assert [(f.resource_arn, f.evidence["action"]) for f in spikes] == [(sc.K_BUSY, "Decrypt")]
    assert spikes[0].evidence["calls"] == 400 + 0  # the steady 3 calls fall in other hours of that day


def test_new_principal_is_the_outside_account_not_the_service(report: TrailReport) -> None:
    news = by_check(report)["trail_new_principal"]
    assert [(f.evidence["kind"], f.evidence.get("principal_account")) for f in news] == [("account", OTHER)]


def test_cross_account_and_policy_conformance(report: TrailReport) -> None:
    (x,) = by_check(report)["trail_cross_account_use"]
    assert x.evidence["principal_account"] == OTHER
    # BUSY_POLICY allows the app role and (for Decrypt) the outside account; not Mallory, a user of the key's
    # own account, since it does not delegate to the account's IAM.
    (bad,) = by_check(report)["trail_use_not_allowed_by_policy"]
    assert bad.resource_arn == sc.K_BUSY and bad.evidence["principal"] == sc.INTRUDER
    assert [u["action"] for u in bad.evidence["uses"]] == ["kms:Decrypt"] and bad.evidence["uses"][0]["calls"] == 2


def test_foreign_environment_and_unused(report: TrailReport) -> None:
    (env,) = by_check(report)["trail_foreign_environment"]
    assert env.evidence["resource"] == sc.BUCKET_DEV and env.evidence["key_environment"] == "prod"
    unused = {f.resource_arn for f in by_check(report)["key_unused"]}
    assert sc.K_IDLE in unused and sc.K_BUSY not in unused


def test_usage_summary(report: TrailReport) -> None:
    busy = next(k for k in report.keys if k.key_arn == sc.K_BUSY)
    assert busy.actions["Decrypt"] == 3 * 100 * 6 + 400 + 3 + 2
    assert busy.principals == 3  # the app role, mallory and the outsider; CloudTrail's service calls are not people
    assert busy.accounts == 2
    assert report.principals[sc.INTRUDER][sc.K_PROBED] == 11 and report.principals[sc.INTRUDER][sc.K_BUSY] == 3


def test_events_delivered_twice_are_analysed_once(tmp_path: Path) -> None:
    """Every event in two files, as when two trails deliver to one bucket (the SANS lab's logs are like that):
    the ingest counts both copies, the analysis each event once."""
    recs = sc.records()
    write_trail_files(tmp_path / "once", recs)
    write_trail_files(tmp_path / "twice", recs)
    write_trail_files(tmp_path / "twice", recs)
    once, twice = (
        analyze([str(tmp_path / d)], sc.snapshot(), TrailOptions(cache_dir=tmp_path / f"cache-{d}", workers=1))
        for d in ("once", "twice")
    )
    assert twice.ingest.kms_events == 2 * once.ingest.kms_events == 2 * len(recs)
    assert twice.events == once.events == len(recs)
    assert twice.keys == once.keys and twice.principals == once.principals and twice.hourly == once.hourly
    assert sorted((f.check_id, f.resource_arn, f.message) for f in twice.findings) == sorted(
        (f.check_id, f.resource_arn, f.message) for f in once.findings
    )


def test_real_samples(tmp_path: Path) -> None:
    """The Invictus trail and the KMS Developer Guide's examples (tests/data/cloudtrail)."""
    r = analyze([str(SAMPLES)], None, TrailOptions(cache_dir=tmp_path, workers=1))
    assert r.ingest.files_listed == 56 and not r.ingest.failed and r.ingest.skipped == 0
    assert r.ingest.kms_events == 300
    counts = Counter(f.check_id for f in r.findings)
    assert counts["trail_key_deletion_scheduled"] == 3  # the devguide's three ScheduleKeyDeletion examples
    # The Invictus Decrypt records name their key only in resources: their keys are counted all the same.
    invictus = {k.key_arn: k.calls for k in r.keys if ":123837392027:" in k.key_arn}
    assert sorted(invictus.values()) == [76, 164]
    # KMS's own scheduled work (AwsServiceEvent: RotateKey, DeleteKey after the waiting period, invoked by
    # "AWS Internal" with no userIdentity.type) is not a principal: never a "new principal" finding.
    assert not [
        f
        for f in r.findings
        if f.check_id == "trail_new_principal"
        and any(e.get("invoked_by") == "AWS Internal" for e in f.evidence.get("events", []))
    ]


def test_sans_lab_sample(sans_lab: Path, tmp_path: Path) -> None:
    r = analyze([str(sans_lab)], None, TrailOptions(cache_dir=tmp_path, workers=1))
    assert r.ingest.files_listed == 3872 and not r.ingest.failed and r.ingest.skipped == 0
    assert r.ingest.kms_events == 6235
    assert r.events == 3118  # the lab's trail delivers almost every event twice: each is analysed once
    # The ransomware lab's mass Decrypt through S3 stands out against its key's baseline.
    assert [f.check_id for f in r.findings if "342082656213" in f.resource_arn] == ["trail_usage_spike"]
    (sans,) = r.keys
    assert sans.principals == 2  # FalsimentisRoot and the root user; not cloudtrail.amazonaws.com
