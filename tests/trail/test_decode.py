"""The decoder on every shape and every kind of bad input: nothing crashes, every record is accounted for."""

from __future__ import annotations

import gzip
import json

import pytest

from kmsguard.trail import decode
from kmsguard.trail.decode import decode_bytes, decode_stream, split_records
from kmsguard.trail.synth import event, key_arn

from .conftest import ACCT, DEVGUIDE, INVICTUS, T0, user

KEY = key_arn(ACCT, "us-east-1", 1)


def _records(n: int = 3) -> list[dict]:
    return [event("Decrypt", KEY, user("alice"), T0) for _ in range(n)]


def test_devguide_examples_every_record_read_and_keys_resolved() -> None:
    data = DEVGUIDE.read_bytes()
    rows, st = decode_bytes(data, "devguide")
    assert st.records == 62 and st.kms == 60 and st.skipped == 0 and not st.fallback
    by_name = {r[1]: r for r in rows}
    # ImportKeyMaterial logs a bare key id: qualified to an ARN with the record's region and account.
    assert by_name["ImportKeyMaterial"][5].startswith("arn:aws:kms:us-west-2:111122223333:key/")
    # A grant's grantee and an alias name are kept for the detections.
    assert by_name["DeleteAlias"][18] == "alias/my_alias"
    assert by_name["PutKeyPolicy"][16] and "Statement" in json.loads(by_name["PutKeyPolicy"][16])["policy"]


def test_invictus_decrypts_keep_the_key_from_resources() -> None:
    """Those Decrypt records have no keyId in requestParameters: the key is only in resources."""
    f = next(INVICTUS.glob("*.json"))
    rows, st = decode_bytes(f.read_bytes(), str(f))
    assert st.error is None
    assert all(r[5] and ":key/" in r[5] for r in rows if r[1] == "Decrypt")


def test_aws_service_principal_is_not_a_human() -> None:
    """CloudTrail encrypting its own log files: GenerateDataKey by ``AWSService`` (no arn, no account), shaped as
    in the SANS lab's real trail. The principal is the service, kept apart from people."""
    recs = [event("GenerateDataKey", KEY, "service:cloudtrail.amazonaws.com", T0) for _ in range(3)]
    for r in recs:
        r["sourceIPAddress"] = r["userAgent"] = "cloudtrail.amazonaws.com"
        r["requestParameters"]["encryptionContext"] = {
            "aws:cloudtrail:arn": f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/management-events",
            "aws:s3:arn": f"arn:aws:s3:::trail-bucket/AWSLogs/{ACCT}/CloudTrail/",
        }
    rows, st = decode_bytes(json.dumps({"Records": [*recs, event("Decrypt", KEY, user("alice"), T0)]}).encode(), "f")
    assert st.error is None and len(rows) == 4
    services = [r for r in rows if r[9] == "AWSService"]
    assert len(services) == 3 and all(r[7] == "service:cloudtrail.amazonaws.com" for r in services)
    assert [r[7] for r in rows if r[9] != "AWSService"] == [user("alice")]


def test_json_lines_and_eventbridge_envelopes() -> None:
    recs = _records(2)
    lines = [json.dumps(recs[0]), json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": recs[1]}), ""]
    rows, st = decode_bytes("\n".join(lines).encode(), "x.jsonl")
    assert len(rows) == 2 and st.skipped == 0


def test_bare_array_and_single_record() -> None:
    rows, st = decode_bytes(json.dumps(_records(2)).encode(), "arr")
    assert len(rows) == 2 and st.fallback
    rows, st = decode_bytes(json.dumps(_records(1)[0]).encode(), "one")
    assert len(rows) == 1


def test_record_with_fields_of_another_type_falls_back_without_loss() -> None:
    recs = _records(3)
    recs[1]["userIdentity"]["arn"] = 12345  # not a string: the typed decoder refuses the file
    recs[2]["sourceIPAddress"] = {"odd": True}
    rows, st = decode_bytes(json.dumps({"Records": recs}).encode(), "odd")
    assert st.fallback and len(rows) == 3 and st.skipped == 0


def test_missing_fields_are_counted_per_reason() -> None:
    recs = _records(3)
    del recs[0]["eventTime"]
    recs.append({"hello": "world"})
    rows, st = decode_bytes(json.dumps({"Records": recs}).encode(), "f")
    assert len(rows) == 2
    assert st.skip_reasons == {"KMS record without eventName or eventTime": 1, "not a CloudTrail record": 1}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"this is not json at all", "not JSON"),
        (b'{"foo": [1, 2]}', "JSON of another shape"),
        (b"[1, 2", "not JSON"),
        (b'{"Records": [{"eventName": "Decrypt", "userAgent": "\xffsdk"}]}', "invalid UTF-8 at byte 52"),
        # A field of another type stops the typed decoder before the bad bytes; the generic parse meets them.
        (b'{"Records": [{"userIdentity": {"arn": 5}}, {"userAgent": "\xff"}]}', "invalid UTF-8 at byte 58"),
    ],
)
def test_bad_documents_are_reported_not_raised(data: bytes, error: str) -> None:
    """The reason starts with kmsguard's own words; the JSON library's detail, when there is one, only follows in
    parentheses (its wording, and even its exception for invalid UTF-8, changes between msgspec releases)."""
    rows, st = decode_bytes(data, "bad")
    assert rows == [] and st.error is not None, st
    assert st.error == error or st.error.startswith(error + " ("), st.error


def _bad_utf8(rec: dict) -> bytes:
    return json.dumps(rec).encode().replace(b"aws-sdk", b"\xffsdk")


def test_invalid_utf8_in_one_line_or_record_costs_that_one_only(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = _records(30)
    lines = [json.dumps(r).encode() for r in recs[:3]]
    rows, st = decode_bytes(b"\n".join([lines[0], _bad_utf8(recs[1]), lines[2], b"{not json"]), "x.jsonl")
    assert len(rows) == 2 and st.error is None
    assert st.skip_reasons == {"line is not valid UTF-8": 1, "line is not JSON": 1}
    # Streamed in pieces: a piece with a bad record does not parse, and the exact splitter reads it record by
    # record. Also when a field of another type comes before the bad bytes: the typed decoder stops at that
    # field, the generic parse refuses the piece, and it is not lost (it was, silently, with msgspec 0.23).
    monkeypatch.setattr(decode, "PIECE_BYTES", 3000)
    odd = json.loads(json.dumps(recs))
    odd[20]["userIdentity"]["arn"] = 12345
    for docs, bad in ((recs, 5), (odd, 20)):
        body = b", ".join(json.dumps(r).encode() if i != bad else _bad_utf8(r) for i, r in enumerate(docs))
        st = decode.FileStats("big")
        rows = _stream_rows(b'{"Records": [' + body + b"]}", 500, st)
        assert len(rows) == 29 and st.error is None and st.skip_reasons == {"record is not valid UTF-8": 1}


def test_split_records_across_any_chunking_equals_whole_parse() -> None:
    data = DEVGUIDE.read_bytes()
    whole = json.loads(data)["Records"]
    for size in (1, 7, 100, 4096):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        got = [json.loads(r) for r in split_records(chunks)]
        assert got == whole


def test_stream_gzip_matches_whole_file_and_reports_truncation() -> None:
    recs = _records(50)
    gz = gzip.compress(json.dumps({"Records": recs}).encode())
    batches = list(decode_stream([gz[i : i + 333] for i in range(0, len(gz), 333)], "big", decode.FileStats("big")))
    assert sum(len(b) for b in batches) == 50
    st = decode.FileStats("cut")
    rows = [r for b in decode_stream([gz[: len(gz) // 2]], "cut", st) for r in b]
    assert st.error is not None and "truncated" in st.error
    assert 0 < len(rows) < 50  # the records before the cut are kept


def _stream_rows(data: bytes, chunk: int, st: decode.FileStats, compress: bool = True) -> list[tuple]:
    raw = gzip.compress(data) if compress else data
    return [r for b in decode_stream([raw[i : i + chunk] for i in range(0, len(raw), chunk)], "big", st) for r in b]


@pytest.mark.parametrize("piece", [200, 1500, 10**9])
def test_streamed_pieces_equal_the_whole_file_parse(monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    """Cut into pieces at record boundaries (piece sizes from smaller than a record to the whole file) the
    streamed rows are exactly the whole-file rows, with the same accounting; the devguide sample mixes
    services and record shapes."""
    monkeypatch.setattr(decode, "PIECE_BYTES", piece)
    data = DEVGUIDE.read_bytes()
    whole, st_whole = decode_bytes(data, "big")
    st = decode.FileStats("big")
    assert _stream_rows(data, 777, st) == whole
    assert (st.records, st.kms, st.skipped) == (st_whole.records, st_whole.kms, st_whole.skipped)


def test_a_record_boundary_lookalike_inside_a_record_costs_time_not_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """``}, {"eventVersion"`` inside a nested array is not a record boundary: a cut there does not parse, and
    the file is finished by the exact splitter with every record intact."""
    monkeypatch.setattr(decode, "PIECE_BYTES", 300)
    recs = _records(30)
    recs[10]["requestParameters"]["nested"] = [{"a": 1}, {"eventVersion": "decoy", "b": [{"eventVersion": 2}]}]
    data = json.dumps({"Records": recs}, separators=(",", ":")).encode()
    exact_runs: list[int | None] = []
    real_exact = decode._exact_into

    def spy(chunks, rows, base, error=None):  # type: ignore[no-untyped-def]
        exact_runs.append(base)
        return real_exact(chunks, rows, base, error)

    monkeypatch.setattr(decode, "_exact_into", spy)
    st = decode.FileStats("big")
    rows = _stream_rows(data, 50, st, compress=False)  # small plain chunks: a cut is tried inside record 10
    assert exact_runs == [1]  # the decoy was taken for a boundary, and the exact splitter took over
    assert rows == decode_bytes(data, "big")[0] and len(rows) == 30 and st.error is None


def test_stream_of_another_layout_goes_record_by_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not ``{"Records": [...`` at the start (another member first; a bare array): the exact splitter reads it."""
    monkeypatch.setattr(decode, "PIECE_BYTES", 300)
    recs = _records(12)
    for doc in ({"Meta": {"x": [1, {"y": 2}]}, "Records": recs}, recs):
        st = decode.FileStats("big")
        assert len(_stream_rows(json.dumps(doc).encode(), 50, st)) == 12 and st.error is None


def test_truncated_stream_keeps_whole_records_before_the_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "PIECE_BYTES", 2000)
    gz = gzip.compress(json.dumps({"Records": _records(200)}).encode())
    st = decode.FileStats("cut")
    rows = [r for b in decode_stream([gz[i : i + 500] for i in range(0, len(gz) * 3 // 4, 500)], "cut", st) for r in b]
    assert st.error is not None and "truncated" in st.error
    assert 100 < len(rows) < 200 and st.records == len(rows)
