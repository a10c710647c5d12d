"""DynamoDB tables and their keys.

Calls per region: ListTables (paginated); per table DescribeTable and ListTagsOfResource.
No SSEDescription (or SSE disabled) means the table is under an AWS owned key; SSEType KMS means
a KMS key: KMSMasterKeyArn, or the AWS managed alias/aws/dynamodb.
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Resource

SERVICE = "dynamodb"
DEFAULT_KEY = "alias/aws/dynamodb"


def collect(ctx: RegionContext) -> None:
    ddb = ctx.client(SERVICE)
    for name in paginate(ddb, "list_tables", "TableNames"):
        res = Resource(
            service=SERVICE,
            resource_type="AWS::DynamoDB::Table",
            arn=ctx.arn(SERVICE, f"table/{name}"),
            name=name,
            account=ctx.account,
            region=ctx.region,
        )
        with guard(res.errors, SERVICE, "DescribeTable", res.arn):
            table = ddb.describe_table(TableName=name)["Table"]
            res.arn = table.get("TableArn", res.arn)
            sse = table.get("SSEDescription") or {}
            if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING") and sse.get("SSEType", "KMS") == "KMS":
                res.encryption = "kms"
                res.key_ref = sse.get("KMSMasterKeyArn") or DEFAULT_KEY
            else:
                res.encryption = "aws-owned"
        with guard(res.errors, SERVICE, "ListTagsOfResource", res.arn):
            res.tags = tag_dict(paginate(ddb, "list_tags_of_resource", "Tags", ResourceArn=res.arn))
        ctx.snapshot.resources.append(res)
