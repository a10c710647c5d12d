"""Which accounts to scan: the caller's, a given list, or the ACTIVE accounts of the Organization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code


@dataclass
class AccountPlan:
    account_id: str
    # (operation, code, message) when the account is known not to be scannable before trying.
    refused: tuple[str, str, str] | None = None


@dataclass
class OrgPlan:
    accounts: list[AccountPlan]
    organization_id: str | None = None
    # (operation, code, message) when the Organization could not be listed; recorded on the caller's account.
    error: tuple[str, str, str] | None = None


def organization_id(orgs: Any) -> str | None:
    """The caller's Organization id, or None when not in one (or not allowed to ask: it is optional)."""
    try:
        return str(orgs.describe_organization()["Organization"]["Id"])
    except AWS_CALL_ERRORS:
        return None


_UNSET: Any = object()


def plan_accounts(
    orgs: Any, caller: str, org: bool, accounts: list[str] | None, org_id: str | None = _UNSET
) -> OrgPlan:
    """``org_id``: the Organization id when the caller already asked DescribeOrganization (one call less)."""
    if org_id is _UNSET:
        org_id = organization_id(orgs)
    if not org:
        return OrgPlan([AccountPlan(a) for a in dict.fromkeys(accounts or [caller])], org_id)
    try:
        listed = [a for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    except AWS_CALL_ERRORS as e:
        code, message = error_code(e)
        # The Organization cannot be listed: scan what we can (the caller's account) and say why.
        return OrgPlan([AccountPlan(caller)], org_id, ("ListAccounts", code, message))
    if not listed:
        # Real Organizations always lists at least the management account; an empty list means no
        # usable Organization. Scanning nothing would look like a clean estate: scan the caller, say why.
        why = "the Organization listed no accounts; only the caller's account was scanned"
        return OrgPlan([AccountPlan(caller)], org_id, ("ListAccounts", "NoAccountsListed", why))
    # "State" replaces the deprecated "Status" in newer API versions; accept either.
    status = {a["Id"]: a.get("State") or a.get("Status") or "ACTIVE" for a in listed}
    if accounts is None:
        return OrgPlan([AccountPlan(a) for a in sorted(status) if status[a] == "ACTIVE"], org_id)
    plans = []
    for a in dict.fromkeys(accounts):
        if a not in status:
            plans.append(AccountPlan(a, ("ListAccounts", "AccountNotInOrganization", f"{a} is not in {org_id}")))
        elif status[a] != "ACTIVE":
            plans.append(AccountPlan(a, ("ListAccounts", "AccountNotActive", f"{a} is {status[a]}")))
        else:
            plans.append(AccountPlan(a))
    return OrgPlan(plans, org_id)
