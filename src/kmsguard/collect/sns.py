"""SNS topics and their keys.

Calls per region: ListTopics (paginated); per topic GetTopicAttributes and ListTagsForResource.
A topic without KmsMasterKeyId is not encrypted at rest with KMS.
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Resource

SERVICE = "sns"


def collect(ctx: RegionContext) -> None:
    sns = ctx.client(SERVICE)
    for t in paginate(sns, "list_topics", "Topics"):
        arn = t["TopicArn"]
        res = Resource(
            service=SERVICE,
            resource_type="AWS::SNS::Topic",
            arn=arn,
            name=arn.rsplit(":", 1)[-1],
            account=ctx.account,
            region=ctx.region,
        )
        with guard(res.errors, SERVICE, "GetTopicAttributes", arn):
            key = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId")
            res.encryption = "kms" if key else "none"
            res.key_ref = key or None
        with guard(res.errors, SERVICE, "ListTagsForResource", arn):
            res.tags = tag_dict(sns.list_tags_for_resource(ResourceArn=arn).get("Tags"))
        ctx.snapshot.resources.append(res)
