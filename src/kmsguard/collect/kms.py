"""KMS keys of one region: the list, the aliases, and at most five calls per key.

Call budget
-----------
Per region: kms:ListKeys and kms:ListAliases (one page each per 1,000 keys/100 aliases), once.
Aliases are mapped to keys from that one listing, never per key.

Per key, in order, each at most once (plus extra pages for keys with very many tags or grants):

1. DescribeKey - metadata; decides which of the calls below apply.
2. GetKeyPolicy (PolicyName "default") - every key, AWS managed ones too, so reports can show it.
3. GetKeyRotationStatus - only where rotation is possible: customer managed, Enabled or Disabled,
   SYMMETRIC_DEFAULT, AWS_KMS key material, no custom key store. Elsewhere KMS refuses the call
   (asymmetric, HMAC, imported, custom key store) or it is meaningless (AWS managed keys rotate
   yearly by themselves; pending deletion), so asking would only add calls and false errors.
4. ListResourceTags - customer managed only (AWS managed keys cannot be tagged).
5. ListGrants - every key: services act on AWS managed keys through grants.

So a customer managed key costs at most 5 calls and an AWS managed key 3. A failing call becomes a
CollectionError on the key and the other fields are still read: a key is never dropped.
"""

from __future__ import annotations

from typing import Any

from kmsguard.collect.context import RegionContext, paginate, tag_dict
from kmsguard.collect.errors import guard
from kmsguard.model.snapshot import Grant, Key

SERVICE = "kms"


def list_keys(ctx: RegionContext) -> list[Key]:
    """The region's keys with their aliases (no per-key calls yet). ListKeys failing raises."""
    kms = ctx.client(SERVICE)
    # 1,000 is the largest page ListKeys allows (default 100): fewer per-region calls on big estates.
    listed = paginate(kms, "list_keys", "Keys", PaginationConfig={"PageSize": 1000})
    with guard(ctx.snapshot.errors, SERVICE, "ListAliases"):
        for alias in paginate(kms, "list_aliases", "Aliases"):
            # alias/aws/* names without a target are AWS managed keys not created yet: nothing to map.
            if alias.get("TargetKeyId"):
                ctx.aliases[alias["AliasName"]] = alias["TargetKeyId"]
    by_key: dict[str, list[str]] = {}
    for name, target in ctx.aliases.items():
        by_key.setdefault(target, []).append(name)
    return [
        Key(
            arn=k["KeyArn"],
            key_id=k["KeyId"],
            account=ctx.account,
            region=ctx.region,
            aliases=sorted(by_key.get(k["KeyId"], [])),
        )
        for k in listed
    ]


def rotation_applies(key: Key) -> bool:
    return (
        key.key_manager == "CUSTOMER"
        and key.key_state in ("Enabled", "Disabled")
        and key.key_spec == "SYMMETRIC_DEFAULT"
        and key.origin == "AWS_KMS"
        and not key.custom_key_store_id
    )


def read_key(ctx: RegionContext, key: Key) -> None:
    """Fill ``key`` in place with at most five calls (see the module docstring)."""
    kms = ctx.client(SERVICE)
    described = False
    with guard(key.errors, SERVICE, "DescribeKey", key.arn):
        _fill_metadata(key, kms.describe_key(KeyId=key.key_id)["KeyMetadata"])
        described = True
    with guard(key.errors, SERVICE, "GetKeyPolicy", key.arn):
        key.policy = kms.get_key_policy(KeyId=key.key_id, PolicyName="default")["Policy"]
    # Without DescribeKey we cannot tell which calls apply; asking anyway would add misleading errors.
    if described and rotation_applies(key):
        with guard(key.errors, SERVICE, "GetKeyRotationStatus", key.arn):
            status = kms.get_key_rotation_status(KeyId=key.key_id)
            key.rotation_enabled = bool(status["KeyRotationEnabled"])
            key.rotation_period_days = status.get("RotationPeriodInDays")
            key.next_rotation_date = status.get("NextRotationDate")
    if described and key.is_customer_managed:
        with guard(key.errors, SERVICE, "ListResourceTags", key.arn):
            key.tags = tag_dict(paginate(kms, "list_resource_tags", "Tags", KeyId=key.key_id), "TagKey", "TagValue")
    with guard(key.errors, SERVICE, "ListGrants", key.arn):
        key.grants = [_grant(g) for g in paginate(kms, "list_grants", "Grants", KeyId=key.key_id)]


def _fill_metadata(key: Key, md: dict[str, Any]) -> None:
    key.key_manager = md.get("KeyManager")
    key.key_state = md.get("KeyState")
    key.key_spec = md.get("KeySpec") or md.get("CustomerMasterKeySpec")
    key.key_usage = md.get("KeyUsage")
    key.origin = md.get("Origin")
    key.custom_key_store_id = md.get("CustomKeyStoreId")
    key.multi_region = md.get("MultiRegion")
    mrc = md.get("MultiRegionConfiguration") or {}
    primary = mrc.get("PrimaryKey") or {}
    # PRIMARY or REPLICA as AWS's MultiRegionKeyType says, read from which key is the primary: the emulator (moto 5)
    # reports a primary as REPLICA once it has a replica, and the ARN cannot be stale.
    if primary.get("Arn"):
        key.multi_region_key_type = "PRIMARY" if primary["Arn"] == md.get("Arn") else "REPLICA"
    else:
        key.multi_region_key_type = mrc.get("MultiRegionKeyType")
    key.primary_region = primary.get("Region")
    key.replica_regions = sorted({r["Region"] for r in mrc.get("ReplicaKeys") or () if r.get("Region")})
    key.description = md.get("Description")
    key.creation_date = md.get("CreationDate")
    key.deletion_date = md.get("DeletionDate")


def _grant(g: dict[str, Any]) -> Grant:
    return Grant(
        grant_id=g["GrantId"],
        name=g.get("Name") or None,
        grantee_principal=g.get("GranteePrincipal", ""),
        retiring_principal=g.get("RetiringPrincipal"),
        issuing_account=g.get("IssuingAccount"),
        operations=list(g.get("Operations", [])),
        constraints=g.get("Constraints") or None,
    )
