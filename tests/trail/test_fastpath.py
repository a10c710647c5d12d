"""The native fast path (``fastpath.decode_table``) against the msgspec path it stands in for.

Whenever the fast path returns a table, it must equal ``cache.columns_to_table`` of ``decode.decode_into`` for the
same bytes, with the same FileStats; when it returns None, the stats must be untouched. On top of that it must
accept the realistic files (the shared samples, synth output, bench data), and reject every malformed input.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import subprocess
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from kmsguard import arn, gunzip
from kmsguard.model import trail as trail_model
from kmsguard.policy.actions import ADMIN_EVENTS
from kmsguard.trail import cache, decode, fastpath, schema
from kmsguard.trail.decode import FileStats
from kmsguard.trail.schema import ARROW_SCHEMA
from kmsguard.trail.synth import event, key_arn, write_trail_files

from .conftest import ACCT, DEVGUIDE, INVICTUS, OTHER, SAMPLES, T0, user

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "kmsguard" / "trail" / "_fastdecode.c"
KEY = key_arn(ACCT, "us-east-1", 1)
KEY_ID = KEY.rsplit("/", 1)[1]
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.usefixtures("native_scanner")


# --- the oracle ------------------------------------------------------------------------------------------------


def reference(data: bytes, file: str) -> tuple[pa.Table, FileStats] | BaseException:
    """The msgspec path's table and stats (or what it raised: the fast path must have bailed then)."""
    stats = FileStats(file)
    cols = decode.Columns()
    try:
        decode.decode_into(data, file, stats, cols)
        return cache.columns_to_table(cols, {file: stats}), stats
    except Exception as e:  # RecursionError on deep nesting ...
        return e


def check(data: bytes, file: str = "s3://bucket/AWSLogs/f.json.gz") -> pa.Table | None:
    """The fast path's table, asserted equal to the msgspec path's; None if it bailed (asserting stats untouched)."""
    stats = FileStats(file)
    got = fastpath.decode_table(data, file, stats)
    if got is None:
        assert stats == FileStats(file), "stats touched by a bail-out"
        return None
    want = reference(data, file)
    assert not isinstance(want, BaseException), f"fast path accepted what the msgspec path raised on: {want!r}"
    table, want_stats = want
    assert got.schema.equals(ARROW_SCHEMA)
    if not got.equals(table):
        diff = {
            name: (got.column(name).to_pylist(), table.column(name).to_pylist())
            for name in table.column_names
            if not got.column(name).equals(table.column(name))
        }
        raise AssertionError(f"rows differ ({got.num_rows} vs {table.num_rows}): {diff}")
    assert stats == want_stats
    return got


def accepted(data: bytes, file: str = "f.json") -> pa.Table:
    table = check(data, file)
    assert table is not None, "the fast path bailed on a plain file"
    return table


def trail(records: list[Any], **extra: Any) -> bytes:
    return json.dumps({"Records": records, **extra}).encode()


# --- the extension itself ----------------------------------------------------------------------------------------


def _build(tmp: Path, *defines: str) -> ModuleType:
    """Compile _fastdecode.c as setup.py does (warnings are errors here) and import the result."""
    out = tmp / ("_fastdecode" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", *defines]
    cmd += [f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    spec = importlib.util.spec_from_file_location("kmsguard.trail._fastdecode", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extension_builds_without_warnings_and_is_installed(tmp_path: Path) -> None:
    """gcc is part of this environment: the extension must build (no skip) and the installed one must load."""
    built = _build(tmp_path)
    assert built.ABI_VERSION == fastpath._ABI_VERSION
    assert fastpath.AVAILABLE, "kmsguard.trail._fastdecode did not import: run `pip install -e .`"
    assert fastpath._native is not None and fastpath._native.COLUMNS == built.COLUMNS
    assert fastpath._native.VOCABULARY == built.VOCABULARY
    per_file, rows, _, _ = built.scan(
        (trail([event("Decrypt", KEY, user("alice"), T0)]),), (b"f",), fastpath._VOCABULARY
    )
    assert per_file[0] is not None and rows == 1


def test_the_scanner_takes_its_vocabulary_from_schema() -> None:
    """The names the scanner matches come from schema.py with each call, by the names the extension asks for; the
    C file holds no copy of them (a stray literal there would be a second home that could drift)."""
    assert fastpath._native is not None
    by_name = dict(zip(fastpath._native.VOCABULARY, fastpath._VOCABULARY, strict=True))
    assert by_name["kms_source"] == schema.KMS_SOURCE.encode()
    assert set(by_name["crypto_actions"]) == {a.encode() for a in schema.CRYPTO_ACTIONS}
    assert by_name["service_caller"] == trail_model.SERVICE_CALLER.encode()
    assert by_name["assumed_role_caller"] == trail_model.ASSUMED_ROLE_CALLER.encode()
    assert by_name["service_principal_prefix"] == trail_model.SERVICE_PRINCIPAL_PREFIX.encode()
    assert by_name["unknown_service"] == trail_model.UNKNOWN_SERVICE.encode()
    assert by_name["account_principal_prefix"] == trail_model.ACCOUNT_PRINCIPAL_PREFIX.encode()
    code = SOURCE.read_text()
    words = {v.decode() for v in by_name.values() if isinstance(v, bytes)} | schema.CRYPTO_ACTIONS
    for value in sorted(words | set(ADMIN_EVENTS)):
        assert f'"{value}"' not in code, f"{value} is written in _fastdecode.c: pass it from schema.py instead"


def test_the_scanners_partition_pattern_is_the_arn_modules() -> None:
    """The one constant the C keeps: its hand-written matcher of partitions (is_s3_arn) stands for
    arn.PARTITION_PATTERN, which it exports so that this test holds the two equal."""
    assert fastpath._native is not None
    assert fastpath._native.PARTITION_PATTERN == arn.PARTITION_PATTERN


def test_the_scanners_member_names_are_decodes_structs() -> None:
    """The JSON member names stay in the C: record_member dispatches on a name's length to fixed-size compares,
    which the compiler inlines (a table passed in would cost a loop per member, ~20 per record). Their home is
    decode's msgspec Structs: the names the C reads are exactly those Structs' fields, each under its length."""
    code = SOURCE.read_text()
    in_c = set(re.findall(r'\b(?:MATCH|IS)\(\w+, "(\w+)"', code))
    structs = (
        decode.Envelope,
        decode.Record,
        decode.UserIdentity,
        decode.SessionContext,
        decode.SessionIssuer,
        decode.ResourceRef,
        decode.KmsParams,
        decode.KmsResponse,
        decode.KeyMetadata,
    )
    assert in_c == {name for struct in structs for name in struct.__struct_fields__}
    dispatch = code[code.index("static inline int record_member") :]
    dispatch = dispatch[: dispatch.index("return -1;")]
    cases = re.findall(r"case (\d+):((?:\s*MATCH\(k, \"\w+\", \w+\);)+)", dispatch)
    members = [(int(n), name) for n, body in cases for name in re.findall(r'"(\w+)"', body)]
    assert {name for _, name in members} == set(decode.Record.__struct_fields__)
    assert all(len(name) == n for n, name in members), members


@pytest.mark.parametrize(
    "partition",
    ["aws", "aws-cn", "aws-us-gov", "aws-iso-b", "aws-iso-f", "aws-eusc", "aws-a-b-c", "aws-", "aws--x", "awsx",
     "aws-Gov", "aws-1", "aws_x", "aw", "", "AWS", "aws-x-", "xaws"],
)  # fmt: skip
def test_the_scanners_partition_matcher_is_the_pattern(partition: str) -> None:
    """An S3 object's ARN in the encryption context stands for its bucket exactly when its partition matches
    arn.PARTITION_PATTERN: by the native scanner as by decode (``accepted`` compares the two paths)."""
    value = f"arn:{partition}:s3:::bucket/object"
    table = accepted(trail([_rec(requestParameters={"encryptionContext": {"aws:s3:arn": value}})]))
    is_partition = re.fullmatch(arn.PARTITION_PATTERN, partition) is not None
    assert table.column("context_arn").to_pylist() == [value.split("/", 1)[0] if is_partition else value]


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The build without SSE2 (the word-at-a-time string scan other platforms get)."""
    return _build(tmp_path_factory.mktemp("nosimd"), "-DKMSGUARD_NO_SIMD")


def test_portable_build_gives_the_same_tables(portable: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [*sorted(INVICTUS.glob("*.json"))[:10], DEVGUIDE]
    monkeypatch.setattr(fastpath, "_native", portable)
    for f in files:
        accepted(f.read_bytes(), str(f))
    for bad in (b'{"Records": [{"eventSource": "\xff"}]}', b'{"Records": [{"a": "\x01"}]}', b'{"Records": ["'):
        assert check(bad) is None


def test_scan_rejects_wrong_arguments() -> None:
    assert fastpath._native is not None
    for args in [("text",), (b"{}",)], [(b"{}",), ("f",)], [(b"{}",), (b"f", b"g")], [(b"{}",), (b"f",), ("Decrypt",)]:
        with pytest.raises(TypeError):
            fastpath._native.scan(*args, *([fastpath._VOCABULARY] if len(args) == 2 else []))
    assert fastpath.decode_table(bytearray(b'{"Records": []}'), "f", FileStats("f")) is None  # type: ignore[arg-type]
    assert fastpath.decode_table(b'{"Records": []}', "bad\udcff", FileStats("bad\udcff")) is None


# --- realistic files: accepted, and equal ---------------------------------------------------------------------


def _accepted_rows(root: Path) -> tuple[int, int]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".gz"))
    return len(files), sum(accepted(gunzip.decompress(f.read_bytes()), str(f)).num_rows for f in files)


def test_every_real_sample_is_accepted_and_equal() -> None:
    assert _accepted_rows(SAMPLES) == (56, 300)  # every file, every KMS event of the README's count


def test_every_sans_lab_file_is_accepted_and_equal(sans_lab: Path) -> None:
    """Real delivery: thousands of small gzipped files from 13 regions."""
    assert _accepted_rows(sans_lab) == (3872, 6235)


def test_synth_files_of_every_kind_are_accepted(tmp_path: Path) -> None:
    key2 = key_arn(OTHER, "eu-west-1", 2)
    role = f"arn:aws:sts::{ACCT}:assumed-role/app/session-1"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*"}]}
    recs = [
        event("Decrypt", KEY, user("alice"), T0, context_arn="arn:aws:s3:::bucket/key/with/slashes"),
        event("Encrypt", KEY, role, T0, context_arn="arn:aws:secretsmanager:us-east-1:1:secret:x"),
        event("GenerateDataKey", KEY, "service:cloudtrail.amazonaws.com", T0),
        event("Decrypt", KEY, user("bob"), T0, error="AccessDenied", with_resources=False),
        event("DescribeKey", key2, user("carol", OTHER), T0, recipient=ACCT),
        event("CreateKey", None, user("admin"), T0, params={"policy": json.dumps(policy, indent=2)}),
        event("PutKeyPolicy", KEY, user("admin"), T0, params={"policy": json.dumps(policy), "policyName": "default"}),
        event("CreateGrant", KEY, user("admin"), T0, params={"granteePrincipal": f"arn:aws:iam::{OTHER}:root"}),
        event("CreateGrant", KEY, user("admin"), T0, params={"granteePrincipal": f"{OTHER}:root"}),
        event("DeleteAlias", None, user("admin"), T0, params={"aliasName": "alias/prod"}),
        event("ScheduleKeyDeletion", KEY_ID, user("admin"), T0, with_resources=False),
        event("DisableKey", "mrk-" + "a" * 32, user("admin"), T0, with_resources=False),
        event("Decrypt", "alias/prod", user("dave"), T0, with_resources=False),
    ]
    recs[5]["responseElements"] = {"keyMetadata": {"arn": key2, "keyId": "x"}}
    paths = write_trail_files(tmp_path, recs * 3) + write_trail_files(tmp_path / "plain", recs, compress=False)
    for p in paths:
        accepted(gunzip.decompress(p.read_bytes()), str(p))


def test_bench_files_are_accepted(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_trail", ROOT / "bench" / "bench_trail.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths, _ = bench.generate(tmp_path, 3000)
    total = 0
    for p in paths:
        total += accepted(gzip.decompress(p.read_bytes()), str(p)).num_rows
    assert total == 3000


def test_pretty_printed_and_non_ascii_files() -> None:
    recs = [event("Decrypt", KEY, user("zoë-😀"), T0, context_arn="arn:aws:s3:::bücket/ø")] * 2
    recs.append({"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "x"})
    for text in (
        json.dumps({"Records": recs}, indent=4, ensure_ascii=False),
        "\r\n\t " + json.dumps({"Records": recs}, ensure_ascii=False, separators=(",", ":")) + "\n",
    ):
        table = accepted(text.encode())
        assert table.column("principal_arn")[0].as_py() == user("zoë-😀")


def test_empty_records_and_no_kms_event() -> None:
    assert accepted(trail([])).num_rows == 0
    assert (
        accepted(trail([{"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "t"}])).num_rows == 0
    )


# --- decode._extend's rules, case by case -------------------------------------------------------------------------


def _rec(name: str = "Decrypt", **fields: Any) -> dict[str, Any]:
    rec = event(name, KEY, user("alice"), T0)
    for k, v in fields.items():
        if v is ...:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


RULE_CASES: dict[str, list[dict[str, Any]]] = {
    "bare key ids qualified": [
        _rec(resources=..., requestParameters={"keyId": KEY_ID}),
        _rec(resources=..., requestParameters={"keyId": KEY_ID.replace("-", "")}),
        _rec(resources=..., requestParameters={"keyId": "mrk-" + "0123456789abcdef" * 2}),
        _rec(resources=..., requestParameters={"keyId": "mrk-" + KEY_ID}),
        _rec(resources=..., requestParameters={"keyId": KEY_ID.upper()}),
        _rec(resources=..., requestParameters={"keyId": KEY_ID + " "}),
        _rec(resources=..., requestParameters={"keyId": " " + KEY_ID}),
        _rec(resources=..., requestParameters={"keyId": KEY_ID}, awsRegion=""),
        _rec(resources=..., requestParameters={"keyId": KEY_ID}, recipientAccountId=None),
        _rec(resources=..., requestParameters={"keyId": KEY_ID}, awsRegion="eu:west", recipientAccountId="a:b"),
        _rec(resources=..., requestParameters={"keyId": "alias/prod"}),
        _rec(resources=..., requestParameters={"keyId": ""}, responseElements={"keyId": KEY_ID}),
        _rec(resources=..., requestParameters={"keyId": None}),
    ],
    "keys from responses (non-crypto only)": [
        _rec("CreateKey", resources=..., requestParameters=None, responseElements={"keyMetadata": {"arn": KEY}}),
        _rec("CreateKey", resources=..., responseElements={"keyMetadata": {"arn": ""}, "keyId": KEY_ID}),
        _rec("CreateKey", resources=..., responseElements={"keyMetadata": None, "keyId": ""}),
        _rec("CreateKey", resources=..., responseElements={"keyMetadata": {"arn": 5}, "keyId": KEY_ID}),
        _rec("CreateKey", resources=..., responseElements={"keyId": ["x"]}),
        _rec("CreateKey", resources=..., responseElements="text"),
        _rec("CreateKey", resources=..., responseElements=[1]),
        _rec("Decrypt", resources=..., requestParameters={}, responseElements={"keyMetadata": {"arn": KEY}}),
        _rec("CreateKey", resources=[{"ARN": "arn:aws:iam::1:role/x"}], responseElements={"keyId": "x:y:z:w:acct:k"}),
    ],
    "resources": [
        _rec(resources=[{"ARN": "arn:aws:s3:::b"}, {"ARN": None}, {"type": "x"}, {"ARN": KEY}, {"ARN": "arn:x:key/2"}]),
        _rec(resources=[]),
        _rec(resources=None),
        _rec(resources=[{"ARN": "a:b:c:d::f:key/x"}]),
        _rec(resources=[{"ARN": "no-colons:key/"}]),
        _rec(resources=[{"ARN": "a:b:c:d:acct:key/x:y"}]),
    ],
    "encryption context and the needed rule": [
        _rec(requestParameters={"encryptionContext": {"a": "x", "b": "arn:aws:s3:::bucket/o/p", "c": "arn:z"}}),
        _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws:s3:::bucket"}}),
        _rec(requestParameters={"encryptionContext": {"SecretARN": "arn:aws:secretsmanager:r:1:secret:s"}}),
        _rec(requestParameters={"encryptionContext": {"a": "x"}, "granteePrincipal": "g"}),
        _rec(requestParameters={"encryptionContext": {}, "aliasName": "alias/a", "note": "arn:"}),
        _rec(requestParameters={"granteePrincipal": "arn:aws:iam::1:root"}),
        _rec("CreateGrant", requestParameters={"granteePrincipal": "1:root", "keyId": KEY}),
        _rec(requestParameters={"encryptionContext": None}),
        _rec(requestParameters=None),
        _rec(requestParameters=...),
    ],
    "principals": [
        _rec(userIdentity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"}),
        _rec(userIdentity={"type": "AWSService", "invokedBy": ""}),
        _rec(userIdentity={"type": "AWSService"}),
        _rec(userIdentity={"type": "AssumedRole", "arn": "s", "sessionContext": {"sessionIssuer": {"arn": "r"}}}),
        _rec(userIdentity={"type": "AssumedRole", "arn": "s", "sessionContext": {"sessionIssuer": {"arn": ""}}}),
        _rec(userIdentity={"type": "AssumedRole", "sessionContext": {"sessionIssuer": {}}, "accountId": "1"}),
        _rec(userIdentity={"type": "AssumedRole", "sessionContext": {"sessionIssuer": None}, "accountId": "1"}),
        _rec(userIdentity={"type": "AssumedRole", "sessionContext": None, "arn": "s"}),
        _rec(userIdentity={"type": "AWSAccount", "accountId": OTHER}),
        _rec(userIdentity={"type": "Root", "arn": "", "accountId": OTHER}),
        _rec(userIdentity={}),
        _rec(userIdentity=None),
        _rec(userIdentity=...),
    ],
    "params text": [
        _rec("PutKeyPolicy", requestParameters={"policy": '{"Version": "2012-10-17",\n "x": "\\u00e9\\"q\\""}'}),
        _rec("ListAliases", requestParameters=None),
        _rec("ListAliases", requestParameters={}),
        _rec(
            "CreateAlias", requestParameters={"aliasName": "alias/a", "targetKeyId": KEY_ID, "n": [1.5e300, -0, True]}
        ),
    ],
    "accounting": [
        {"eventSource": "kms.amazonaws.com", "eventName": "Decrypt"},
        {"eventSource": "kms.amazonaws.com", "eventTime": "2024-05-01T00:00:00Z"},
        {"hello": "world"},
        {"eventSource": None, "eventName": None, "eventTime": None, "x": {"y": [1, {}]}},
        {"eventSource": "s3.amazonaws.com"},
        {"eventName": "Decrypt"},
        _rec(eventSource=""),
        _rec(eventName=""),
    ],
    "times": [
        _rec(eventTime="2024-05-01T00:00:00.123Z"),
        _rec(eventTime="2024-05-01 00:00:00"),
        _rec(eventTime="2024-05-01T02:00:00+02:00"),
        _rec(eventTime="not a time"),
        _rec(eventTime=""),
    ],
}


GOV_KEY = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/" + KEY_ID
RULE_CASES["partitions: GovCloud and China"] = [
    _rec(resources=..., requestParameters={"keyId": KEY_ID}, awsRegion="us-gov-west-1"),
    _rec(resources=..., requestParameters={"keyId": KEY_ID}, awsRegion="cn-northwest-1"),
    _rec(resources=[{"ARN": GOV_KEY}], awsRegion="us-gov-west-1"),
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws-us-gov:s3:::bucket/o"}}),
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws-cn:s3:::bucket/o/p"}}),
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws-iso-b:s3:::b/x"}}),
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws-:s3:::b/x"}}),  # not a partition
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:awsx:s3:::b/x"}}),
    _rec(requestParameters={"encryptionContext": {"aws:s3:arn": "arn:aws-Gov:s3:::b/x"}}),
]


def test_keys_and_buckets_in_every_partition() -> None:
    """A bare key id is qualified in its Region's partition, and an S3 object in any partition stands for its
    bucket, by the native scanner and by decode alike (``accepted`` compares them)."""
    table = accepted(trail(RULE_CASES["partitions: GovCloud and China"]))
    keys = table.column("key_arn").to_pylist()
    assert keys[0] == GOV_KEY and keys[2] == GOV_KEY
    assert keys[1] == "arn:aws-cn:kms:cn-northwest-1:111122223333:key/" + KEY_ID
    contexts = table.column("context_arn").to_pylist()
    assert contexts[3:6] == ["arn:aws-us-gov:s3:::bucket", "arn:aws-cn:s3:::bucket", "arn:aws-iso-b:s3:::b"]
    assert contexts[6:] == ["arn:aws-:s3:::b/x", "arn:awsx:s3:::b/x", "arn:aws-Gov:s3:::b/x"]


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rules_of_extend(case: str) -> None:
    recs = RULE_CASES[case]
    accepted(trail(recs))
    for rec in recs:  # one by one too: each record's own table and stats
        accepted(trail([rec]))


# --- what must bail --------------------------------------------------------------------------------------------

VALID = trail([_rec(), _rec("CreateKey", resources=...), {"eventSource": "s3.amazonaws.com"}])

MUST_BAIL: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b"  \n",
    "bare array": json.dumps([_rec()]).encode(),
    "one record": json.dumps(_rec()).encode(),
    "json lines": (json.dumps(_rec()) + "\n" + json.dumps(_rec())).encode(),
    "no Records": b'{"records": []}',
    "Records null": b'{"Records": null}',
    "Records object": b'{"Records": {}}',
    "Records twice": b'{"Records": [], "Records": []}',
    "escaped Records": b'{"Record\\u0073": []}',
    "a record that is not an object": b'{"Records": [1]}',
    "null record": b'{"Records": [null]}',
    "trailing garbage": VALID + b"x",
    "two documents": VALID + VALID,
    "trailing comma": b'{"Records": [],}',
    "trailing comma in array": b'{"Records": [{},]}',
    "bom": b"\xef\xbb\xbf" + VALID,
    "leading zero": b'{"Records": [], "n": 01}',
    "bare minus": b'{"Records": [], "n": -}',
    "dot without digits": b'{"Records": [], "n": 1.}',
    "exponent without digits": b'{"Records": [], "n": 1e+}',
    "plus sign": b'{"Records": [], "n": +1}',
    "hex": b'{"Records": [], "n": 0x1}',
    "NaN": b'{"Records": [], "n": NaN}',
    "Infinity": b'{"Records": [], "n": -Infinity}',
    "bad literal": b'{"Records": [], "n": nul}',
    "single quotes": b"{'Records': []}",
    "control character": b'{"Records": [], "s": "a\tb"}',
    "bad escape": b'{"Records": [], "s": "\\x41"}',
    "short unicode escape": b'{"Records": [], "s": "\\u12"}',
    "lone high surrogate": b'{"Records": [], "s": "\\ud800"}',
    "lone low surrogate": b'{"Records": [], "s": "\\udc00"}',
    "high surrogate then letter": b'{"Records": [], "s": "\\ud800\\u0041"}',
    "invalid utf-8": b'{"Records": [], "s": "\xff"}',
    "overlong utf-8": b'{"Records": [], "s": "\xc0\xaf"}',
    "utf-8 surrogate": b'{"Records": [], "s": "\xed\xa0\x80"}',
    "beyond U+10FFFF": b'{"Records": [], "s": "\xf4\x90\x80\x80"}',
    "truncated utf-8": b'{"Records": [], "s": "\xe2\x82"}',
    "invalid utf-8 in a key": b'{"Records": [], "\xfe": 1}',
    "deep nesting": b'{"Records": [], "x": ' + b"[" * 70 + b"]" * 70 + b"}",
    "deep nesting in a record": b'{"Records": [{"x": '
    + b"{" * 3
    + b'"a": '
    + b"[" * 70
    + b"]" * 70
    + b"}" * 3
    + b"}]}",
    "unterminated string": b'{"Records": [{"eventName": "Decr',
    "wrong type: eventTime number": trail([_rec(eventTime=5)]),
    "wrong type in a non-KMS record": trail([{"eventSource": "s3.amazonaws.com", "userAgent": ["x"]}]),
    "wrong type: userIdentity string": trail([_rec(userIdentity="x")]),
    "wrong type: arn object": trail([_rec(userIdentity={"arn": {}})]),
    "wrong type: sessionIssuer list": trail([_rec(userIdentity={"sessionContext": {"sessionIssuer": []}})]),
    "wrong type: resources object": trail([_rec(resources={"ARN": KEY})]),
    "wrong type: resource ARN number": trail([_rec(resources=[{"ARN": 1}])]),
    "wrong type: keyId number": trail([_rec(requestParameters={"keyId": 1})]),
    "wrong type: requestParameters string": trail([_rec(requestParameters="{}")]),
    "wrong type: encryption context list": trail([_rec(requestParameters={"encryptionContext": ["arn:x"]})]),
    "wrong type: encryption context value": trail([_rec(requestParameters={"encryptionContext": {"a": 1}})]),
    "null encryption context value": trail([_rec(requestParameters={"encryptionContext": {"a": None}})]),
    "escaped member name": b'{"Records": [{"event\\u0053ource": "kms.amazonaws.com"}]}',
    "escaped eventSource": trail([_rec(eventSource="kms.amazonaws.com")]).replace(
        b"kms.amazonaws", b"kms\\u002eamazonaws"
    ),
    "escape in a kept string": trail([_rec(userAgent='a"b')]),
    "escape in a resource ARN": trail([_rec()]).replace(b":key/", b":key\\/"),
    "duplicate eventName": b'{"Records": [{"eventName": "a", "eventName": "b"}]}',
    "duplicate userIdentity arn": trail([_rec(userIdentity={"arn": "x"})]).replace(
        b'{"arn": "x"}', b'{"arn": "x", "arn": "y"}'
    ),
    "duplicate keyId in a KMS record": trail([_rec(requestParameters={"keyId": "x"})]).replace(
        b'{"keyId": "x"}', b'{"keyId": "x", "keyId": "y"}'
    ),
    "duplicate encryption context key": trail([_rec(requestParameters={"encryptionContext": {"a": "x"}})]).replace(
        b'{"a": "x"}', b'{"a": "x", "b": "arn:b", "a": "arn:a"}'
    ),
    "too many encryption context keys": trail(
        [_rec(requestParameters={"encryptionContext": {str(i): "v" for i in range(40)}})]
    ),
}


@pytest.mark.parametrize("name", sorted(MUST_BAIL))
def test_bails(name: str) -> None:
    assert check(MUST_BAIL[name]) is None


def test_every_truncation_bails() -> None:
    data = trail([_rec(), _rec("CreateKey", resources=..., requestParameters={"policy": '{"a": [1, 2.5e-3]}'})])
    assert accepted(data).num_rows == 2
    for i in range(len(data)):
        assert check(data[:i]) is None


def test_what_non_kms_records_may_carry() -> None:
    """Other services' parameters are never decoded as KMS's: any type there is fine, as in the msgspec path."""
    s3 = {"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "eventTime": "2024-05-01T00:00:00Z"}
    odd = {**s3, "requestParameters": {"keyId": 5, "encryptionContext": [1], "granteePrincipal": {}}}
    assert accepted(trail([odd, {**s3, "requestParameters": "text", "responseElements": [1]}, _rec()])).num_rows == 1
    dup = trail([{**s3, "requestParameters": {"keyId": "x"}}]).replace(b'{"keyId": "x"}', b'{"keyId": "x", "keyId": 1}')
    accepted(dup)


def test_unusual_but_valid_json_is_read() -> None:
    data = trail([_rec()], other={"n": [0, -0, 1e-7, 12.5e300, -3, True, False, None], "s": "\\/\u00e9\U0001f600"})
    accepted(data)
    accepted(b'{"a":{"b":[]},"Records":[{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventTime":"t"}]}')


def test_threads_share_the_scanner() -> None:
    data = gunzip.decompress(next(INVICTUS.glob("*.json")).read_bytes())
    want = accepted(data)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(20):
                got = fastpath.decode_table(data, "f.json", FileStats("f.json"))
                assert got is not None and got.equals(want)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --- generated records ------------------------------------------------------------------------------------------


class Obj:
    """A JSON object as (name, value) pairs, so that names can repeat."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"Obj({self.pairs!r})"


@dataclass(frozen=True)
class Style:
    comma: str
    colon: str
    ascii: bool  # \uXXXX for non-ASCII (json.dumps' default): escapes in every such string
    slash: bool  # "\/" for "/": escapes in every ARN


def encode(v: Any, style: Style) -> str:
    if isinstance(v, dict):
        v = Obj(list(v.items()))
    if isinstance(v, Obj):
        items = (f"{encode(k, style)}{style.colon}{encode(x, style)}" for k, x in v.pairs)
        return "{" + style.comma.join(items) + "}"
    if isinstance(v, list):
        return "[" + style.comma.join(encode(x, style) for x in v) + "]"
    if isinstance(v, str):
        text = json.dumps(v, ensure_ascii=style.ascii)
        return text.replace("/", "\\/") if style.slash else text
    return json.dumps(v)


ABSENT = object()
styles = st.builds(
    Style,
    comma=st.sampled_from([", ", ",", ",\n    ", " ,\r\n\t"]),
    colon=st.sampled_from([": ", ":", " : ", ":\n  "]),
    ascii=st.booleans(),
    slash=st.sampled_from([False, False, False, True]),
)
words = st.sampled_from(["", "a", "x/y", "é", "😀", 'a"b', "tab\t", "arn:", "null", "Decrypt", "1.08"])
texts = st.one_of(words, st.text(max_size=12))
key_ids = st.sampled_from(
    [
        KEY,
        KEY_ID,
        KEY_ID.replace("-", ""),
        "mrk-" + "ab" * 16,
        "alias/prod",
        "",
        "arn:aws:kms:r:1:alias/x",
        "a:b:c:d::f",
    ]
)
arns = st.one_of(
    key_ids,
    st.sampled_from(
        [
            "arn:aws:s3:::bucket/obj/x",
            "arn:aws:s3:::bucket",
            "arn:aws:s3:::",
            "arn:aws:ssm:us-east-1:1:parameter/p",
            "arn:aws:iam::1:role/r",
            f"arn:aws:sts::{ACCT}:assumed-role/r/s",
            "arn:aws:kms:eu:west:1:key/x",
            "arn:é:😀:x:acct:key/z",
        ]
    ),
    texts,
)
wrong = st.one_of(
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.just([1, "a"]), st.just(Obj([]))
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(st.tuples(texts, inner), max_size=3).map(lambda kv: Obj(list(kv)))
    ),
    max_leaves=8,
)


def opt(strategy: st.SearchStrategy[Any], rare_wrong: bool) -> st.SearchStrategy[Any]:
    """Absent, null or a value; with rare_wrong, sometimes a value of another type."""
    choices = [st.just(ABSENT), st.none(), strategy, strategy]
    if rare_wrong:
        choices.append(wrong)
    return st.one_of(*choices)


@st.composite
def obj(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]], odd: bool) -> Obj:
    """An object with some of ``fields``, junk members, shuffled; with ``odd``, sometimes a duplicated member."""
    pairs = [(k, v) for k, s in fields.items() if (v := draw(s)) is not ABSENT]
    pairs += draw(st.lists(st.tuples(st.sampled_from(["junk", "x-amz", "tlsDetails", "readOnly"]), junk), max_size=2))
    pairs = list(draw(st.permutations(pairs)))
    if odd and pairs and draw(st.integers(0, 9)) == 0:
        pairs.append(draw(st.sampled_from(pairs)))
    return Obj(pairs)


@st.composite
def records(draw: st.DrawFn, odd: bool) -> Obj:
    o = lambda s: opt(s, odd)  # noqa: E731
    issuer = obj({"arn": o(arns), "type": st.just("Role")}, odd)
    session = obj({"sessionIssuer": o(issuer)}, odd)
    identity = obj(
        {
            "type": o(st.sampled_from(["AssumedRole", "AWSService", "IAMUser", "Root", "AWSAccount", ""])),
            "arn": o(arns),
            "accountId": o(st.sampled_from([ACCT, OTHER, ""])),
            "invokedBy": o(st.sampled_from(["s3.amazonaws.com", "AWS Internal", ""])),
            "sessionContext": o(session),
        },
        odd,
    )
    context = st.lists(
        st.tuples(st.sampled_from(["aws:s3:arn", "SecretARN", "a", "b", "é"]), arns),
        max_size=3,
        unique_by=lambda kv: kv[0],
    )
    params = obj(
        {
            "keyId": o(key_ids),
            "granteePrincipal": o(st.sampled_from([f"arn:aws:iam::{OTHER}:root", f"{OTHER}:root", ""])),
            "aliasName": o(st.sampled_from(["alias/prod", "alias/arn:x", ""])),
            "encryptionContext": o(context.map(lambda kv: Obj(list(kv)))),
            "policy": opt(st.just('{"Statement": [{"Principal": {"AWS": "arn:aws:iam::1:root"}}]}'), False),
        },
        odd,
    )
    response = obj({"keyId": o(key_ids), "keyMetadata": o(obj({"arn": o(arns)}, odd))}, odd)
    resource = obj({"ARN": o(arns), "type": st.just("AWS::KMS::Key")}, odd)
    names = st.sampled_from(
        [
            *("Decrypt", "Encrypt", "GenerateDataKey", "ReEncrypt", "CreateKey", "PutKeyPolicy", "CreateGrant"),
            *("DeleteAlias", "CreateAlias", "ScheduleKeyDeletion", "DescribeKey", "ListAliases", ""),
        ]
    )
    fields = {
        "eventVersion": st.just("1.08"),
        "userIdentity": o(identity),
        "eventTime": o(
            st.sampled_from(["2024-05-01T00:00:00Z", "2024-05-01T00:00:00.5Z", "2024-05-01 01:00:00", "x", ""])
        ),
        "eventSource": st.one_of(st.just("kms.amazonaws.com"), o(st.sampled_from(["s3.amazonaws.com", "", "KMS"]))),
        "eventName": o(names),
        "awsRegion": o(st.sampled_from(["us-east-1", "eu-west-1", "", "a:b"])),
        "sourceIPAddress": o(texts),
        "userAgent": o(texts),
        "errorCode": o(st.sampled_from(["AccessDenied", ""])),
        "requestParameters": st.one_of(st.just(ABSENT), st.none(), params, params, wrong if odd else params),
        "responseElements": st.one_of(st.just(ABSENT), st.none(), response, wrong),
        "eventID": o(texts),
        "recipientAccountId": o(st.sampled_from([ACCT, OTHER, "", "1:2"])),
        "resources": o(st.lists(st.one_of(resource, wrong) if odd else resource, max_size=3)),
    }
    return draw(obj(fields, odd))


@st.composite
def documents(draw: st.DrawFn, odd: bool) -> bytes:
    style = draw(styles)
    recs = draw(st.lists(records(odd), max_size=6))
    if odd and draw(st.integers(0, 9)) == 0:
        recs.append(draw(junk))
    pairs = [("Records", recs), *draw(st.lists(st.tuples(st.just("meta"), junk), max_size=1))]
    space = draw(st.sampled_from(["", " ", "\n"]))
    return (space + encode(Obj(list(draw(st.permutations(pairs)))), style) + space).encode()


@SETTINGS
@given(documents(odd=True))
def test_generated_files_agree_or_bail(data: bytes) -> None:
    note("read" if check(data) is not None else "bailed")


@SETTINGS
@given(documents(odd=False))
def test_generated_files_agree(data: bytes) -> None:
    """Without wrong types or duplicates, most files are read, and they always agree."""
    note("read" if check(data) is not None else "bailed")


def unescaped(v: Any) -> Any:
    """``v`` without the characters json.dumps escapes when ensure_ascii is off (quotes, backslashes, controls)."""
    if isinstance(v, Obj):
        return Obj([(unescaped(k), unescaped(x)) for k, x in v.pairs])
    if isinstance(v, list):
        return [unescaped(x) for x in v]
    if isinstance(v, str):
        return "".join(c for c in v if c not in '"\\' and c >= " ")
    return v


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(odd=False), min_size=1, max_size=5))
def test_plain_generated_files_are_accepted(recs: list[Obj]) -> None:
    """Plain style (no escapes anywhere, real UTF-8): the fast path reads every such file."""
    data = encode(Obj([("Records", unescaped(recs))]), Style(", ", ": ", ascii=False, slash=False)).encode()
    assert b"\\" not in data
    accepted(data)


# --- fuzzing: byte mutations of a valid file ----------------------------------------------------------------------

FUZZ_BASE = encode(
    Obj(
        [
            (
                "Records",
                [
                    Obj(
                        [
                            (k, v)
                            for k, v in _rec(
                                requestParameters={"keyId": KEY_ID, "encryptionContext": {"a": "arn:aws:s3:::b/o"}}
                            ).items()
                        ]
                    ),
                    Obj(
                        [
                            (k, v)
                            for k, v in _rec(
                                "CreateGrant",
                                userIdentity={"type": "AWSService"},
                                requestParameters={"granteePrincipal": "arn:é"},
                            ).items()
                        ]
                    ),
                    Obj([("eventSource", "s3.amazonaws.com"), ("n", [1.5, -2e3, True, None, "😀"])]),
                ],
            )
        ]
    ),
    Style(", ", ": ", ascii=False, slash=False),
).encode()

mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "replace"]),
    st.integers(0, len(FUZZ_BASE) - 1),
    st.sampled_from(
        [
            b'"',
            b"\\",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"\x80",
            b"\xff",
            b"\xc3",
            b"n",
            b"0",
            b"-",
            b" ",
            b"\x00",
            b"\\u",
        ]
    ),
)


def mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, pos, b in ops:
        pos %= max(1, len(buf))
        if op == "flip" and buf:
            buf[pos] ^= 1 << (pos % 8)
        elif op == "insert":
            buf[pos:pos] = b
        elif op == "delete":
            del buf[pos : pos + len(b)]
        else:
            buf[pos : pos + len(b)] = b
    return bytes(buf)


def test_fuzz_base_is_accepted() -> None:
    assert accepted(FUZZ_BASE).num_rows == 2


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutations_never_crash_or_diverge(ops: list[tuple[str, int, bytes]]) -> None:
    note("read" if check(mutate(FUZZ_BASE, ops)) is not None else "bailed")


def test_callers_fall_back_when_it_bails(monkeypatch: pytest.MonkeyPatch) -> None:
    """AVAILABLE False (no compiler at install time): every call is a bail-out."""
    monkeypatch.setattr(fastpath, "_native", None)
    assert fastpath.decode_table(VALID, "f", FileStats("f")) is None
    table, taken = fastpath.decode_tables([(VALID, "f", FileStats("f"))])
    assert taken == [False] and table.num_rows == 0 and table.schema.equals(ARROW_SCHEMA)


# --- many files at once ------------------------------------------------------------------------------------------


def check_batch(datas: list[bytes]) -> list[bool]:
    """decode_tables over ``datas``: the files it took give the per-file tables, concatenated; the rest is untouched."""
    files = [(d, f"s3://b/{i}.json", FileStats(f"s3://b/{i}.json")) for i, d in enumerate(datas)]
    table, taken = fastpath.decode_tables(files)
    wanted = []
    for (d, name, stats), took in zip(files, taken, strict=True):
        if not took:
            assert stats == FileStats(name)
            continue
        want = reference(d, name)
        assert not isinstance(want, BaseException), want
        wanted.append(want[0])
        assert stats == want[1]
        single = fastpath.decode_table(d, name, FileStats(name))  # and each one alone is taken too
        assert single is not None and single.equals(want[0])
    expected = pa.concat_tables(wanted) if wanted else table.slice(0, 0)
    assert table.schema.equals(ARROW_SCHEMA) and table.equals(expected)
    return taken


def test_batch_of_good_and_bad_files() -> None:
    """A file that fails half-way (after rows were written) leaves nothing behind."""
    good = trail([_rec(), _rec("CreateKey", resources=..., responseElements={"keyId": KEY_ID})])
    late_failure = trail([_rec()] * 3 + [{"eventSource": "kms.amazonaws.com", "eventName": 5}])
    bad_utf8_at_end = trail([_rec()] * 2)[:-2] + b', "\xff"]}'
    samples = [p.read_bytes() for p in sorted(INVICTUS.glob("*.json"))[:3]]
    datas = [good, late_failure, *samples, bad_utf8_at_end, MUST_BAIL["deep nesting"], good.replace(b"alice", b"bob")]
    assert check_batch(datas) == [True, False, True, True, True, False, False, True]
    assert check_batch([]) == []
    assert check_batch([late_failure]) == [False]


def test_batch_needs_distinct_names() -> None:
    with pytest.raises(ValueError, match="distinct"):
        fastpath.decode_tables([(VALID, "f", FileStats("f")), (VALID, "f", FileStats("f"))])


@SETTINGS
@given(st.lists(documents(odd=True), max_size=5))
def test_generated_batches_agree(datas: list[bytes]) -> None:
    check_batch(datas)
