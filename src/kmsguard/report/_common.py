"""Small helpers shared by the output formats. Nothing here judges: it only names and orders."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kmsguard.arn import parse as parse_arn
from kmsguard.model.finding import Finding, Severity, Status, is_region_arn

# Worst first: the order every format lists severities in.
SEVERITIES_DESC: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: s.rank, reverse=True))


def compact_json(value: Mapping[str, Any] | list[Any]) -> str:
    """One-line JSON with a fixed key order, for evidence and compliance inside cells and XML text.

    Keys are sorted so that the same evidence renders byte-for-byte the same whatever order a check built
    its dict in; ``default=str`` keeps a stray non-JSON value (a datetime in evidence) from failing a report.
    """
    return _COMPACT(value)


_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


class Streamed:
    """A list written one item per line as it is iterated (under a ``one_per_line`` key), never held whole:
    the findings of a spooled scan. ``encode`` turns one item into its compact JSON."""

    def __init__(self, items: Iterable[Any], encode: Callable[[Any], str] | None = None) -> None:
        self.items = items
        self.encode = encode or _ENCODE


class Raw:
    """Text already laid out as JSON, written where the value would be."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps_pretty(value: Any, inline_depth: int, one_per_line: frozenset[str] = frozenset()) -> str:
    """JSON indented down to ``inline_depth`` levels, deeper values compact on one line each.

    A list under a key in ``one_per_line`` (the findings, the SARIF results) is written one compact item per
    line whatever its depth. ``json.dumps(indent=...)`` falls back to the pure-Python encoder, which takes
    tens of seconds on 100,000 findings, while the C encoder only does compact output: so the outer
    structure is laid out here and every bulk item goes to the C encoder whole. It also reads better --
    one finding per line diffs and greps finding by finding.
    """
    parts: list[str] = []
    write_pretty(value, inline_depth, one_per_line, parts.append)
    return "".join(parts)


def write_pretty(value: Any, inline_depth: int, one_per_line: frozenset[str], write: Callable[[str], object]) -> None:
    """``dumps_pretty`` written piece by piece to ``write`` (a file's write): a ``Streamed`` list is never held."""
    _pretty(value, 0, inline_depth, one_per_line, write)
    write("\n")


# One encoder reused: json.dumps(default=...) builds a new encoder on every call, which dominates the cost.
_ENCODE = json.JSONEncoder(default=str).encode
_INDENT = "  "


def _pretty(
    value: Any, depth: int, inline_depth: int, one_per_line: frozenset[str], write: Callable[[str], object]
) -> None:
    if isinstance(value, Raw):
        write(value.text)
        return
    if depth >= inline_depth or not isinstance(value, dict | list) or not value:
        write(_ENCODE(value))
        return
    pad, inner = _INDENT * depth, _INDENT * (depth + 1)
    if isinstance(value, list):
        write("[")
        for i, v in enumerate(value):
            write(("\n" if i == 0 else ",\n") + inner)
            _pretty(v, depth + 1, inline_depth, one_per_line, write)
        write("\n" + pad + "]")
        return
    write("{")
    for i, (k, v) in enumerate(value.items()):
        write(("\n" if i == 0 else ",\n") + inner + _ENCODE(str(k)) + ": ")
        if k in one_per_line and isinstance(v, Streamed):
            _items(v, depth, write)
        elif k in one_per_line and isinstance(v, list) and v:
            _items(Streamed(v), depth, write)
        else:
            _pretty(v, depth + 1, inline_depth, one_per_line, write)
    write("\n" + pad + "}")


def _items(items: Streamed, depth: int, write: Callable[[str], object]) -> None:
    item_pad, encode = "\n" + _INDENT * (depth + 2), items.encode
    first = True
    for item in items.items:
        write(("[" if first else ",") + item_pad + encode(item))
        first = False
    write("[]" if first else "\n" + _INDENT * (depth + 1) + "]")


def short_resource(f: Finding) -> str:
    """A human-sized name for the resource: a key's alias when the evidence has one, else the ARN's resource part.

    ``arn:aws:kms:us-east-1:111122223333:key/1234abcd-...`` -> ``key/1234abcd-...``; the account/region
    pseudo-ARN ``arn:aws:::111122223333:us-east-1`` -> ``account 111122223333``. Anything that is not
    ARN-shaped is returned unchanged. A template's finding (`kmsguard iac`) is named by file, line and resource.
    """
    if f.location is not None:  # a template's resource: where it is written
        return f"{f.location.file}:{f.location.line} {f.location.resource}"
    # Only a key's own alias names it: the evidence of a finding on a bucket may cite the alias of the key
    # the bucket uses, which would mislabel the bucket.
    alias = _alias(f.evidence) if f.resource_type == "AWS::KMS::Key" else None
    if alias:
        return alias
    parsed = parse_arn(f.resource_arn)
    if parsed is None:
        return f.resource_arn
    if is_region_arn(f.resource_arn):
        return f"account {parsed.account}"
    return parsed.resource or f.resource_arn


def _alias(evidence: Mapping[str, Any]) -> str | None:
    alias = evidence.get("alias")
    if isinstance(alias, str) and alias:
        return alias
    aliases = evidence.get("aliases")
    if isinstance(aliases, list) and aliases and isinstance(aliases[0], str):
        return aliases[0]
    return None


def name_list(items: list[str], limit: int = 10) -> str:
    """``a, b, c`` -- or the first ``limit`` and a count, so an Organization scan does not print 500 ids."""
    if not items:
        return "none"
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"


def is_shown(f: Finding) -> bool:
    """Findings the human-facing formats list row by row; PASS is only counted."""
    return f.status is not Status.PASS
