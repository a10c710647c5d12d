"""``--format json``: exactly ``ScanResult.to_json_dict()``, the documented contract.

Layout: the top level and the summary are indented; each finding is one line (keys in contract order), so
the report diffs and greps finding by finding.

Speed: a 20,000-key estate gives about 300,000 findings. Dumping them through pydantic and the standard
``json`` encoder took longer than collecting and judging them, so findings are encoded straight from their
fields with msgspec (about ten times faster); the result is the same JSON ``to_json_dict()`` describes, in
UTF-8 (RFC 8259's encoding for JSON) rather than with ASCII escapes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kmsguard.model.finding import Finding
from kmsguard.model.result import ScanResult
from kmsguard.report._common import dumps_pretty

# Anything in evidence msgspec does not know (a set, a custom object) is written as its str(), as json's
# default=str did.
_ENCODER = msgspec.json.Encoder(enc_hook=str)
_PLACEHOLDER = "__kmsguard_findings__"


def _finding_fields(f: Finding) -> dict[str, Any]:
    # Field order is the contract's key order; mute_reason appears only on findings that carry one.
    fields = dict(f.__dict__)
    if fields.get("mute_reason") is None:
        fields.pop("mute_reason", None)
    return fields


def render_json(result: ScanResult) -> str:
    head = {
        "kmsguard_version": result.kmsguard_version,
        "scanned_at": result.scanned_at.isoformat(),
        "accounts": result.accounts,
        "regions": result.regions,
        "summary": result.summary(),
        "findings": _PLACEHOLDER,
    }
    text = dumps_pretty(head, inline_depth=3)
    findings = result.sorted_findings()
    if not findings:
        return text.replace(f'"{_PLACEHOLDER}"', "[]")
    pad = "\n    "
    body = pad + ("," + pad).join(_ENCODER.encode(_finding_fields(f)).decode() for f in findings) + "\n  "
    return text.replace(f'"{_PLACEHOLDER}"', "[" + body + "]")
