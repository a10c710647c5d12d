"""EBS: the region's encryption-by-default setting and default key, and every volume's key.

Calls per region: GetEbsEncryptionByDefault, GetEbsDefaultKmsKeyId, DescribeVolumes (paginated).
"""

from __future__ import annotations

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Resource

SERVICE = "ec2"


def collect(ctx: RegionContext) -> None:
    ec2 = ctx.client(SERVICE)
    snap = ctx.snapshot
    with guard(snap.errors, SERVICE, "GetEbsEncryptionByDefault"):
        snap.ebs_encryption_by_default = bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
    with guard(snap.errors, SERVICE, "GetEbsDefaultKmsKeyId"):
        snap.ebs_default_key_ref = ec2.get_ebs_default_kms_key_id().get("KmsKeyId")
    with guard(snap.errors, SERVICE, "DescribeVolumes"):
        for v in paginate(ec2, "describe_volumes", "Volumes"):
            encrypted = bool(v.get("Encrypted"))
            snap.resources.append(
                Resource(
                    service="ebs",
                    resource_type="AWS::EC2::Volume",
                    arn=ctx.arn("ec2", f"volume/{v['VolumeId']}"),
                    name=v["VolumeId"],
                    account=ctx.account,
                    region=ctx.region,
                    encryption="kms" if encrypted else "none",
                    key_ref=v.get("KmsKeyId") if encrypted else None,
                    tags=tag_dict(v.get("Tags")),
                )
            )
