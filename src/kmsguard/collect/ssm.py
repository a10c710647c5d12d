"""SSM Parameter Store SecureString parameters and their keys.

One call per region: DescribeParameters filtered to Type SecureString (paginated). A SecureString
without KeyId uses the AWS managed key alias/aws/ssm. Tags are not read (one more call per parameter).
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate
from kmsguard.model.snapshot import Resource

SERVICE = "ssm"
DEFAULT_KEY = "alias/aws/ssm"


def collect(ctx: RegionContext) -> None:
    ssm = ctx.client(SERVICE)
    secure = [{"Key": "Type", "Values": ["SecureString"]}]
    for p in paginate(ssm, "describe_parameters", "Parameters", ParameterFilters=secure):
        name = p["Name"]
        arn = p.get("ARN") or ctx.arn(SERVICE, "parameter" + (name if name.startswith("/") else "/" + name))
        ctx.snapshot.resources.append(
            Resource(
                service=SERVICE,
                resource_type="AWS::SSM::Parameter",
                arn=arn,
                name=name,
                account=ctx.account,
                region=ctx.region,
                encryption="kms",
                key_ref=p.get("KeyId") or DEFAULT_KEY,
            )
        )
