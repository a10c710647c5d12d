"""Fixtures of the fuzz suites: a private working directory and user directories, and the per-test tally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kmsguard.fix.journal import KEY_ENV

from .harness import Tally


@pytest.fixture(autouse=True, scope="module")
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every command runs in an empty directory (no ./kmsguard.yaml is picked up), with this module's own journal
    key and cache and config directories, never the user's."""
    home = tmp_path_factory.mktemp("fuzz-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv(KEY_ENV, str(home / "config" / "kmsguard" / "journal.key"))
        mp.setenv("XDG_CACHE_HOME", str(home / "cache"))
        mp.setenv("XDG_CONFIG_HOME", str(home / "config"))
        mp.delenv("KMSGUARD_ENDPOINT_URL", raising=False)
        yield home


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts this test's runs by exit code, written to $KMSGUARD_FUZZ_STATS (when set) at the end.
    Function-scoped on purpose: one tally for all the examples hypothesis runs in the test."""
    loader = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    t = Tally(loader)
    yield t
    t.write(request.node.nodeid)
