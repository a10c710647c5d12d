"""AWS's time in the emulator (kmsguard.demo.quotas): latency, token buckets per (account, Region, quota), and
AWS's throttling answers, over HTTP with boto3 (retries off, so each call is one request).

The buckets run on an injected clock: a frozen clock means no refill during a burst, so what is throttled
follows from the quota alone, never from how fast this machine is. No test asserts elapsed time.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector
from typer.testing import CliRunner

from kmsguard.aws.quotas import QuotaFileError, TokenBucket, load_quotas
from kmsguard.demo import patches
from kmsguard.demo.emulator import Emulator
from kmsguard.demo.quotas import LATENCY_HEADER, parse_latency

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(emu: Emulator, service: str, region: str = "us-east-1", creds: dict[str, str] | None = None) -> Any:
    creds = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=ONE_ATTEMPT,
    )


def _watch_throttling(client: Any) -> list[bool]:
    """botocore's own verdict (the check its standard and adaptive retry modes use) on each answer."""
    detector = ThrottlingErrorDetector(RetryEventAdapter())
    verdicts: list[bool] = []

    def on_answer(**kwargs: Any) -> None:
        verdicts.append(detector.is_throttling_error(**kwargs))

    client.meta.events.register("needs-retry", on_answer)
    return verdicts


def _error_code(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    return None


@pytest.fixture
def emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators of the test's own (quota buckets are per server), stopped after it."""
    started: list[Emulator] = []

    def start(**kwargs: Any) -> Emulator:
        emu = Emulator(aws_managed_policies=False, **kwargs).start()
        started.append(emu)
        return emu

    patches.reset_request_counts()
    yield start
    for emu in started:
        emu.stop()


KMS = "services:\n  kms:\n    quotas:\n      "  # a quota file's head; tests write its KMS entries


def _quota_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "quotas.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- token buckets -------------------------------------------------------------------------------------------


def test_token_bucket_holds_one_seconds_worth_and_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.1  # a tenth of a second at 10/s: one token
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # a long pause refills to the capacity, no more
    assert sum(bucket.take() for _ in range(20)) == 10


def test_token_bucket_below_one_per_second_admits_one_call_per_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(0.25, clock=clock)  # KMS GetParametersForImport's old quota: 1 in each 4 s
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 3.9
    assert bucket.take() is False
    clock.now += 0.1
    assert bucket.take() is True


# --- KMS: ThrottlingException --------------------------------------------------------------------------------


def test_burst_beyond_the_list_keys_quota_is_throttled_as_aws_does(emulator: Callable[..., Emulator]) -> None:
    quota = load_quotas("default").quota_for("kms", "ListKeys")
    assert quota is not None
    limit = int(quota.rate_in("us-east-1"))
    emu = emulator(aws_quotas="default", clock=Clock())
    kms = _client(emu, "kms")
    verdicts = _watch_throttling(kms)
    burst = limit + 50

    def call(_: int) -> str | None:
        return _error_code(kms.list_keys)

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(burst)))

    assert codes.count(None) == limit
    assert codes.count("ThrottlingException") == 50
    assert sorted(verdicts) == [False] * limit + [True] * 50  # botocore calls exactly those throttling
    assert emu.throttled_counts() == {("kms", "ListKeys"): 50}
    with urllib.request.urlopen(f"{emu.endpoint_url}/moto-api/kmsguard/requests", timeout=10) as resp:
        counted = json.load(resp)
    assert counted["requests"]["kms:ListKeys"] == burst  # throttled answers are answers
    assert counted["throttled"] == {"kms:ListKeys": 50} and counted["throttled_total"] == 50


def test_throttled_kms_answer_is_awss_json_error(emulator: Callable[..., Emulator]) -> None:
    emu = emulator(aws_quotas="default", clock=Clock())
    body = json.dumps({}).encode()
    headers = {
        "X-Amz-Target": "TrentService.CreateKey",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/kms/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    quota = load_quotas("default").quota_for("kms", "CreateKey")
    assert quota is not None
    statuses = []
    for _ in range(int(quota.rate) + 1):
        req = urllib.request.Request(emu.endpoint_url + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
            answer = json.loads(e.read())
    assert statuses[-1] == 400 and set(statuses[:-1]) == {200}
    assert answer == {"__type": "ThrottlingException", "message": "Rate exceeded"}


# --- query and other protocols -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "call", "code"),
    [
        ("sts", "GetCallerIdentity", lambda c: c.get_caller_identity(), "Throttling"),
        ("iam", "ListRoles", lambda c: c.list_roles(), "Throttling"),
        # CloudWatch speaks CBOR to this botocore; AWS names the query code in x-amzn-query-error.
        ("cloudwatch", "DescribeAlarms", lambda c: c.describe_alarms(), "Throttling"),
        # EC2 throttles with its own code, as AWS does.
        ("ec2", "DescribeVolumes", lambda c: c.describe_volumes(), "RequestLimitExceeded"),
    ],
)
def test_query_apis_are_throttled_in_their_own_error_shape(
    emulator: Callable[..., Emulator], tmp_path: Path, service: str, operation: str, call: Any, code: str
) -> None:
    path = _quota_file(tmp_path, f"services:\n  {service}:\n    quotas:\n      {operation}: 1\n")
    emu = emulator(aws_quotas=path, clock=Clock())
    client = _client(emu, service)
    verdicts = _watch_throttling(client)
    assert _error_code(lambda: call(client)) is None
    assert _error_code(lambda: call(client)) == code
    assert verdicts == [False, True]
    assert emu.throttled_counts() == {(service, operation): 1}


def test_unlisted_operations_are_unlimited(emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = emulator(aws_quotas=_quota_file(tmp_path, KMS + "ListKeys: 1\n"))
    kms = _client(emu, "kms")
    assert [_error_code(kms.list_aliases) for _ in range(5)] == [None] * 5


# --- per account, per Region ---------------------------------------------------------------------------------


def test_buckets_are_per_account_and_per_region(emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emu = emulator(aws_quotas=_quota_file(tmp_path, KMS + "ListKeys: 2\n"), clock=Clock())
    home = _client(emu, "kms", "us-east-1")
    assert [_error_code(home.list_keys) for _ in range(3)] == [None, None, "ThrottlingException"]

    other_region = _client(emu, "kms", "eu-west-1")
    assert [_error_code(other_region.list_keys) for _ in range(3)] == [None, None, "ThrottlingException"]

    # Another account: moto serves an assumed role's credentials from the role's account, and so do the quotas.
    creds = _client(emu, "sts").assume_role(RoleArn="arn:aws:iam::210987654321:role/audit", RoleSessionName="test")
    other = creds["Credentials"]
    assert _client(emu, "sts", creds=other).get_caller_identity()["Account"] == "210987654321"
    other_account = _client(emu, "kms", "us-east-1", creds=other)
    assert [_error_code(other_account.list_keys) for _ in range(3)] == [None, None, "ThrottlingException"]


def test_region_override_of_a_shared_quota(tmp_path: Path) -> None:
    table = load_quotas(
        _quota_file(
            tmp_path,
            KMS + "crypto:\n        operations: [Encrypt, Decrypt]\n        rate: 3\n        regions: {us-east-1: 7}\n",
        )
    )
    encrypt, decrypt = table.quota_for("kms", "Encrypt"), table.quota_for("kms", "Decrypt")
    assert encrypt is decrypt is not None  # one shared bucket
    assert (encrypt.rate_in("eu-west-1"), encrypt.rate_in("us-east-1")) == (3, 7)


def test_shared_quota_is_one_bucket_over_http(emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    path = _quota_file(
        tmp_path,
        KMS + "crypto:\n        operations: [Encrypt, Decrypt]\n        rate: 2\n",
    )
    emu = emulator(aws_quotas=path, clock=Clock())
    kms = _client(emu, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]  # CreateKey has no quota in this file
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]  # 1 of 2
    assert _error_code(lambda: kms.decrypt(CiphertextBlob=blob)) is None  # 2 of 2
    assert _error_code(lambda: kms.encrypt(KeyId=key, Plaintext=b"x")) == "ThrottlingException"


# --- latency -------------------------------------------------------------------------------------------------


def test_every_request_waits_the_latency_and_says_so(emulator: Callable[..., Emulator]) -> None:
    emu = emulator(aws_latency="40:10", seed=7)
    kms = _client(emu, "kms")
    waited = [float(kms.list_keys()["ResponseMetadata"]["HTTPHeaders"][LATENCY_HEADER]) for _ in range(8)]
    assert all(30 <= w <= 50 for w in waited)
    assert len(set(waited)) > 1  # jitter is drawn per request
    with urllib.request.urlopen(f"{emu.endpoint_url}/moto-api/kmsguard/aws-time", timeout=10) as resp:
        state = json.load(resp)
    assert state == {"latency_ms": 40, "jitter_ms": 10, "quotas": None, "paused": False}


def test_throttled_answers_wait_too(emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    path = _quota_file(tmp_path, "services:\n  sts:\n    quotas:\n      GetCallerIdentity: 1\n")
    emu = emulator(aws_latency="25", aws_quotas=path, clock=Clock())
    sts = _client(emu, "sts")
    sts.get_caller_identity()
    with pytest.raises(ClientError) as caught:
        sts.get_caller_identity()
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"][LATENCY_HEADER] == "25.000"


def test_off_by_default(client: Any) -> None:
    """The shared test server (Emulator() as every other test uses it): no wait, no header, no quota."""
    kms = client("kms")
    answers = [kms.list_keys() for _ in range(3)]
    assert all(LATENCY_HEADER not in a["ResponseMetadata"]["HTTPHeaders"] for a in answers)


def test_paused_time_neither_waits_nor_spends_quota(emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    path = _quota_file(tmp_path, KMS + "ListKeys: 1\n")
    emu = emulator(aws_latency="30", aws_quotas=path, clock=Clock())
    kms = _client(emu, "kms")
    with emu.aws_time_paused():
        answers = [kms.list_keys() for _ in range(3)]
    assert all(LATENCY_HEADER not in a["ResponseMetadata"]["HTTPHeaders"] for a in answers)
    assert [_error_code(kms.list_keys) for _ in range(2)] == [None, "ThrottlingException"]

    # The same over HTTP, for a benchmark that runs the emulator in another process.
    def post(body: bytes) -> dict[str, Any]:
        req = urllib.request.Request(f"{emu.endpoint_url}/moto-api/kmsguard/aws-time", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.load(resp))

    assert post(b'{"paused": true}')["paused"] is True
    assert _error_code(kms.list_keys) is None
    assert post(b'{"paused": false}')["paused"] is False
    assert _error_code(kms.list_keys) == "ThrottlingException"
    with pytest.raises(urllib.error.HTTPError) as bad:
        post(b'{"paused": "yes"}')
    assert bad.value.code == 400


def test_latency_changes_at_run_time_over_http(emulator: Callable[..., Emulator]) -> None:
    """One seeded server answers instantly, then slowly (the Organization benchmark's latency-hiding runs)."""
    emu = emulator(aws_latency="0")  # the layer, answering at once
    kms = _client(emu, "kms")

    def waited() -> float:
        return float(kms.list_keys()["ResponseMetadata"]["HTTPHeaders"][LATENCY_HEADER])

    def post(body: bytes) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"{emu.endpoint_url}/moto-api/kmsguard/aws-time", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(json.load(resp))
        except urllib.error.HTTPError as e:
            return e.code, dict(json.load(e))

    assert waited() == 0
    assert post(b'{"latency": "35:5"}') == (200, {"latency_ms": 35, "jitter_ms": 5, "quotas": None, "paused": False})
    assert 30 <= waited() <= 40
    assert post(b'{"latency": "0"}')[1]["latency_ms"] == 0
    assert waited() == 0
    # A bad request names the problem and changes nothing.
    status, body = post(b'{"latency": "fast", "paused": true}')
    assert status == 400 and "'fast'" in body["error"]
    status, body = post(b'{"latency": 30}')
    assert status == 400 and "MS[:JITTER]" in body["error"]
    assert post(b"{}")[0] == 400
    assert post(b'{"paused": false}')[1] == {"latency_ms": 0, "jitter_ms": 0, "quotas": None, "paused": False}


# --- reading --aws-latency and --aws-quotas ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ms", "jitter"), [("30", 30, 0), ("30:10", 30, 10), (" 2.5:0.5 ", 2.5, 0.5)])
def test_parse_latency(text: str, ms: float, jitter: float) -> None:
    latency = parse_latency(text)
    assert (latency.ms, latency.jitter_ms) == (ms, jitter)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "MS ''"),
        ("fast", "MS 'fast'"),
        ("30:x", "JITTER 'x'"),
        ("-5", "0 or more"),
        ("nan", "finite"),
        ("10:20", "must not exceed"),
    ],
)
def test_bad_latency_is_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_latency(text)


def test_the_default_table_has_its_source_and_kms_quotas() -> None:
    table = load_quotas("default")
    assert table.services == {"kms"}
    for op in ("ListKeys", "ListAliases", "ListGrants", "ListResourceTags", "DescribeKey", "GetKeyPolicy",
               "GetKeyRotationStatus", "PutKeyPolicy", "EnableKeyRotation", "DisableKey", "ScheduleKeyDeletion",
               "CancelKeyDeletion", "TagResource", "CreateAlias", "CreateGrant"):  # fmt: skip
        assert table.quota_for("kms", op) is not None, op
    text = Path(__file__).resolve().parents[2].joinpath("src/kmsguard/aws/quotas.yaml").read_text()
    assert "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html" in text


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (
            KMS + "ListKeys: lots\n",
            4,
            "services.kms.quotas.ListKeys: a quota is a positive",
        ),
        (KMS + "ListKeys: 0\n", 4, "positive number"),
        (KMS + "ListKeys: true\n", 4, "positive number"),
        ("services:\n  kms:\n    quota:\n      ListKeys: 5\n", 3, "unknown setting 'quota'"),
        (
            KMS + "a: {operations: [X], rate: 1}\n      X: 2\n",
            5,
            "X is already limited",
        ),
        (KMS + "a: {operations: [], rate: 1}\n", 4, "non-empty list"),
        (
            KMS + "a:\n        rate: 1\n        regions: {eu-west-1: -1}\n",
            6,
            "regions.eu-west-1: a quota is a positive",
        ),
        ("services: [kms]\n", 1, "services: expected a mapping"),
        ("services:\n  kms: {quotas: {ListKeys: 1}\n", 3, "not valid YAML"),
    ],
)
def test_bad_quota_file_names_file_and_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    path = _quota_file(tmp_path, text)
    with pytest.raises(QuotaFileError) as caught:
        load_quotas(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line {line}:"), message
    assert says in message and "\n" not in message


def test_missing_quota_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(QuotaFileError, match=r"nope\.yaml"):
        load_quotas(str(tmp_path / "nope.yaml"))


def _demo(args: list[str]) -> Any:
    import typer

    from kmsguard.cli.demo import demo

    app = typer.Typer()
    app.command()(demo)
    return CliRunner().invoke(app, args)


def test_demo_refuses_a_bad_quota_file_with_exit_2(tmp_path: Path) -> None:
    path = _quota_file(tmp_path, KMS + "ListKeys: -3\n")
    res = _demo(["--aws-quotas", path, "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert f"--aws-quotas: {path}: line 4:" in " ".join(res.output.split())


def test_demo_refuses_a_bad_latency_with_exit_2(tmp_path: Path) -> None:
    res = _demo(["--aws-latency", "30:40", "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert "--aws-latency" in res.output and "JITTER" in res.output
