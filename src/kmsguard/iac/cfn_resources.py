"""CloudFormation resources to the Snapshot's model objects, for one world, exactly as ``collect/`` fills them.

Each mapped resource type has a reader below; it gets the resource's Properties already resolved for the
world (``cfn_values.Resolver``) and appends model objects to the world's ``Declared`` with their location.
Encryption follows the live collectors (``collect/s3.py``, ``collect/sqs.py``, ...): the same ``service``,
``resource_type``, ``encryption`` and ``key_ref`` a scan of the deployed stack reads, with AWS's defaults
for what a template leaves out (S3 and SQS encrypt by default with an AWS owned key; Secrets Manager uses
alias/aws/secretsmanager). ``key_ref`` is the reference as written (key id, ARN, alias); ``iac``'s builder
resolves it.

A boolean that stays unknown takes the value worse for the checks (rotation off, volume unencrypted, trail not
logging); so does a key's spec, usage or origin (the one every key check applies to).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from kmsguard.collect import dynamodb, s3, secretsmanager
from kmsguard.collect.cloudtrail import apply_selectors
from kmsguard.collect.kms import rotation_applies
from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.cfn_parse import Template
from kmsguard.iac.cfn_values import ALIAS_TYPE, IDENTITIES, KEY_TYPES, NO_VALUE, Resolver, has_unknown, norm
from kmsguard.iac.declared import Declared, IacContext, IacError, Location, is_unknown, unknowns_in
from kmsguard.model.snapshot import Alarm, ConfigRule, IamPolicy, Key, MetricFilter, Resource, Trail
from kmsguard.policy.defaults import default_key_policy

# What AWS uses when a template asks for encryption without naming a key: RDS always its AWS managed key;
# EBS the account's default key, which is this one unless someone changed it (live state, not in a template).
EBS_DEFAULT_KEY = "alias/aws/ebs"
RDS_DEFAULT_KEY = "alias/aws/rds"
ROTATION_DEFAULT_DAYS = 365
ROTATION_MAX_DAYS = 2560  # the longest period KMS allows: the worst case of an unknown one
_ALL_MANAGEMENT_EVENTS = {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}
_PRINCIPAL_TYPES = {"AWS::IAM::Role": "role", "AWS::IAM::User": "user", "AWS::IAM::Group": "group"}
_INLINE_TYPES = ("AWS::IAM::RolePolicy", "AWS::IAM::UserPolicy", "AWS::IAM::GroupPolicy")
# The properties that name the principals a policy is attached to (lists on Policy and ManagedPolicy, one
# name on RolePolicy, UserPolicy and GroupPolicy), and the kind of principal each names.
_HOLDERS = {
    "Roles": "role",
    "Users": "user",
    "Groups": "group",
    "RoleName": "role",
    "UserName": "user",
    "GroupName": "group",
}


class _World:
    """Reads one world's resources into ``declared``."""

    def __init__(self, tpl: Template, ctx: IacContext, r: Resolver, declared: Declared) -> None:
        self.tpl, self.ctx, self.r, self.declared = tpl, ctx, r, declared
        self.rid = ""
        self.keys: dict[str, Key] = {}  # key id and key ARN -> the declared key
        self.principals: dict[tuple[str, str], str] = {}  # (kind, name) -> ARN of a declared role/user/group
        self.attached: dict[str, list[str]] = {}  # managed policy ARN -> principals naming it in ManagedPolicyArns

    # helpers

    def error(self, message: str) -> IacError:
        return IacError(self.tpl.rel, self.tpl.line(self.rid), f"resource {self.rid}: {message}")

    def locate(self, arn: str) -> None:
        self.declared.locations[arn] = Location(self.tpl.rel, self.tpl.line(self.rid) or 1, self.rid)

    def text(self, value: Any, what: str) -> str | None:
        return None if value is None or value is NO_VALUE else self.r.text(value, f"resource {self.rid}: {what}")

    def assume(self, value: Any) -> None:
        """Record that the current object is judged with the unknowns in ``value`` read at their worst, so
        every finding on it names them."""
        rtype = self.tpl.resources[self.rid]["Type"]
        ident = IDENTITIES.get(rtype)
        if rtype not in KEY_TYPES and (ident is None or ident.arn is None):
            return  # a type without an ARN of its own: no finding to name it in
        arn = self.r.arn_of(self.rid)
        for reason in unknowns_in(value if isinstance(value, str) else json.dumps(value)):
            self.declared.assume(arn, reason)

    def choice(self, value: Any, default: str, what: str) -> str:
        """An enumerated string: the declared value, or ``default`` (the worst case) when absent or unknown."""
        found = self.text(value, what)
        if found is not None and is_unknown(found):
            self.assume(found)
        return default if found is None or is_unknown(found) else found

    def flag(self, props: dict[str, Any], name: str, default: bool, if_unknown: bool) -> bool:
        value = props.get(name)
        if value is None or value is NO_VALUE:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if is_unknown(value):
            self.assume(value)
            return if_unknown
        raise self.error(f"{name} must be true or false, not {value!r}")

    def number(self, props: dict[str, Any], name: str, if_unknown: float | None = None) -> float | None:
        value = props.get(name)
        if value is None or value is NO_VALUE or isinstance(value, bool):
            return None
        if is_unknown(value):
            self.assume(value)
            return if_unknown
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise self.error(f"{name} must be a number, not {value!r}")
        return number

    def mapping(self, value: Any, what: str) -> dict[str, Any]:
        if value is None or value is NO_VALUE:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{what} must be a mapping")
        return value

    def items(self, value: Any, what: str) -> list[Any]:
        if value is None or value is NO_VALUE:
            return []
        if not isinstance(value, list):
            raise self.error(f"{what} must be a list")
        return value

    def tags(self, props: dict[str, Any]) -> dict[str, str]:
        raw = props.get("Tags")
        if isinstance(raw, dict):  # a few types take a plain map
            return {str(k): self.text(v, "tag value") or "" for k, v in raw.items()}
        out: dict[str, str] = {}
        for tag in self.items(raw, "Tags"):
            tag = self.mapping(tag, "a tag")
            out[self.text(tag.get("Key"), "tag key") or ""] = self.text(tag.get("Value"), "tag value") or ""
        return out

    def document(self, value: Any, what: str) -> str:
        """A policy document as JSON text; an unknown one stays the unknown (``iac.symbolic`` judges it)."""
        if isinstance(value, dict):
            return json.dumps(_principals_as_text(value))
        if isinstance(value, str):
            try:
                parsed = loads_json(value)
            except LoadError as e:
                if has_unknown(value):
                    return value
                raise self.error(f"{what} is not JSON: {e}") from None
            if isinstance(parsed, dict):
                return json.dumps(_principals_as_text(parsed))
        raise self.error(f"{what} must be a policy document (a mapping)")

    # keys

    def key(self, props: dict[str, Any]) -> None:
        replica = self.tpl.resources[self.rid]["Type"] == "AWS::KMS::ReplicaKey"
        primary = self.keys.get(self.text(props.get("PrimaryKeyArn"), "PrimaryKeyArn") or "") if replica else None
        policy = props.get("KeyPolicy")
        key = Key(
            arn=self.ctx.key_arn(self.rid),
            key_id=self.rid,
            account=self.ctx.account,
            region=self.ctx.region,
            key_manager="CUSTOMER",
            # An unknown Enabled: enabled, so every check of a working key applies.
            key_state="Enabled" if self.flag(props, "Enabled", True, True) else "Disabled",
            key_spec=primary.key_spec if primary else self.choice(props.get("KeySpec"), "SYMMETRIC_DEFAULT", "KeySpec"),
            key_usage=primary.key_usage
            if primary
            else self.choice(props.get("KeyUsage"), "ENCRYPT_DECRYPT", "KeyUsage"),
            origin=primary.origin if primary else self.choice(props.get("Origin"), "AWS_KMS", "Origin"),
            multi_region=replica or self.flag(props, "MultiRegion", False, True),
            description=self.text(props.get("Description"), "Description"),
            tags=self.tags(props),
            policy=default_key_policy(self.ctx.account, self.ctx.partition)
            if policy is None or policy is NO_VALUE
            else self.document(policy, "KeyPolicy"),
        )
        if key.origin == "EXTERNAL":
            # KMS creates it without key material, which only ImportKeyMaterial (not a template) supplies.
            key.key_state = "PendingImport"
        if rotation_applies(key):
            if primary is not None:  # a replica rotates with its primary
                key.rotation_enabled, key.rotation_period_days = primary.rotation_enabled, primary.rotation_period_days
            else:
                key.rotation_enabled = self.flag(props, "EnableKeyRotation", False, False)
                days = self.number(props, "RotationPeriodInDays", ROTATION_MAX_DAYS)
                key.rotation_period_days = int(days) if days is not None else None
                if key.rotation_enabled and key.rotation_period_days is None:
                    key.rotation_period_days = ROTATION_DEFAULT_DAYS
        self.declared.keys.append(key)
        self.keys[key.key_id] = self.keys[key.arn] = key
        self.locate(key.arn)

    def alias(self, props: dict[str, Any]) -> None:
        name, _ = self.r.physical_name(self.rid)
        key = self.keys.get(self.text(props.get("TargetKeyId"), "TargetKeyId") or "")
        if key is not None:  # an alias of a key the template does not declare has nothing to attach to
            key.aliases = sorted({*key.aliases, name})

    # data stores

    def resource(self, service: str, encryption: str, key_ref: Any, tagged: dict[str, Any]) -> None:
        """Append the current resource; ``tagged``: the mapping holding its Tags."""
        rtype = self.tpl.resources[self.rid]["Type"]
        res = Resource(
            service=service,
            resource_type=rtype,
            arn=self.r.arn_of(self.rid),
            name=self.r.physical_name(self.rid)[0],
            account=self.ctx.account,
            region=self.ctx.region,
            encryption=encryption,  # type: ignore[arg-type]
            key_ref=self.text(key_ref, "key") if encryption == "kms" else None,
            tags=self.tags(tagged),
        )
        self.declared.resources.append(res)
        self.locate(res.arn)

    def bucket(self, props: dict[str, Any]) -> None:
        # Since January 2023 S3 encrypts every new bucket with SSE-S3 (an AWS owned key) unless told otherwise.
        encryption, key_ref = "aws-owned", None
        config = self.mapping(props.get("BucketEncryption"), "BucketEncryption")
        for rule in self.items(config.get("ServerSideEncryptionConfiguration"), "ServerSideEncryptionConfiguration"):
            default = self.mapping(self.mapping(rule, "a rule").get("ServerSideEncryptionByDefault"), "rule")
            algorithm = default.get("SSEAlgorithm")
            if algorithm in ("aws:kms", "aws:kms:dsse"):
                encryption, key_ref = "kms", default.get("KMSMasterKeyID") or s3.DEFAULT_KEY
                break
            if algorithm == "AES256" or is_unknown(algorithm):
                encryption = "aws-owned" if algorithm == "AES256" else "unknown"
                self.assume(algorithm)
                break
        self.resource("s3", encryption, key_ref, props)

    def volume(self, props: dict[str, Any]) -> None:
        encrypted = self.flag(props, "Encrypted", False, False)
        self.resource("ebs", "kms" if encrypted else "none", props.get("KmsKeyId") or EBS_DEFAULT_KEY, props)

    def database(self, props: dict[str, Any]) -> None:
        cluster = self.text(props.get("DBClusterIdentifier"), "DBClusterIdentifier")
        if self.tpl.resources[self.rid]["Type"] == "AWS::RDS::DBCluster" or cluster is None:
            encrypted = self.flag(props, "StorageEncrypted", False, False)
            self.resource("rds", "kms" if encrypted else "none", props.get("KmsKeyId") or RDS_DEFAULT_KEY, props)
            return
        # An Aurora instance stores its data in its cluster's volume: the cluster's encryption is its own.
        for rid, body in self.tpl.resources.items():
            if body["Type"] != "AWS::RDS::DBCluster" or not self.r.present(rid):
                continue
            if self.r.physical_name(rid)[0].lower() == cluster.lower():  # RDS ignores the case of identifiers
                cprops = self.mapping(self.r.resolve(body.get("Properties") or {}), f"{rid} Properties")
                encrypted = self.flag(cprops, "StorageEncrypted", False, False)
                self.resource("rds", "kms" if encrypted else "none", cprops.get("KmsKeyId") or RDS_DEFAULT_KEY, props)
                return
        self.resource("rds", "unknown", None, props)  # its cluster is not in this template

    def secret(self, props: dict[str, Any]) -> None:
        self.resource("secretsmanager", "kms", props.get("KmsKeyId") or secretsmanager.DEFAULT_KEY, props)

    def table(self, props: dict[str, Any]) -> None:
        sse = self.mapping(props.get("SSESpecification"), "SSESpecification")
        key = sse.get("KMSMasterKeyId")
        tags = props
        if self.tpl.resources[self.rid]["Type"] == "AWS::DynamoDB::GlobalTable":
            replicas = [self.mapping(x, "a replica") for x in self.items(props.get("Replicas"), "Replicas")]
            here = next((x for x in replicas if x.get("Region") == self.ctx.region), replicas[0] if replicas else {})
            key = self.mapping(here.get("SSESpecification"), "replica SSESpecification").get("KMSMasterKeyId")
            tags = here
        if self.flag(sse, "SSEEnabled", False, False):
            self.resource("dynamodb", "kms", key or dynamodb.DEFAULT_KEY, tags)
        else:
            self.resource("dynamodb", "aws-owned", None, tags)

    def topic(self, props: dict[str, Any]) -> None:
        key = props.get("KmsMasterKeyId")
        self.resource("sns", "kms" if key else "none", key, props)

    def queue(self, props: dict[str, Any]) -> None:
        key = props.get("KmsMasterKeyId")
        if key:
            self.resource("sqs", "kms", key, props)
        else:  # SSE-SQS is on for new queues unless switched off
            managed = self.flag(props, "SqsManagedSseEnabled", True, False)
            self.resource("sqs", "aws-owned" if managed else "none", None, props)

    def log_group(self, props: dict[str, Any]) -> None:
        key = props.get("KmsKeyId")
        self.resource("logs", "kms" if key else "aws-owned", key, props)

    # audit set-up

    def trail(self, props: dict[str, Any]) -> None:
        trail = Trail(
            name=self.r.physical_name(self.rid)[0],
            arn=self.r.arn_of(self.rid),
            home_region=self.ctx.region,
            is_multi_region=self.flag(props, "IsMultiRegionTrail", False, False),
            is_organization_trail=self.flag(props, "IsOrganizationTrail", False, False),
            log_file_validation_enabled=self.flag(props, "EnableLogFileValidation", False, False),
            cloudwatch_logs_log_group_arn=self.text(
                props.get("CloudWatchLogsLogGroupArn"), "CloudWatchLogsLogGroupArn"
            ),
            kms_key_id=self.text(props.get("KMSKeyId"), "KMSKeyId"),
            is_logging=self.flag(props, "IsLogging", True, False),
        )
        apply_selectors(trail, self.selectors(props))
        self.declared.trails.append(trail)
        self.locate(trail.arn)

    def selectors(self, props: dict[str, Any]) -> dict[str, Any]:
        """The trail's selectors as GetEventSelectors returns them. A selector holding an unknown value is
        left out: it cannot be relied on to record anything (the worse case for the audit checks)."""
        basic = [
            self.mapping(s, "an event selector") for s in self.items(props.get("EventSelectors"), "EventSelectors")
        ]
        advanced = [self.advanced(s) for s in self.items(props.get("AdvancedEventSelectors"), "AdvancedEventSelectors")]
        if not basic and not advanced:
            return _ALL_MANAGEMENT_EVENTS  # no selectors declared: CloudTrail records every management event
        for dropped in [s for s in [*basic, *advanced] if has_unknown(s)]:
            self.assume(dropped)
        basic = [
            {**s, "IncludeManagementEvents": self.flag(s, "IncludeManagementEvents", True, False)}
            for s in basic
            if not has_unknown(s)
        ]
        return {"EventSelectors": basic, "AdvancedEventSelectors": [s for s in advanced if not has_unknown(s)]}

    def advanced(self, selector: Any) -> dict[str, Any]:
        """An advanced event selector with its field conditions as lists of strings (what the matcher compares)."""
        selector = self.mapping(selector, "an advanced event selector")
        fields = []
        for fs in self.items(selector.get("FieldSelectors"), "FieldSelectors"):
            fs = self.mapping(fs, "a field selector")
            fields.append(
                {
                    op: self.text(values, op)
                    if op == "Field"
                    else [self.text(v, op) or "" for v in self.items(values, op)]
                    for op, values in fs.items()
                }
            )
        return {**selector, "FieldSelectors": fields}

    def metric_filter(self, props: dict[str, Any]) -> None:
        metrics = []
        for t in self.items(props.get("MetricTransformations"), "MetricTransformations"):
            t = self.mapping(t, "a metric transformation")
            metrics.append(
                (
                    self.text(t.get("MetricNamespace"), "MetricNamespace") or "",
                    self.text(t.get("MetricName"), "MetricName") or "",
                )
            )
        self.declared.metric_filters.append(
            MetricFilter(
                log_group_name=self.text(props.get("LogGroupName"), "LogGroupName") or "",
                name=self.r.physical_name(self.rid)[0],
                pattern=self.text(props.get("FilterPattern"), "FilterPattern") or "",
                metrics=metrics,
            )
        )

    def alarm(self, props: dict[str, Any]) -> None:
        def whole(name: str) -> int | None:
            value = self.number(props, name)
            return int(value) if value is not None else None

        alarm = Alarm(
            name=self.r.physical_name(self.rid)[0],
            arn=self.r.arn_of(self.rid),
            namespace=self.text(props.get("Namespace"), "Namespace"),
            metric_name=self.text(props.get("MetricName"), "MetricName"),
            statistic=self.text(props.get("Statistic"), "Statistic"),
            period=whole("Period"),
            evaluation_periods=whole("EvaluationPeriods"),
            threshold=self.number(props, "Threshold"),
            comparison_operator=self.text(props.get("ComparisonOperator"), "ComparisonOperator"),
            actions_enabled=self.flag(props, "ActionsEnabled", True, False),
            alarm_actions=[
                self.text(a, "AlarmActions") or "" for a in self.items(props.get("AlarmActions"), "AlarmActions")
            ],
        )
        self.declared.alarms.append(alarm)
        if alarm.arn:
            self.locate(alarm.arn)

    def config_rule(self, props: dict[str, Any]) -> None:
        source = self.mapping(props.get("Source"), "Source")
        self.declared.config_rules.append(
            ConfigRule(
                name=self.r.physical_name(self.rid)[0],
                source_owner=self.text(source.get("Owner"), "Source.Owner"),
                source_identifier=self.text(source.get("SourceIdentifier"), "Source.SourceIdentifier"),
                state="ACTIVE",
            )
        )

    # IAM

    def principal(self, props: dict[str, Any]) -> None:
        """A role, user or group: its inline policies, and the managed policies it names."""
        arn = self.r.arn_of(self.rid)
        for entry in self.items(props.get("Policies"), "Policies"):
            entry = self.mapping(entry, "an inline policy")
            name = self.text(entry.get("PolicyName"), "PolicyName") or ""
            self.inline(arn, name, self.document(entry.get("PolicyDocument"), f"policy {name}"))
        for policy_arn in self.items(props.get("ManagedPolicyArns"), "ManagedPolicyArns"):
            self.attached.setdefault(self.text(policy_arn, "ManagedPolicyArns") or "", []).append(arn)

    def inline(self, principal_arn: str, name: str, document: str) -> None:
        arn = f"{principal_arn}/inline/{name}"
        self.declared.iam_policies.append(
            IamPolicy(arn=arn, name=name, kind="inline", document=document, attached_to=[principal_arn])
        )
        self.locate(arn)

    def principal_arns(self, props: dict[str, Any], kinds: dict[str, str]) -> list[str]:
        """The ARNs of the principals a policy names (Roles/Users/Groups, or RoleName/UserName/GroupName)."""
        out = []
        for prop, kind in kinds.items():
            value = props.get(prop)
            names = self.items(value, prop) if isinstance(value, list) else [] if value is None else [value]
            for n in names:
                name = self.text(n, prop) or ""
                arn = self.principals.get((kind, name)) or self.ctx.arn("iam", f"{kind}/{name}", regional=False)
                out.append(arn)
        return out

    def iam_policy(self, props: dict[str, Any]) -> None:
        """AWS::IAM::Policy and the single-principal RolePolicy/UserPolicy/GroupPolicy: inline policies."""
        name = self.text(props.get("PolicyName"), "PolicyName") or ""
        document = self.document(props.get("PolicyDocument"), f"policy {name}")
        for arn in self.principal_arns(props, _HOLDERS):
            self.inline(arn, name, document)

    def managed_policy(self, props: dict[str, Any]) -> None:
        arn = self.r.arn_of(self.rid)
        holders = self.principal_arns(props, _HOLDERS)
        holders += self.attached.get(arn, [])
        self.declared.iam_policies.append(
            IamPolicy(
                arn=arn,
                name=self.r.physical_name(self.rid)[0],
                kind="managed",
                document=self.document(props.get("PolicyDocument"), "PolicyDocument"),
                attached_to=sorted(set(holders)),
            )
        )
        self.locate(arn)


def _principals_as_text(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the numbers in its statements' Principal and NotPrincipal as strings: YAML reads an
    unquoted account id (``AWS: 111122223333``) as a number, and AWS reads it as that account."""
    statements = document.get("Statement")
    if not isinstance(statements, list | dict):
        return document
    fixed = [_statement_principals_as_text(st) for st in (statements if isinstance(statements, list) else [statements])]
    return {**document, "Statement": fixed if isinstance(statements, list) else fixed[0]}


def _statement_principals_as_text(statement: Any) -> Any:
    if not isinstance(statement, dict):
        return statement
    out = dict(statement)
    for field in ("Principal", "NotPrincipal"):
        principal = out.get(field)
        if isinstance(principal, dict):
            out[field] = {kind: _number_as_text(v) for kind, v in principal.items()}
    return out


def _number_as_text(value: Any) -> Any:
    """An int or float as the digits it was written with (not a bool); in a list, each member."""
    if isinstance(value, list):
        return [_number_as_text(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(norm(value))
    return value


_Reader = Callable[[_World, dict[str, Any]], None]

# In this order: keys before the aliases and replicas that point at them, principals before the policies
# that name them.
READERS: dict[str, _Reader] = {
    "AWS::KMS::Key": _World.key,
    "AWS::KMS::ReplicaKey": _World.key,
    ALIAS_TYPE: _World.alias,
    "AWS::S3::Bucket": _World.bucket,
    "AWS::EC2::Volume": _World.volume,
    "AWS::RDS::DBCluster": _World.database,
    "AWS::RDS::DBInstance": _World.database,
    "AWS::SecretsManager::Secret": _World.secret,
    "AWS::DynamoDB::Table": _World.table,
    "AWS::DynamoDB::GlobalTable": _World.table,
    "AWS::SNS::Topic": _World.topic,
    "AWS::SQS::Queue": _World.queue,
    "AWS::Logs::LogGroup": _World.log_group,
    "AWS::CloudTrail::Trail": _World.trail,
    "AWS::Logs::MetricFilter": _World.metric_filter,
    "AWS::CloudWatch::Alarm": _World.alarm,
    "AWS::Config::ConfigRule": _World.config_rule,
    "AWS::IAM::Role": _World.principal,
    "AWS::IAM::User": _World.principal,
    "AWS::IAM::Group": _World.principal,
    "AWS::IAM::Policy": _World.iam_policy,
    **{t: _World.iam_policy for t in _INLINE_TYPES},
    "AWS::IAM::ManagedPolicy": _World.managed_policy,
}
MAPPED_TYPES = frozenset(READERS)
_ORDER = {t: i for i, t in enumerate(READERS)}


def read_world(tpl: Template, ctx: IacContext, r: Resolver, label: str) -> Declared:
    """Everything the template declares in the world ``r`` resolves for."""
    w = _World(tpl, ctx, r, Declared(label=label))
    present = []
    for rid, body in tpl.resources.items():
        if body["Type"] in MAPPED_TYPES:
            r.where = ("Resources", rid)
            if r.present(rid):
                present.append(rid)
    present.sort(key=lambda rid: _ORDER[tpl.resources[rid]["Type"]])  # stable: template order within a type
    for rid in present:
        rtype = tpl.resources[rid]["Type"]
        if rtype in _PRINCIPAL_TYPES:
            r.where = ("Resources", rid)
            w.principals[(_PRINCIPAL_TYPES[rtype], r.physical_name(rid)[0])] = r.arn_of(rid)
    for rid in present:
        w.rid, r.where = rid, ("Resources", rid)
        try:
            props = r.resolve(tpl.resources[rid].get("Properties") or {})
            READERS[tpl.resources[rid]["Type"]](w, w.mapping(props, "Properties"))
        except IacError:
            raise
        except (TypeError, AttributeError, KeyError, ValueError, OverflowError) as e:
            # A property of a shape the readers do not expect (pydantic's ValidationError is a ValueError):
            # CloudFormation would refuse the template too. Said as an input error, never a traceback.
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise w.error(f"a property is not the shape CloudFormation expects ({detail})") from None
    return w.declared
