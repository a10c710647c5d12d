"""Who is trusted: the one answer to "is this account or organisation outside?" for every judge.

Checks, the fix planner, rollback's review and trail's detections all ask it; before this module each had its
own copy, and trail's left out the scanned accounts (so use from a sibling account of the same scan was
"cross-account"). The scan's answer won: the configured accounts and organisations, every scanned account, and
the organisations the scanned accounts belong to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kmsguard.model.snapshot import Snapshot


class TrustSettings(Protocol):
    """What the user configured (``config.ScanConfig``, ``fix.planner.FixOptions``)."""

    @property
    def trusted_accounts(self) -> Iterable[str]: ...

    @property
    def trusted_org_ids(self) -> Iterable[str]: ...


@dataclass(frozen=True)
class Trusted:
    accounts: tuple[str, ...]  # sorted
    org_ids: tuple[str, ...]  # sorted

    def account(self, account: str | None) -> bool:
        return account is not None and account in self.accounts


def trusted(snapshot: Snapshot | None, settings: TrustSettings) -> Trusted:
    """The configured accounts and organisations, every account the snapshot holds, and their organisations."""
    accounts = set(settings.trusted_accounts)
    orgs = set(settings.trusted_org_ids)
    if snapshot is not None:
        accounts |= {a.account_id for a in snapshot.accounts}
        orgs |= {a.organization_id for a in snapshot.accounts if a.organization_id}
    return Trusted(tuple(sorted(accounts)), tuple(sorted(orgs)))
