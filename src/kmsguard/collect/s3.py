"""S3 buckets (listed once per account) and their default encryption.

Calls: ListBuckets once per account (paginated; recent APIs give each bucket's region, otherwise
GetBucketLocation per bucket); per bucket in a scanned region, GetBucketEncryption and
GetBucketTagging through a client in the bucket's own region. Buckets in regions outside the scan
are left out, like every other resource there.

Default encryption: aws:kms / aws:kms:dsse -> "kms" with KMSMasterKeyID, or the AWS managed
alias/aws/s3 when no key is named; AES256 (SSE-S3) -> "aws-owned"; no configuration -> "none".
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from kmsguard.aws.session import AccountSession
from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import CollectionError, Resource

SERVICE = "s3"
DEFAULT_KEY = "alias/aws/s3"
_NO_ENCRYPTION = "ServerSideEncryptionConfigurationNotFoundError"
_NO_TAGS = "NoSuchTagSet"


def list_buckets(session: AccountSession) -> list[tuple[str, str | None]]:
    """(bucket name, region or None when ListBuckets did not say)."""
    s3 = session.global_client(SERVICE)
    return [(b["Name"], b.get("BucketRegion")) for b in paginate(s3, "list_buckets", "Buckets")]


def bucket_region(session: AccountSession, name: str, errors: list[CollectionError]) -> str | None:
    s3 = session.global_client(SERVICE)
    with guard(errors, SERVICE, "GetBucketLocation", f"arn:{session.partition}:s3:::{name}"):
        # us-east-1 is reported as no constraint (None), and EU as the legacy name of eu-west-1.
        loc = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)
    return None


def read_bucket(ctx: RegionContext, name: str) -> None:
    s3 = ctx.client(SERVICE)
    res = Resource(
        service=SERVICE,
        resource_type="AWS::S3::Bucket",
        arn=f"arn:{ctx.partition}:s3:::{name}",
        name=name,
        account=ctx.account,
        region=ctx.region,
    )
    with guard(res.errors, SERVICE, "GetBucketEncryption", res.arn):
        res.encryption, res.key_ref = _encryption(s3, name)
    with guard(res.errors, SERVICE, "GetBucketTagging", res.arn):
        res.tags = _tags(s3, name)
    ctx.snapshot.resources.append(res)


def _encryption(s3: Any, name: str) -> tuple[Any, str | None]:
    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == _NO_ENCRYPTION:
            return "none", None
        raise
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = default.get("SSEAlgorithm")
        if algorithm in ("aws:kms", "aws:kms:dsse"):
            return "kms", default.get("KMSMasterKeyID") or DEFAULT_KEY
        if algorithm == "AES256":
            return "aws-owned", None
    return "none", None


def _tags(s3: Any, name: str) -> dict[str, str]:
    try:
        return tag_dict(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == _NO_TAGS:
            return {}
        raise
