"""Data the tests may read from ``../shared`` beside the repository but may not copy into it (no licence to).

Everything else the tests read is in the repository (``tests/data``). A clone on its own has no ``../shared``:
there, the cross-checks against it are skipped with the reason. CI has it, and must never skip them, so under
``CI=true`` a missing file fails the test instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def shared_data(*parts: str) -> Path:
    """``../shared/data/<parts>``; skips the calling test when it is missing, or fails it under ``CI=true``."""
    path = SHARED_DATA.joinpath(*parts)
    if path.exists():
        return path
    reason = f"{path} is missing: it is not in the repository (no licence to copy it) and ../shared is not beside it"
    if in_ci():
        pytest.fail(f"{reason}; CI=true, so this cross-check must run", pytrace=False)
    pytest.skip(reason)
