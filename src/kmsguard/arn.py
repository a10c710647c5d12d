"""One home for ARNs: parse one, build one, and which partition a Region belongs to.

``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`` (AWS General Reference, "Amazon Resource Names"). The
partition is ``aws`` for the commercial Regions, ``aws-us-gov`` for AWS GovCloud (US), ``aws-cn`` for the
China Regions, and others for isolated Regions; a Region's partition comes from botocore's own partition
table, so a Region AWS adds is placed where botocore places it. Nothing else in kmsguard splits an ARN by
hand or writes ``arn:aws:`` literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

DEFAULT_PARTITION = "aws"
# Any partition AWS has named so far, and any it may add in the same form (aws, aws-cn, aws-us-gov, aws-iso-b).
PARTITION_PATTERN = r"aws(?:-[a-z]+)*"
_PARTITION_RX = re.compile(PARTITION_PATTERN)


@dataclass(frozen=True, slots=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str  # everything after the account: "key/1234…", "role/path/Name", "root", "trail/name"

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"

    @property
    def resource_type(self) -> str:
        """``key`` of ``key/1234…``, ``role`` of ``role/path/Name``; the whole resource when it has no type."""
        return re.split(r"[/:]", self.resource, maxsplit=1)[0]

    @property
    def resource_id(self) -> str:
        """What follows the resource type (``1234…`` of ``key/1234…``; ``Name`` of ``role/path/Name``: the
        last path element), or the whole resource when it has no type."""
        parts = re.split(r"[/:]", self.resource)
        return parts[-1] if len(parts) > 1 else self.resource


@lru_cache(maxsize=65536)
def parse(text: str) -> Arn | None:
    """The ARN's parts, or None when ``text`` is not an ARN (six colon-separated fields, a partition)."""
    if not text.startswith("arn:"):
        return None
    parts = text.split(":", 5)
    if len(parts) != 6 or not _PARTITION_RX.fullmatch(parts[1]):
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def build(service: str, region: str, account: str, resource: str, *, partition: str | None = None) -> str:
    """An ARN; the partition, when not given, is the Region's (``aws`` for global resources)."""
    part = partition or (partition_of(region) if region else DEFAULT_PARTITION)
    return f"arn:{part}:{service}:{region}:{account}:{resource}"


def account_of(text: str) -> str | None:
    arn = parse(text)
    return arn.account if arn is not None and arn.account else None


def partition_in(text: str, default: str = DEFAULT_PARTITION) -> str:
    """The partition an ARN names, or ``default`` for anything that is not an ARN."""
    arn = parse(text)
    return arn.partition if arn is not None else default


def root_arn(account: str, partition: str = DEFAULT_PARTITION) -> str:
    """The account's root user (what the 12-digit shorthand in a Principal means)."""
    return f"arn:{partition}:iam::{account}:root"


def log_group(text: str) -> tuple[str, str, str] | None:
    """(account, region, name) of a CloudWatch Logs log group ARN
    (``arn:PARTITION:logs:REGION:ACCOUNT:log-group:NAME`` with an optional ``:*``), or None."""
    parsed = parse(text)
    fields = parsed.resource.split(":") if parsed is not None and parsed.service == "logs" else []
    if parsed is None or len(fields) < 2 or fields[0] != "log-group" or not fields[1]:
        return None
    return parsed.account, parsed.region, fields[1]


@cache
def _partitions() -> tuple[tuple[str, re.Pattern[str], frozenset[str]], ...]:
    import botocore.session

    data = botocore.session.get_session().get_data("partitions")
    out = [(p["id"], re.compile(p["regionRegex"]), frozenset(p.get("regions", {}))) for p in data["partitions"]]
    # The commercial partition's pattern is the broadest: the others are tried first.
    return tuple(sorted(out, key=lambda p: p[0] == DEFAULT_PARTITION))


@lru_cache(maxsize=1024)
def partition_of(region: str) -> str:
    """The partition of a Region (``us-gov-west-1`` -> ``aws-us-gov``); ``aws`` for one botocore does not
    know, which the caller should have refused already (``aws.regions``)."""
    parts = _partitions()
    for pid, _, regions in parts:
        if region in regions:
            return pid
    for pid, rx, _ in parts:
        if rx.match(region):
            return pid
    return DEFAULT_PARTITION


_MENTION = re.compile(r"\barn:(" + PARTITION_PATTERN + r"):")


def mentioned_partition(texts: Iterable[str]) -> str | None:
    """The partition the ARNs among ``texts`` are in: the first one that is not ``aws`` (a GovCloud policy
    may also quote a commercial ARN, never the other way round), ``aws`` when only that, None for none."""
    seen = None
    for text in texts:
        for m in _MENTION.finditer(text):
            if m.group(1) != DEFAULT_PARTITION:
                return m.group(1)
            seen = DEFAULT_PARTITION
    return seen
