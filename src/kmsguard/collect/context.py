"""What a collector needs to fill its part of one region: where it is, its clients, its snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kmsguard.aws.session import AccountSession
from kmsguard.model.snapshot import RegionSnapshot


@dataclass
class RegionContext:
    session: AccountSession
    region: str
    snapshot: RegionSnapshot
    # alias name -> target key id, from kms:ListAliases (filled by the kms collector, used to resolve keys).
    aliases: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def account(self) -> str:
        return self.session.account_id

    @property
    def partition(self) -> str:
        return self.session.partition

    def client(self, service: str) -> Any:
        return self.session.client(service, self.region)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def tag_dict(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS tag lists ([{"Key": k, "Value": v}], or TagKey/TagValue for KMS) as a dict."""
    return {t[key]: t.get(value, "") for t in tags or []}


def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[Any]:
    """Every item of ``result_key`` across all pages of ``operation``."""
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(result_key, [])]
