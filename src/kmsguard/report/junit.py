"""``--format junit``: JUnit XML, so CI systems show the scan as a test report.

- One ``<testsuite>`` per check (name = check id), in check-id order, inside one ``<testsuites>``.
- One ``<testcase>`` per check and resource (classname = check id, name = resource ARN). Several findings of
  one check on one resource (two read errors on one key) share the testcase; its outcome is the most
  actionable of them -- FAIL, then ERROR, then MUTED, then PASS -- and its text lists every one.
- FAIL -> ``<failure message=... type=severity>`` (the worst failing severity), body: each finding's message,
  evidence (compact JSON) and remediation. ERROR -> ``<error message=... type="ERROR">``. MUTED ->
  ``<skipped message=mute reason>``. PASS -> a plain testcase.
- ``tests``/``failures``/``errors``/``skipped`` on each suite and on the root count testcases; ``time`` is 0
  (checks are not timed). Characters XML 1.0 cannot carry (control characters other than tab and newline)
  are written as ``\\xNN`` so that one odd tag value never makes the whole report unparseable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from kmsguard.model.finding import Finding, Status
from kmsguard.model.result import ScanResult
from kmsguard.report._common import compact_json
from kmsguard.report._time import utc

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Precedence of outcomes when one testcase carries several findings.
_OUTCOME_ORDER = (Status.FAIL, Status.ERROR, Status.MUTED, Status.PASS)


def _xml_text(s: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def _body(findings: Iterable[Finding]) -> str:
    parts = []
    for f in findings:
        lines = [f"[{f.status.value} {f.severity.value}] {f.message}"]
        if f.evidence:
            lines.append(f"evidence: {compact_json(f.evidence)}")
        if f.remediation and f.status is not Status.PASS:
            lines.append(f"remediation: {f.remediation}")
        if f.mute_reason:
            lines.append(f"muted: {f.mute_reason}")
        parts.append("\n".join(lines))
    return _xml_text("\n\n".join(parts))


def _headline(findings: list[Finding]) -> str:
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return _xml_text(findings[0].message + more)


def _testcase(suite: ET.Element, check_id: str, arn: str, findings: list[Finding]) -> Status:
    case = ET.SubElement(suite, "testcase", classname=_xml_text(check_id), name=_xml_text(arn), time="0")
    by_status: dict[Status, list[Finding]] = {}
    for f in findings:
        by_status.setdefault(f.status, []).append(f)
    outcome = next(s for s in _OUTCOME_ORDER if s in by_status)
    if outcome is Status.FAIL:
        failing = by_status[Status.FAIL]  # already worst-severity first (sorted findings)
        el = ET.SubElement(case, "failure", message=_headline(failing), type=failing[0].severity.value)
        el.text = _body(findings)
    elif outcome is Status.ERROR:
        el = ET.SubElement(case, "error", message=_headline(by_status[Status.ERROR]), type="ERROR")
        el.text = _body(findings)
    elif outcome is Status.MUTED:
        reason = by_status[Status.MUTED][0].mute_reason or "muted"
        ET.SubElement(case, "skipped", message=_xml_text(reason))
        ET.SubElement(case, "system-out").text = _body(findings)
    return outcome


def junit_tree(result: ScanResult) -> ET.Element:
    # Group in one pass: check -> resource -> findings (dicts keep the sorted order of first appearance).
    groups: dict[str, dict[str, list[Finding]]] = {}
    for f in result.sorted_findings():
        groups.setdefault(f.check_id, {}).setdefault(f.resource_arn, []).append(f)
    timestamp = utc(result.scanned_at).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name="kmsguard")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for check_id in sorted(groups):
        suite = ET.SubElement(root, "testsuite", name=_xml_text(check_id), timestamp=timestamp, time="0")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for arn, findings in groups[check_id].items():
            outcome = _testcase(suite, check_id, arn, findings)
            counts["tests"] += 1
            if outcome is Status.FAIL:
                counts["failures"] += 1
            elif outcome is Status.ERROR:
                counts["errors"] += 1
            elif outcome is Status.MUTED:
                counts["skipped"] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", "0")
    return root


def render_junit(result: ScanResult) -> str:
    root = junit_tree(result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
