"""The emulator layer: small, documented patches over moto so its server answers as AWS does where kmsguard cares.

Each ``_patch_*`` function below restores one AWS behaviour that moto (checked on 5.2.5) lacks; its docstring
names the gap and the behaviour. ``apply()`` installs them all, once, in this process; every moto server
started afterwards in the process (``Emulator``, the test fixtures) answers through them. Nothing in
kmsguard's scanning code knows about this module: the collectors talk plain AWS APIs over HTTP.

Two extra HTTP endpoints live beside moto's own ``/moto-api/``:

- ``GET /moto-api/kmsguard/requests`` -> ``{"total": n, "requests": {"kms:DescribeKey": n, ...}}``: every AWS
  request the server answered, by service and operation (for the scan benchmark), and of those
  ``"throttled_total"`` and ``"throttled"`` (same keys): answered with a throttling error by the quota layer
  (``quotas.py``);
  ``DELETE`` (or ``POST``) on the same path resets the counts.
- ``POST /moto-api/kmsguard/aws-managed-key`` with ``{"account": ..., "region": ..., "service": "s3"}``:
  creates the AWS managed key ``alias/aws/<service>`` in that account/region if it does not exist yet (AWS
  does this the first time a service uses it) and returns its ``KeyMetadata``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kmsguard.demo.deny_eval import denying_statement

_apply_lock = threading.Lock()
_applied = False

# Services whose AWS managed key (alias/aws/<name>) the emulator can create, with what the key's description
# says it protects and the service's kms:ViaService prefix. A superset of moto's own reserved aliases.
AWS_MANAGED_SERVICES: dict[str, tuple[str, str]] = {
    "acm": ("ACM private certificate keys", "acm"),
    "backup": ("Backup vaults", "backup"),
    "codecommit": ("CodeCommit repositories", "codecommit"),
    "dynamodb": ("DynamoDB tables", "dynamodb"),
    "ebs": ("EBS volumes", "ec2"),
    "elasticfilesystem": ("EFS file systems", "elasticfilesystem"),
    "es": ("Elasticsearch domains", "es"),
    "fsx": ("FSx file systems", "fsx"),
    "glue": ("Glue data", "glue"),
    "kinesis": ("Kinesis data streams", "kinesis"),
    "kinesisvideo": ("Kinesis Video Streams", "kinesisvideo"),
    "lambda": ("Lambda functions", "lambda"),
    "rds": ("RDS database volumes", "rds"),
    "redshift": ("Redshift clusters", "redshift"),
    "s3": ("S3 objects", "s3"),
    "secretsmanager": ("Secrets Manager secrets", "secretsmanager"),
    "sns": ("SNS topics", "sns"),
    "sqs": ("SQS messages", "sqs"),
    "ssm": ("SSM parameters", "ssm"),
    "xray": ("X-Ray traces", "xray"),
}
AWS_ALIAS_PREFIX = "alias/aws/"
DEFAULT_ROTATION_DAYS = 365
MIN_ROTATION_DAYS, MAX_ROTATION_DAYS = 90, 2560

# The moto KMS backend is used from the server's request threads; creating an AWS managed key on first
# reference must not race into two keys for one alias.
_kms_lock = threading.RLock()


# --------------------------------------------------------------------------------------------------------------
# Errors as AWS spells them (moto's own classes drop the message for some codes)


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _access_denied(account: str, action: str, arn: str, why: str) -> Exception:
    return _error(
        "AccessDeniedException",
        f"User: arn:aws:iam::{account}:root is not authorized to perform: {action} on resource: {arn} {why}",
    )


# --------------------------------------------------------------------------------------------------------------
# Helpers over moto's KMS model


def _kms_backend(account: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account][region]


def _lookup_key(backend: Any, key_ref: str | None) -> Any:
    """The moto Key a key id, key ARN, alias name or alias ARN names, without creating anything; else None."""
    if not key_ref or not isinstance(key_ref, str):
        return None
    ref = backend.get_alias_name(key_ref)
    if ref.startswith("alias/"):
        for key in backend.keys.values():
            if ref in key.aliases:
                return key
        return None
    return backend.keys.get(backend.get_key_id(ref))


def aws_managed_key_policy(account: str, region: str, service: str) -> str:
    """The key policy AWS gives an AWS managed key: use only through the service, metadata for the account."""
    via = AWS_MANAGED_SERVICES.get(service, (service, service))[1]
    name = service.upper() if len(service) <= 3 else service
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": f"auto-{service}-2",
            "Statement": [
                {
                    "Sid": f"Allow access through {name} for all principals in the account that are authorized "
                    f"to use {name}",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"{via}.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        },
        indent=2,
    )


def _make_aws_managed(key: Any, service: str) -> None:
    """Turn a freshly created moto key into what AWS shows for an AWS managed key."""
    what = AWS_MANAGED_SERVICES.get(service, (f"{service} data", service))[0]
    key.key_manager = "AWS"
    key.description = f"Default key that protects my {what} when no other key is defined"
    key.policy = aws_managed_key_policy(key.account_id, key.region, service)
    # AWS rotates AWS managed keys every year; nobody can change that.
    key.key_rotation_status = True
    key._kg_rotation_period = DEFAULT_ROTATION_DAYS
    key._kg_rotation_start = key.creation_date


def ensure_aws_managed_key(account: str, region: str, service: str) -> Any:
    """The AWS managed key ``alias/aws/<service>`` of this account and region, created on first reference.

    This is what AWS does when a service first encrypts with its default key (or when DescribeKey names
    the predefined alias). Returns moto's Key object.
    """
    backend = _kms_backend(account, region)
    alias = AWS_ALIAS_PREFIX + service
    with _kms_lock:
        existing = _lookup_key(backend, alias)
        if existing is not None:
            return existing
        key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "", None)
        backend.create_alias(key.id, alias)  # the patched create_alias makes it AWS managed
        return key


# --------------------------------------------------------------------------------------------------------------
# The patches


def _patch_aws_managed_keys() -> None:
    """AWS managed keys.

    moto gap (5.2.5): every key is KeyManager CUSTOMER. Referencing a predefined ``alias/aws/*`` alias (or EBS
    and DynamoDB encrypting by default) creates a CUSTOMER key with the account-root default policy; only 14
    services are known (no sns, sqs, backup ...); ListAliases reports the predefined aliases with a fixed
    TargetKeyId that names no existing key; CreateAlias accepts most ``alias/aws/`` names; RDS records the
    literal "default_kms_key_id" as the key of an encrypted instance without KmsKeyId.

    AWS behaviour restored: an AWS managed key (KeyManager AWS, description "Default key that protects my ...
    when no other key is defined", the AWS-managed key policy allowing use only through the service
    (kms:ViaService + kms:CallerAccount), rotation enabled every 365 days) is created per account and region
    the first time a service uses it or DescribeKey/Encrypt name its alias. Until then ListAliases lists the
    predefined alias without a TargetKeyId. The alias/aws/ prefix is reserved (NotAuthorizedException), and
    PutKeyPolicy, ScheduleKeyDeletion, CancelKeyDeletion, Enable/DisableKey, Enable/DisableKeyRotation,
    RotateKeyOnDemand, Tag/UntagResource, UpdateKeyDescription and aliasing on an AWS managed key are denied
    (AccessDeniedException: its key policy allows none of them). RDS, Secrets Manager, SSM SecureString and
    S3 SSE-KMS default encryption without a key create the service's AWS managed key, as in AWS, and RDS
    reports its ARN.
    """
    from moto.kms.models import KmsBackend
    from moto.kms.responses import KmsResponse

    orig_create_alias = KmsBackend.create_alias

    def create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
        alias = orig_create_alias(self, target_key_id, alias_name)
        if alias_name.startswith(AWS_ALIAS_PREFIX):
            key = self.keys[self.get_key_id(target_key_id)]
            if key.key_manager != "AWS":
                _make_aws_managed(key, alias_name[len(AWS_ALIAS_PREFIX) :])
        return alias

    def get_key_id_from_alias(self: Any, alias_name: str) -> str | None:
        for key in self.keys.values():
            if alias_name in key.aliases:
                return str(key.id)
        service = alias_name[len(AWS_ALIAS_PREFIX) :] if alias_name.startswith(AWS_ALIAS_PREFIX) else ""
        if service in AWS_MANAGED_SERVICES:
            return str(ensure_aws_managed_key(self.account_id, self.region_name, service).id)
        return None

    KmsBackend.create_alias = create_alias  # type: ignore[method-assign]
    KmsBackend.get_key_id_from_alias = get_key_id_from_alias  # type: ignore[method-assign]

    def list_aliases(self: Any) -> str:
        backend = self.kms_backend
        key_id = self._get_param("KeyId")
        if key_id is not None:
            self._validate_key_id(key_id)
            key_id = backend.get_key_id(key_id)
        entries: list[dict[str, Any]] = []
        for key in backend.keys.values():
            if key_id and key.id != key_id:
                continue
            for alias in key.aliases.values():
                entries.append(
                    {
                        "AliasName": alias.alias_name,
                        "AliasArn": alias.alias_arn,
                        "TargetKeyId": alias.target_key_id,
                        "CreationDate": key.creation_date,
                        "LastUpdatedDate": key.creation_date,
                    }
                )
        if key_id is None:
            present = {e["AliasName"] for e in entries}
            for service in AWS_MANAGED_SERVICES:
                name = AWS_ALIAS_PREFIX + service
                if name not in present:
                    # A predefined alias AWS has not associated with a key yet: no TargetKeyId.
                    entries.append(
                        {"AliasName": name, "AliasArn": f"arn:aws:kms:{self.region}:{self.current_account}:{name}"}
                    )
        page, marker = _paginate(entries, self._get_param("Limit"), self._get_param("Marker"), 50, 100)
        body: dict[str, Any] = {"Aliases": page, "Truncated": marker is not None}
        if marker is not None:
            body["NextMarker"] = marker
        return json.dumps(body)

    KmsResponse.list_aliases = list_aliases  # type: ignore[method-assign]

    orig_set_alias = KmsResponse._set_alias

    def _set_alias(self: Any, update: bool = False) -> str:
        name = self._get_param("AliasName")
        if isinstance(name, str) and name.startswith(AWS_ALIAS_PREFIX):
            raise _error("NotAuthorizedException", f"{name}: the alias/aws/ prefix is reserved for AWS managed keys")
        return str(orig_set_alias(self, update))

    KmsResponse._set_alias = _set_alias  # type: ignore[method-assign]

    orig_delete_alias = KmsResponse.delete_alias

    def delete_alias(self: Any) -> str:
        name = self._get_param("AliasName")
        if isinstance(name, str) and name.startswith(AWS_ALIAS_PREFIX):
            raise _error("NotAuthorizedException", f"{name}: aliases of AWS managed keys cannot be deleted")
        return str(orig_delete_alias(self))

    KmsResponse.delete_alias = delete_alias  # type: ignore[method-assign]

    # Management operations an AWS managed key's policy does not allow to anyone.
    for method_name, action, param in (
        ("put_key_policy", "kms:PutKeyPolicy", "KeyId"),
        ("schedule_key_deletion", "kms:ScheduleKeyDeletion", "KeyId"),
        ("cancel_key_deletion", "kms:CancelKeyDeletion", "KeyId"),
        ("enable_key", "kms:EnableKey", "KeyId"),
        ("disable_key", "kms:DisableKey", "KeyId"),
        ("enable_key_rotation", "kms:EnableKeyRotation", "KeyId"),
        ("disable_key_rotation", "kms:DisableKeyRotation", "KeyId"),
        ("rotate_key_on_demand", "kms:RotateKeyOnDemand", "KeyId"),
        ("tag_resource", "kms:TagResource", "KeyId"),
        ("untag_resource", "kms:UntagResource", "KeyId"),
        ("update_key_description", "kms:UpdateKeyDescription", "KeyId"),
        ("create_alias", "kms:CreateAlias", "TargetKeyId"),
        ("update_alias", "kms:UpdateAlias", "TargetKeyId"),
    ):
        if hasattr(KmsResponse, method_name):
            setattr(KmsResponse, method_name, _refuse_on_aws_managed(getattr(KmsResponse, method_name), action, param))

    _hook_service_defaults()


def _refuse_on_aws_managed(method: Callable[[Any], str], action: str, param: str) -> Callable[[Any], str]:
    @functools.wraps(method)
    def guarded(self: Any) -> str:
        key = _lookup_key(self.kms_backend, self._get_param(param))
        if key is not None and key.key_manager == "AWS":
            raise _access_denied(
                self.current_account, action, key.arn, f"because no resource-based policy allows the {action} action"
            )
        return method(self)

    return guarded


def _after(cls: Any, name: str, hook: Callable[[Any, inspect.BoundArguments, Any], None]) -> None:
    """Run ``hook(backend, bound_args, result)`` after ``cls.name``; a failing hook never breaks the call."""
    orig = getattr(cls, name, None)
    if orig is None:
        return
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = orig(self, *args, **kwargs)
        # The service call itself succeeded; creating the default key is a nicety that must not fail it.
        with contextlib.suppress(Exception):
            hook(self, sig.bind(self, *args, **kwargs), result)
        return result

    setattr(cls, name, wrapped)


def _hook_service_defaults() -> None:
    """Services that encrypt with their AWS managed key when given none create it, as in AWS."""
    from moto.rds.models import RDSBackend
    from moto.s3.models import S3Backend
    from moto.secretsmanager.models import SecretsManagerBackend
    from moto.ssm.models import SimpleSystemManagerBackend

    def rds(backend: Any, _args: inspect.BoundArguments, db: Any) -> None:
        if getattr(db, "storage_encrypted", False) and getattr(db, "kms_key_id", None) in (None, "default_kms_key_id"):
            db.kms_key_id = ensure_aws_managed_key(backend.account_id, backend.region_name, "rds").arn

    def secret(backend: Any, args: inspect.BoundArguments, _result: Any) -> None:
        if not args.arguments.get("kms_key_id"):
            ensure_aws_managed_key(backend.account_id, backend.region_name, "secretsmanager")

    def parameter(backend: Any, args: inspect.BoundArguments, _result: Any) -> None:
        if args.arguments.get("parameter_type") == "SecureString" and not args.arguments.get("keyid"):
            ensure_aws_managed_key(backend.account_id, backend.region_name, "ssm")

    def bucket_encryption(backend: Any, args: inspect.BoundArguments, _result: Any) -> None:
        text = json.dumps(args.arguments.get("encryption"))
        if "aws:kms" in text and "KMSMasterKeyID" not in text:
            region = backend.get_bucket(args.arguments["bucket_name"]).region_name
            ensure_aws_managed_key(backend.account_id, region, "s3")

    _after(RDSBackend, "create_db_instance", rds)
    _after(RDSBackend, "create_db_cluster", rds)
    _after(SecretsManagerBackend, "create_secret", secret)
    _after(SimpleSystemManagerBackend, "put_parameter", parameter)
    _after(S3Backend, "put_bucket_encryption", bucket_encryption)


def _patch_pagination() -> None:
    """ListKeys pages.

    moto gap (5.2.5): ListKeys ignores Limit and Marker and returns every key in one page (ListAliases is
    paged by the AWS-managed-keys patch). AWS behaviour restored: at most Limit keys per page (default 100,
    1-1000), Truncated and NextMarker, so a collector that forgets to paginate fails here as it would in AWS.
    """
    from moto.kms.responses import KmsResponse

    def list_keys(self: Any) -> str:
        keys = [{"KeyId": k.id, "KeyArn": k.arn} for k in self.kms_backend.list_keys()]
        page, marker = _paginate(keys, self._get_param("Limit"), self._get_param("Marker"), 100, 1000)
        body: dict[str, Any] = {"Keys": page, "Truncated": marker is not None}
        if marker is not None:
            body["NextMarker"] = marker
        return json.dumps(body)

    KmsResponse.list_keys = list_keys  # type: ignore[method-assign]


def _paginate(items: list[Any], limit: Any, marker: Any, default: int, maximum: int) -> tuple[list[Any], str | None]:
    if limit is None:
        limit = default
    if not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise _error("ValidationException", f"Limit must be between 1 and {maximum}")
    start = 0
    if marker is not None:
        try:
            start = int(str(marker).removeprefix("kg-"))
        except ValueError:
            raise _error("InvalidMarkerException", f"Invalid marker: {marker}") from None
    end = start + limit
    return items[start:end], (f"kg-{end}" if end < len(items) else None)


def _rotation_unsupported(key: Any) -> str | None:
    """Why AWS refuses automatic rotation for this key, or None when it is a rotatable key."""
    if key.key_spec != "SYMMETRIC_DEFAULT":
        return f"{key.arn} has key spec {key.key_spec}: automatic rotation applies to symmetric encryption keys only"
    if key.origin != "AWS_KMS":
        return f"{key.arn} has origin {key.origin}: automatic rotation is not supported for this key material origin"
    return None


def _state_error(key: Any) -> Exception | None:
    if key.key_state == "PendingDeletion":
        return _error("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if key.key_state == "Disabled":
        return _error("KMSInvalidStateException", f"{key.arn} is disabled.")
    return None


def _patch_rotation() -> None:
    """Rotation period and rotation support.

    moto gaps (5.2.5): EnableKeyRotation ignores RotationPeriodInDays (GetKeyRotationStatus returns only
    KeyRotationEnabled); Enable/Disable/GetKeyRotationStatus answer for asymmetric, HMAC, imported (Origin
    EXTERNAL) and custom key store keys, and change rotation on disabled or pending-deletion keys.

    AWS behaviour restored: EnableKeyRotation takes RotationPeriodInDays (90-2560, default 365; outside that
    range ValidationException); GetKeyRotationStatus returns KeyId, KeyRotationEnabled and, while enabled,
    RotationPeriodInDays and NextRotationDate; a key pending deletion reports rotation false (its setting
    returns when the deletion is cancelled); rotation operations on keys that cannot rotate automatically raise
    UnsupportedOperationException; enabling or disabling rotation on a disabled or pending-deletion key raises
    KMSInvalidStateException.
    """
    from moto.kms.responses import KmsResponse

    def _key(self: Any) -> Any:
        key_id = self._get_param("KeyId")
        self._validate_cmk_id(key_id)
        return self.kms_backend.keys[self.kms_backend.get_key_id(key_id)]

    def enable_key_rotation(self: Any) -> str:
        key = _key(self)
        period = self._get_param("RotationPeriodInDays")
        if period is not None and (not isinstance(period, int) or not MIN_ROTATION_DAYS <= period <= MAX_ROTATION_DAYS):
            raise _error(
                "ValidationException",
                f"1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to satisfy "
                f"constraint: Member must have value between {MIN_ROTATION_DAYS} and {MAX_ROTATION_DAYS}",
            )
        reason = _rotation_unsupported(key)
        if reason:
            raise _error("UnsupportedOperationException", reason)
        state = _state_error(key)
        if state is not None:
            raise state
        key.key_rotation_status = True
        key._kg_rotation_period = period or DEFAULT_ROTATION_DAYS
        key._kg_rotation_start = time.time()
        return json.dumps(None)

    def disable_key_rotation(self: Any) -> str:
        key = _key(self)
        reason = _rotation_unsupported(key)
        if reason:
            raise _error("UnsupportedOperationException", reason)
        state = _state_error(key)
        if state is not None:
            raise state
        key.key_rotation_status = False
        return json.dumps(None)

    def get_key_rotation_status(self: Any) -> str:
        key = _key(self)
        reason = _rotation_unsupported(key)
        if reason:
            raise _error("UnsupportedOperationException", reason)
        enabled = bool(key.key_rotation_status) and key.key_state != "PendingDeletion"
        body: dict[str, Any] = {"KeyId": key.arn, "KeyRotationEnabled": enabled}
        if enabled:
            period = int(getattr(key, "_kg_rotation_period", DEFAULT_ROTATION_DAYS))
            start = float(getattr(key, "_kg_rotation_start", key.creation_date))
            step = period * 86400.0
            nxt = start + step
            now = time.time()
            if nxt <= now:  # the emulator does not rotate; report the next date still to come
                nxt += step * (int((now - nxt) // step) + 1)
            body["RotationPeriodInDays"] = period
            body["NextRotationDate"] = nxt
        return json.dumps(body)

    KmsResponse.enable_key_rotation = enable_key_rotation  # type: ignore[method-assign]
    KmsResponse.disable_key_rotation = disable_key_rotation  # type: ignore[method-assign]
    KmsResponse.get_key_rotation_status = get_key_rotation_status  # type: ignore[method-assign]


def _patch_key_arn_ids() -> None:
    """Key ARNs as KeyId for key state operations.

    moto gap (5.2.5): DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion look the KeyId up as a
    raw key id, so a key ARN (which passes validation) ends in a 500 Internal Server Error.

    AWS behaviour restored: these operations accept the key id or the key ARN, like every other key operation.
    """
    from moto.kms.models import KmsBackend

    for name in ("disable_key", "enable_key", "schedule_key_deletion", "cancel_key_deletion"):
        orig = getattr(KmsBackend, name)

        def make(orig: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(orig)
            def by_id(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
                return orig(self, self.get_key_id(key_id), *args, **kwargs)

            return by_id

        setattr(KmsBackend, name, make(orig))


class _LazyPrivateKey:
    """Stands for moto's per-key private key and generates it only when something signs, verifies or asks for it."""

    def __init__(self, factory: Callable[[str], Any], key_spec: str) -> None:
        self._factory = factory
        self._key_spec = key_spec
        self._real: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._real is None:
                self._real = self._factory(self._key_spec)
        return getattr(self._real, name)


def _patch_lazy_key_material() -> None:
    """Key creation speed (an emulator matter; AWS is unaffected).

    moto gap (5.2.5): CreateKey generates an RSA-2048 private key for every key, symmetric ones included
    (tens of milliseconds each), which makes seeding the demo estate or a 1,000-key benchmark estate slow.

    Behaviour: the private key is generated the first time it is used (Sign, Verify, GetPublicKey); responses
    are unchanged.
    """
    import moto.kms.models as kms_models

    factory = kms_models.generate_private_key

    def generate_private_key(key_spec: str) -> Any:
        return _LazyPrivateKey(factory, key_spec)

    kms_models.generate_private_key = generate_private_key  # type: ignore[assignment]


def _patch_trail_default_selectors() -> None:
    """A new trail's default event selector.

    moto gap (5.2.5): GetEventSelectors on a trail nobody called PutEventSelectors on returns no selectors at
    all, which reads as "records no management events".

    AWS behaviour restored: a trail is created with one event selector recording all management events, read
    and write (ReadWriteType All, IncludeManagementEvents true, no data resources), until it is replaced.
    """
    from moto.cloudtrail.models import Trail

    orig = Trail.get_event_selectors

    def get_event_selectors(self: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        basic, advanced = orig(self)
        if not basic and not advanced:
            default = {
                "ReadWriteType": "All",
                "IncludeManagementEvents": True,
                "DataResources": [],
                "ExcludeManagementEventSources": [],
            }
            return [default], []
        return basic, advanced

    Trail.get_event_selectors = get_event_selectors  # type: ignore[method-assign]


def _patch_key_usage_default() -> None:
    """KeyUsage defaults to ENCRYPT_DECRYPT.

    moto gap (5.2.5): CreateKey without KeyUsage stores none, so DescribeKey omits KeyUsage for the most common
    kind of key (a symmetric encryption key created with no options).

    AWS behaviour restored: KeyUsage defaults to ENCRYPT_DECRYPT and DescribeKey always reports it.
    """
    from moto.kms.models import KmsBackend

    orig = KmsBackend.create_key

    @functools.wraps(orig)
    def create_key(self: Any, policy: Any, key_usage: Any, *args: Any, **kwargs: Any) -> Any:
        return orig(self, policy, key_usage or "ENCRYPT_DECRYPT", *args, **kwargs)

    KmsBackend.create_key = create_key  # type: ignore[method-assign]


def _patch_ebs_default_key() -> None:
    """The account's EBS default key.

    moto gap (5.2.5): GetEbsDefaultKmsKeyId and ResetEbsDefaultKmsKeyId are not implemented (the server answers
    500), so nothing can read which key encrypts new EBS volumes by default.

    AWS behaviour restored: GetEbsDefaultKmsKeyId returns the key set by ModifyEbsDefaultKmsKeyId (its ARN)
    or, when none was set, ``alias/aws/ebs``; ResetEbsDefaultKmsKeyId goes back to ``alias/aws/ebs``.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response

    orig_modify = EC2Response.modify_ebs_default_kms_key_id

    def modify_ebs_default_kms_key_id(self: Any) -> Any:
        result = orig_modify(self)
        self.ec2_backend._kg_ebs_default_set = True
        return result

    def get_ebs_default_kms_key_id(self: Any) -> Any:
        self.error_on_dryrun()
        backend = self.ec2_backend
        chosen = backend.default_kms_key_id if getattr(backend, "_kg_ebs_default_set", False) else ""
        return ActionResult({"KmsKeyId": chosen or "alias/aws/ebs"})

    def reset_ebs_default_kms_key_id(self: Any) -> Any:
        self.error_on_dryrun()
        backend = self.ec2_backend
        backend._kg_ebs_default_set = False
        backend.default_kms_key_id = ""
        return ActionResult({"KmsKeyId": "alias/aws/ebs"})

    EC2Response.modify_ebs_default_kms_key_id = modify_ebs_default_kms_key_id  # type: ignore[method-assign]
    EC2Response.get_ebs_default_kms_key_id = get_ebs_default_kms_key_id  # type: ignore[attr-defined]
    EC2Response.reset_ebs_default_kms_key_id = reset_ebs_default_kms_key_id  # type: ignore[attr-defined]


# KMS operations whose KeyId names the key the key policy governs (method name -> IAM action).
_KEY_OPERATIONS = {
    "describe_key": "kms:DescribeKey",
    "get_key_policy": "kms:GetKeyPolicy",
    "put_key_policy": "kms:PutKeyPolicy",
    "list_key_policies": "kms:ListKeyPolicies",
    "get_key_rotation_status": "kms:GetKeyRotationStatus",
    "enable_key_rotation": "kms:EnableKeyRotation",
    "disable_key_rotation": "kms:DisableKeyRotation",
    "list_key_rotations": "kms:ListKeyRotations",
    "rotate_key_on_demand": "kms:RotateKeyOnDemand",
    "list_resource_tags": "kms:ListResourceTags",
    "tag_resource": "kms:TagResource",
    "untag_resource": "kms:UntagResource",
    "list_grants": "kms:ListGrants",
    "create_grant": "kms:CreateGrant",
    "revoke_grant": "kms:RevokeGrant",
    "schedule_key_deletion": "kms:ScheduleKeyDeletion",
    "cancel_key_deletion": "kms:CancelKeyDeletion",
    "enable_key": "kms:EnableKey",
    "disable_key": "kms:DisableKey",
    "update_key_description": "kms:UpdateKeyDescription",
    "encrypt": "kms:Encrypt",
    "decrypt": "kms:Decrypt",
    "generate_data_key": "kms:GenerateDataKey",
    "generate_data_key_without_plaintext": "kms:GenerateDataKeyWithoutPlaintext",
    "sign": "kms:Sign",
    "verify": "kms:Verify",
    "generate_mac": "kms:GenerateMac",
    "verify_mac": "kms:VerifyMac",
    "get_public_key": "kms:GetPublicKey",
}


def _request_context(resp: Any, key: Any) -> dict[str, list[str]]:
    """The condition keys the emulator knows for this request (lower-cased names)."""
    account = resp.current_account
    now = time.time()
    ctx: dict[str, list[str]] = {
        # The demo and test traffic stands for calls to AWS's TLS endpoint; the plain-http hop to 127.0.0.1 is
        # an artefact of emulation, so the request counts as secure transport.
        "aws:securetransport": ["true"],
        "kms:calleraccount": [account],
        "aws:principalaccount": [account],
        "aws:principalarn": [f"arn:aws:iam::{account}:root"],
        "aws:principaltype": ["Account"],
        "aws:userid": [account],
        "aws:requestedregion": [resp.region],
        "aws:currenttime": [datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(now))],
    }
    remote = getattr(getattr(resp, "request", None), "remote_addr", None)
    if remote:
        ctx["aws:sourceip"] = [str(remote)]
    try:
        enc = resp._get_param("EncryptionContext") or {}
    except Exception:
        enc = {}
    if isinstance(enc, dict) and enc:
        ctx["kms:encryptioncontextkeys"] = [str(k) for k in enc]
        for k, v in enc.items():
            ctx[f"kms:encryptioncontext:{str(k).lower()}"] = [str(v)]
    try:
        tags = resp.kms_backend.tagger.get_tag_dict_for_resource(key.id)
    except Exception:
        tags = {}
    for k, v in tags.items():
        ctx[f"aws:resourcetag/{str(k).lower()}"] = [str(v)]
    return ctx


def _patch_key_policy_deny() -> None:
    """Key-policy Deny statements with their conditions.

    moto gap (5.2.5): only DescribeKey consults the key policy, and any Deny statement whose Action list
    contains kms:* / kms:Describe* / kms:DescribeKey with Resource "*" denies everyone, whatever its Principal
    and Condition: a guide-standard DenyInsecureTransport statement (Bool aws:SecureTransport false) locks
    every caller out.

    AWS behaviour restored: an explicit Deny applies only when its Principal, Action/NotAction,
    Resource/NotResource and every Condition hold for the request (see ``deny_eval``); this is checked for
    every KMS operation on a key, not only DescribeKey, so a test can deny one operation on one key with a
    key policy exactly as in AWS. The caller is the account (``arn:aws:iam::<account>:root``), kms:CallerAccount
    is the account, there is no kms:ViaService, and aws:SecureTransport is true (the emulator stands for AWS's
    TLS endpoint). Allow statements are still not evaluated (moto has no implicit deny).
    """
    from moto.kms.responses import KmsResponse

    def _validate_key_policy(self: Any, key_id: str, action: str) -> None:
        key = _lookup_key(self.kms_backend, key_id)
        if key is None:
            return
        account = self.current_account
        callers = [f"arn:aws:iam::{account}:root", account]
        if denying_statement(key.policy, action, key.arn, callers, _request_context(self, key)) is not None:
            raise _access_denied(account, action, key.arn, "with an explicit deny in a resource-based policy")

    KmsResponse._validate_key_policy = _validate_key_policy  # type: ignore[method-assign]

    for method_name, action in _KEY_OPERATIONS.items():
        if method_name == "describe_key" or not hasattr(KmsResponse, method_name):
            continue  # moto's describe_key already calls _validate_key_policy

        def make(method: Callable[[Any], str], action: str) -> Callable[[Any], str]:
            @functools.wraps(method)
            def checked(self: Any) -> str:
                key_id = self._get_param("KeyId")
                if key_id:
                    self._validate_key_policy(key_id, action)
                return method(self)

            return checked

        setattr(KmsResponse, method_name, make(getattr(KmsResponse, method_name), action))


# --------------------------------------------------------------------------------------------------------------
# The request counter

_count_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()
_throttled: Counter[tuple[str, str]] = Counter()  # of _counts: answered with a throttling error (quotas.py)
# SigV4 signing names that differ from the boto3 client names people know.
_SIGNING_TO_CLIENT = {"monitoring": "cloudwatch", "tagging": "resourcegroupstaggingapi", "email": "ses"}


def request_count() -> int:
    """How many AWS requests servers in this process have answered since start (or the last reset)."""
    with _count_lock:
        return sum(_counts.values())


def request_counts() -> dict[tuple[str, str], int]:
    """The answered AWS requests by (service, operation), e.g. {("kms", "DescribeKey"): 30}."""
    with _count_lock:
        return dict(_counts)


def throttled_counts() -> dict[tuple[str, str], int]:
    """Of ``request_counts()``, those answered with a throttling error by the emulator's quotas."""
    with _count_lock:
        return dict(_throttled)


def reset_request_counts() -> None:
    with _count_lock:
        _counts.clear()
        _throttled.clear()


def record_throttled(service: str, operation: str) -> None:
    """Count a request the quota layer answered itself (moto never sees it, so ``_record`` does not)."""
    with _count_lock:
        _counts[(service, operation)] += 1
        _throttled[(service, operation)] += 1


def is_aws_request(path: str) -> bool:
    """Whether a request path is an AWS API call (not moto's or kmsguard's own endpoints)."""
    return not path.startswith("/moto-api") and path != "/favicon.ico"


def _credential_scope(request: Any) -> list[str]:
    """[access key, date, region, signing name, "aws4_request"] of a SigV4 request; [] when unsigned."""
    auth = request.headers.get("Authorization", "")
    # AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=..., Signature=...
    start = auth.find("Credential=")
    if start < 0:
        return []
    parts: list[str] = auth[start + 11 :].split(",", 1)[0].split("/")
    return parts if len(parts) >= 4 else []


def service_of(request: Any) -> str:
    scope = _credential_scope(request)
    return _SIGNING_TO_CLIENT.get(scope[3], scope[3]) if scope else "unknown"


def region_of(request: Any) -> str:
    """The Region the request was signed for (global services sign for us-east-1, as in AWS)."""
    scope = _credential_scope(request)
    return scope[2] if scope else "us-east-1"


def account_of(request: Any) -> str:
    """The account moto serves this request from: the one owning the access key (an assumed role's
    credentials belong to the role's account), else moto's default account, as ``BaseResponse`` decides."""
    from moto.iam.models import get_account_id_from

    scope = _credential_scope(request)
    return str(get_account_id_from(scope[0] if scope else "AKIAEXAMPLE"))


def operation_of(request: Any, service: str) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    path = request.path
    if "/operation/" in path:  # smithy rpc-v2-cbor: /service/<Service>/operation/<Operation>
        return str(path.rsplit("/", 1)[-1])
    action = request.args.get("Action")
    if not action and request.mimetype == "application/x-www-form-urlencoded":
        action = request.form.get("Action")
    if action:
        return str(action)
    try:  # REST protocols (S3, Lambda ...): let botocore's model route the request, as moto does
        from moto.core.routing import get_service_router

        operation, _ = get_service_router(service).match(request)
        return str(operation.name)
    except Exception:
        return f"{request.method} {path}"


def _record(request: Any) -> None:
    if not is_aws_request(request.path):
        return
    service = service_of(request)
    key = (service, operation_of(request, service))
    with _count_lock:
        _counts[key] += 1


def _patch_request_counter() -> None:
    """A request counter (kmsguard's own; AWS has no equivalent, the benchmark needs it).

    Every AWS request a moto server in this process answers (errors included) is counted by (service,
    operation), thread-safely, after the response is built: ``request_count()``, ``request_counts()``,
    ``reset_request_counts()``, and ``GET /moto-api/kmsguard/requests`` for an out-of-process benchmark.
    Service is the SigV4 signing name (mapped to the client name where they differ), operation comes from
    X-Amz-Target, the Action parameter, or botocore's REST routing.
    """
    from moto.core.utils import convert_to_flask_response

    orig_call = convert_to_flask_response.__call__

    def __call__(self: Any, args: Any = None, **kwargs: Any) -> Any:
        try:
            return orig_call(self, args, **kwargs)
        finally:
            # Counting must never break an answer.
            with contextlib.suppress(Exception):
                from flask import request

                _record(request)

    convert_to_flask_response.__call__ = __call__  # type: ignore[method-assign]


def _patch_cloudformation_keys() -> None:
    """CloudFormation's AWS::KMS::Key stores KeyPolicy as JSON text and takes {Key, Value} tags, as AWS does.

    moto's handler keeps the policy as the template's parsed object (GetKeyPolicy then answers an object, which
    no client can read) and hands CloudFormation's tags to a tagger that wants the API's {TagKey, TagValue}
    (create_stack fails). Every other property goes to moto untouched."""
    from moto.kms.models import Key

    create = Key.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def as_in_aws(cls: type, name: str, template: dict[str, Any], account_id: str, region: str, **kw: Any) -> Any:
        props = dict(template.get("Properties") or {})
        if "KeyPolicy" in props and not isinstance(props["KeyPolicy"], str):
            props["KeyPolicy"] = json.dumps(props["KeyPolicy"])
        props["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in props.get("Tags") or []
        ]
        return create(cls, name, {**template, "Properties": props}, account_id, region, **kw)

    Key.create_from_cloudformation_json = classmethod(as_in_aws)  # type: ignore[method-assign,assignment]


# --------------------------------------------------------------------------------------------------------------
# kmsguard's endpoints under /moto-api/kmsguard/


def _requests_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method in ("DELETE", "POST"):
        reset_request_counts()
    counts, throttled = request_counts(), throttled_counts()
    body = {
        "total": sum(counts.values()),
        "requests": {f"{s}:{o}": n for (s, o), n in sorted(counts.items())},
        "throttled_total": sum(throttled.values()),
        "throttled": {f"{s}:{o}": n for (s, o), n in sorted(throttled.items())},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


def _aws_managed_key_endpoint(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method != "POST":
        return 405, {}, json.dumps({"error": "POST {account, region, service}"})
    try:
        params = json.loads(request.get_data() or b"{}")
        account, region, service = str(params["account"]), str(params["region"]), str(params["service"])
    except (ValueError, KeyError, TypeError):
        return 400, {}, json.dumps({"error": "body must be JSON {account, region, service}"})
    if service not in AWS_MANAGED_SERVICES:
        return 400, {}, json.dumps({"error": f"unknown service {service!r}; known: {sorted(AWS_MANAGED_SERVICES)}"})
    if not (account.isdigit() and len(account) == 12):
        return 400, {}, json.dumps({"error": f"account {account!r} is not a 12-digit id"})
    key = ensure_aws_managed_key(account, region, service)
    return 200, {"Content-Type": "application/json"}, json.dumps(key.to_dict())


def _patch_endpoints() -> None:
    """kmsguard's endpoints beside moto's /moto-api/ (see the module docstring); nothing AWS has."""
    from moto.moto_api._internal import urls

    urls.url_paths["{0}/moto-api/kmsguard/requests"] = _requests_endpoint
    urls.url_paths["{0}/moto-api/kmsguard/aws-managed-key"] = _aws_managed_key_endpoint


# Applied in this order: rotation replaces moto's rotation handlers, then the AWS-managed-key guards wrap them,
# then the deny check wraps every key operation last, so it runs first (AWS authorises before it looks at the
# key's kind or state).
PATCHES: list[Callable[[], None]] = [
    _patch_lazy_key_material,
    _patch_key_arn_ids,
    _patch_key_usage_default,
    _patch_rotation,
    _patch_pagination,
    _patch_aws_managed_keys,
    _patch_ebs_default_key,
    _patch_trail_default_selectors,
    _patch_key_policy_deny,
    _patch_request_counter,
    _patch_cloudformation_keys,
    _patch_endpoints,
]


def apply() -> None:
    """Install every patch into this process's moto, once (later calls do nothing)."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        for patch in PATCHES:
            patch()
        _applied = True


def is_applied() -> bool:
    return _applied


def describe() -> list[tuple[str, str]]:
    """(name, first docstring line) of each patch, for docs and `--help` style listings."""
    return [(p.__name__.removeprefix("_patch_"), (p.__doc__ or "").strip().splitlines()[0]) for p in PATCHES]
