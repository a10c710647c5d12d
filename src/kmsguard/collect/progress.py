"""Progress reporting from collectors to whoever shows it (a rich bar on a TTY, nothing otherwise)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def add_total(self, kind: str, n: int) -> None:
        """More work of ``kind`` ("accounts", "regions", "keys") is known to be coming."""

    def advance(self, kind: str, n: int = 1) -> None:
        """``n`` units of ``kind`` are done."""


class NullProgress:
    def add_total(self, kind: str, n: int) -> None:
        pass

    def advance(self, kind: str, n: int = 1) -> None:
        pass
