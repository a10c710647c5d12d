"""Where CloudTrail logs come from: local files and directories, S3 prefixes, and the LookupEvents API.

Listing is cheap and happens first; ``--since/--until/--account/--region`` then prune files by what their
path says (the ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`` layout and the trail file name
``<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<id>.json.gz``) before a single byte is read. Pruning is
conservative: a file is kept unless its path proves it lies outside the filters (CloudTrail delivers an
event within minutes, but a file's time is its delivery time, hence the slack). Events are filtered exactly
later, in SQL.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kmsguard.aws.options import AwsOptions

# How far an event's time may lie from the time its file's path or name states.
PATH_TIME_SLACK = timedelta(hours=2)

_NAME = re.compile(r"(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_")
_DIRS = re.compile(
    r"(?:AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/)?([a-z]{2}(?:-gov)?-[a-z]+-\d)/(\d{4})/(\d{2})/(\d{2})/"
)
_LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".gz", ".log")


@dataclass(frozen=True)
class LogFile:
    uri: str  # a local path, or s3://bucket/key
    size: int
    mtime: float  # local mtime, or the S3 object's LastModified, as epoch seconds
    account: str | None = None  # from the path, when it says
    region: str | None = None
    start: datetime | None = None  # the interval the path says the file's events lie in
    end: datetime | None = None

    @property
    def identity(self) -> tuple[int, float]:
        return (self.size, self.mtime)


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()

    def keeps(self, f: LogFile) -> bool:
        if self.accounts and f.account is not None and f.account not in self.accounts:
            return False
        if self.regions and f.region is not None and f.region not in self.regions:
            return False
        if self.since is not None and f.end is not None and f.end < self.since:
            return False
        return not (self.until is not None and f.start is not None and f.start > self.until)


def path_facts(path: str) -> tuple[str | None, str | None, datetime | None, datetime | None]:
    """(account, region, start, end) as far as the path tells them."""
    account = region = None
    start = end = None
    name = path.rsplit("/", 1)[-1]
    m = _NAME.search(name)
    if m:
        account, region = m.group(1), m.group(2)
        start, end = _around(m.group(3), "%Y%m%dT%H%MZ", timedelta(0))
    d = _DIRS.search(path.replace(os.sep, "/"))
    if d:
        account = account or d.group(1)
        region = region or d.group(2)
        if start is None:
            start, end = _around("".join(d.group(3, 4, 5)), "%Y%m%d", timedelta(days=1))
    return account, region, start, end


def _around(text: str, fmt: str, length: timedelta) -> tuple[datetime | None, datetime | None]:
    """[t - slack, t + length + slack] for the time ``text`` states; (None, None) when it states none (a month
    13, or a year 1 or 9999 whose slack falls outside what a datetime holds)."""
    try:
        t = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        return t - PATH_TIME_SLACK, t + length + PATH_TIME_SLACK
    except (ValueError, OverflowError):
        return None, None


def _looks_like_log(name: str) -> bool:
    return not name.startswith(".") and name.endswith(_LOG_SUFFIXES)


def _skip_dir(path: str) -> bool:
    # Digest files prove integrity; they hold no events.
    return "CloudTrail-Digest" in path


def make_file(uri: str, size: int, mtime: float) -> LogFile:
    account, region, start, end = path_facts(uri)
    return LogFile(uri, size, mtime, account, region, start, end)


def list_local(source: str) -> list[LogFile]:
    p = Path(source)
    if p.is_file():
        st = p.stat()
        return [make_file(str(p), st.st_size, st.st_mtime)]
    if not p.is_dir():
        raise FileNotFoundError(f"{source}: no such file or directory")
    out: list[LogFile] = []
    for root, dirs, files in os.walk(p):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _skip_dir(d))
        for name in sorted(files):
            if _looks_like_log(name):
                full = os.path.join(root, name)
                st = os.stat(full)
                out.append(make_file(full, st.st_size, st.st_mtime))
    return out


def split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{uri}: an S3 source is s3://bucket/prefix")
    return bucket, prefix


def list_s3(uri: str, aws: AwsOptions, filters: Filters | None = None) -> list[LogFile]:
    """The log files under an S3 prefix. With filters, the ``AWSLogs/`` tree is walked a level at a time and
    only the wanted accounts, regions and days are listed: a bucket of years of logs is not listed object by
    object to read last week's."""
    bucket, prefix = split_s3(uri)
    s3 = s3_client(aws)
    out: list[LogFile] = []
    wanted = filters is not None and bool(filters.since or filters.accounts or filters.regions)
    prefixes = _pruned_prefixes(s3, bucket, prefix, filters, out) if wanted and filters else [prefix]
    for p in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=p):
            for obj in page.get("Contents", ()):
                _add_object(bucket, obj, out)
    return out


def _add_object(bucket: str, obj: dict[str, Any], out: list[LogFile]) -> None:
    key = obj["Key"]
    if _skip_dir(key) or not _looks_like_log(key.rsplit("/", 1)[-1]):
        return
    out.append(make_file(f"s3://{bucket}/{key}", int(obj["Size"]), obj["LastModified"].timestamp()))


_ACCOUNT_DIR = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/$")
_REGION_DIR = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/$")
# How deep to look for the AWSLogs layout before listing a subtree whole.
_MAX_DEPTH = 8


def _pruned_prefixes(s3: Any, bucket: str, prefix: str, f: Filters, out: list[LogFile], depth: int = 0) -> list[str]:
    """The prefixes to list in full: the wanted region directories, or their wanted days when --since/--until
    bound them. Objects met on the way down are added to ``out`` directly."""
    region_dir = _REGION_DIR.search(prefix)
    if region_dir:
        account, region = region_dir.groups()
        if (f.accounts and account not in f.accounts) or (f.regions and region not in f.regions):
            return []
        if f.since is None and f.until is None:
            return [prefix]
        return _date_prefixes(s3, bucket, prefix, f, out)
    account_dir = _ACCOUNT_DIR.search(prefix)
    if (account_dir and f.accounts and account_dir.group(1) not in f.accounts) or _skip_dir(prefix):
        return []
    if depth >= _MAX_DEPTH:
        return [prefix]
    found: list[str] = []
    for sub in _subdirs(s3, bucket, prefix, out):
        found += _pruned_prefixes(s3, bucket, sub, f, out, depth + 1)
    return found


def _subdirs(s3: Any, bucket: str, prefix: str, out: list[LogFile]) -> list[str]:
    """One level of the tree under ``prefix``; the objects at that level go to ``out``."""
    subs: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for obj in page.get("Contents", ()):
            _add_object(bucket, obj, out)
        subs += [cp["Prefix"] for cp in page.get("CommonPrefixes", ())]
    return subs


def _date_prefixes(
    s3: Any, bucket: str, prefix: str, f: Filters, out: list[LogFile], parents: tuple[int, ...] = ()
) -> list[str]:
    """Under a region directory: the ``YYYY/``, ``YYYY/MM/`` then ``YYYY/MM/DD/`` directories whose span can
    hold events in [since, until] (with the path slack), a level at a time; anything else is listed whole."""
    lo = f.since - PATH_TIME_SLACK if f.since is not None else None
    hi = f.until + PATH_TIME_SLACK if f.until is not None else None
    found: list[str] = []
    for sub in _subdirs(s3, bucket, prefix, out):
        part = sub[len(prefix) :].rstrip("/")
        span = _span((*parents, int(part))) if part.isdigit() and len(part) == (4 if not parents else 2) else None
        if span is None:
            found.append(sub)  # not the date layout: keep it, whole
            continue
        start, end = span
        if (lo is not None and end <= lo) or (hi is not None and start > hi):
            continue
        found += [sub] if len(parents) == 2 else _date_prefixes(s3, bucket, sub, f, out, (*parents, int(part)))
    return found


def _span(ymd: tuple[int, ...]) -> tuple[datetime, datetime] | None:
    """The [start, end) of a year, month or day directory (1, 2 or 3 numbers), or None if it names none."""
    try:
        if len(ymd) == 1:
            return datetime(ymd[0], 1, 1, tzinfo=UTC), datetime(ymd[0] + 1, 1, 1, tzinfo=UTC)
        start = datetime(ymd[0], ymd[1], ymd[2] if len(ymd) == 3 else 1, tzinfo=UTC)
    except ValueError:
        return None
    return start, start + timedelta(days=1) if len(ymd) == 3 else (start + timedelta(days=32)).replace(day=1)


def list_sources(sources: list[str], aws: AwsOptions | None = None, filters: Filters | None = None) -> list[LogFile]:
    """Every log file the sources name, de-duplicated, in a stable order (S3 listings pruned by ``filters``)."""
    seen: dict[str, LogFile] = {}
    for src in sources:
        files = list_s3(src, aws or AwsOptions(), filters) if src.startswith("s3://") else list_local(src)
        for f in files:
            seen.setdefault(f.uri, f)
    return [seen[k] for k in sorted(seen)]


# --- clients: one per process, from the scan's session factory ----------------------------------------------

_CLIENTS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def _client(aws: AwsOptions, service: str, region: str | None = None) -> Any:
    from kmsguard.aws.session import SessionFactory

    key = (aws.profile, aws.endpoint_url, service, region)
    with _LOCK:
        hit = _CLIENTS.get(key)
        if hit is None:
            factory = SessionFactory(aws)
            hit = factory.caller.client(service, region or factory.home_region)
            _CLIENTS[key] = hit
        return hit


def s3_client(aws: AwsOptions) -> Any:
    return _client(aws, "s3")


def open_s3(uri: str, aws: AwsOptions) -> Any:
    """The streaming body of an S3 object."""
    bucket, key = split_s3(uri)
    return s3_client(aws).get_object(Bucket=bucket, Key=key)["Body"]


# --- LookupEvents ---------------------------------------------------------------------------------------------


def lookup_events(
    aws: AwsOptions, region: str, since: datetime | None, until: datetime | None
) -> Iterator[dict[str, Any]]:
    """KMS events from CloudTrail's LookupEvents (management events, last 90 days), paginated."""
    ct = _client(aws, "cloudtrail", region)
    kwargs: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}]
    }
    if since is not None:
        kwargs["StartTime"] = since
    if until is not None:
        kwargs["EndTime"] = until
    for page in ct.get_paginator("lookup_events").paginate(**kwargs):
        yield from page.get("Events", ())
