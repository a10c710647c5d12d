"""The columnar shape of a KMS event in the cache, and the KMS vocabulary the detections use.

One row per KMS CloudTrail record. Only what some detection, summary or piece of evidence needs is kept:
the cache is what every later run reads, so every column costs on every query.
"""

from __future__ import annotations

import pyarrow as pa

from kmsguard.policy.actions import CRYPTOGRAPHIC_ACTIONS, PERMISSIONS_OF_EVENT, canonical_action

KMS_SOURCE = "kms.amazonaws.com"

# Cryptographic operations: "use" of a key (key_unused, spikes, new principals, policy conformance). They are
# the calls as CloudTrail names them (eventName), from the policy engine's catalogue of the
# permissions (one home: a new KMS operation added there counts here too; Encapsulate and Decapsulate were
# missing from a list of this module's own). CloudTrail records one ReEncrypt call where IAM checks two
# permissions, kms:ReEncryptFrom and kms:ReEncryptTo.
_EVENT_OF_PERMISSION = {p.split(":", 1)[1]: event for event, ps in PERMISSIONS_OF_EVENT.items() for p in ps}
CRYPTO_ACTIONS = frozenset(
    _EVENT_OF_PERMISSION.get(name, name)
    for name in (canonical_action(a).split(":", 1)[1] for a in CRYPTOGRAPHIC_ACTIONS)
)

# Columns in the order the decoder builds its row tuples (event_time is the raw string until conversion).
COLUMNS = (
    "event_time",
    "event_name",
    "event_id",
    "region",
    "recipient_account",
    "key_arn",  # the key ARN when the record names one, else the key id or alias as logged, else null
    "key_account",
    "principal",  # stable identity: the role for an assumed-role session, "service:NAME" for AWS services
    "principal_arn",  # userIdentity.arn as logged (the session ARN for assumed roles)
    "principal_type",
    "principal_account",
    "invoked_by",
    "source_ip",
    "user_agent",
    "error_code",
    "is_crypto",
    "params",  # requestParameters as JSON text, for non-cryptographic events only (policies, grants, aliases)
    "grantee",
    "alias_name",
    "context_arn",  # the first ARN in the encryption context: the resource the key protected
    "file",
)

ARROW_SCHEMA = pa.schema(
    [
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("event_ts", pa.int64()),  # epoch seconds: portable bucketing arithmetic in DuckDB and Spark SQL
        ("event_name", pa.string()),
        ("event_id", pa.string()),
        ("region", pa.string()),
        ("recipient_account", pa.string()),
        ("key_arn", pa.string()),
        ("key_account", pa.string()),
        ("principal", pa.string()),
        ("principal_arn", pa.string()),
        ("principal_type", pa.string()),
        ("principal_account", pa.string()),
        ("invoked_by", pa.string()),
        ("source_ip", pa.string()),
        ("user_agent", pa.string()),
        ("error_code", pa.string()),
        ("is_crypto", pa.bool_()),
        ("params", pa.string()),
        ("grantee", pa.string()),
        ("alias_name", pa.string()),
        ("context_arn", pa.string()),
        ("file", pa.string()),
    ]
)
