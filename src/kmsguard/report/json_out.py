"""``--format json``: exactly ``ScanResult.to_json_dict()``, the documented contract.

Layout: the top level and the summary are indented; each finding is one line (keys in contract order), so
the report diffs and greps finding by finding and 100,000 findings serialise in about a second.
"""

from __future__ import annotations

from kmsguard.model.result import ScanResult
from kmsguard.report._common import dumps_pretty


def render_json(result: ScanResult) -> str:
    # No sort_keys: the contract's key order is the order to_json_dict() writes. ASCII escapes keep the
    # document valid whatever encoding the terminal or pipe it lands in claims to have.
    return dumps_pretty(result.to_json_dict(), inline_depth=3, one_per_line=frozenset({"findings"}))
