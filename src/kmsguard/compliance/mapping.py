"""Map check topics to control ids per framework, from the verified fact table ``controls.yaml``.

Each check declares the topics it gives evidence for (``rotation_enabled``, ``secure_transport`` ...);
``controls.yaml`` says which controls each topic supports. Only entries marked ``verified: true`` are
used, so a finding never cites a control id nobody confirmed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

# Framework slug (what the CLI and the JSON output use) -> (framework name, version) in controls.yaml.
# CIS: the newest benchmark version in the table.
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "cmmc-l2": ("CMMC", "2.0 Level 2"),
    "nist-800-171": ("NIST SP 800-171", "Rev 2"),
    "nist-800-171r3": ("NIST SP 800-171", "Rev 3"),
    "nist-800-53": ("NIST SP 800-53", "Rev 5"),
    "cis": ("CIS AWS Foundations Benchmark", "v7.0.0"),
    "fsbp": ("AWS Foundational Security Best Practices (Security Hub)", "current"),
    "pci-dss": ("PCI DSS", "v4.0"),
    "hipaa": ("HIPAA Security Rule", "45 CFR 164 (2003 rule as modelled)"),
}


@dataclass(frozen=True)
class Control:
    framework: str  # slug
    id: str
    title: str
    topics: tuple[str, ...]


@cache
def _table() -> dict[str, Any]:
    text = resources.files("kmsguard.compliance").joinpath("controls.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@cache
def controls() -> tuple[Control, ...]:
    by_name = {v: k for k, v in FRAMEWORKS.items()}
    out = []
    for entry in _table()["controls"]:
        slug = by_name.get((entry["framework"], str(entry.get("version"))))
        if slug is None or not entry.get("verified"):
            continue
        out.append(Control(slug, str(entry["id"]), entry["title"], tuple(entry.get("kmsguard_topics") or ())))
    return tuple(out)


def known_topics() -> frozenset[str]:
    return frozenset(_table()["topics"])


@cache
def for_topics(topics: tuple[str, ...]) -> dict[str, list[str]]:
    """Framework slug -> sorted control ids supported by any of ``topics``."""
    out: dict[str, set[str]] = defaultdict(set)
    wanted = set(topics)
    for c in controls():
        if wanted.intersection(c.topics):
            out[c.framework].add(c.id)
    return {fw: sorted(ids) for fw, ids in sorted(out.items())}
