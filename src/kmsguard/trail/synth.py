"""Schema-faithful synthetic CloudTrail KMS events, for tests and the benchmark.

The records follow the shape of real trail records (eventVersion 1.08; userIdentity per identity type;
resources with the key ARN; requestParameters with encryptionContext; the fields the samples in
shared/data/cloudtrail carry), written as trail files: gzipped ``{"Records": [...]}`` under
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<id>.json.gz``.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kmsguard.arn import build as build_arn
from kmsguard.arn import parse as parse_arn
from kmsguard.arn import partition_in


def key_arn(account: str, region: str, n: int) -> str:
    return build_arn("kms", region, account, f"key/{uuid.UUID(int=n)}")


def identity(principal: str) -> dict[str, Any]:
    """userIdentity for an ARN (user, role session, root) or ``service:NAME``."""
    if principal.startswith("service:"):
        return {"type": "AWSService", "invokedBy": principal.split(":", 1)[1]}
    parsed = parse_arn(principal)
    acct = parsed.account if parsed is not None else ""
    if ":assumed-role/" in principal:
        role = principal.split("/")[1]
        return {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{principal.rsplit('/', 1)[1]}",
            "arn": principal,
            "accountId": acct,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": build_arn("iam", "", acct, f"role/{role}", partition=partition_in(principal)),
                    "accountId": acct,
                    "userName": role,
                },
                "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"},
            },
        }
    if principal.endswith(":root"):
        return {"type": "Root", "principalId": acct, "arn": principal, "accountId": acct}
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": principal,
        "accountId": acct,
        "accessKeyId": "AKIAEXAMPLE",
        "userName": principal.rsplit("/", 1)[-1],
    }


def event(
    name: str,
    key: str | None,
    principal: str,
    when: datetime,
    *,
    error: str | None = None,
    params: dict[str, Any] | None = None,
    context_arn: str | None = None,
    recipient: str | None = None,
    with_resources: bool = True,
) -> dict[str, Any]:
    parsed = parse_arn(key or "")
    region = parsed.region if parsed is not None else "us-east-1"
    key_acct = parsed.account if parsed is not None else (recipient or "111122223333")
    req: dict[str, Any] = dict(params or {})
    if key is not None and name not in ("Decrypt",):
        req.setdefault("keyId", key)
    if name in ("Decrypt", "Encrypt", "GenerateDataKey"):
        req.setdefault("encryptionAlgorithm", "SYMMETRIC_DEFAULT")
        if context_arn:
            req.setdefault("encryptionContext", {"aws:s3:arn": context_arn})
        if name == "GenerateDataKey":
            req.setdefault("keySpec", "AES_256")
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity(principal),
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "AWS Internal" if principal.startswith("service:") else "198.51.100.7",
        "userAgent": "aws-sdk-java/2.20.0 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.6+10-LTS",
        "requestParameters": req or None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": name in ("Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey"),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": recipient or key_acct,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"kms.{region}.amazonaws.com",
        },
    }
    if error:
        rec["errorCode"] = error
        rec["errorMessage"] = f"User: {principal} is not authorized to perform: kms:{name}"
    if key is not None and with_resources:
        rec["resources"] = [{"accountId": key_acct, "type": "AWS::KMS::Key", "ARN": key}]
    return rec


def write_trail_files(
    root: Path,
    records: Iterable[dict[str, Any]],
    *,
    per_file_minutes: int = 5,
    compress: bool = True,
    prefix: str = "AWSLogs",
) -> list[Path]:
    """Records grouped by (account, region, delivery interval) into trail files; returns the paths."""
    groups: dict[tuple[str, str, datetime], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        slot = t - timedelta(minutes=t.minute % per_file_minutes, seconds=t.second)
        groups[(r["recipientAccountId"], r["awsRegion"], slot)].append(r)
    paths: list[Path] = []
    for (acct, region, slot), recs in sorted(groups.items()):
        d = root / prefix / acct / "CloudTrail" / region / slot.strftime("%Y/%m/%d")
        d.mkdir(parents=True, exist_ok=True)
        stamp = (slot + timedelta(minutes=per_file_minutes)).strftime("%Y%m%dT%H%MZ")
        name = f"{acct}_CloudTrail_{region}_{stamp}_{uuid.uuid4().hex[:16]}.json"
        body = json.dumps({"Records": recs}).encode()
        if compress:
            path = d / (name + ".gz")
            path.write_bytes(gzip.compress(body, compresslevel=6))
        else:
            path = d / name
            path.write_bytes(body)
        paths.append(path)
    return paths
