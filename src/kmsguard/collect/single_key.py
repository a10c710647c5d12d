"""Re-read one key exactly as a full scan reads it (the monitor's event path: a KMS event names one key)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from kmsguard.aws.errors import error_code
from kmsguard.aws.session import SessionFactory
from kmsguard.collect import kms as kms_collect
from kmsguard.collect.context import RegionContext, paginate
from kmsguard.model.snapshot import Key, RegionSnapshot


def collect_key(factory: SessionFactory, account: str, region: str, key_ref: str) -> Key | None:
    """The key ``key_ref`` (id, ARN or alias) in ``account``/``region`` read as a full scan reads it, or None
    when KMS says it does not exist (deleted). Other AWS errors propagate: the caller retries."""
    session = factory.assume(account, factory.options.role_name)
    ctx = RegionContext(session, region, RegionSnapshot(region=region))
    kms = ctx.client("kms")
    try:
        md = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    except ClientError as e:
        if error_code(e)[0] == "NotFoundException":
            return None
        raise
    aliases = [a["AliasName"] for a in paginate(kms, "list_aliases", "Aliases", KeyId=md["KeyId"])]
    key = Key(arn=md["Arn"], key_id=md["KeyId"], account=account, region=region, aliases=sorted(aliases))
    kms_collect.read_key(ctx, key)
    return key
