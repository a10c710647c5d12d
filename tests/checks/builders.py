"""Build Snapshots for check tests: pure data, no AWS.

Every builder has defaults that describe a healthy object (an enabled, rotating, tagged, aliased customer
managed key; a logging multi-region trail ...) so a test states only what makes its case different.
``snapshot(...)`` files keys and resources into the account and region their own fields name; audit
objects (trails, filters, alarms, rules, recorders) are passed per region with ``region(...)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kmsguard.checks.registry import CheckSpec, load_builtin_checks, run_checks
from kmsguard.collect.cloudtrail import apply_selectors
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding
from kmsguard.model.snapshot import (
    AccountSnapshot,
    Alarm,
    CollectionError,
    ConfigRecorder,
    ConfigRule,
    Key,
    MetricFilter,
    RegionSnapshot,
    Resource,
    Snapshot,
    Trail,
)

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
COLLECTED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

GUIDE_POLICY_PATTERN = (
    "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = PutKeyPolicy) || "
    "($.eventName = ScheduleKeyDeletion) || ($.eventName = DisableKey)) }"
)
GUIDE_DECRYPT_PATTERN = '{ ($.eventSource = kms.amazonaws.com) && ($.eventName = Decrypt) && ($.errorCode = "*") }'

_ids = itertools.count(1)


def _key_id() -> str:
    return f"{next(_ids):08x}-1111-2222-3333-444455556666"


def key(
    key_id: str | None = None,
    *,
    account: str = ACCOUNT,
    region: str = REGION,
    tags: dict[str, str] | None = None,
    aliases: list[str] | None = None,
    **fields: Any,
) -> Key:
    """A healthy customer managed key; override any Key field by keyword."""
    kid = key_id or _key_id()
    defaults: dict[str, Any] = {
        "key_manager": "CUSTOMER",
        "key_state": "Enabled",
        "key_spec": "SYMMETRIC_DEFAULT",
        "key_usage": "ENCRYPT_DECRYPT",
        "origin": "AWS_KMS",
        "rotation_enabled": True,
        "rotation_period_days": 365,
    }
    defaults.update(fields)
    return Key(
        arn=f"arn:aws:kms:{region}:{account}:key/{kid}",
        key_id=kid,
        account=account,
        region=region,
        tags={"Environment": "prod", "DataClassification": "CUI", "Owner": "security", "CostCenter": "cc-1"}
        if tags is None
        else tags,
        aliases=[f"alias/key-{kid[:8]}"] if aliases is None else aliases,
        **defaults,
    )


def aws_managed_key(service: str, *, account: str = ACCOUNT, region: str = REGION, **fields: Any) -> Key:
    """The AWS managed key of a service (alias/aws/<service>), as DescribeKey reports it."""
    fields.setdefault("aliases", [f"alias/aws/{service}"])
    fields.setdefault("tags", {})
    return key(account=account, region=region, key_manager="AWS", **fields)


def error(operation: str, service: str = "kms", code: str = "AccessDeniedException", **kw: Any) -> CollectionError:
    return CollectionError(service=service, operation=operation, code=code, message=f"{operation} denied", **kw)


def resource(
    name: str,
    *,
    service: str = "s3",
    uses: Key | None = None,
    key_arn: str | None = None,
    key_ref: str | None = None,
    encryption: str = "kms",
    tags: dict[str, str] | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    resource_type: str | None = None,
) -> Resource:
    """A data store; ``uses=key`` encrypts it under that key (key_ref and key_arn from the key)."""
    if uses is not None:
        key_arn = key_arn or uses.arn
        key_ref = key_ref or uses.arn
    types = {
        "s3": "AWS::S3::Bucket",
        "ebs": "AWS::EC2::Volume",
        "rds": "AWS::RDS::DBInstance",
        "dynamodb": "AWS::DynamoDB::Table",
        "sqs": "AWS::SQS::Queue",
        "sns": "AWS::SNS::Topic",
    }
    return Resource(
        service=service,
        resource_type=resource_type or types.get(service, f"AWS::{service.upper()}::Thing"),
        arn=f"arn:aws:{service}:{region}:{account}:{name}",
        name=name,
        account=account,
        region=region,
        encryption=encryption,  # type: ignore[arg-type]
        key_ref=key_ref,
        key_arn=key_arn,
        tags=tags or {},
    )


def trail(
    name: str = "org-audit",
    *,
    account: str = ACCOUNT,
    home_region: str = REGION,
    log_group: str | None = "CloudTrail/audit",
    log_group_region: str | None = None,
    log_group_account: str | None = None,
    **fields: Any,
) -> Trail:
    """A logging multi-region trail with validation on, delivering to ``log_group`` in its home region."""
    defaults: dict[str, Any] = {
        "is_multi_region": True,
        "log_file_validation_enabled": True,
        "is_logging": True,
    }
    defaults.update(fields)
    group_arn = None
    if log_group is not None:
        lg_region, lg_account = log_group_region or home_region, log_group_account or account
        group_arn = f"arn:aws:logs:{lg_region}:{lg_account}:log-group:{log_group}:*"
    return Trail(
        name=name,
        arn=f"arn:aws:cloudtrail:{home_region}:{account}:trail/{name}",
        home_region=home_region,
        cloudwatch_logs_log_group_arn=group_arn,
        **defaults,
    )


def selector_trail(selectors: dict[str, Any], name: str = "org-audit", **fields: Any) -> Trail:
    """``trail(...)`` whose management-event facts come from a GetEventSelectors answer, as the collector reads it."""
    t = trail(name, **fields)
    apply_selectors(t, selectors)
    return t


def advanced_selectors(*selectors: list[dict[str, Any]]) -> dict[str, Any]:
    """A GetEventSelectors answer of advanced selectors, one per list of field conditions."""
    return {"AdvancedEventSelectors": [{"Name": f"s{i}", "FieldSelectors": fs} for i, fs in enumerate(selectors)]}


def metric_filter(
    pattern: str,
    *,
    name: str = "KMSKeyPolicyChanges",
    log_group: str = "CloudTrail/audit",
    namespace: str = "Security/KMS",
    metric: str = "KMSPolicyChanges",
) -> MetricFilter:
    return MetricFilter(log_group_name=log_group, name=name, pattern=pattern, metrics=[(namespace, metric)])


def alarm(
    name: str = "KMS-Key-Policy-Changes",
    *,
    namespace: str = "Security/KMS",
    metric: str = "KMSPolicyChanges",
    actions: list[str] | None = None,
    actions_enabled: bool = True,
) -> Alarm:
    return Alarm(
        name=name,
        namespace=namespace,
        metric_name=metric,
        statistic="Sum",
        period=300,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        actions_enabled=actions_enabled,
        alarm_actions=["arn:aws:sns:us-east-1:111122223333:security-alerts"] if actions is None else actions,
    )


def config_rule(identifier: str, *, state: str = "ACTIVE", name: str | None = None) -> ConfigRule:
    return ConfigRule(
        name=name or identifier.lower().replace("_", "-"), source_owner="AWS", source_identifier=identifier, state=state
    )


def recorder(recording: bool = True) -> ConfigRecorder:
    return ConfigRecorder(name="default", recording=recording, all_supported=True)


def region(name: str = REGION, **lists: Any) -> RegionSnapshot:
    """A RegionSnapshot; pass trails=, metric_filters=, alarms=, config_rules=, config_recorders=, errors= ..."""
    return RegionSnapshot(region=name, **lists)


def snapshot(
    keys: Iterable[Key] = (),
    resources: Iterable[Resource] = (),
    regions: Iterable[RegionSnapshot | tuple[str, RegionSnapshot]] = (),
    account_errors: dict[str, list[CollectionError]] | None = None,
) -> Snapshot:
    """A Snapshot holding ``regions`` (in ACCOUNT, or in the account of an ``(account, region)`` pair) plus
    keys and resources filed into the account and region their own fields name."""
    accounts: dict[str, dict[str, RegionSnapshot]] = {}
    for item in regions:
        acct, reg = item if isinstance(item, tuple) else (ACCOUNT, item)
        accounts.setdefault(acct, {})[reg.region] = reg
    for k in keys:
        _region_of(accounts, k.account, k.region).keys.append(k)
    for r in resources:
        _region_of(accounts, r.account, r.region).resources.append(r)
    errors = account_errors or {}
    return Snapshot(
        kmsguard_version="test",
        collected_at=COLLECTED_AT,
        source="test",
        accounts=[
            AccountSnapshot(account_id=a, regions=list(regs.values()), errors=errors.get(a, []))
            for a, regs in sorted(accounts.items())
        ],
    )


def _region_of(accounts: dict[str, dict[str, RegionSnapshot]], account: str, name: str) -> RegionSnapshot:
    regs = accounts.setdefault(account, {})
    if name not in regs:
        regs[name] = RegionSnapshot(region=name)
    return regs[name]


# --- running one check -------------------------------------------------------------------------------------


def spec(check_id: str) -> CheckSpec:
    return load_builtin_checks()[check_id]


def run(check_id: str, snap: Snapshot, config: ScanConfig | None = None) -> list[Finding]:
    """The findings of one check on ``snap``."""
    return run_checks(snap, config or ScanConfig(), [spec(check_id)])


def by_arn(findings: Iterable[Finding]) -> dict[str, Finding]:
    """Findings keyed by resource ARN; fails the test if a subject was judged twice."""
    out: dict[str, Finding] = {}
    for f in findings:
        assert f.resource_arn not in out, f"{f.check_id} judged {f.resource_arn} twice"
        out[f.resource_arn] = f
    return out
