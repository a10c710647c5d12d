"""Errors and validation problems raised by the policy engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (error) or doubtful (warning) in a policy document.

    ``line``/``column`` are 1-based and point at the element named by ``path`` (e.g.
    ``"Statement[2].Condition"``); they are None when the position is unknown.
    ``code`` is a stable identifier for scripts (``unknown-action``, ``duplicate-sid``, ...).
    """

    severity: Severity
    code: str
    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

    def location(self, source: str) -> str:
        if self.line is None:
            return source
        return f"{source}:{self.line}:{self.column or 1}"

    def format(self, source: str) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"{self.location(source)}: {self.severity}: {self.message}{where}"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
        }


class PolicyError(Exception):
    """Base class for policy engine errors."""


class PolicyParseError(PolicyError, ValueError):
    """A policy document is not valid; the message names source:line:col, ``problems`` lists every error."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = (), source: str = "<policy>") -> None:
        super().__init__(message)
        self.problems = problems
        self.source = source


class PolicyNormalizeError(PolicyError, ValueError):
    """A document that cannot be turned into the normalised model (wrong shape), naming the element."""
