"""Event intake: KMS API calls delivered by EventBridge (directly, or through SQS, or SNS then SQS).

EventBridge sends CloudTrail-recorded API calls as ``{"source": "aws.kms", "detail-type": "AWS API Call
via CloudTrail", "account", "region", "detail": {"eventName", "requestParameters": {"keyId"}, ...}}``.
``key_event`` turns one into the key to re-read; anything else (other services, read-only calls, malformed
bodies) is None and is dropped by the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kmsguard.arn import parse as parse_arn
from kmsguard.fileio import loads_json

log = logging.getLogger(__name__)

# KMS API calls that change what kmsguard judges about a key.
KEY_EVENTS = frozenset(
    {
        "PutKeyPolicy", "ScheduleKeyDeletion", "CancelKeyDeletion", "DisableKey", "EnableKey",
        "DisableKeyRotation", "EnableKeyRotation", "CreateGrant", "RetireGrant", "RevokeGrant", "CreateKey",
        "CreateAlias", "UpdateAlias", "DeleteAlias", "TagResource", "UntagResource", "UpdateKeyDescription",
        "ReplicateKey", "ImportKeyMaterial", "DeleteImportedKeyMaterial", "UpdatePrimaryRegion",
    }
)  # fmt: skip


@dataclass(frozen=True)
class KeyEvent:
    event_name: str
    account: str
    region: str
    key_ref: str  # key id, key ARN or alias name, as the API call named it


def _unwrap(body: Any) -> dict[str, Any] | None:
    if isinstance(body, str):
        try:
            body = loads_json(body)  # anyone who may send to the queue writes this: fileio's limits
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):  # SNS -> SQS envelope
        return _unwrap(body["Message"])
    return body


def key_event(body: Any) -> KeyEvent | None:
    event = _unwrap(body)
    if event is None or event.get("source") != "aws.kms":
        return None
    detail = event.get("detail") or {}
    name = str(detail.get("eventName") or "")
    if name not in KEY_EVENTS or detail.get("errorCode"):
        return None  # a refused call changed nothing
    params = detail.get("requestParameters") or {}
    ref = params.get("keyId") or params.get("targetKeyId")
    if not ref:
        ref = ((detail.get("responseElements") or {}).get("keyMetadata") or {}).get("keyId")
    if not ref:
        for r in event.get("resources") or detail.get("resources") or []:
            arn = r.get("ARN") or r.get("arn") if isinstance(r, dict) else None
            if arn and ":key/" in arn:
                ref = arn
                break
    if not ref:
        return None
    account = str(event.get("account") or detail.get("recipientAccountId") or "")
    region = str(event.get("region") or detail.get("awsRegion") or "")
    parsed = parse_arn(str(ref))
    if parsed is not None:
        region, account = parsed.region or region, parsed.account or account
    if not account or not region:
        return None
    return KeyEvent(name, account, region, str(ref))


def queue_url(spec: str) -> str:
    """``sqs://HOST/ACCOUNT/QUEUE`` (or ``sqs://https://...``) -> the queue URL SQS expects."""
    if not spec.startswith("sqs://"):
        raise ValueError(f"--events {spec!r}: expected sqs://QUEUE_URL")
    rest = spec[len("sqs://") :]
    if rest.startswith(("http://", "https://")):
        return rest
    host = urlsplit("//" + rest).hostname or ""
    scheme = "http" if host in ("127.0.0.1", "localhost") else "https"
    if not host or rest.count("/") < 2:
        raise ValueError(f"--events {spec!r}: expected sqs://HOST/ACCOUNT/QUEUE_NAME")
    return f"{scheme}://{rest}"


def queue_region(url: str, default: str) -> str:
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    # sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com
    if len(parts) >= 4 and parts[0] == "sqs":
        return parts[1]
    if len(parts) >= 4 and parts[1] == "queue":
        return parts[0]
    return default


class SqsEvents:
    """Long-polls an SQS queue; a message is deleted once handled (or found irrelevant)."""

    def __init__(self, client: Any, url: str, wait_seconds: int = 5) -> None:
        self.client = client
        self.url = url
        self.wait_seconds = wait_seconds

    def receive(self, wait: float) -> list[tuple[str, Any]]:
        """(receipt handle, body) pairs; waits at most ``wait`` seconds (capped at the long-poll limit)."""
        seconds = max(0, min(int(wait), self.wait_seconds, 20))
        resp = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=seconds)
        return [(m["ReceiptHandle"], m.get("Body")) for m in resp.get("Messages", [])]

    def delete(self, handle: str) -> None:
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
