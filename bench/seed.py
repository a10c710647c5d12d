"""Fill a moto server with a benchmark-sized KMS estate: N customer keys per region, a realistic mix.

The mix is what a real estate looks like to a scanner, so that every code path of the collector runs:
symmetric keys with and without rotation (and various rotation periods), asymmetric, HMAC and
imported-material keys, disabled and pending-deletion keys, multi-Region keys, full / partial / no
tags, zero to two aliases, some grants, and key policies of every shape the checks judge (IAM-only,
the guide's recommended policy, public, cross-account, wildcard, admin-can-use). Each region also
gets a handful of resources encrypted with those keys (and with AWS managed keys), and a partial
audit set-up (a trail, a metric filter and alarm, a Config rule), so the per-region calls a scanner
makes return something.

The mix is deterministic (seeded RNG per region), so two runs produce the same estate.

Usage:
    python bench/seed.py                                     # start an in-process emulator, seed, keep it up
    python bench/seed.py --endpoint-url http://127.0.0.1:5000 --keys-per-region 500
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kmsguard.monitoring_setup.setup import POLICY_CHANGES_PATTERN
from kmsguard.policy.generate import ADMIN_ACTIONS as GENERATED_ADMIN_ACTIONS

ACCOUNT = "123456789012"
EXTERNAL_ACCOUNT = "210987654321"
DEFAULT_REGIONS = ("us-east-1", "eu-west-1")
ENVIRONMENTS = ("production", "staging", "development")
PROBE_REGION = "ap-southeast-2"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class SeedReport:
    endpoint_url: str
    regions: list[str]
    customer_keys_per_region: int
    # Keys that ListKeys returns per region after seeding: our customer keys plus whatever AWS managed
    # keys the emulator layer provides.
    listed_keys: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    calls: int = 0
    # Whether the server honours the Condition of a Deny statement (moto without the emulator layer
    # applies a DenyInsecureTransport Deny unconditionally, which would lock every caller out of the key).
    deny_conditions_honoured: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def total_keys(self) -> int:
        return sum(self.listed_keys.values())


def client(
    service: str, region: str, endpoint_url: str, pool: int = 10, credentials: dict[str, str] | None = None
) -> Any:
    """A boto3 client; ``credentials`` (boto3's keyword names) default to the server's default account."""
    cfg = Config(max_pool_connections=max(pool, 10), retries={"mode": "standard", "max_attempts": 5})
    return boto3.client(
        service,  # type: ignore[call-overload]  # any service name; the stubs only know literals
        region_name=region,
        endpoint_url=endpoint_url,
        config=cfg,
        **(credentials or CREDENTIALS),
    )


# --- key policies ----------------------------------------------------------------------------------------


def _root_statement(condition: bool, account: str = ACCOUNT) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Sid": "EnableIAMUserPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    if condition:
        st["Condition"] = {"StringEquals": {"kms:CallerAccount": account}}
    return st


ADMIN_ACTIONS = list(GENERATED_ADMIN_ACTIONS)  # the guide's administrator actions, from their one home
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def _role(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def policy_for(shape: str, env: str, deny_ok: bool, account: str = ACCOUNT) -> dict[str, Any]:
    """A key policy of the given shape; every shape keeps the root delegation so the key stays manageable."""
    statements: list[dict[str, Any]] = []
    if shape == "iam_only":
        statements = [_root_statement(False, account)]
    elif shape == "guide":
        statements = [
            _root_statement(True, account),
            {
                "Sid": "KeyAdministration",
                "Effect": "Allow",
                "Principal": {
                    "AWS": [
                        _role("SecurityTeamLead", account),
                        _role("KMSAdministrator", account),
                        _role("BreakGlass", account),
                    ]
                },
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "KeyUsageForEncryption",
                "Effect": "Allow",
                "Principal": {"AWS": [_role(f"{env}-app", account), _role(f"{env}-batch", account)]},
                "Action": USE_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:Environment": env}},
            },
        ]
        if deny_ok:
            statements.append(
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "kms:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            )
    elif shape == "public":
        statements = [
            _root_statement(False, account),
            {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
        ]
    elif shape == "external":
        statements = [
            _root_statement(False, account),
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{EXTERNAL_ACCOUNT}:root"},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
            },
        ]
    elif shape == "wildcard":
        statements = [
            _root_statement(False, account),
            {"Sid": "AppAll", "Effect": "Allow", "Principal": {"AWS": _role(f"{env}-app", account)},
             "Action": "kms:*", "Resource": "*"},
        ]  # fmt: skip
    elif shape == "admin_can_use":
        statements = [
            _root_statement(False, account),
            {
                "Sid": "AdminAndUse",
                "Effect": "Allow",
                "Principal": {"AWS": _role("KMSAdministrator", account)},
                "Action": [*ADMIN_ACTIONS, "kms:Decrypt", "kms:Encrypt"],
                "Resource": "*",
            },
        ]
    else:
        raise ValueError(f"unknown policy shape {shape!r}")
    return {"Version": "2012-10-17", "Id": f"kmsguard-bench-{shape}", "Statement": statements}


POLICY_SHAPES = ("iam_only", "guide", "public", "external", "wildcard", "admin_can_use")
POLICY_WEIGHTS = (35, 40, 3, 7, 8, 7)


# --- one key ---------------------------------------------------------------------------------------------


@dataclass
class KeyPlan:
    """What one seeded key looks like; drawn up front so the threads only make calls."""

    index: int
    region: str
    kind: str  # symmetric, multi_region, rsa, hmac, external
    env: str
    policy_shape: str
    tags: dict[str, str]
    aliases: list[str]
    rotation_days: int | None  # None: rotation off (or not applicable)
    grants: int
    state: str  # Enabled, Disabled, PendingDeletion


def plan_keys(region: str, n: int, seed: int = 2026) -> list[KeyPlan]:
    rng = random.Random(f"{seed}-{region}")
    plans: list[KeyPlan] = []
    for i in range(n):
        kind = rng.choices(["symmetric", "multi_region", "rsa", "hmac", "external"], [82, 2, 7, 5, 4])[0]
        env = rng.choice(ENVIRONMENTS)
        tag_roll = rng.random()
        tags: dict[str, str] = {}
        if tag_roll < 0.5:
            tags = {"Environment": env, "DataClassification": rng.choice(["CUI", "internal", "public"]),
                    "Owner": f"team-{rng.randint(1, 12)}", "CostCenter": f"cc-{rng.randint(100, 130)}"}  # fmt: skip
        elif tag_roll < 0.8:
            tags = {"Environment": env, "Owner": f"team-{rng.randint(1, 12)}"}
        alias_roll = rng.random()
        n_aliases = 0 if alias_roll < 0.1 else (2 if alias_roll > 0.93 else 1)
        aliases = [f"alias/{env}-svc{i:04d}-{a}" for a in range(n_aliases)]
        rotatable = kind in ("symmetric", "multi_region")
        rotation_days = rng.choice([90, 180, 365, 365, 365, 730]) if rotatable and rng.random() < 0.65 else None
        grants = rng.choice([1, 1, 2, 3]) if rng.random() < 0.2 else 0
        state_roll = rng.random()
        state = "Disabled" if state_roll < 0.04 else ("PendingDeletion" if state_roll < 0.07 else "Enabled")
        shape = rng.choices(POLICY_SHAPES, POLICY_WEIGHTS)[0]
        plans.append(KeyPlan(i, region, kind, env, shape, tags, aliases, rotation_days, grants, state))
    return plans


class _Counter:
    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._n += n

    @property
    def value(self) -> int:
        return self._n


def create_key(kms: Any, plan: KeyPlan, deny_ok: bool, calls: _Counter, account: str = ACCOUNT) -> str:
    """Create one key as planned; returns its ARN. Policy and tags go in CreateKey to save calls."""
    args: dict[str, Any] = {
        "Description": f"bench key {plan.index} ({plan.env}), created {time.strftime('%Y-%m-%d')}",
        "Policy": json.dumps(policy_for(plan.policy_shape, plan.env, deny_ok, account)),
    }
    if plan.tags:
        args["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in plan.tags.items()]
    if plan.kind == "rsa":
        args.update(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    elif plan.kind == "hmac":
        args.update(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    elif plan.kind == "external":
        args.update(Origin="EXTERNAL")
    elif plan.kind == "multi_region":
        args.update(MultiRegion=True)
    meta = kms.create_key(**args)["KeyMetadata"]
    calls.add()
    key_id, arn = meta["KeyId"], meta["Arn"]
    for alias in plan.aliases:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        calls.add()
    if plan.rotation_days is not None:
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=plan.rotation_days)
        calls.add()
    for g in range(plan.grants):
        grant: dict[str, Any] = {
            "KeyId": key_id,
            "GranteePrincipal": _role(f"{plan.env}-worker-{g}", account),
            "Operations": ["Decrypt", "GenerateDataKey"] if plan.kind != "rsa" else ["Sign", "Verify"],
            "Name": f"grant-{g}",
        }
        if g == 0 and plan.kind != "rsa":
            grant["Constraints"] = {"EncryptionContextSubset": {"Environment": plan.env}}
        if g == 2:
            grant["GranteePrincipal"] = f"arn:aws:iam::{EXTERNAL_ACCOUNT}:role/partner"
        kms.create_grant(**grant)
        calls.add()
    if plan.state == "Disabled":
        kms.disable_key(KeyId=key_id)
        calls.add()
    elif plan.state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7 + plan.index % 24)
        calls.add()
    return str(arn)


def probe_deny_conditions(kms: Any) -> bool:
    """True when a conditional Deny does not lock callers out (the emulator layer fixes moto's gap)."""
    key_id = kms.create_key(Description="bench probe")["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy_for("guide", "production", True)))
    try:
        kms.describe_key(KeyId=key_id)
        ok = True
    except ClientError:
        ok = False
    # The probe key must not count as one of the seeded keys; a locked-out key cannot be scheduled
    # for deletion either, so reset its policy first.
    with contextlib.suppress(ClientError):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy_for("iam_only", "x", False)))
    with contextlib.suppress(ClientError):
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    return ok


# --- per-region set-up: resources and audit ----------------------------------------------------------


def _try(report: SeedReport, calls: _Counter, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Make one set-up call; an emulator gap becomes a warning in the report, never a silent skip."""
    calls.add()
    try:
        return fn(**kwargs)
    except ClientError as e:
        report.warnings.append(f"{fn.__name__}: {e.response.get('Error', {}).get('Code')}: {e}")
    except Exception as e:  # moto answers an unimplemented API with a 500 that botocore cannot parse
        report.warnings.append(f"{fn.__name__}: {type(e).__name__}: {e}")
    return None


def seed_region_extras(
    endpoint_url: str,
    region: str,
    key_arns: list[str],
    report: SeedReport,
    calls: _Counter,
    home: bool,
    account: str = ACCOUNT,
    credentials: dict[str, str] | None = None,
) -> None:
    """A few resources per service (under CMKs, AWS managed keys, and unencrypted) and a partial audit set-up."""
    rng = random.Random(f"extras-{region}")
    picks = [rng.choice(key_arns) for _ in range(8)] if key_arns else [""] * 8

    s3 = client("s3", region, endpoint_url, credentials=credentials)
    sqs = client("sqs", region, endpoint_url, credentials=credentials)
    sns = client("sns", region, endpoint_url, credentials=credentials)
    sm = client("secretsmanager", region, endpoint_url, credentials=credentials)
    ssm = client("ssm", region, endpoint_url, credentials=credentials)
    logs = client("logs", region, endpoint_url, credentials=credentials)
    ddb = client("dynamodb", region, endpoint_url, credentials=credentials)
    ec2 = client("ec2", region, endpoint_url, credentials=credentials)
    # Bucket names are global in S3: another account's buckets need their own names.
    prefix = "bench" if account == ACCOUNT else f"bench-{account}"

    key: str | None  # a CMK, or None for "the service's default" (an AWS managed or AWS owned key)

    def run(fn: Callable[..., Any], **kwargs: Any) -> Any:
        return _try(report, calls, fn, **kwargs)

    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    bucket_rules = [
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": picks[0]},
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": picks[1]},
        {"SSEAlgorithm": "aws:kms"},  # the AWS managed key aws/s3
        {"SSEAlgorithm": "AES256"},  # SSE-S3: an AWS owned key
    ]
    for i, rule in enumerate(bucket_rules):
        name = f"{prefix}-{region}-data-{i}"
        run(s3.create_bucket, Bucket=name, **location)
        run(
            s3.put_bucket_encryption,
            Bucket=name,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
        )
        tags = [
            {"Key": "Environment", "Value": rng.choice(ENVIRONMENTS)},
            {"Key": "DataClassification", "Value": "CUI"},
        ]
        run(s3.put_bucket_tagging, Bucket=name, Tagging={"TagSet": tags})
    for i, key in enumerate([*picks[:3], "alias/aws/sqs"]):
        run(sqs.create_queue, QueueName=f"bench-q-{i}", Attributes={"KmsMasterKeyId": key})
    run(sqs.create_queue, QueueName="bench-q-plain")
    for i, key in enumerate([*picks[3:5], "alias/aws/sns"]):
        run(sns.create_topic, Name=f"bench-topic-{i}", Attributes={"KmsMasterKeyId": key})
    for i, key in enumerate([*picks[5:7], None]):
        run(sm.create_secret, Name=f"bench/secret-{i}", SecretString="s3cr3t", **({"KmsKeyId": key} if key else {}))
    kw: dict[str, Any]
    for i, key in enumerate([*picks[:2], None]):
        kw = {"KeyId": key} if key else {}
        run(ssm.put_parameter, Name=f"/bench/param-{i}", Value="v", Type="SecureString", **kw)
    for i, key in enumerate([*picks[2:4], None]):
        run(logs.create_log_group, logGroupName=f"/bench/app-{i}", **({"kmsKeyId": key} if key else {}))
    for i, key in enumerate([picks[4], None]):
        sse: dict[str, Any] = (
            {"SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}} if key else {}
        )
        run(
            ddb.create_table,
            TableName=f"bench-table-{i}",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            **sse,
        )
    for key in [picks[5], None]:
        kw = {"Encrypted": True, "KmsKeyId": key} if key else {"Encrypted": True}  # no key: the aws/ebs key
        run(ec2.create_volume, AvailabilityZone=f"{region}a", Size=8, **kw)

    # Audit: one multi-region trail (home: the first region) with CloudWatch Logs, a metric filter and alarm, and
    # one of the guide's two Config rules, in the home region only: partial, as the sample estate is.
    if not home:
        return
    ct = client("cloudtrail", region, endpoint_url, credentials=credentials)
    cw = client("cloudwatch", region, endpoint_url, credentials=credentials)
    cfg = client("config", region, endpoint_url, credentials=credentials)
    bucket = f"{prefix}-trail-{region}"
    run(s3.create_bucket, Bucket=bucket, **location)
    run(logs.create_log_group, logGroupName="/bench/cloudtrail")
    run(
        ct.create_trail,
        Name="bench-trail",
        S3BucketName=bucket,
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{region}:{account}:log-group:/bench/cloudtrail:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{account}:role/CloudTrailToCloudWatch",
    )
    run(ct.start_logging, Name="bench-trail")
    pattern = POLICY_CHANGES_PATTERN
    run(
        logs.put_metric_filter,
        logGroupName="/bench/cloudtrail",
        filterName="KMSKeyPolicyChanges",
        filterPattern=pattern,
        metricTransformations=[
            {"metricName": "KMSPolicyChanges", "metricNamespace": "Security/KMS", "metricValue": "1"}
        ],
    )
    run(
        cw.put_metric_alarm,
        AlarmName="KMS-Key-Policy-Changes",
        Namespace="Security/KMS",
        MetricName="KMSPolicyChanges",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[f"arn:aws:sns:{region}:{account}:security-alerts"],
    )
    run(
        cfg.put_config_rule,
        ConfigRule={
            "ConfigRuleName": "cmk-backing-key-rotation-enabled",
            "Source": {"Owner": "AWS", "SourceIdentifier": "CMK_BACKING_KEY_ROTATION_ENABLED"},
            "MaximumExecutionFrequency": "TwentyFour_Hours",
        },
    )


# --- driver ------------------------------------------------------------------------------------------------


def count_keys(endpoint_url: str, region: str, credentials: dict[str, str] | None = None) -> int:
    kms = client("kms", region, endpoint_url, credentials=credentials)
    return sum(len(p["Keys"]) for p in kms.get_paginator("list_keys").paginate())


def seed(
    endpoint_url: str,
    regions: Iterable[str] = DEFAULT_REGIONS,
    keys_per_region: int = 500,
    workers: int = 16,
    extras: bool = True,
    account: str = ACCOUNT,
    credentials: dict[str, str] | None = None,
    deny_ok: bool | None = None,
) -> SeedReport:
    """Seed ``account`` through ``credentials`` (default: the server's default account). ``deny_ok``: whether the
    server honours Deny conditions, when the caller already probed it (None: probe here)."""
    regions = list(regions)
    report = SeedReport(endpoint_url, regions, keys_per_region)
    calls = _Counter()
    start = time.perf_counter()
    kms_clients = {r: client("kms", r, endpoint_url, pool=workers, credentials=credentials) for r in regions}
    if deny_ok is None:
        # The probe runs in a region no benchmark scans, so its key is not counted in the estate.
        deny_ok = probe_deny_conditions(client("kms", PROBE_REGION, endpoint_url, credentials=credentials))
        calls.add(5)
    report.deny_conditions_honoured = deny_ok
    if not report.deny_conditions_honoured:
        report.warnings.append(
            "server applies Deny statements without their conditions: the guide-shaped policies are seeded "
            "without their DenyInsecureTransport statement"
        )
    plans = [p for r in regions for p in plan_keys(r, keys_per_region)]
    arns: dict[str, list[str]] = {r: [] for r in regions}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda p: (p.region, create_key(kms_clients[p.region], p, deny_ok, calls, account)), plans)
        for region, arn in results:
            arns[region].append(arn)
        if extras:
            list(
                pool.map(
                    lambda r: seed_region_extras(
                        endpoint_url, r, arns[r], report, calls, r == regions[0], account, credentials
                    ),
                    regions,
                )
            )
    report.seconds = time.perf_counter() - start
    report.calls = calls.value
    report.listed_keys = {r: count_keys(endpoint_url, r, credentials) for r in regions}
    return report


def serve_only() -> int:
    from kmsguard.demo.emulator import Emulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emulator = Emulator().start()
    print(json.dumps({"endpoint_url": emulator.endpoint_url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # returns when the parent closes our stdin (or dies)
    emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", help="seed this server (default: start an in-process emulator and keep it up)")
    ap.add_argument("--keys-per-region", type=int, default=500)
    ap.add_argument("--regions", default=",".join(DEFAULT_REGIONS))
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--no-extras", action="store_true", help="keys only: no resources, no audit set-up")
    ap.add_argument("--json", action="store_true", help="print the seed report as JSON")
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help='start an emulator, print {"endpoint_url": ...} on one line, seed nothing, serve until stdin closes '
        "(bench_scan.py runs the server this way, in its own process, so the scanners do not share its GIL)",
    )
    args = ap.parse_args(argv)
    if args.serve_only:
        return serve_only()

    emulator = None
    endpoint_url = args.endpoint_url
    if endpoint_url is None:
        from kmsguard.demo.emulator import Emulator

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request is noise
        emulator = Emulator().start()
        endpoint_url = emulator.endpoint_url
    report = seed(endpoint_url, args.regions.split(","), args.keys_per_region, args.workers, not args.no_extras)
    if args.json:
        print(json.dumps({**asdict(report), "total_keys": report.total_keys}, indent=2))
    else:
        print(
            f"seeded {endpoint_url}: {report.total_keys} keys listed ({report.listed_keys}) "
            f"with {report.calls} calls in {report.seconds:.1f} s"
        )
        for w in report.warnings:
            print(f"  warning: {w}", file=sys.stderr)
    if emulator is not None:
        print("emulator running; point tools at it with:")
        for k, v in emulator.env().items():
            print(f"  export {k}={v}")
        print("Ctrl-C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
