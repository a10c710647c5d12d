"""Sources (files, S3 on a moto server, LookupEvents), path pruning, the incremental cache, bad files."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.trail import sources
from kmsguard.trail.analyze import TrailOptions, analyze
from kmsguard.trail.cache import ingest
from kmsguard.trail.sources import Filters, list_sources, path_facts
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, T0, user

KEY = key_arn(ACCT, "us-east-1", 9)


def _logs(root: Path, days: int = 3, per_day: int = 4) -> list[Path]:
    recs = [
        event("Decrypt", KEY, user("bob"), T0 + timedelta(days=d, hours=h * 5))
        for d in range(days)
        for h in range(per_day)
    ]
    return write_trail_files(root, recs)


def test_path_facts_from_layout_and_name() -> None:
    acct, region, start, end = path_facts(
        "b/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/05/02/111122223333_CloudTrail_eu-west-1_"
        "20240502T1005Z_abcdef0123456789.json.gz"
    )
    assert (acct, region) == ("111122223333", "eu-west-1")
    assert start is not None and end is not None and start < datetime(2024, 5, 2, 10, 5, tzinfo=UTC) < end
    assert path_facts("flat/export.jsonl") == (None, None, None, None)


def test_filters_prune_files_by_path_before_reading(tmp_path: Path) -> None:
    _logs(tmp_path)
    files = list_sources([str(tmp_path)])
    f = Filters(since=T0 + timedelta(days=1), until=T0 + timedelta(days=1, hours=23))
    kept = [x for x in files if f.keeps(x)]
    assert 0 < len(kept) < len(files)
    assert not [x for x in files if Filters(accounts=frozenset({"999999999999"})).keeps(x)]
    assert not [x for x in files if Filters(regions=frozenset({"eu-west-3"})).keeps(x)]
    r = analyze([str(tmp_path)], None, TrailOptions(since=f.since, until=f.until, cache_dir=tmp_path / "c", workers=1))
    assert r.ingest.files_pruned == len(files) - len(kept)
    assert r.events == 4  # exactly day 1's events: pruning by path is coarse, the SQL filter exact


def test_cache_is_incremental_and_a_changed_file_is_not_double_counted(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    paths = _logs(logs)
    cache = tmp_path / "cache"
    r1 = analyze([str(logs)], None, TrailOptions(cache_dir=cache, workers=1))
    assert r1.ingest.files_read == len(paths) and r1.events == 12
    r2 = analyze([str(logs)], None, TrailOptions(cache_dir=cache, workers=1))
    assert r2.ingest.files_read == 0 and r2.ingest.files_cached == len(paths) and r2.events == 12
    # A new file is read alone; a rewritten one invalidates its part (re-read with its unit-mates).
    write_trail_files(logs, [event("Encrypt", KEY, user("bob"), T0 + timedelta(days=5))])
    doc = json.loads(gzip.decompress(paths[0].read_bytes()))
    doc["Records"].append(event("Encrypt", KEY, user("bob"), T0 + timedelta(minutes=1)))
    paths[0].write_bytes(gzip.compress(json.dumps(doc).encode()))
    os.utime(paths[0], (1, 1))
    r3 = analyze([str(logs)], None, TrailOptions(cache_dir=cache, workers=1))
    assert 1 < r3.ingest.files_read <= len(paths) + 1
    assert r3.events == 14


def test_worker_processes_give_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsguard.trail import cache as cache_mod

    logs = tmp_path / "logs"
    _logs(logs, days=6)
    monkeypatch.setattr(cache_mod, "IN_PROCESS_BYTES", 0)
    files = list_sources([str(logs)])
    one, _ = ingest(files, tmp_path / "c1", workers=1)
    two, parts = ingest(files, tmp_path / "c2", workers=2)
    assert one.kms_events == two.kms_events == 24 and len(parts) >= 2


def test_bad_files_are_reported_and_the_rest_analysed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _logs(logs, days=1)
    (logs / "truncated.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": [event("Decrypt", KEY, user("bob"), T0)] * 50}).encode())[:300]
    )
    (logs / "notjson.json").write_bytes(b"\x00\x01 definitely not json")
    (logs / "other.json").write_text(json.dumps({"configurationItems": [{"a": 1}]}))
    (logs / "empty.json").write_bytes(b"")
    r = analyze([str(logs)], None, TrailOptions(cache_dir=tmp_path / "c", workers=1))
    errors = {Path(s.file).name: s.error for s in r.ingest.failed}
    assert set(errors) == {"truncated.json.gz", "notjson.json", "other.json", "empty.json"}
    # kmsguard's words first; what zlib or msgspec said only follows, in parentheses.
    assert (errors["truncated.json.gz"] or "").startswith("truncated or corrupt gzip after 0 records (")
    assert (errors["other.json"] or "").startswith("JSON of another shape (")
    assert (errors["notjson.json"] or "").startswith("not JSON (")
    assert (errors["empty.json"] or "").startswith("not JSON")
    assert r.events == 4


def test_large_file_is_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kmsguard.trail import decode

    monkeypatch.setattr(decode, "STREAM_THRESHOLD", 1000)
    monkeypatch.setattr(decode, "BATCH_ROWS", 7)
    big = tmp_path / "big.json.gz"
    recs = [event("Decrypt", KEY, user("bob"), T0 + timedelta(seconds=i)) for i in range(40)]
    big.write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))
    r = analyze([str(big)], None, TrailOptions(cache_dir=tmp_path / "c", workers=1))
    assert r.events == 40 and not r.ingest.failed


def test_s3_source_on_moto(aws, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s3 = client("s3")
    s3.create_bucket(Bucket="trail-bucket")
    logs = tmp_path / "logs"
    paths = _logs(logs)
    for p in paths:
        s3.put_object(Bucket="trail-bucket", Key=str(p.relative_to(logs)), Body=p.read_bytes())
    s3.put_object(Bucket="trail-bucket", Key=f"AWSLogs/{ACCT}/CloudTrail-Digest/us-east-1/x.json.gz", Body=b"x")
    opts = AwsOptions(endpoint_url=aws.endpoint_url)
    sources._CLIENTS.clear()
    src = f"s3://trail-bucket/AWSLogs/{ACCT}/"
    assert len(list_sources([src], opts)) == len(paths)  # the digest file is not an event file
    r = analyze([src], None, TrailOptions(cache_dir=tmp_path / "c", aws=opts, workers=1))
    assert r.events == 12 and r.ingest.files_read == len(paths)
    r2 = analyze([src], None, TrailOptions(cache_dir=tmp_path / "c", aws=opts, workers=1))
    assert r2.ingest.files_read == 0 and r2.events == 12


def test_s3_listing_is_pruned_by_account_region_and_day(aws, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With --since/--account/--region the AWSLogs tree is walked level by level and only the wanted days of the
    wanted accounts and regions are listed: same files as listing everything and pruning, far fewer objects."""
    s3 = client("s3")
    s3.create_bucket(Bucket="org-trail")
    other = "444455556666"
    recs = [
        event("Decrypt", key_arn(acct, region, 1), user("bob", acct), T0 + timedelta(days=d, hours=3))
        for acct in (ACCT, other)
        for region in ("us-east-1", "eu-west-1")
        for d in range(30)
    ]
    logs = tmp_path / "logs"
    for p in write_trail_files(logs, recs):
        s3.put_object(Bucket="org-trail", Key="o-abc123def4/" + str(p.relative_to(logs)), Body=p.read_bytes())
    s3.put_object(Bucket="org-trail", Key="o-abc123def4/README.txt.json", Body=b"{}")  # a stray object on the way
    opts = AwsOptions(endpoint_url=aws.endpoint_url)
    sources._CLIENTS.clear()
    listed_keys: list[str] = []
    sources.s3_client(opts).meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **_: listed_keys.extend(o["Key"] for o in parsed.get("Contents", ())),
    )
    f = Filters(since=T0 + timedelta(days=20), accounts=frozenset({ACCT}), regions=frozenset({"eu-west-1"}))
    src = "s3://org-trail/"
    pruned = [x for x in list_sources([src], opts, f) if f.keeps(x)]
    seen_by_pruned = len(listed_keys)
    everything = [x for x in list_sources([src], opts) if f.keeps(x)]
    assert [x.uri for x in pruned] == [x.uri for x in everything]
    logs_kept = [x for x in pruned if x.account is not None]
    assert len(logs_kept) == 10 and all(x.account == ACCT and x.region == "eu-west-1" for x in logs_kept)
    assert {x.uri for x in pruned} - {x.uri for x in logs_kept} == {"s3://org-trail/o-abc123def4/README.txt.json"}
    # The 10 wanted days (+ the slack day before) and the stray object: 12 of the bucket's 121 objects.
    assert seen_by_pruned <= 12 and len(listed_keys) - seen_by_pruned == 121
    for other_filter in (
        Filters(until=T0 + timedelta(days=4)),
        Filters(since=T0 + timedelta(days=10), until=T0 + timedelta(days=12)),
        Filters(regions=frozenset({"us-east-1"})),
        Filters(since=T0 + timedelta(days=400)),  # after every log: nothing
    ):
        got = [x.uri for x in list_sources([src], opts, other_filter) if other_filter.keeps(x)]
        assert got == [x.uri for x in list_sources([src], opts) if other_filter.keeps(x)], other_filter


def test_lookup_events_with_stubber(aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """moto (5.2) does not implement cloudtrail:LookupEvents, so this path uses botocore's Stubber on a real
    client from the session factory; the paginated shape is AWS's."""
    from botocore.stub import Stubber

    opts = AwsOptions(endpoint_url=aws.endpoint_url)
    sources._CLIENTS.clear()
    ct = sources._client(opts, "cloudtrail", "us-east-1")
    evs = [event("DisableKey", KEY, user("eve"), T0 + timedelta(minutes=i)) for i in range(3)]
    page = [{"EventId": e["eventID"], "EventName": e["eventName"], "CloudTrailEvent": json.dumps(e)} for e in evs]
    with Stubber(ct) as stub:
        stub.add_response("lookup_events", {"Events": page[:2], "NextToken": "t"})
        stub.add_response("lookup_events", {"Events": page[2:]})
        r = analyze([], None, TrailOptions(cache_dir=tmp_path / "c", aws=opts, lookup=True, regions=["us-east-1"]))
    assert r.events == 3
    (f,) = [f for f in r.findings if f.check_id == "trail_key_disabled"]
    assert f.evidence["calls"] == 3
