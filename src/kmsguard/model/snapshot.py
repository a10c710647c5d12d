"""The Snapshot: everything collect/ read from one or more accounts, as plain typed data.

A Snapshot round-trips through JSON without loss (``Snapshot.model_validate_json(s.model_dump_json())``),
so a scan can be judged offline, diffed against yesterday's, or built from IaC instead of an account.
Nothing here talks to AWS or judges anything.

Anything collect/ could not read is kept as a ``CollectionError`` on the object it concerns (a key,
a region, an account), never dropped: checks turn those into ERROR findings.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SerializerFunctionWrapHandler, model_serializer

from kmsguard.model.trail import TrailFacts

T = TypeVar("T")

# 2: AccountSnapshot.iam (users, groups, roles, managed policies) and Snapshot.organization (OUs, SCPs,
# RCPs). 3: a key's multi-Region configuration (Key.multi_region_key_type, primary_region, replica_regions).
# Older files still load: the new fields default to None (or empty), meaning "not collected". Snapshot.trail is
# written only when it holds facts (see ``_without_empty_trail``).
SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)


class _Model(BaseModel):
    # extra="forbid" makes a foreign or corrupted snapshot file fail loudly, naming the field.
    model_config = ConfigDict(extra="forbid", frozen=False)


class CollectionError(_Model):
    """One thing the collector could not read, and why."""

    service: str  # "kms", "cloudtrail", "s3", ...
    operation: str  # the API operation, e.g. "GetKeyPolicy"
    code: str  # AWS error code ("AccessDeniedException", "Throttling", "EndpointConnectionError", ...)
    message: str
    resource: str | None = None  # ARN or id of what could not be read, when there is one


class Grant(_Model):
    grant_id: str
    name: str | None = None
    grantee_principal: str
    retiring_principal: str | None = None
    issuing_account: str | None = None
    operations: list[str] = Field(default_factory=list)
    # The raw GrantConstraints ({"EncryptionContextSubset": {...}} or {"EncryptionContextEquals": {...}}).
    constraints: dict[str, dict[str, str]] | None = None


class Key(_Model):
    arn: str
    key_id: str
    account: str
    region: str
    # DescribeKey metadata. key_manager is "CUSTOMER" or "AWS".
    key_manager: str | None = None
    key_state: str | None = None  # Enabled, Disabled, PendingDeletion, PendingImport, Unavailable, ...
    key_spec: str | None = None  # SYMMETRIC_DEFAULT, RSA_2048, HMAC_256, ...
    key_usage: str | None = None  # ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT
    origin: str | None = None  # AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE
    custom_key_store_id: str | None = None
    multi_region: bool | None = None
    # A multi-Region key's MultiRegionConfiguration: PRIMARY or REPLICA, the primary's Region, the replicas' Regions.
    multi_region_key_type: str | None = None
    primary_region: str | None = None
    replica_regions: list[str] = Field(default_factory=list)
    description: str | None = None
    creation_date: datetime | None = None
    deletion_date: datetime | None = None
    aliases: list[str] = Field(default_factory=list)  # full alias names, "alias/..."
    tags: dict[str, str] = Field(default_factory=dict)
    # The key policy exactly as GetKeyPolicy returned it (JSON text); None when it could not be read.
    policy: str | None = None
    # None = not applicable (asymmetric, HMAC, imported, custom key store) or could not be read (see errors).
    rotation_enabled: bool | None = None
    rotation_period_days: int | None = None
    next_rotation_date: datetime | None = None
    grants: list[Grant] = Field(default_factory=list)
    errors: list[CollectionError] = Field(default_factory=list)

    @property
    def is_customer_managed(self) -> bool:
        return self.key_manager == "CUSTOMER"

    @property
    def is_aws_managed(self) -> bool:
        return self.key_manager == "AWS"

    @property
    def display_name(self) -> str:
        return self.aliases[0] if self.aliases else self.key_id


class Trail(_Model):
    name: str
    arn: str
    home_region: str
    is_multi_region: bool = False
    is_organization_trail: bool = False
    log_file_validation_enabled: bool = False
    cloudwatch_logs_log_group_arn: str | None = None
    kms_key_id: str | None = None
    is_logging: bool | None = None  # None = GetTrailStatus failed (see the region's errors)
    # Whether the trail records management events (both read and write, or at least write).
    logs_management_events: bool = True
    management_read_write_type: Literal["All", "ReadOnly", "WriteOnly", "None"] = "All"
    # True when the trail records management events but leaves out KMS's (ExcludeManagementEventSources
    # or an advanced selector on eventSource): KMS calls then go unrecorded even though the trail logs.
    kms_events_excluded: bool = False
    # Whether the trail's selectors record KMS's management write events (PutKeyPolicy, ScheduleKeyDeletion,
    # DisableKey) and its read events (Decrypt): each selector evaluated as a whole, an event being logged when
    # it matches any one selector. None (a snapshot from before these fields, or one built by hand) means:
    # derive from the three fields above (records management events of that kind and does not exclude KMS).
    kms_writes_recorded: bool | None = None
    kms_reads_recorded: bool | None = None


class MetricFilter(_Model):
    log_group_name: str
    name: str
    pattern: str
    # (namespace, metric name) pairs the filter publishes to.
    metrics: list[tuple[str, str]] = Field(default_factory=list)


class Alarm(_Model):
    name: str
    arn: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    statistic: str | None = None
    period: int | None = None
    evaluation_periods: int | None = None
    threshold: float | None = None
    comparison_operator: str | None = None
    actions_enabled: bool = True
    alarm_actions: list[str] = Field(default_factory=list)


class ConfigRule(_Model):
    name: str
    source_owner: str | None = None  # AWS or CUSTOM_LAMBDA / CUSTOM_POLICY
    source_identifier: str | None = None  # e.g. CMK_BACKING_KEY_ROTATION_ENABLED
    state: str | None = None  # ACTIVE, DELETING, EVALUATING, ...


class ConfigRecorder(_Model):
    name: str
    recording: bool = False
    all_supported: bool = False


class Resource(_Model):
    """A resource that stores data, and how it is encrypted at rest."""

    service: str  # s3, ebs, rds, secretsmanager, dynamodb, sns, sqs, logs, ssm
    resource_type: str  # AWS::S3::Bucket, AWS::EC2::Volume, AWS::RDS::DBInstance, ...
    arn: str
    name: str
    account: str
    region: str
    # "kms" (a KMS key), "aws-owned" (an AWS owned key, e.g. DynamoDB default, SSE-S3 AES256), "none".
    encryption: Literal["kms", "aws-owned", "none", "unknown"] = "unknown"
    # The key reference as the service reported it (id, alias or ARN), and the key ARN it resolved to.
    key_ref: str | None = None
    key_arn: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    errors: list[CollectionError] = Field(default_factory=list)


class IamPolicy(_Model):
    """An IAM identity policy that mentions KMS (customer managed or inline)."""

    arn: str  # the policy ARN, or "<principal-arn>/inline/<name>" for an inline policy
    name: str
    kind: Literal["managed", "inline"]
    document: str  # JSON text
    attached_to: list[str] = Field(default_factory=list)  # principal ARNs


class IamPrincipal(_Model):
    """An IAM user or role with everything that decides what it may do (GetAccountAuthorizationDetails)."""

    arn: str
    name: str
    kind: Literal["user", "role"]
    path: str = "/"
    inline_policies: dict[str, str] = Field(default_factory=dict)  # policy name -> JSON text
    managed_policies: list[str] = Field(default_factory=list)  # attached managed policy ARNs
    groups: list[str] = Field(default_factory=list)  # group names (users only)
    permissions_boundary: str | None = None  # a managed policy ARN
    trust_policy: str | None = None  # JSON text (roles only)
    tags: dict[str, str] = Field(default_factory=dict)
    # A document that did not parse: the principal's access cannot be judged, and says so.
    errors: list[CollectionError] = Field(default_factory=list)

    @property
    def service_linked(self) -> bool:
        # AWS creates every service-linked role under this path; SCPs do not restrict them.
        return self.kind == "role" and self.path.startswith("/aws-service-role/")


class IamGroup(_Model):
    arn: str
    name: str
    inline_policies: dict[str, str] = Field(default_factory=dict)
    managed_policies: list[str] = Field(default_factory=list)
    errors: list[CollectionError] = Field(default_factory=list)


class ManagedPolicy(_Model):
    """A managed policy's default version (customer managed, or AWS managed when something uses it)."""

    arn: str
    name: str
    document: str | None  # JSON text; None when it could not be read (see errors)
    aws_managed: bool = False
    errors: list[CollectionError] = Field(default_factory=list)


class IamInventory(_Model):
    principals: list[IamPrincipal] = Field(default_factory=list)
    groups: list[IamGroup] = Field(default_factory=list)
    policies: list[ManagedPolicy] = Field(default_factory=list)


class OrgUnit(_Model):
    id: str  # r-... for the root, ou-... for an OU
    name: str | None = None
    parent: str | None = None  # None for the root


class OrgPolicy(_Model):
    id: str
    name: str
    kind: Literal["SCP", "RCP"]
    document: str | None  # JSON text; None when it could not be read (see Organization.errors)
    aws_managed: bool = False
    targets: list[str] = Field(default_factory=list)  # root, OU and account ids it is attached to


class Organization(_Model):
    """The AWS Organization as far as the caller could read it."""

    id: str
    management_account: str | None = None
    units: list[OrgUnit] = Field(default_factory=list)  # the root and every OU
    account_parents: dict[str, str] = Field(default_factory=dict)  # account id -> parent (root or OU id)
    # Which policy types are enabled on the root; a disabled type restricts nothing.
    scps_enabled: bool = False
    rcps_enabled: bool = False
    policies: list[OrgPolicy] = Field(default_factory=list)
    errors: list[CollectionError] = Field(default_factory=list)

    def path_of(self, account: str) -> list[str] | None:
        """The ids from the root down to the account's parent; None when the account is not placed."""
        parent = self.account_parents.get(account)
        if parent is None:
            return None
        up = {u.id: u.parent for u in self.units}
        path: list[str] = []
        node: str | None = parent
        while node is not None and node not in path:  # "not in path": a corrupt cycle stops here
            path.append(node)
            node = up.get(node)
        return list(reversed(path))


class RegionSnapshot(_Model):
    region: str
    keys: list[Key] = Field(default_factory=list)
    # Trails as DescribeTrails reports them from this region (shadow trails included, home_region says whose).
    trails: list[Trail] = Field(default_factory=list)
    metric_filters: list[MetricFilter] = Field(default_factory=list)
    alarms: list[Alarm] = Field(default_factory=list)
    config_rules: list[ConfigRule] = Field(default_factory=list)
    config_recorders: list[ConfigRecorder] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    ebs_encryption_by_default: bool | None = None
    ebs_default_key_ref: str | None = None
    ebs_default_key_arn: str | None = None
    errors: list[CollectionError] = Field(default_factory=list)


class AccountSnapshot(_Model):
    account_id: str
    partition: str = "aws"
    organization_id: str | None = None
    regions: list[RegionSnapshot] = Field(default_factory=list)
    iam_policies: list[IamPolicy] = Field(default_factory=list)
    # Every user, group, role and used managed policy; None: not collected (a version 1 snapshot).
    iam: IamInventory | None = None
    errors: list[CollectionError] = Field(default_factory=list)


class Snapshot(_Model):
    schema_version: int = SCHEMA_VERSION
    kmsguard_version: str
    collected_at: datetime
    source: Literal["aws", "iac", "test"] = "aws"
    accounts: list[AccountSnapshot] = Field(default_factory=list)
    # None: not in an Organization, or not collected (a version 1 snapshot); errors say which could not be read.
    organization: Organization | None = None
    # What CloudTrail logs read with this snapshot showed (``scan --trail``, ``trail analyze``); None: no logs.
    trail: TrailFacts | None = None

    # What checks derive from this snapshot and share (effective access, asked by four checks), kept with it:
    # it lives as long as the snapshot and no longer, and is never serialised.
    _derived: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_empty_trail(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("trail", 0) is None:
            del data["trail"]
        return data

    def derived(self, name: str, build: Callable[[], T]) -> T:
        """``build()``'s value, computed once per snapshot and name (checks only read a snapshot)."""
        if self._derived.get("") != id(self):  # a model_copy carries the dict over: not its values
            self._derived = {"": id(self)}
        if name not in self._derived:
            self._derived[name] = build()
        return cast("T", self._derived[name])

    def all_keys(self) -> list[Key]:
        return [k for a in self.accounts for r in a.regions for k in r.keys]

    def regions(self) -> list[str]:
        return sorted({r.region for a in self.accounts for r in a.regions})
