"""SQS queues and their keys.

Calls per region: ListQueues (paginated); per queue GetQueueAttributes and ListQueueTags.
KmsMasterKeyId means SSE-KMS; SqsManagedSseEnabled means SSE-SQS (an AWS owned key); neither, none.
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Resource

SERVICE = "sqs"


def collect(ctx: RegionContext) -> None:
    sqs = ctx.client(SERVICE)
    for url in paginate(sqs, "list_queues", "QueueUrls"):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        res = Resource(
            service=SERVICE,
            resource_type="AWS::SQS::Queue",
            arn=ctx.arn(SERVICE, name),
            name=name,
            account=ctx.account,
            region=ctx.region,
        )
        with guard(res.errors, SERVICE, "GetQueueAttributes", res.arn):
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            res.arn = attrs.get("QueueArn", res.arn)
            if attrs.get("KmsMasterKeyId"):
                res.encryption, res.key_ref = "kms", attrs["KmsMasterKeyId"]
            elif attrs.get("SqsManagedSseEnabled") == "true":
                res.encryption = "aws-owned"
            else:
                res.encryption = "none"
        with guard(res.errors, SERVICE, "ListQueueTags", res.arn):
            res.tags = dict(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
        ctx.snapshot.resources.append(res)
