"""The floor: a bare boto3 scan that makes only the calls kmsguard's collector makes, with the same concurrency.

It is what "as fast as a Python scanner can be against this server" means for kmsguard: the same
AWS calls (read from src/kmsguard/collect/, operation for operation: the per-key KMS calls, the
per-region audit and resource calls, the account-level calls), the same botocore client settings
(adaptive retries, timeouts, one connection per worker) and the same bound on threads, but no
Snapshot model, no progress, no error bookkeeping and no judgement. Responses are kept (in plain
dicts) so that the work of reading them is not optimised away, and nothing else is done with them.

kmsguard within 1.3x of this is the target. If the collector changes its calls, change this file:
bench_scan.py compares the per-operation counts of the two at the server and prints any difference.

Usage:
    python bench/floor_boto3.py --endpoint-url http://127.0.0.1:5000 --regions us-east-1,eu-west-1
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# The collector's defaults (kmsguard.aws.options.AwsOptions): mirrored, not imported, so the floor stays a bare
# boto3 script that runs without kmsguard installed.
MAX_WORKERS = 16
MAX_ATTEMPTS = 8
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Global services (IAM, Organizations, the S3 bucket list) are called in the partition's home region.
GLOBAL_REGION = "us-east-1"
IAM_FILTER = ["User", "Role", "Group", "LocalManagedPolicy"]


@dataclass
class FloorResult:
    seconds: float = 0.0
    keys: int = 0
    keys_by_region: dict[str, int] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # "service:Operation" -> calls made (client side)
    errors: Counter[str] = field(default_factory=Counter)  # "service:Operation:Code" -> failures

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class Floor:
    def __init__(self, endpoint_url: str | None, regions: list[str], max_workers: int = MAX_WORKERS) -> None:
        self.endpoint_url = endpoint_url
        self.regions = regions
        self.max_workers = max_workers
        self.config = Config(
            retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            max_pool_connections=max(10, max_workers),
        )
        self.session = boto3.Session()
        # kmsguard's SessionFactory: the session's region, else us-east-1 (DescribeRegions is called there).
        self.home_region = self.session.region_name or "us-east-1"
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.result = FloorResult()
        self.account_id = "000000000000"
        self.kept: list[Any] = []  # responses, so reading them is not skipped

    # --- plumbing -----------------------------------------------------------------------------------

    def client(self, service: str, region: str) -> Any:
        # Same as kmsguard: one client per (region, service), created under a lock (boto3.Session.client is
        # not thread-safe) and shared by the threads.
        key = (region, service)
        with self._lock:
            c = self._clients.get(key)
            if c is None:
                c = self.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=self.config,
                )
                self._clients[key] = c
            return c

    def call(self, c: Any, op: str, **kwargs: Any) -> Any:
        """One call; a failure is counted and returns None (the collector records it and carries on)."""
        name = f"{c.meta.service_model.service_name}:{c.meta.method_to_api_mapping.get(op, op)}"
        with self._lock:
            self.result.calls[name] += 1
        try:
            resp = getattr(c, op)(**kwargs)
        except Exception as e:  # botocore raises ResponseParserError (not a BotoCoreError) on moto's 500s
            code = e.response.get("Error", {}).get("Code", "?") if isinstance(e, ClientError) else type(e).__name__
            with self._lock:
                self.result.errors[f"{name}:{code}"] += 1
            return None
        self.kept.append(resp)
        return resp

    def pages(self, c: Any, op: str, result_key: str, **kwargs: Any) -> list[Any]:
        """Every item of a paginated operation; each page is one counted call."""
        items: list[Any] = []
        name = f"{c.meta.service_model.service_name}:{c.meta.method_to_api_mapping.get(op, op)}"
        try:
            for page in c.get_paginator(op).paginate(**kwargs):
                with self._lock:
                    self.result.calls[name] += 1
                items.extend(page.get(result_key, []))
        except Exception as e:  # botocore raises ResponseParserError (not a BotoCoreError) on moto's 500s
            code = e.response.get("Error", {}).get("Code", "?") if isinstance(e, ClientError) else type(e).__name__
            with self._lock:
                self.result.calls[name] += 1
                self.result.errors[f"{name}:{code}"] += 1
        self.kept.append(items)
        return items

    # --- KMS: ListKeys + ListAliases per region; at most 5 calls per key ----------------------------------

    def kms_region(self, region: str) -> list[dict[str, Any]]:
        kms = self.client("kms", region)
        keys = self.pages(kms, "list_keys", "Keys", PaginationConfig={"PageSize": 1000})  # the largest page KMS allows
        self.pages(kms, "list_aliases", "Aliases")
        with self._lock:
            self.result.keys_by_region[region] = len(keys)
        return keys

    def kms_key(self, region: str, key_id: str) -> None:
        kms = self.client("kms", region)
        described = self.call(kms, "describe_key", KeyId=key_id)
        md = described["KeyMetadata"] if described else None
        self.call(kms, "get_key_policy", KeyId=key_id, PolicyName="default")
        if md is not None and _rotation_applies(md):
            self.call(kms, "get_key_rotation_status", KeyId=key_id)
        if md is not None and md.get("KeyManager") == "CUSTOMER":
            self.pages(kms, "list_resource_tags", "Tags", KeyId=key_id)
        self.pages(kms, "list_grants", "Grants", KeyId=key_id)

    # --- the audit set-up and the resources, per region ----------------------------------------------------

    def cloudtrail(self, region: str) -> None:
        ct = self.client("cloudtrail", region)
        resp = self.call(ct, "describe_trails", includeShadowTrails=True)
        for t in (resp or {}).get("trailList", []):
            if t.get("HomeRegion", region) != region:
                continue  # a shadow copy: its status is read once, in its home region
            self.call(ct, "get_trail_status", Name=t["TrailARN"])
            self.call(ct, "get_event_selectors", TrailName=t["TrailARN"])
            group_arn = t.get("CloudWatchLogsLogGroupArn")
            if group_arn:
                parts = group_arn.split(":")
                logs = self.client("logs", parts[3] or region)
                self.pages(logs, "describe_metric_filters", "metricFilters", logGroupName=parts[6])

    def cloudwatch(self, region: str) -> None:
        self.pages(self.client("cloudwatch", region), "describe_alarms", "MetricAlarms", AlarmTypes=["MetricAlarm"])

    def configservice(self, region: str) -> None:
        cfg = self.client("config", region)
        self.pages(cfg, "describe_config_rules", "ConfigRules")
        if self.call(cfg, "describe_configuration_recorders") is not None:
            self.call(cfg, "describe_configuration_recorder_status")

    def ebs(self, region: str) -> None:
        ec2 = self.client("ec2", region)
        self.call(ec2, "get_ebs_encryption_by_default")
        self.call(ec2, "get_ebs_default_kms_key_id")
        self.pages(ec2, "describe_volumes", "Volumes")

    def rds(self, region: str) -> None:
        rds = self.client("rds", region)
        self.pages(rds, "describe_db_instances", "DBInstances")
        self.pages(rds, "describe_db_clusters", "DBClusters")

    def logs(self, region: str) -> None:
        self.pages(self.client("logs", region), "describe_log_groups", "logGroups")

    def secretsmanager(self, region: str) -> None:
        self.pages(self.client("secretsmanager", region), "list_secrets", "SecretList")

    def ssm(self, region: str) -> None:
        secure = [{"Key": "Type", "Values": ["SecureString"]}]
        self.pages(self.client("ssm", region), "describe_parameters", "Parameters", ParameterFilters=secure)

    def sns(self, region: str) -> None:
        sns = self.client("sns", region)
        for t in self.pages(sns, "list_topics", "Topics"):
            self.call(sns, "get_topic_attributes", TopicArn=t["TopicArn"])
            self.call(sns, "list_tags_for_resource", ResourceArn=t["TopicArn"])

    def sqs(self, region: str) -> None:
        sqs = self.client("sqs", region)
        for url in self.pages(sqs, "list_queues", "QueueUrls"):
            self.call(sqs, "get_queue_attributes", QueueUrl=url, AttributeNames=["All"])
            self.call(sqs, "list_queue_tags", QueueUrl=url)

    def dynamodb(self, region: str) -> None:
        ddb = self.client("dynamodb", region)
        for name in self.pages(ddb, "list_tables", "TableNames"):
            table = self.call(ddb, "describe_table", TableName=name)
            fallback = f"arn:aws:dynamodb:{region}:{self.account_id}:table/{name}"
            arn = (table or {}).get("Table", {}).get("TableArn") or fallback
            self.pages(ddb, "list_tags_of_resource", "Tags", ResourceArn=arn)

    def region_tasks(self) -> list[Callable[[str], None]]:
        """Every per-region collector other than KMS, as kmsguard's collect/ runs them."""
        return [
            self.cloudtrail,
            self.cloudwatch,
            self.configservice,
            self.ebs,
            self.rds,
            self.logs,
            self.secretsmanager,
            self.ssm,
            self.sns,
            self.sqs,
            self.dynamodb,
        ]

    # --- the account: caller, Organization, regions; then IAM and the S3 bucket list ------------------------

    def account(self) -> None:
        home = self.home_region
        ident = self.call(self.client("sts", home), "get_caller_identity")
        self.account_id = ident["Account"] if ident else "000000000000"
        self.call(self.client("organizations", GLOBAL_REGION), "describe_organization")
        self.call(self.client("ec2", home), "describe_regions", AllRegions=True)

    def iam(self) -> None:
        iam = self.client("iam", GLOBAL_REGION)
        self.pages(iam, "get_account_authorization_details", "Policies", Filter=IAM_FILTER)

    def s3_buckets(self, pool: ThreadPoolExecutor) -> list[Future[None]]:
        s3 = self.client("s3", GLOBAL_REGION)
        return [
            pool.submit(self.s3_bucket, b["Name"], b.get("BucketRegion"))
            for b in self.pages(s3, "list_buckets", "Buckets")
        ]

    def s3_bucket(self, name: str, region: str | None) -> None:
        if region is None:
            loc = self.call(self.client("s3", GLOBAL_REGION), "get_bucket_location", Bucket=name)
            constraint = (loc or {}).get("LocationConstraint")
            region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)
        if region not in self.regions:
            return  # the collector leaves out buckets of regions it does not scan
        s3 = self.client("s3", region)
        self.call(s3, "get_bucket_encryption", Bucket=name)
        self.call(s3, "get_bucket_tagging", Bucket=name)

    # --- driver ---------------------------------------------------------------------------------------------

    def run(self) -> FloorResult:
        start = time.perf_counter()
        self.account()
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            listings = {r: pool.submit(self.kms_region, r) for r in self.regions}
            others = [pool.submit(task, r) for r in self.regions for task in self.region_tasks()]
            others.append(pool.submit(self.iam))
            buckets = pool.submit(self.s3_buckets, pool)
            # The per-key calls (and the per-bucket ones) go into the same bounded pool as soon as their listing
            # is back, as the collector does; the main thread only submits and waits.
            key_futures: list[Future[None]] = []
            for region, fut in listings.items():
                for k in fut.result():
                    key_futures.append(pool.submit(self.kms_key, region, k["KeyId"]))
            for f in [*others, *buckets.result(), *key_futures]:
                f.result()
        self.result.seconds = time.perf_counter() - start
        self.result.keys = sum(self.result.keys_by_region.values())
        return self.result


def _rotation_applies(md: dict[str, Any]) -> bool:
    # The collector's rule (kmsguard.collect.kms.rotation_applies): only where KMS can rotate the key.
    return (
        md.get("KeyManager") == "CUSTOMER"
        and md.get("KeyState") in ("Enabled", "Disabled")
        and (md.get("KeySpec") or md.get("CustomerMasterKeySpec")) == "SYMMETRIC_DEFAULT"
        and md.get("Origin") == "AWS_KMS"
        and not md.get("CustomKeyStoreId")
    )


def run_floor(endpoint_url: str | None, regions: list[str], max_workers: int = MAX_WORKERS) -> FloorResult:
    return Floor(endpoint_url, regions, max_workers).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", help="AWS endpoint (an emulator); default: AWS itself")
    ap.add_argument("--regions", default="us-east-1,eu-west-1")
    ap.add_argument("--max-workers", type=int, default=MAX_WORKERS)
    args = ap.parse_args(argv)
    r = run_floor(args.endpoint_url, args.regions.split(","), args.max_workers)
    print(
        json.dumps(
            {
                "seconds": round(r.seconds, 3),
                "keys": r.keys,
                "keys_by_region": r.keys_by_region,
                "calls": r.total_calls,
                "calls_by_operation": dict(sorted(r.calls.items())),
                "errors": dict(r.errors),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
