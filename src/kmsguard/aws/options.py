"""What the user said about where and how to reach AWS (shared by scan, fix, monitor ...)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


class CallTally:
    """How many AWS calls were answered with success and how many failed, counted by every client the session
    factory makes. A run whose calls all failed read nothing: its empty findings must not pass for a clean
    estate (``blind``).

    A copy sent to another process (the trail decoder's workers, Spark) starts from zero and is not merged
    back: only this process's calls are counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.succeeded = 0
        self.failed = 0
        self.first_failure: str | None = None  # "service:Operation in region: code: message"

    def __reduce__(self) -> tuple[type[CallTally], tuple[()]]:
        return (CallTally, ())  # a lock cannot be pickled, and counts belong to the process that made the calls

    def success(self) -> None:
        with self._lock:
            self.succeeded += 1

    def failure(self, what: str) -> None:
        with self._lock:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = what

    @property
    def blind(self) -> bool:
        """Calls were made and not one of them succeeded."""
        return self.failed > 0 and self.succeeded == 0

    def __repr__(self) -> str:
        return f"CallTally(succeeded={self.succeeded}, failed={self.failed})"


@dataclass
class AwsOptions:
    profile: str | None = None
    # None: every region enabled for the account (ec2:DescribeRegions).
    regions: list[str] | None = None
    # Never scanned, whether enabled or listed in ``regions`` (`--excluded-regions`).
    excluded_regions: list[str] | None = None
    endpoint_url: str | None = None
    # Scan every ACTIVE account of the Organization, assuming role_name in each.
    org: bool = False
    role_name: str = "OrganizationAccountAccessRole"
    # Restrict to these account ids (with org: a subset of the Organization; without: assume role_name).
    accounts: list[str] | None = None
    max_workers: int = 16
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 8
    # Filled by the session factory's clients; read by the commands to tell a blind run from a clean one.
    calls: CallTally = field(default_factory=CallTally, compare=False, repr=False)


__all__ = ["AwsOptions", "CallTally"]
