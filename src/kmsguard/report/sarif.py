"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

Mapping decisions (one run, tool.driver ``kmsguard``):

- **Rules** are the checks that appear in the result (any status), described from the check registry:
  shortDescription = title, fullDescription = rationale, help = remediation, plus the severity, compliance
  ids (also as ``framework/control`` tags) and GitHub's ``security-severity`` (critical 9.5, high 8.0,
  medium 5.5, low 3.0, info 0.0). GitHub rates an alert by its rule, not by the result, so a rule is rated
  by the worst FAIL/MUTED finding it carries in this run (a severity override or a sensitive-resource
  escalation is not understated); with none, by the check's default. An id the registry does not know
  still gets a rule, described from its findings.
- **FAIL** -> a result, kind ``fail``, level ``error`` (critical, high), ``warning`` (medium) or ``note``
  (low, info).
- **MUTED** -> the same result with a ``suppressions`` entry (kind ``external``: the mute list lives outside
  the scanned estate; status ``accepted``; justification = the mute reason), so consumers show it as
  dismissed rather than dropping it.
- **ERROR** (the check could not judge: something was unreadable) -> a result of kind ``open``, which SARIF
  defines as "the rule was evaluated and there was insufficient information to decide whether a problem
  exists" -- exactly an ERROR. The spec requires level ``none`` for any kind other than ``fail``. It is a
  result rather than a toolExecutionNotification so that a blind spot stays on the resource it concerns and
  is not hidden in the run's diagnostics.
- **PASS** is not emitted (SARIF consumers list results as alerts); the counts are in run.properties.
- **Locations**: the resource ARN as a logicalLocation (fullyQualifiedName = ARN, kind ``resource``). A
  finding on a template (`kmsguard iac`) has a ``location``: its physicalLocation is that file (relative to the
  scanned root) with ``region.startLine``, which is what code scanning annotates. A live scan has no file, so by
  default no physicalLocation. GitHub code scanning rejects a whole upload whose results have
  no ``physicalLocation.artifactLocation.uri``; ``render_sarif(..., artifact_uri="path/in/repo")`` anchors
  every result to that file (e.g. the kmsguard.yaml or IaC template the repository keeps) for that case.
- **partialFingerprints** ``kmsguardResource/v1`` = sha256 of check id and resource ARN: stable across runs,
  so a consumer tracks the same problem on the same resource as one alert over time.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, TextIO

from kmsguard.checks.registry import CheckSpec, load_builtin_checks
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import Judged
from kmsguard.report._common import Streamed, short_resource, write_pretty
from kmsguard.report._time import iso_z

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
# The project has no published home yet; change here when it has one (SARIF viewers link the tool name to it).
INFORMATION_URI = "https://github.com/kmsguard/kmsguard"
FINGERPRINT_KEY = "kmsguardResource/v1"

LEVELS: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads rule.properties["security-severity"] as a CVSS-like number in a string:
# >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def fingerprint(check_id: str, resource_arn: str) -> str:
    # A NUL separator: neither part can contain one, so ("a", "bc") and ("ab", "c") never collide.
    return hashlib.sha256(f"{check_id}\0{resource_arn}".encode()).hexdigest()


def render_sarif(result: Judged, artifact_uri: str | None = None) -> str:
    buf = io.StringIO()
    write_sarif(result, buf, artifact_uri)
    return buf.getvalue()


def write_sarif(result: Judged, out: TextIO, artifact_uri: str | None = None) -> None:
    # Indented down to each rule; one rule and one result per line -- readable, and fast on large scans.
    write_pretty(_document(result, artifact_uri, streamed=True), 6, _ONE_PER_LINE, out.write)


def sarif_dict(result: Judged, artifact_uri: str | None = None) -> dict[str, Any]:
    return _document(result, artifact_uri, streamed=False)


_ONE_PER_LINE = frozenset({"rules", "results"})


def _document(result: Judged, artifact_uri: str | None, *, streamed: bool) -> dict[str, Any]:
    # Two passes over the findings: the rules (which checks, rated by their worst finding) come before the
    # results, and a spooled result is read rather than held.
    stats: dict[str, _RuleStats] = {}
    for f in result.iter_sorted():
        stats.setdefault(f.check_id, _RuleStats()).add(f)
    specs = load_builtin_checks()
    rule_ids = sorted(stats)
    rule_index = {cid: i for i, cid in enumerate(rule_ids)}
    rules = [_rule(cid, specs.get(cid), stats[cid]) for cid in rule_ids]
    items = (
        _result(f, rule_index[f.check_id], artifact_uri) for f in result.iter_sorted() if f.status is not Status.PASS
    )
    results: Streamed | list[dict[str, Any]] = Streamed(items) if streamed else list(items)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kmsguard",
                        "version": result.kmsguard_version,
                        "semanticVersion": result.kmsguard_version,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                # The scan finished (partial reads are ERROR results, not a failed run).
                "invocations": [{"executionSuccessful": True, "startTimeUtc": iso_z(result.scanned_at)}],
                "results": results,
                "properties": {
                    "accounts": result.accounts,
                    "regions": result.regions,
                    "summary": result.tally().summary(),
                },
            }
        ],
    }


class _RuleStats:
    """What a rule needs from its check's findings, gathered one finding at a time."""

    def __init__(self) -> None:
        self.worst_judged: Severity | None = None  # of FAIL and MUTED findings
        self.worst: Severity | None = None
        self.remediation = ""
        self.compliance: dict[str, list[str]] = {}

    def add(self, f: Finding) -> None:
        self.worst = _worse(self.worst, f.severity)
        if f.status in (Status.FAIL, Status.MUTED):
            self.worst_judged = _worse(self.worst_judged, f.severity)
        self.remediation = self.remediation or f.remediation
        self.compliance = self.compliance or f.compliance


def _worse(a: Severity | None, b: Severity) -> Severity:
    return b if a is None or b.rank > a.rank else a


def _camel(check_id: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in check_id.split("_") if part)


def _rule(check_id: str, spec: CheckSpec | None, stats: _RuleStats) -> dict[str, Any]:
    severity = stats.worst_judged or (spec.severity if spec else None) or stats.worst or Severity.INFO
    if spec is not None:
        title, rationale, remediation = spec.title, spec.rationale, spec.remediation
        compliance = spec.compliance
    else:
        # A check the registry does not know (a newer or plugin check): describe it from its findings.
        title = check_id
        rationale = f"Findings of check {check_id} (not in this kmsguard's check catalogue)."
        remediation, compliance = stats.remediation, stats.compliance
    tags = ["security", "aws-kms"] + [f"{fw}/{ctl}" for fw, ctls in sorted(compliance.items()) for ctl in ctls]
    return {
        "id": check_id,
        "name": _camel(check_id),
        "shortDescription": {"text": title or check_id},
        "fullDescription": {"text": rationale or title or check_id},
        "help": {"text": remediation or "See `kmsguard checks` for this check."},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {
            "severity": severity.value,
            "security-severity": SECURITY_SEVERITY[severity],
            "tags": tags,
            "compliance": compliance,
        },
    }


def _result(f: Finding, rule_index: int, artifact_uri: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": f.resource_arn, "name": short_resource(f), "kind": "resource"}]
    }
    if f.location is not None:  # an IaC finding: the template file and the line its resource starts on
        location["physicalLocation"] = {
            "artifactLocation": {"uri": f.location.file},
            "region": {"startLine": max(1, f.location.line)},
        }
    elif artifact_uri is not None:
        location["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri}}
    out: dict[str, Any] = {"ruleId": f.check_id, "ruleIndex": rule_index}
    if f.status is Status.ERROR:
        out["kind"] = "open"
        out["level"] = "none"
    else:
        out["kind"] = "fail"
        out["level"] = LEVELS[f.severity]
    out["message"] = {"text": f.message or f.check_id}
    out["locations"] = [location]
    out["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(f.check_id, f.resource_arn)}
    if f.status is Status.MUTED:
        out["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": f.mute_reason or "muted (no reason given)"}
        ]
    out["properties"] = {
        "status": f.status.value,
        "severity": f.severity.value,
        "account": f.account,
        "region": f.region,
        "resourceType": f.resource_type,
        "evidence": f.evidence,
        "compliance": f.compliance,
    }
    return out
