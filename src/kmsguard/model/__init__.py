"""Plain typed data shared by every stage: Snapshot (what was collected) and Finding (what was judged).

The names below are loaded on first use (PEP 562): importing ``kmsguard.model.finding`` -- which `kmsguard checks`
needs -- must not build every Snapshot model class, which start-up cannot afford (issue 16, "start fast").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_FINDING = ("Finding", "Severity", "Status")
_SNAPSHOT = (
    "AccountSnapshot",
    "Alarm",
    "CollectionError",
    "ConfigRecorder",
    "ConfigRule",
    "Grant",
    "IamPolicy",
    "Key",
    "MetricFilter",
    "RegionSnapshot",
    "Resource",
    "Snapshot",
    "Trail",
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


def __getattr__(name: str) -> Any:
    if name in _FINDING:
        return getattr(importlib.import_module("kmsguard.model.finding"), name)
    if name in _SNAPSHOT:
        return getattr(importlib.import_module("kmsguard.model.snapshot"), name)
    raise AttributeError(f"module 'kmsguard.model' has no attribute {name!r}")
