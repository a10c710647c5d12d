"""The emulator layer: small, documented patches over moto so it behaves as AWS does where kmsguard cares.

Placeholder: the demo issue fills this in (AWS managed keys, rotation period, ...).
"""

from __future__ import annotations

_applied = False
_count = 0


def apply() -> None:
    global _applied
    _applied = True


def request_count() -> int:
    return _count
