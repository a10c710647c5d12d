"""Plain typed data shared by every stage: Snapshot (what was collected) and Finding (what was judged)."""

from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.snapshot import (
    AccountSnapshot,
    Alarm,
    CollectionError,
    ConfigRecorder,
    ConfigRule,
    Grant,
    IamPolicy,
    Key,
    MetricFilter,
    RegionSnapshot,
    Resource,
    Snapshot,
    Trail,
)

__all__ = [
    "AccountSnapshot",
    "Alarm",
    "CollectionError",
    "ConfigRecorder",
    "ConfigRule",
    "Finding",
    "Grant",
    "IamPolicy",
    "Key",
    "MetricFilter",
    "RegionSnapshot",
    "Resource",
    "Severity",
    "Snapshot",
    "Status",
    "Trail",
]
