"""CloudWatch Logs log groups and their keys. One call per region: DescribeLogGroups (paginated).

A group without kmsKeyId is encrypted by CloudWatch Logs itself (an AWS owned key). Tags are not
read (one more call per group, and accounts hold thousands of Lambda log groups).
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.model.snapshot import Resource

SERVICE = "logs"


def collect(ctx: RegionContext) -> None:
    logs = ctx.client(SERVICE)
    for g in paginate(logs, "describe_log_groups", "logGroups"):
        name = g["logGroupName"]
        arn = g.get("logGroupArn") or g.get("arn", "").removesuffix(":*") or ctx.arn(SERVICE, f"log-group:{name}")
        key = g.get("kmsKeyId")
        ctx.snapshot.resources.append(
            Resource(
                service=SERVICE,
                resource_type="AWS::Logs::LogGroup",
                arn=arn,
                name=name,
                account=ctx.account,
                region=ctx.region,
                encryption="kms" if key else "aws-owned",
                key_ref=key or None,
            )
        )
