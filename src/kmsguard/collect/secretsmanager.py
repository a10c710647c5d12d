"""Secrets Manager secrets and their keys. One call per region: ListSecrets (paginated, tags included).

A secret without KmsKeyId is encrypted under the AWS managed key alias/aws/secretsmanager.
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.model.snapshot import Resource

SERVICE = "secretsmanager"
DEFAULT_KEY = "alias/aws/secretsmanager"


def collect(ctx: RegionContext) -> None:
    sm = ctx.client(SERVICE)
    for s in paginate(sm, "list_secrets", "SecretList"):
        ctx.snapshot.resources.append(
            Resource(
                service=SERVICE,
                resource_type="AWS::SecretsManager::Secret",
                arn=s["ARN"],
                name=s["Name"],
                account=ctx.account,
                region=ctx.region,
                encryption="kms",
                key_ref=s.get("KmsKeyId") or DEFAULT_KEY,
                tags=tag_dict(s.get("Tags")),
            )
        )
