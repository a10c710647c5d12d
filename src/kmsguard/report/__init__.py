"""Output formats: each renders a ScanResult to text. ``render(result, fmt)`` is the one entry point."""

from __future__ import annotations

from kmsguard.model.result import ScanResult

FORMATS = ["json"]


def render(result: ScanResult, fmt: str) -> str:
    import json

    if fmt == "json":
        return json.dumps(result.to_json_dict(), indent=2)
    raise ValueError(f"unknown format {fmt!r}")
