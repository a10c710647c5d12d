"""``--format json``: exactly ``ScanResult.to_json_dict()``, the documented contract (``trail_usage`` last, only
when the scan analysed CloudTrail logs; a finding's ``location`` only on `kmsguard iac` findings).

Layout: the top level and the summary are indented; each finding is one line (keys in contract order), so
the report diffs and greps finding by finding.

Speed: a 20,000-key estate gives about 300,000 findings. Dumping them through pydantic and the standard
``json`` encoder took longer than collecting and judging them, so findings are encoded straight from their
fields with msgspec (about ten times faster); the result is the same JSON ``to_json_dict()`` describes, in
UTF-8 (RFC 8259's encoding for JSON) rather than with ASCII escapes.
"""

from __future__ import annotations

import io
from typing import Any, TextIO

import msgspec

from kmsguard.model.finding import Finding
from kmsguard.model.result import Judged
from kmsguard.report._common import Raw, Streamed, dumps_pretty, write_pretty

# Anything in evidence msgspec does not know (a set, a custom object) is written as its str(), as json's
# default=str did.
_ENCODER = msgspec.json.Encoder(enc_hook=str)
_FINDINGS = frozenset({"findings"})
# The usage summary: one line per key series and per top entry (so it diffs like the findings do), and the
# day axis on one line rather than 90.
_USAGE_LISTS = frozenset({"daily", "top_keys", "top_principals"})


def _finding_fields(f: Finding) -> dict[str, Any]:
    # Field order is the contract's key order; mute_reason appears only on findings that carry one.
    fields = dict(f.__dict__)
    if fields.get("mute_reason") is None:
        fields.pop("mute_reason", None)
    location = fields.pop("location", None)
    if location is not None:  # IaC findings only: where the resource is written
        fields["location"] = location.model_dump()
    return fields


def render_json(result: Judged) -> str:
    buf = io.StringIO()
    write_json(result, buf)
    return buf.getvalue()


def write_json(result: Judged, out: TextIO) -> None:
    """The report written to ``out`` as the findings are read: a spooled result is never held whole."""
    head: dict[str, Any] = {
        "kmsguard_version": result.kmsguard_version,
        "scanned_at": result.scanned_at.isoformat(),
        "accounts": result.accounts,
        "regions": result.regions,
        "summary": result.tally().summary(),
        "findings": Streamed(result.iter_sorted(), _encode_finding),
    }
    if result.trail_usage is not None:
        usage = dumps_pretty(result.trail_usage.model_dump(mode="json"), 1, _USAGE_LISTS).rstrip("\n")
        head["trail_usage"] = Raw(usage.replace("\n", "\n  "))
    write_pretty(head, 3, _FINDINGS, out.write)


def _encode_finding(f: Finding) -> str:
    return _ENCODER.encode(_finding_fields(f)).decode()
