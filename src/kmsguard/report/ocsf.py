"""``--format ocsf``: OCSF 1.1.0 Detection Finding (class 2004) events, one per finding, as a JSON array.

The shape Prowler emits and AWS Security Lake ingests: category 2 (Findings), activity 1 (Create), the
``cloud`` profile (provider AWS, account, region) and one ``resources`` entry per finding (uid = ARN).

Mapping decisions:

- ``severity_id``: info 1 Informational, low 2, medium 3, high 4, critical 5.
- ``status_id``/``status``: FAIL and ERROR 1 New, MUTED 3 Suppressed, PASS 4 Resolved. kmsguard's own status
  is kept in ``status_code`` (FAIL, PASS, ERROR, MUTED) -- the field Prowler uses the same way -- and the
  mute reason in ``status_detail``, so a consumer can tell an accepted exception from a pass.
- ``finding_info.uid`` is the same stable fingerprint as SARIF's (check id + resource ARN): the same problem
  on the same resource keeps its uid across scans. ``finding_info.types`` = the check family.
- OCSF 1.1.0's Detection Finding has no compliance object (that is Compliance Finding, 2003), so the
  compliance ids, check id and evidence go in ``unmapped``, as Prowler does.
- ``time`` and ``finding_info.created_time`` are the scan time in epoch milliseconds (OCSF timestamp_t).
"""

from __future__ import annotations

import json
from typing import Any

from kmsguard.arn import partition_in
from kmsguard.checks.registry import load_builtin_checks
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.result import ScanResult
from kmsguard.report._common import short_resource
from kmsguard.report._time import utc
from kmsguard.report.sarif import fingerprint

OCSF_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID, ACTIVITY_ID = 2004, 2, 1
SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS_ID = {Status.FAIL: 1, Status.ERROR: 1, Status.MUTED: 3, Status.PASS: 4}
STATUS_NAME = {1: "New", 3: "Suppressed", 4: "Resolved"}
AWS_ACCOUNT_TYPE_ID = 10  # OCSF account.type_id 10 = "AWS Account"


def ocsf_event(f: Finding, result: ScanResult) -> dict[str, Any]:
    spec = load_builtin_checks().get(f.check_id)
    ms = int(utc(result.scanned_at).timestamp() * 1000)
    sev = SEVERITY_ID[f.severity]
    st = STATUS_ID[f.status]
    info: dict[str, Any] = {
        "uid": fingerprint(f.check_id, f.resource_arn),
        "title": spec.title if spec else f.check_id,
        "created_time": ms,
        "types": [spec.family if spec else "kmsguard"],
    }
    if spec and spec.rationale:
        info["desc"] = spec.rationale
    event: dict[str, Any] = {
        "activity_id": ACTIVITY_ID,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_ID,
        "type_name": "Detection Finding: Create",
        "severity_id": sev,
        "severity": SEVERITY_NAME[sev],
        "status_id": st,
        "status": STATUS_NAME[st],
        "status_code": f.status.value,
        "time": ms,
        "message": f.message,
        "finding_info": info,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "event_code": f.check_id,
            "product": {
                "name": "kmsguard",
                "vendor_name": "kmsguard",
                "version": result.kmsguard_version,
                "uid": "kmsguard",
            },
        },
        "cloud": {
            "provider": "AWS",
            "region": f.region,
            "account": {"uid": f.account, "type_id": AWS_ACCOUNT_TYPE_ID, "type": "AWS Account"},
        },
        "resources": [
            {
                "uid": f.resource_arn,
                "name": short_resource(f),
                "type": f.resource_type,
                "region": f.region,
                "cloud_partition": partition_in(f.resource_arn),
                "data": f.evidence,
            }
        ],
        "unmapped": {"check_id": f.check_id, "compliance": f.compliance},
    }
    if f.status is Status.MUTED:
        event["status_detail"] = f"muted: {f.mute_reason or 'no reason given'}"
        event["unmapped"]["mute_reason"] = f.mute_reason
    if f.remediation:
        event["remediation"] = {"desc": f.remediation}
    return event


def ocsf_events(result: ScanResult) -> list[dict[str, Any]]:
    return [ocsf_event(f, result) for f in result.sorted_findings()]


def render_ocsf(result: ScanResult) -> str:
    # A JSON array with one event per line: it greps and diffs finding by finding, like the JSON report.
    events = [_ENCODE(e) for e in ocsf_events(result)]
    return "[\n" + ",\n".join(events) + "\n]\n" if events else "[]\n"


_ENCODE = json.JSONEncoder(default=str, ensure_ascii=False).encode
