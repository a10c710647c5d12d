"""The usage summary (trail/usage.py) from real analyses: the real CloudTrail samples and synthetic logs with
the awkward cases (a key logged by id or alias, a key the snapshot does not have, CloudTrail's own calls, events
delivered twice, no events at all)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kmsguard.model.keyrefs import KeyIndex
from kmsguard.model.snapshot import AccountSnapshot, Key, RegionSnapshot, Snapshot
from kmsguard.model.usage import DAYS, TrailUsage, key_label, principal_label
from kmsguard.trail.analyze import TrailOptions, TrailReport, analyze
from kmsguard.trail.synth import event, key_arn, write_trail_files
from kmsguard.trail.usage import summarise

from . import scenario as sc
from .conftest import ACCT, OTHER, SAMPLES, T0, user

INVICTUS_KEYS = {
    "arn:aws:kms:us-east-1:123837392027:key/0e5d0ab6-097e-49d8-99ef-747ce3e5f8f4": 164,
    "arn:aws:kms:us-east-1:123837392027:key/dad21b23-9915-42bd-981b-2a9f3c8f20c8": 76,
}


def _analyze(root: Path, snapshot: Snapshot | None = None) -> TrailReport:
    return analyze([str(root)], snapshot, TrailOptions(cache_dir=root / ".cache", workers=1))


# -- the real samples ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrailReport, TrailUsage]:
    cache = tmp_path_factory.mktemp("cache")
    report = analyze([str(SAMPLES)], None, TrailOptions(cache_dir=cache, workers=1))
    return report, summarise(report)


def test_samples_totals_window_and_principals(samples: tuple[TrailReport, TrailUsage]) -> None:
    report, u = samples
    assert u.events == report.events == 298  # 300 KMS records, two of the devguide's examples share an id
    assert u.window_end == datetime(2023, 7, 10, 12, 8, 4, tzinfo=UTC)
    assert u.keys_seen == len(report.keys) and u.all_keys_listed
    assert {k.key_arn: k.calls for k in u.top_keys[:2]} == INVICTUS_KEYS
    assert [k.calls for k in u.top_keys] == sorted((k.calls for k in u.top_keys), reverse=True)
    top = u.top_keys[0]
    assert (top.crypto_calls, top.principals, top.last_use) == (164, 1, u.window_end)
    bert = u.top_principals[0]
    assert (bert.principal, bert.calls, bert.keys) == ("arn:aws:iam::123837392027:user/bert-jan", 240, 2)


def test_samples_daily_series_covers_the_last_days_of_the_window(samples: tuple[TrailReport, TrailUsage]) -> None:
    report, u = samples
    # The window runs from the devguide's 2014 examples to 2023: the series keeps its last 90 days only.
    assert len(u.days) == DAYS and u.days[-1] == date(2023, 7, 10)
    assert u.days == [u.days[0] + timedelta(days=i) for i in range(DAYS)]
    assert {s.key_arn: s.total for s in u.daily} == INVICTUS_KEYS  # all on the last day
    assert all(s.calls[-1] == s.total for s in u.daily)
    # The devguide's example keys are used, but not in those days.
    assert {k.key_arn for k in u.top_keys if k.crypto_calls} - set(INVICTUS_KEYS)
    # The series are the hourly crypto counts, summed per day.
    first = int(datetime.combine(u.days[0], datetime.min.time(), UTC).timestamp())
    in_days = sum(h["calls"] for h in report.hourly if h["hour"] >= first)
    assert sum(s.total for s in u.daily) == in_days


def test_samples_round_trip_and_stay_small(samples: tuple[TrailReport, TrailUsage]) -> None:
    _, u = samples
    text = u.model_dump_json()
    assert TrailUsage.model_validate_json(text) == u
    assert len(text) < 20_000


def test_sans_lab_sample(sans_lab: Path, tmp_path: Path) -> None:
    """The SANS lab's key: GenerateDataKey by CloudTrail itself, Decrypt by the lab's users, all delivered twice."""
    u = summarise(analyze([str(sans_lab)], None, TrailOptions(cache_dir=tmp_path, workers=1)))
    (top,) = u.top_keys
    assert (top.key_arn, top.calls, top.crypto_calls) == (
        "arn:aws:kms:us-west-1:342082656213:key/85b4ab0e-eee7-4450-adba-82137e39764c",
        3117,
        3115,
    )
    assert top.principals == 2  # FalsimentisRoot and root: cloudtrail.amazonaws.com is not a principal
    assert top.last_use == u.window_end == datetime(2021, 8, 2, 9, 49, 3, tzinfo=UTC)
    assert (u.top_principals[0].principal, u.top_principals[0].calls) == ("service:cloudtrail.amazonaws.com", 2549)


# -- CloudTrail's own calls, delivered twice ------------------------------------------------------------------


def test_the_service_is_listed_as_a_caller_not_counted_as_a_principal(tmp_path: Path) -> None:
    """A trail encrypted with a KMS key: CloudTrail's GenerateDataKey for every log file, and people's Decrypt
    through S3; every event delivered twice (two trails into one bucket), as in the SANS lab's logs."""
    key = key_arn(ACCT, "us-west-1", 0x5A)
    trail = "service:cloudtrail.amazonaws.com"
    recs = [event("GenerateDataKey", key, trail, T0 + timedelta(minutes=5 * i)) for i in range(60)]
    recs += [event("Decrypt", key, user("reader"), T0 + timedelta(minutes=7 * i)) for i in range(20)]
    recs += [event("Decrypt", key, f"arn:aws:iam::{ACCT}:root", T0 + timedelta(hours=2))]
    write_trail_files(tmp_path / "logs", recs)
    write_trail_files(tmp_path / "logs", recs)
    u = summarise(_analyze(tmp_path / "logs"))
    (top,) = u.top_keys
    assert (top.key_arn, top.calls, top.crypto_calls, top.principals) == (key, 81, 81, 2)
    assert [(p.principal, p.calls, p.keys) for p in u.top_principals] == [
        (trail, 60, 1),
        (user("reader"), 20, 1),
        (f"arn:aws:iam::{ACCT}:root", 1, 1),
    ]


# -- key references, merging, the snapshot -----------------------------------------------------------------

R = "us-east-1"
K1 = key_arn(ACCT, R, 0xA1)
K2 = key_arn(ACCT, R, 0xA2)
K_FOREIGN = key_arn(OTHER, R, 0xF1)  # another account's key: in the logs, never in our snapshot
K_QUIET = key_arn(ACCT, R, 0xA3)  # in the snapshot, only described (no cryptographic use)
APP = f"arn:aws:sts::{ACCT}:assumed-role/app/s1"
BOB = user("bob")


def _snapshot() -> Snapshot:
    def key(arn: str, aliases: list[str]) -> Key:
        return Key(arn=arn, key_id=arn.rsplit("/", 1)[1], account=ACCT, region=R, aliases=aliases)

    keys = [key(K1, ["alias/orders"]), key(K2, []), key(K_QUIET, [])]
    return Snapshot(
        kmsguard_version="t",
        collected_at=T0,
        source="test",
        accounts=[AccountSnapshot(account_id=ACCT, regions=[RegionSnapshot(region=R, keys=keys)])],
    )


def _by_id_only(name: str, key_id: str, principal: str, when: datetime) -> dict[str, Any]:
    """A record naming its key only by a bare id, with no account to qualify it (a trimmed SIEM export)."""
    rec = event(name, key_id, principal, when, with_resources=False)
    del rec["recipientAccountId"]
    return rec


def _records() -> list[dict[str, Any]]:
    out = [event("Decrypt", K1, APP, T0 + timedelta(hours=h)) for h in range(48)]  # 24 a day for two days
    # The same key called by its alias (no resources block): the same key for the summary.
    out += [
        event("GenerateDataKey", "alias/orders", BOB, T0 + timedelta(hours=h), with_resources=False) for h in range(3)
    ]
    # K2 by its ARN once (and twice by its bare id, in _id_only_records).
    out.append(event("Encrypt", K2, APP, T0 + timedelta(days=1, hours=5)))
    out += [event("Decrypt", K_FOREIGN, user("eve", OTHER), T0 + timedelta(hours=h)) for h in range(5)]
    out.append(event("DescribeKey", K_QUIET, BOB, T0 + timedelta(hours=1)))
    return out


def _id_only_records() -> list[dict[str, Any]]:
    # K2 by its bare id, twice on day 2 (with its ARN once more in _records: one key, one principal).
    k2_id = K2.rsplit("/", 1)[1]
    return [_by_id_only("Encrypt", k2_id, APP, T0 + timedelta(days=1, hours=h)) for h in range(2)]


@pytest.fixture(scope="module")
def refs_report(tmp_path_factory: pytest.TempPathFactory) -> TrailReport:
    root = tmp_path_factory.mktemp("refs")
    write_trail_files(root, _records(), compress=False)
    # Records without an account do not fit the trail layout: a flat export file beside it.
    (root / "siem-export.json").write_text(json.dumps({"Records": _id_only_records()}))
    return _analyze(root)


def test_without_a_snapshot_references_stay_as_logged(refs_report: TrailReport) -> None:
    u = summarise(refs_report)
    keys = {k.key_arn: k for k in u.top_keys}
    k2_id = K2.rsplit("/", 1)[1]
    assert keys[K1].calls == 48 and keys["alias/orders"].calls == 3 and keys[k2_id].calls == 2
    assert keys[K2].calls == 1
    assert u.keys_seen == 6 and all(k.alias is None for k in u.top_keys)


def test_with_a_snapshot_ids_and_aliases_merge_into_the_key(refs_report: TrailReport) -> None:
    u = summarise(refs_report, _snapshot())
    keys = {k.key_arn: k for k in u.top_keys}
    assert set(keys) == {K1, K2, K_FOREIGN, K_QUIET}
    k1 = keys[K1]
    assert (k1.calls, k1.crypto_calls, k1.alias, k1.label) == (51, 51, "alias/orders", "alias/orders")
    assert k1.principals == 2  # the app role and bob, each once
    k2 = keys[K2]
    assert (k2.calls, k2.principals) == (3, 1)  # APP called it by id and by ARN: one principal
    # A key the snapshot does not have keeps its ARN and has no alias.
    assert keys[K_FOREIGN].alias is None and keys[K_FOREIGN].calls == 5
    # Zero cryptographic use: in the totals, not in the daily series.
    assert keys[K_QUIET].crypto_calls == 0 and K_QUIET not in {s.key_arn for s in u.daily}
    series = {s.key_arn: s for s in u.daily}
    assert u.days == [T0.date(), T0.date() + timedelta(days=1)]
    assert series[K1].calls == [24 + 3, 24]  # bob's three GenerateDataKey by alias on day 1
    assert series[K2].calls == [0, 3]
    app = next(p for p in u.top_principals if p.principal == f"arn:aws:iam::{ACCT}:role/app")
    assert (app.calls, app.keys) == (48 + 3, 2)  # the session is its role; K2 by id and ARN is one key


def test_lookups_by_the_dashboards_key_identity(refs_report: TrailReport) -> None:
    plain = summarise(refs_report)  # references left as logged: the lookup still finds the key
    k1 = plain.totals_for(K1, K1.rsplit("/", 1)[1], ["alias/orders"])
    assert k1 is not None and k1.calls == 48  # the first match: the ARN entry
    k2_id = K2.rsplit("/", 1)[1]
    by_id = [t for t in plain.top_keys if KeyIndex.of_snapshot(_snapshot()).resolve(t.key_arn) == K2]
    assert sorted(t.calls for t in by_id) == [1, 2]
    assert plain.series_for(K2, k2_id) is not None
    assert plain.totals_for(key_arn(ACCT, R, 0xDEAD)) is None


def test_caps_keep_the_busiest(refs_report: TrailReport) -> None:
    u = summarise(refs_report, _snapshot(), daily_keys=1, top_keys=2, top_principals=1, days=1)
    assert [k.key_arn for k in u.top_keys] == [K1, K_FOREIGN]
    assert u.keys_seen == 4 and not u.all_keys_listed
    assert len(u.top_principals) == 1 and u.principals_seen == 3
    assert u.days == [T0.date() + timedelta(days=1)]  # the last day of the window only
    assert [(s.key_arn, s.calls) for s in u.daily] == [(K1, [24])]
    assert not u.daily_complete  # K2 was used that day too: its series was capped away
    assert summarise(refs_report, _snapshot()).daily_complete


def test_daily_complete_says_whether_a_missing_series_means_no_use(tmp_path: Path) -> None:
    """Thirty keys, key n called n times on one day. Whatever the analysis's own cap on hourly rows, the
    series kept are the busiest keys, and ``daily_complete`` is true only if none was left out."""
    keys = [key_arn(ACCT, R, 0x100 + n) for n in range(1, 31)]
    records = [event("Decrypt", k, APP, T0 + timedelta(minutes=i)) for n, k in enumerate(keys, 1) for i in range(n)]
    write_trail_files(tmp_path / "logs", records)
    u = summarise(_analyze(tmp_path / "logs"), daily_keys=100)
    assert u.keys_seen == 30 and len(u.top_keys) == 25
    kept = [s.key_arn for s in u.daily]
    assert kept == list(reversed(keys))[: len(kept)] and len(kept) >= 10
    assert u.daily_complete == (len(kept) == 30)
    assert not summarise(_analyze(tmp_path / "logs"), daily_keys=5).daily_complete


def test_no_events_gives_an_empty_summary(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    u = summarise(_analyze(tmp_path / "empty"), _snapshot())
    assert (u.events, u.window_start, u.window_end, u.keys_seen) == (0, None, None, 0)
    assert u.days == [] and u.daily == [] and u.top_keys == [] and u.top_principals == [] and u.daily_complete
    assert u.all_keys_listed and u.totals_for(K1) is None
    assert TrailUsage.model_validate_json(u.model_dump_json()) == u


def test_key_index_resolves_only_what_is_unambiguous() -> None:
    gov = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-0000-0000-0000-000000000001"
    snap = Snapshot(
        kmsguard_version="t",
        collected_at=T0,
        source="test",
        accounts=[
            AccountSnapshot(
                account_id=ACCT,
                regions=[
                    RegionSnapshot(
                        region="us-gov-west-1",
                        keys=[
                            Key(
                                arn=gov,
                                key_id=gov.rsplit("/", 1)[1],
                                account=ACCT,
                                region="us-gov-west-1",
                                aliases=["alias/shared"],
                            )
                        ],
                    ),
                    RegionSnapshot(
                        region=R,
                        keys=[
                            Key(arn=K1, key_id=K1.rsplit("/", 1)[1], account=ACCT, region=R, aliases=["alias/shared"])
                        ],
                    ),
                ],
            )
        ],
    )
    idx = KeyIndex.of_snapshot(snap)
    # The decoder qualifies bare ids as arn:aws:...; the snapshot's GovCloud key is found all the same.
    assert idx.resolve(gov.replace("arn:aws-us-gov:", "arn:aws:")) == gov
    assert idx.resolve(f"arn:aws:kms:{R}:{ACCT}:alias/shared") == K1  # an alias ARN names its region
    assert idx.resolve("alias/shared") is None  # two regions have it: not guessed
    assert idx.resolve(gov.rsplit("/", 1)[1]) == gov
    assert idx.resolve(f"arn:aws:kms:{R}:{OTHER}:alias/shared") is None  # another account's alias
    assert idx.resolve("not-a-key") is None


def test_labels() -> None:
    assert key_label(K1) == "key/00000000…00a1 us-east-1"
    assert key_label(K1, "alias/orders") == "alias/orders"
    assert key_label("alias/orders") == "alias/orders"  # a reference as logged stays readable
    assert principal_label(f"arn:aws:iam::{ACCT}:user/bob") == f"user/bob ({ACCT})"
    assert principal_label("service:cloudtrail.amazonaws.com") == "service:cloudtrail.amazonaws.com"


# -- the scenario's hundred days, and `kmsguard trail analyze` ----------------------------------------------


def test_trail_analyze_json_carries_the_usage(tmp_path: Path) -> None:
    from kmsguard.cli.main import app

    logs = tmp_path / "logs"
    sc.write_logs(logs)
    snap = tmp_path / "snap.json"
    snap.write_text(sc.snapshot().model_dump_json())
    args = ["trail", "analyze", str(logs), "--snapshot", str(snap), "--cache", str(tmp_path / "c"), "--workers", "1"]
    res = CliRunner().invoke(app, [*args, "-f", "json", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    u = TrailUsage.model_validate(json.loads(res.stdout)["trail_usage"])
    # 100 days of logs: the series keeps the last 90; the busy key's steady 18 calls a day are in it.
    assert len(u.days) == DAYS and u.days[-1] == u.window_end.date()  # type: ignore[union-attr]
    busy = u.series_for(sc.K_BUSY)
    assert busy is not None and busy.calls[1] == 18
    assert u.top_keys[0].key_arn == sc.K_BUSY and u.totals_for(sc.K_IDLE) is None
