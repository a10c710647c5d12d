"""RDS DB instances and clusters, and the key each stores its data under.

Calls per region: DescribeDBInstances and DescribeDBClusters (paginated; tags come with them).
"""

from __future__ import annotations

from typing import Any

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Resource

SERVICE = "rds"


def collect(ctx: RegionContext) -> None:
    rds = ctx.client(SERVICE)
    with guard(ctx.snapshot.errors, SERVICE, "DescribeDBInstances"):
        for db in paginate(rds, "describe_db_instances", "DBInstances"):
            ctx.snapshot.resources.append(
                _resource(ctx, db, "AWS::RDS::DBInstance", db["DBInstanceArn"], db["DBInstanceIdentifier"])
            )
    with guard(ctx.snapshot.errors, SERVICE, "DescribeDBClusters"):
        for c in paginate(rds, "describe_db_clusters", "DBClusters"):
            ctx.snapshot.resources.append(
                _resource(ctx, c, "AWS::RDS::DBCluster", c["DBClusterArn"], c["DBClusterIdentifier"])
            )


def _resource(ctx: RegionContext, raw: dict[str, Any], rtype: str, arn: str, name: str) -> Resource:
    encrypted = bool(raw.get("StorageEncrypted"))
    return Resource(
        service=SERVICE,
        resource_type=rtype,
        arn=arn,
        name=name,
        account=ctx.account,
        region=ctx.region,
        encryption="kms" if encrypted else "none",
        key_ref=raw.get("KmsKeyId") if encrypted else None,
        tags=tag_dict(raw.get("TagList")),
    )
