"""Terraform resources -> the Snapshot's model objects, exactly as the live collectors (``collect/``) fill them.

Shared by ``.tf`` directories and plan JSON: each resource comes as a ``ResView`` whose ``attrs`` are its
arguments, evaluated (nested blocks as lists of mappings, unknowns as ``declared.unknown`` markers). The
conventions (service, resource_type, encryption, key_ref) are the collectors'; where a template is silent the
value is the one AWS applies (see each handler), and an unknown bool or choice takes the value worse for the
checks, as the CloudFormation loader does. Identity is synthetic and ARN-shaped (``IacContext``): a key is
``ctx.key_arn(address)`` with key id ``address``; a bucket ``arn:<p>:s3:::<name>``. ``computed_attr`` gives the
same identities to references (``aws_kms_key.main.arn``), so a reference and the object it names agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kmsguard.collect import dynamodb as dynamodb_collector
from kmsguard.collect import s3 as s3_collector
from kmsguard.collect import secretsmanager as secrets_collector
from kmsguard.collect import ssm as ssm_collector
from kmsguard.collect.cloudtrail import apply_selectors
from kmsguard.collect.kms import rotation_applies
from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.cfn_resources import EBS_DEFAULT_KEY, RDS_DEFAULT_KEY, ROTATION_DEFAULT_DAYS, ROTATION_MAX_DAYS
from kmsguard.iac.declared import Declared, IacContext, Location, is_unknown, unknowns_in
from kmsguard.iac.tf_funcs import EvalError, is_whole_unknown, to_num, to_str, unknown_value
from kmsguard.model.snapshot import Alarm, ConfigRule, Grant, IamPolicy, Key, MetricFilter, Resource, Trail
from kmsguard.policy.defaults import default_key_policy

KEY_TYPES = frozenset({"aws_kms_key", "aws_kms_replica_key", "aws_kms_external_key"})
NOT_COMPUTED = object()  # computed_attr: "no synthetic value for this attribute"

# The argument that names each resource, when it is not "name".
_NAME_ATTR = {
    "aws_s3_bucket": "bucket",
    "aws_db_instance": "identifier",
    "aws_rds_cluster": "cluster_identifier",
    "aws_rds_cluster_instance": "identifier",
    "aws_cloudwatch_metric_alarm": "alarm_name",
}
# What the provider's "id" attribute is, per type: the name, the ARN (absent: not synthesised).
_ID_IS: dict[str, Literal["name", "arn"]] = {
    "aws_s3_bucket": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_dynamodb_table": "name",
    "aws_cloudtrail": "name",
    "aws_iam_role": "name",
    "aws_iam_user": "name",
    "aws_iam_group": "name",
    "aws_rds_cluster": "name",
    "aws_ssm_parameter": "name",
    "aws_cloudwatch_metric_alarm": "name",
    "aws_kms_alias": "name",
    "aws_sns_topic": "arn",
    "aws_iam_policy": "arn",
    "aws_secretsmanager_secret": "arn",
}

Args = Callable[[str], Any]  # an argument's evaluated value, None when not set


@dataclass
class ResView:
    """One resource of one world: its address, where it is written, and its evaluated arguments."""

    address: str
    type: str
    file: str
    line: int
    attrs: Mapping[str, Any]
    # The provider's default_tags (a map, an unknown, or None); resources get them as AWS adds them.
    default_tags: Callable[[], Any] = lambda: None


# --- identity: names and ARNs, for objects and for references to them -------------------------------------


def resource_name(rtype: str, address: str, arg: Args) -> str:
    """The declared name, an unknown when only a prefix is declared (the provider adds a random suffix), or the
    address (an S3 bucket's lower-cased: bucket names are)."""
    attr = _NAME_ATTR.get(rtype, "name")
    value = arg(attr)
    if value is not None:
        return _str(value) or address
    if arg(f"{attr}_prefix") is not None:
        return unknown_value(f"{address}.{attr} (known after apply)")
    return address.lower() if rtype == "aws_s3_bucket" else address


def resource_arn(rtype: str, address: str, arg: Args, ctx: IacContext) -> str | None:
    if rtype in KEY_TYPES:
        return ctx.key_arn(address)
    name = resource_name(rtype, address, arg)
    if rtype in ("aws_iam_role", "aws_iam_user", "aws_iam_group", "aws_iam_policy"):
        path = _str(arg("path")) or "/"
        return ctx.arn("iam", f"{rtype.removeprefix('aws_iam_')}{path}{name}", regional=False)
    build = _ARNS.get(rtype)
    return build(ctx, name, address) if build is not None else None


def _ssm_arn(ctx: IacContext, name: str, address: str) -> str:
    return ctx.arn("ssm", "parameter" + (name if name.startswith("/") else "/" + name))


_ARNS: dict[str, Callable[[IacContext, str, str], str]] = {
    "aws_kms_alias": lambda ctx, name, _a: ctx.arn("kms", name),
    "aws_s3_bucket": lambda ctx, name, _a: ctx.arn("s3", name, regional=False, account=False),
    "aws_ebs_volume": lambda ctx, _n, address: ctx.arn("ec2", f"volume/{address}"),
    "aws_db_instance": lambda ctx, name, _a: ctx.arn("rds", f"db:{name}"),
    "aws_rds_cluster_instance": lambda ctx, name, _a: ctx.arn("rds", f"db:{name}"),
    "aws_rds_cluster": lambda ctx, name, _a: ctx.arn("rds", f"cluster:{name}"),
    "aws_secretsmanager_secret": lambda ctx, name, _a: ctx.arn("secretsmanager", f"secret:{name}"),
    "aws_dynamodb_table": lambda ctx, name, _a: ctx.arn("dynamodb", f"table/{name}"),
    "aws_sns_topic": lambda ctx, name, _a: ctx.arn("sns", name),
    "aws_sqs_queue": lambda ctx, name, _a: ctx.arn("sqs", name),
    "aws_cloudwatch_log_group": lambda ctx, name, _a: ctx.arn("logs", f"log-group:{name}"),
    "aws_ssm_parameter": _ssm_arn,
    "aws_cloudtrail": lambda ctx, name, _a: ctx.arn("cloudtrail", f"trail/{name}"),
    "aws_cloudwatch_metric_alarm": lambda ctx, name, _a: ctx.arn("cloudwatch", f"alarm:{name}"),
}


def computed_attr(rtype: str, address: str, attr: str, arg: Args, ctx: IacContext) -> Any:
    """The synthetic value of an attribute the provider computes (``arn``, ``id``, ``key_id``, a name), or
    NOT_COMPUTED. Declared arguments are the caller's business (they win)."""
    if rtype in KEY_TYPES:
        if attr == "arn":
            return ctx.key_arn(address)
        return address if attr in ("key_id", "id") else NOT_COMPUTED
    if attr == "arn":
        arn = resource_arn(rtype, address, arg, ctx)
        return arn if arn is not None else NOT_COMPUTED
    id_is = _ID_IS.get(rtype)
    if attr == _NAME_ATTR.get(rtype, "name") or (attr == "id" and id_is == "name"):
        return resource_name(rtype, address, arg) if rtype in _ID_IS or rtype in _ARNS else NOT_COMPUTED
    if attr == "id" and id_is == "arn":
        return resource_arn(rtype, address, arg, ctx)
    return NOT_COMPUTED


def data_computed(dtype: str, attr: str, arg: Args, ctx: IacContext) -> Any:
    """What a data source reads that kmsguard knows without AWS (``--account``, ``--region``), or a key
    reference as written; NOT_COMPUTED otherwise."""
    if dtype == "aws_caller_identity" and attr in ("account_id", "id"):
        return ctx.account
    if dtype == "aws_region" and attr in ("name", "region", "id"):
        return ctx.region
    if dtype == "aws_partition":
        if attr in ("partition", "id"):
            return ctx.partition
        if attr == "dns_suffix":
            return "amazonaws.com.cn" if ctx.partition == "aws-cn" else "amazonaws.com"
    if dtype == "aws_kms_key" and attr in ("id", "key_id", "arn") and arg("key_id") is not None:
        # The key the lookup names, as written (an id, alias or ARN): the Snapshot builder resolves it to a
        # declared key or an AWS managed one, as it resolves every key_ref.
        return arg("key_id")
    if dtype == "aws_kms_alias" and arg("name") is not None:
        name = _str(arg("name")) or ""
        if attr in ("name", "id", "target_key_id", "target_key_arn"):
            return name  # for the targets too: the alias is a reference the builder resolves
        if attr == "arn":
            return ctx.arn("kms", name)
    return NOT_COMPUTED


# --- value helpers ------------------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    """A string argument; None when not set. Plans write an unset string as "", which is None here too."""
    if value is None or isinstance(value, list | Mapping):
        return None
    try:
        return to_str(value) or None
    except EvalError:
        return None


def _all_unknowns(value: Any) -> list[str]:
    """The reasons of every unknown anywhere in ``value`` (iterative: values may be deep)."""
    found: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.extend(unknowns_in(v))
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))
    return list(dict.fromkeys(found))


class _Worst:
    """Reads one object's switches and choices. An unknown one takes the value worse for the checks (rotation
    off, volume unencrypted, trail not logging), as the CloudFormation loader judges it, and its reason is kept:
    ``record`` hands it to ``Declared.assume``, so every finding on the object says what it rests on."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def bool(self, value: Any, default: bool, worst: bool) -> bool:
        """A declared bool; ``default`` (AWS's) when not set; ``worst`` when unknown."""
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        if value is None:
            return default
        self.note(value)
        return worst

    def enum(self, value: Any, default: str) -> str:
        """A declared choice (key spec, usage); an unknown one takes AWS's default, the case the checks judge
        most strictly (a symmetric key must rotate)."""
        text = _str(value)
        if text is not None and is_unknown(text):
            self.note(text)
            return default
        return default if text is None else text

    def note(self, value: Any) -> None:
        """``value`` (holding unknowns) was read at its worst."""
        self.reasons.extend(r for r in _all_unknowns(value) if r not in self.reasons)

    def record(self, out: Declared, arn: str) -> None:
        for reason in self.reasons:
            out.assume(arn, reason)


def _int(value: Any) -> int | None:
    try:
        return None if value is None or is_unknown(value) else int(to_num(value))
    except (EvalError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or is_unknown(value) else float(to_num(value))
    except (EvalError, ValueError, OverflowError):
        return None


def _strings(value: Any) -> list[str]:
    """A list argument as strings; a whole unknown list is one unknown item."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [s for s in (_str(v) for v in items) if s is not None]


def _str_map(value: Any) -> dict[str, str]:
    """A map argument (tags, encryption context). A whole unknown map is kept as one unknown entry, so what
    judges it can tell "unknown" from "empty"."""
    if is_whole_unknown(value):
        return {value: value}
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _str(v) or "" for k, v in value.items()}


def _blocks(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    return [b for b in value if isinstance(b, Mapping)] if isinstance(value, list) else []


def _first(value: Any) -> Mapping[str, Any]:
    found = _blocks(value)
    return found[0] if found else {}


def policy_text(value: Any) -> str | None:
    """A policy argument as the JSON text GetKeyPolicy would return: the document re-serialised. A text that
    is not JSON (an unknown standing for the whole document, or an unknown written outside a JSON string) is
    kept as written, for the judge to treat as unknown."""
    if value is None:
        return None
    if isinstance(value, Mapping | list):
        return json.dumps(value)
    text = _str(value)
    if text is None:
        return None
    try:
        return json.dumps(loads_json(text))
    except LoadError:
        return text


# --- the builder --------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    ctx: IacContext
    views: list[ResView]
    out: Declared
    # managed policy ARN -> principal ARNs, filled by attachments (resolved when every policy is known)
    attached: dict[str, list[str]] = field(default_factory=dict)
    # aws_ebs_encryption_by_default's unknown, if read at its worst: the unencrypted volumes rest on it.
    ebs_default: _Worst = field(default_factory=lambda: _Worst())
    _principal_paths: dict[tuple[str, str], str] | None = None

    def locate(self, arn: str, v: ResView) -> None:
        self.out.locations[arn] = Location(file=v.file, line=v.line, resource=v.address)

    def find_key(self, ref: Any) -> Key | None:
        text = _str(ref)
        if not text:
            return None
        return next((k for k in self.out.keys if text in (k.key_id, k.arn) or text in k.aliases), None)

    def resource(self, v: ResView, service: str, rtype: str, **fields: Any) -> Resource:
        arg = v.attrs.get
        res = Resource(
            service=service,
            resource_type=rtype,
            arn=resource_arn(v.type, v.address, arg, self.ctx) or v.address,
            name=resource_name(v.type, v.address, arg),
            account=self.ctx.account,
            region=self.ctx.region,
            **fields,
        )
        self.out.resources.append(res)
        self.locate(res.arn, v)
        return res

    def principal_arn(self, kind: str, name: Any) -> str | None:
        """The ARN of the role, user or group called ``name`` (its declared path when the unit declares it)."""
        text = _str(name)
        if not text:
            return None
        if self._principal_paths is None:
            self._principal_paths = {}
            for v in self.views:
                if v.type in ("aws_iam_role", "aws_iam_user", "aws_iam_group"):
                    key = (v.type.removeprefix("aws_iam_"), resource_name(v.type, v.address, v.attrs.get))
                    self._principal_paths[key] = _str(v.attrs.get("path")) or "/"
        if text.startswith("arn:"):
            return text
        path = self._principal_paths.get((kind, text), "/")
        return self.ctx.arn("iam", f"{kind}{path}{text}", regional=False)


def tags_of(v: ResView) -> dict[str, str]:
    """The resource's tags with the provider's default_tags under them (AWS stores both)."""
    return {**_str_map(v.default_tags()), **_str_map(v.attrs.get("tags"))}


# --- KMS ----------------------------------------------------------------------------------------------------


def _key(b: _Builder, v: ResView) -> None:
    a, w = v.attrs, _Worst()
    origin, state = "AWS_KMS", _enabled(w, a.get("is_enabled"))
    store = _str(a.get("custom_key_store_id"))
    if store is not None and is_unknown(store):  # judged as a key in KMS itself: every rotation check applies
        w.note(store)
        store = None
    if v.type == "aws_kms_external_key":
        origin = "EXTERNAL"
        # Without key material the key waits for an import; "enabled" only applies once there is material.
        state = "PendingImport" if a.get("key_material_base64") is None else _enabled(w, a.get("enabled"))
    elif store:
        origin = "EXTERNAL_KEY_STORE" if a.get("xks_key_id") is not None else "AWS_CLOUDHSM"
    key = Key(
        arn=b.ctx.key_arn(v.address),
        key_id=v.address,
        account=b.ctx.account,
        region=b.ctx.region,
        key_manager="CUSTOMER",
        key_state=state,
        key_spec=w.enum(a.get("customer_master_key_spec"), "SYMMETRIC_DEFAULT"),
        key_usage=w.enum(a.get("key_usage"), "ENCRYPT_DECRYPT"),
        origin=origin,
        custom_key_store_id=store,
        multi_region=w.bool(a.get("multi_region"), False, True),
        description=_str(a.get("description")),
        tags=tags_of(v),
        policy=policy_text(a.get("policy")) or default_key_policy(b.ctx.account, b.ctx.partition),
    )
    _set_rotation(key, w, a.get("enable_key_rotation"), a.get("rotation_period_in_days"))
    b.out.keys.append(key)
    b.locate(key.arn, v)
    w.record(b.out, key.arn)


def _enabled(w: _Worst, value: Any) -> str:
    # An unknown is_enabled: enabled, so every check of a working key applies.
    return "Enabled" if w.bool(value, True, True) else "Disabled"


def _set_rotation(key: Key, w: _Worst, enabled: Any, period: Any) -> None:
    # As collect/kms.py: rotation is None where it does not apply (asymmetric, HMAC, imported, custom store).
    if not rotation_applies(key):
        key.rotation_enabled, key.rotation_period_days = None, None
        return
    key.rotation_enabled = w.bool(enabled, False, False)
    # An unknown period: the longest KMS allows (the worst case); plans write an unset one as 0.
    if is_unknown(period):
        w.note(period)
    key.rotation_period_days = ROTATION_MAX_DAYS if is_unknown(period) else (_int(period) or None)
    if key.rotation_enabled and key.rotation_period_days is None:
        key.rotation_period_days = ROTATION_DEFAULT_DAYS


def _replica_key(b: _Builder, v: ResView) -> None:
    """A replica shares its primary's key material, spec and rotation; a primary outside the unit is judged by
    the defaults (rotation off: the worst case)."""
    a, w = v.attrs, _Worst()
    primary = b.find_key(a.get("primary_key_arn"))
    key = Key(
        arn=b.ctx.key_arn(v.address),
        key_id=v.address,
        account=b.ctx.account,
        region=b.ctx.region,
        key_manager="CUSTOMER",
        key_state=_enabled(w, a.get("enabled")),
        key_spec=primary.key_spec if primary else "SYMMETRIC_DEFAULT",
        key_usage=primary.key_usage if primary else "ENCRYPT_DECRYPT",
        origin=primary.origin if primary else "AWS_KMS",
        multi_region=True,
        description=_str(a.get("description")),
        tags=tags_of(v),
        policy=policy_text(a.get("policy")) or default_key_policy(b.ctx.account, b.ctx.partition),
    )
    if primary is not None and rotation_applies(key):
        key.rotation_enabled, key.rotation_period_days = primary.rotation_enabled, primary.rotation_period_days
        # The primary's unknowns (its rotation, its spec) are the replica's too.
        w.reasons.extend(r for r in b.out.assumed.get(primary.arn, []) if r not in w.reasons)
    else:
        _set_rotation(key, w, None, None)
    b.out.keys.append(key)
    b.locate(key.arn, v)
    w.record(b.out, key.arn)


def _key_policy(b: _Builder, v: ResView) -> None:
    key = b.find_key(v.attrs.get("key_id"))
    text = policy_text(v.attrs.get("policy"))
    if key is not None and text is not None:
        key.policy = text


def _alias(b: _Builder, v: ResView) -> None:
    name = resource_name(v.type, v.address, v.attrs.get)
    key = b.find_key(v.attrs.get("target_key_id"))
    if key is not None and name not in key.aliases:
        key.aliases = sorted([*key.aliases, name])


def _grant(b: _Builder, v: ResView) -> None:
    a = v.attrs
    key = b.find_key(a.get("key_id"))
    if key is None:
        return  # a grant on a key the unit does not declare: nothing here to judge it with
    constraints: dict[str, dict[str, str]] = {}
    for c in _blocks(a.get("constraints")):
        for field_name, api_name in (
            ("encryption_context_equals", "EncryptionContextEquals"),
            ("encryption_context_subset", "EncryptionContextSubset"),
        ):
            if c.get(field_name) is not None:
                constraints.setdefault(api_name, {}).update(_str_map(c.get(field_name)))
    key.grants.append(
        Grant(
            grant_id=v.address,
            name=_str(a.get("name")),
            grantee_principal=_str(a.get("grantee_principal")) or "",
            retiring_principal=_str(a.get("retiring_principal")),
            operations=_strings(a.get("operations")),
            constraints=constraints or None,
        )
    )


# --- resources that store data ------------------------------------------------------------------------------


def _s3_rules(rules: Any, w: _Worst) -> tuple[Any, str | None]:
    """(encryption, key_ref) of server-side encryption rules, as collect/s3.py reads GetBucketEncryption and as
    the CloudFormation loader reads BucketEncryption: a rule without an algorithm (only bucket_key_enabled)
    leaves SSE-S3, the floor since January 2023; an unknown algorithm is "unknown", with no key to judge."""
    for rule in _blocks(rules):
        default = _first(rule.get("apply_server_side_encryption_by_default"))
        algorithm = _str(default.get("sse_algorithm"))
        if algorithm in ("aws:kms", "aws:kms:dsse"):
            return "kms", _str(default.get("kms_master_key_id")) or s3_collector.DEFAULT_KEY
        if algorithm == "AES256":
            return "aws-owned", None
        if algorithm is not None and is_unknown(algorithm):
            w.note(algorithm)
            return "unknown", None
    return "aws-owned", None


def _bucket(b: _Builder, v: ResView) -> None:
    # No encryption configuration: SSE-S3, which AWS applies to every bucket since January 2023.
    encryption, key_ref, w = "aws-owned", None, _Worst()
    legacy = _first(v.attrs.get("server_side_encryption_configuration"))
    if legacy:
        encryption, key_ref = _s3_rules(legacy.get("rule"), w)
    res = b.resource(v, "s3", "AWS::S3::Bucket", encryption=encryption, key_ref=key_ref, tags=tags_of(v))
    w.record(b.out, res.arn)


def _bucket_encryption(b: _Builder, v: ResView) -> None:
    bucket = _str(v.attrs.get("bucket"))
    target = next((r for r in b.out.resources if r.service == "s3" and bucket in (r.name, r.arn)), None)
    if target is not None:
        w = _Worst()
        target.encryption, target.key_ref = _s3_rules(v.attrs.get("rule"), w)
        w.record(b.out, target.arn)


def _ebs_by_default(b: _Builder, v: ResView) -> None:
    b.out.ebs_encryption_by_default = b.ebs_default.bool(v.attrs.get("enabled"), True, False)


def _ebs_default_key(b: _Builder, v: ResView) -> None:
    b.out.ebs_default_key_ref = _str(v.attrs.get("key_arn"))


def _volume(b: _Builder, v: ResView) -> None:
    a = v.attrs
    # A volume is encrypted when it says so or when the unit turns on the Region's encryption by default
    # (a setting only an account shows otherwise); its key is then the Region's default key.
    w = _Worst()
    encrypted = w.bool(a.get("encrypted"), False, False) or bool(b.out.ebs_encryption_by_default)
    key_ref = (_str(a.get("kms_key_id")) or b.out.ebs_default_key_ref or EBS_DEFAULT_KEY) if encrypted else None
    res = b.resource(
        v, "ebs", "AWS::EC2::Volume", encryption="kms" if encrypted else "none", key_ref=key_ref, tags=tags_of(v)
    )
    if not encrypted:  # both read at their worst (an encrypted volume rests on neither)
        w.record(b.out, res.arn)
        b.ebs_default.record(b.out, res.arn)


def _rds_encryption(a: Mapping[str, Any], w: _Worst) -> tuple[Any, str | None]:
    encrypted = w.bool(a.get("storage_encrypted"), False, False)
    return ("kms", _str(a.get("kms_key_id")) or RDS_DEFAULT_KEY) if encrypted else ("none", None)


def _rds(rtype: str) -> Callable[[_Builder, ResView], None]:
    def handler(b: _Builder, v: ResView) -> None:
        w = _Worst()
        encryption, key_ref = _rds_encryption(v.attrs, w)
        res = b.resource(v, "rds", rtype, encryption=encryption, key_ref=key_ref, tags=tags_of(v))
        w.record(b.out, res.arn)

    return handler


def _cluster_instance(b: _Builder, v: ResView) -> None:
    """An Aurora instance stores its data in its cluster's volume: DescribeDBInstances reports the cluster's
    encryption, so it is read from the cluster (unknown when the cluster is not in the unit)."""
    cluster = _str(v.attrs.get("cluster_identifier"))
    found = next(
        (
            c
            for c in b.views
            if c.type == "aws_rds_cluster" and cluster == resource_name(c.type, c.address, c.attrs.get)
        ),
        None,
    )
    w = _Worst()
    encryption, key_ref = _rds_encryption(found.attrs, w) if found is not None else ("unknown", None)
    res = b.resource(v, "rds", "AWS::RDS::DBInstance", encryption=encryption, key_ref=key_ref, tags=tags_of(v))
    w.record(b.out, res.arn)


def _secret(b: _Builder, v: ResView) -> None:
    key_ref = _str(v.attrs.get("kms_key_id")) or secrets_collector.DEFAULT_KEY
    b.resource(v, "secretsmanager", "AWS::SecretsManager::Secret", encryption="kms", key_ref=key_ref, tags=tags_of(v))


def _table(b: _Builder, v: ResView) -> None:
    sse, w = _first(v.attrs.get("server_side_encryption")), _Worst()
    # Without server_side_encryption (or with it disabled) DynamoDB uses an AWS owned key.
    encryption, key_ref = "aws-owned", None
    if sse and w.bool(sse.get("enabled"), False, False):
        encryption, key_ref = "kms", _str(sse.get("kms_key_arn")) or dynamodb_collector.DEFAULT_KEY
    res = b.resource(v, "dynamodb", "AWS::DynamoDB::Table", encryption=encryption, key_ref=key_ref, tags=tags_of(v))
    w.record(b.out, res.arn)


def _topic(b: _Builder, v: ResView) -> None:
    key = _str(v.attrs.get("kms_master_key_id"))
    b.resource(v, "sns", "AWS::SNS::Topic", encryption="kms" if key else "none", key_ref=key, tags=tags_of(v))


def _queue(b: _Builder, v: ResView) -> None:
    key, w = _str(v.attrs.get("kms_master_key_id")), _Worst()
    # SSE-SQS is on by default for new queues; an explicit false (or an unknown: the worse case) turns it off.
    managed = key is not None or w.bool(v.attrs.get("sqs_managed_sse_enabled"), True, False)
    encryption = "kms" if key else "aws-owned" if managed else "none"
    res = b.resource(v, "sqs", "AWS::SQS::Queue", encryption=encryption, key_ref=key, tags=tags_of(v))
    w.record(b.out, res.arn)


def _log_group(b: _Builder, v: ResView) -> None:
    key = _str(v.attrs.get("kms_key_id"))
    # Tags stay empty: collect/logs.py does not read them either (one call per group).
    b.resource(v, "logs", "AWS::Logs::LogGroup", encryption="kms" if key else "aws-owned", key_ref=key)


def _parameter(b: _Builder, v: ResView) -> None:
    if _str(v.attrs.get("type")) != "SecureString":
        return  # collect/ssm.py reads SecureString parameters only
    key_ref = _str(v.attrs.get("key_id")) or ssm_collector.DEFAULT_KEY
    b.resource(v, "ssm", "AWS::SSM::Parameter", encryption="kms", key_ref=key_ref)


# --- audit: CloudTrail, metric filters, alarms, Config rules ------------------------------------------------


def _selectors(a: Mapping[str, Any], w: _Worst) -> dict[str, Any]:
    """The trail's selectors in GetEventSelectors' shape; a trail declaring none gets AWS's default (all
    management events, read and write). As in the CloudFormation loader, a selector holding an unknown value is
    left out: it cannot be relied on to record anything (the worse case for the audit checks), and the trail's
    findings name the unknown (``w``)."""
    if not _blocks(a.get("advanced_event_selector")) and not _blocks(a.get("event_selector")):
        return {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}
    advanced = [
        {
            "Name": _str(s.get("name")),
            "FieldSelectors": [
                {
                    "Field": _str(f.get("field")),
                    **{
                        api: _strings(f.get(tf))
                        for tf, api in (
                            ("equals", "Equals"),
                            ("not_equals", "NotEquals"),
                            ("starts_with", "StartsWith"),
                            ("not_starts_with", "NotStartsWith"),
                            ("ends_with", "EndsWith"),
                            ("not_ends_with", "NotEndsWith"),
                        )
                        if f.get(tf) is not None
                    },
                }
                for f in _blocks(s.get("field_selector"))
            ],
        }
        for s in _blocks(a.get("advanced_event_selector"))
    ]
    basic = [
        {
            "ReadWriteType": _str(s.get("read_write_type")) or "All",
            "IncludeManagementEvents": s.get("include_management_events"),
            "ExcludeManagementEventSources": _strings(s.get("exclude_management_event_sources")),
        }
        for s in _blocks(a.get("event_selector"))
    ]
    for selector in [*advanced, *basic]:
        w.note(selector)
    basic = [
        {**s, "IncludeManagementEvents": w.bool(s["IncludeManagementEvents"], True, False)}
        for s in basic
        if not _all_unknowns(s)
    ]
    return {"EventSelectors": basic, "AdvancedEventSelectors": [s for s in advanced if not _all_unknowns(s)]}


def _trail(b: _Builder, v: ResView) -> None:
    a, w = v.attrs, _Worst()
    name = resource_name(v.type, v.address, a.get)
    trail = Trail(
        name=name,
        arn=b.ctx.arn("cloudtrail", f"trail/{name}"),
        home_region=b.ctx.region,
        is_multi_region=w.bool(a.get("is_multi_region_trail"), False, False),
        is_organization_trail=w.bool(a.get("is_organization_trail"), False, False),
        log_file_validation_enabled=w.bool(a.get("enable_log_file_validation"), False, False),
        cloudwatch_logs_log_group_arn=_str(a.get("cloud_watch_logs_group_arn")),
        kms_key_id=_str(a.get("kms_key_id")),
        is_logging=w.bool(a.get("enable_logging"), True, False),
    )
    apply_selectors(trail, _selectors(a, w))
    b.out.trails.append(trail)
    b.locate(trail.arn, v)
    w.record(b.out, trail.arn)


def _metric_filter(b: _Builder, v: ResView) -> None:
    a = v.attrs
    b.out.metric_filters.append(
        MetricFilter(
            log_group_name=_str(a.get("log_group_name")) or "",
            name=_str(a.get("name")) or v.address,
            pattern=_str(a.get("pattern")) or "",
            metrics=[
                (_str(t.get("namespace")) or "", _str(t.get("name")) or "")
                for t in _blocks(a.get("metric_transformation"))
            ],
        )
    )


def _alarm(b: _Builder, v: ResView) -> None:
    a, w = v.attrs, _Worst()
    arn = resource_arn(v.type, v.address, a.get, b.ctx)
    b.out.alarms.append(
        Alarm(
            name=resource_name(v.type, v.address, a.get),
            arn=arn,
            namespace=_str(a.get("namespace")),
            metric_name=_str(a.get("metric_name")),
            statistic=_str(a.get("statistic")),
            period=_int(a.get("period")),
            evaluation_periods=_int(a.get("evaluation_periods")),
            threshold=_float(a.get("threshold")),
            comparison_operator=_str(a.get("comparison_operator")),
            actions_enabled=w.bool(a.get("actions_enabled"), True, False),
            alarm_actions=_strings(a.get("alarm_actions")),
        )
    )
    if arn is not None:
        b.locate(arn, v)
        w.record(b.out, arn)


def _config_rule(b: _Builder, v: ResView) -> None:
    source = _first(v.attrs.get("source"))
    b.out.config_rules.append(
        ConfigRule(
            name=resource_name(v.type, v.address, v.attrs.get),
            source_owner=_str(source.get("owner")),
            source_identifier=_str(source.get("source_identifier")),
            state="ACTIVE",
        )
    )


# --- IAM ----------------------------------------------------------------------------------------------------


def _managed_policy(b: _Builder, v: ResView) -> None:
    document = policy_text(v.attrs.get("policy"))
    arn = resource_arn(v.type, v.address, v.attrs.get, b.ctx)
    if document is None or arn is None:
        return
    name = resource_name(v.type, v.address, v.attrs.get)
    b.out.iam_policies.append(IamPolicy(arn=arn, name=name, kind="managed", document=document))
    b.locate(arn, v)


def _inline(b: _Builder, v: ResView, principal: str | None, name: Any, policy: Any) -> None:
    document = policy_text(policy)
    if principal is None or document is None:
        return
    text = _str(name) or v.address
    arn = f"{principal}/inline/{text}"
    b.out.iam_policies.append(IamPolicy(arn=arn, name=text, kind="inline", document=document, attached_to=[principal]))
    b.locate(arn, v)


def _inline_policy(kind: str) -> Callable[[_Builder, ResView], None]:
    def handler(b: _Builder, v: ResView) -> None:
        name = v.attrs.get("name")
        if name is None and v.attrs.get("name_prefix") is not None:
            name = unknown_value(f"{v.address}.name (known after apply)")
        _inline(b, v, b.principal_arn(kind, v.attrs.get(kind)), name, v.attrs.get("policy"))

    return handler


def _principal(b: _Builder, v: ResView) -> None:
    """Users and groups hold no policy of their own here; they are mapped so that attachments and inline
    policies naming them get their declared path (``_Builder.principal_arn``)."""


def _role(b: _Builder, v: ResView) -> None:
    arn = resource_arn(v.type, v.address, v.attrs.get, b.ctx)
    for block in _blocks(v.attrs.get("inline_policy")):
        _inline(b, v, arn, block.get("name"), block.get("policy"))
    for policy in _strings(v.attrs.get("managed_policy_arns")):
        if arn is not None:
            b.attached.setdefault(policy, []).append(arn)


def _attachment(kind: str) -> Callable[[_Builder, ResView], None]:
    def handler(b: _Builder, v: ResView) -> None:
        principal = b.principal_arn(kind, v.attrs.get(kind))
        policy = _str(v.attrs.get("policy_arn"))
        if principal is not None and policy:
            b.attached.setdefault(policy, []).append(principal)

    return handler


def _policy_attachment(b: _Builder, v: ResView) -> None:
    policy = _str(v.attrs.get("policy_arn"))
    for kind, attr in (("user", "users"), ("role", "roles"), ("group", "groups")):
        for name in _strings(v.attrs.get(attr)):
            principal = b.principal_arn(kind, name)
            if policy and principal is not None:
                b.attached.setdefault(policy, []).append(principal)


# In this order: keys before what refers to them (replicas, policies, aliases, grants), the Region's EBS
# defaults before volumes, buckets before their encryption configurations.
HANDLERS: dict[str, Callable[[_Builder, ResView], None]] = {
    "aws_kms_key": _key,
    "aws_kms_external_key": _key,
    "aws_kms_replica_key": _replica_key,
    "aws_kms_key_policy": _key_policy,
    "aws_kms_alias": _alias,
    "aws_kms_grant": _grant,
    "aws_ebs_encryption_by_default": _ebs_by_default,
    "aws_ebs_default_kms_key": _ebs_default_key,
    "aws_s3_bucket": _bucket,
    "aws_s3_bucket_server_side_encryption_configuration": _bucket_encryption,
    "aws_ebs_volume": _volume,
    "aws_db_instance": _rds("AWS::RDS::DBInstance"),
    "aws_rds_cluster": _rds("AWS::RDS::DBCluster"),
    "aws_rds_cluster_instance": _cluster_instance,
    "aws_secretsmanager_secret": _secret,
    "aws_dynamodb_table": _table,
    "aws_sns_topic": _topic,
    "aws_sqs_queue": _queue,
    "aws_cloudwatch_log_group": _log_group,
    "aws_ssm_parameter": _parameter,
    "aws_cloudtrail": _trail,
    "aws_cloudwatch_log_metric_filter": _metric_filter,
    "aws_cloudwatch_metric_alarm": _alarm,
    "aws_config_config_rule": _config_rule,
    "aws_iam_policy": _managed_policy,
    "aws_iam_role": _role,
    "aws_iam_user": _principal,
    "aws_iam_group": _principal,
    "aws_iam_role_policy": _inline_policy("role"),
    "aws_iam_user_policy": _inline_policy("user"),
    "aws_iam_group_policy": _inline_policy("group"),
    "aws_iam_role_policy_attachment": _attachment("role"),
    "aws_iam_user_policy_attachment": _attachment("user"),
    "aws_iam_group_policy_attachment": _attachment("group"),
    "aws_iam_policy_attachment": _policy_attachment,
}
_ORDER = {rtype: i for i, rtype in enumerate(HANDLERS)}


def build_world(ctx: IacContext, label: str, views: list[ResView]) -> Declared:
    """Everything ``views`` declare, as one Declared world."""
    b = _Builder(ctx, views, Declared(label=label))
    mapped = sorted((v for v in views if v.type in HANDLERS), key=lambda v: _ORDER[v.type])
    for v in mapped:
        HANDLERS[v.type](b, v)
    for policy in b.out.iam_policies:
        if policy.kind == "managed":
            policy.attached_to = sorted(set(b.attached.get(policy.arn, [])))
    return b.out
