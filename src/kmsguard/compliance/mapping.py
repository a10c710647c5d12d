"""Map check topics to control ids per framework, from the verified fact table ``controls.yaml``.

Each check declares the topics it gives evidence for (``rotation_enabled``, ``secure_transport`` ...);
``controls.yaml`` says which controls each topic supports. Only entries marked ``verified: true`` are
used, so a finding never cites a control id nobody confirmed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

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
    sources: tuple[str, ...] = ()
    note: str = ""


@cache
def _table() -> dict[str, Any]:
    import yaml

    text = resources.files("kmsguard.compliance").joinpath("controls.yaml").read_text(encoding="utf-8")
    # libyaml's safe loader when built (8x faster: the table is read by every command that lists checks);
    # same safe subset, same result as PyYAML's own SafeLoader, which is the fallback.
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data


@cache
def controls() -> tuple[Control, ...]:
    by_name = {v: k for k, v in FRAMEWORKS.items()}
    out = []
    for entry in _table()["controls"]:
        slug = by_name.get((entry["framework"], str(entry.get("version"))))
        if slug is None or not entry.get("verified"):
            continue
        out.append(
            Control(
                slug,
                str(entry["id"]),
                entry["title"],
                tuple(entry.get("kmsguard_topics") or ()),
                tuple(entry.get("sources") or ()),
                str(entry.get("note") or ""),
            )
        )
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


def natural_key(control_id: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts 3.1.2 before 3.1.10 and SC-12 before SC-12(2): numbers compare as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[^\d.()\-]+", control_id))


def framework_controls(slug: str) -> list[Control]:
    """The verified KMS-relevant controls of one framework, in the framework's own order."""
    if slug not in FRAMEWORKS:
        raise ValueError(f"unknown framework {slug!r} (one of {', '.join(FRAMEWORKS)})")
    return sorted((c for c in controls() if c.framework == slug), key=lambda c: natural_key(c.id))


# Family names: NIST SP 800-53 Rev 5 family identifiers, which 800-171 (both revisions) and CMMC reuse.
_NIST_FAMILIES = {
    "AC": "Access Control",
    "AU": "Audit and Accountability",
    "CA": "Assessment, Authorization and Monitoring",
    "CM": "Configuration Management",
    "SC": "System and Communications Protection",
    "SI": "System and Information Integrity",
}
# SP 800-171 requirement family number -> 800-53 family identifier (3.1 = AC, 3.3 = AU ...).
_NIST_171_FAMILIES = {"1": "AC", "3": "AU", "4": "CM", "12": "CA", "13": "SC", "14": "SI"}


def family(slug: str, control_id: str) -> str:
    """The control family a control belongs to, for grouping and the by-family chart."""
    if slug in ("nist-800-53", "cmmc-l2"):
        code = re.split(r"[-.]", control_id, maxsplit=1)[0]
        return f"{code} {_NIST_FAMILIES.get(code, '')}".strip()
    if slug in ("nist-800-171", "nist-800-171r3"):
        number = str(int(control_id.split(".")[1]))  # "3.13.10" -> 13, "03.13.10" -> 13
        code = _NIST_171_FAMILIES.get(number, "")
        return f"{code} {_NIST_FAMILIES.get(code, '')}".strip() or f"Family {number}"
    if slug == "cis":
        return f"Section {control_id.split('.')[0]}"
    if slug == "pci-dss":
        return f"Requirement {control_id.split('.')[0]}"
    if slug == "hipaa":
        return "164.312 Technical safeguards" if control_id.startswith("164.312") else control_id.split("(")[0]
    return control_id.split(".")[0]  # fsbp: the service prefix, KMS


def supporting_checks(control: Control, check_topics: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Ids of the checks (``check id -> topics``) that give evidence for ``control``, sorted."""
    wanted = set(control.topics)
    return sorted(cid for cid, topics in check_topics.items() if wanted.intersection(topics))
