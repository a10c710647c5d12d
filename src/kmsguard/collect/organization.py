"""AWS Organizations, read once from the caller: the OU tree, SCPs and RCPs and where they are attached.

Effective access needs them: an SCP on any level of a principal's OU path, or an RCP on a key's, can deny
what every other policy allows. Only the management account (or a delegated administrator) may read
them; what cannot be read is a ``CollectionError`` on the ``Organization``, and effective access then
states that those policies were not applied instead of treating them as allowing everything silently.

Calls: DescribeOrganization, ListRoots, per parent ListOrganizationalUnitsForParent and
ListAccountsForParent, per enabled policy type ListPolicies, and per policy DescribePolicy and
ListTargetsForPolicy.
"""

from __future__ import annotations

from typing import Any

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.collect.errors import collection_error, guard
from kmsguard.model.snapshot import CollectionError, Organization, OrgPolicy, OrgUnit

SERVICE = "organizations"
_TYPES = {"SERVICE_CONTROL_POLICY": "SCP", "RESOURCE_CONTROL_POLICY": "RCP"}
# Not an error: the account is in no Organization, so no SCP or RCP applies.
_NOT_IN_USE = "AWSOrganizationsNotInUseException"


def describe(orgs: Any) -> Organization | None:
    """DescribeOrganization alone: the Organization (id, management account, nothing read yet), None when
    the account is in none, or an Organization named "unknown" with the error when that cannot be told."""
    try:
        desc = orgs.describe_organization()["Organization"]
    except AWS_CALL_ERRORS as e:
        if error_code(e)[0] == _NOT_IN_USE:
            return None
        # Whether the account is in an Organization is itself unknown: say so on an unnamed one.
        return Organization(id="unknown", errors=[collection_error(SERVICE, "DescribeOrganization", e)])
    return Organization(id=desc["Id"], management_account=desc.get("MasterAccountId"))


def collect(orgs: Any, described: Organization | bool | None = True) -> Organization | None:
    """The caller's Organization with its tree and policies, or None when the account is in none.
    ``described``: what ``describe`` returned, when the caller asked already (True: ask here)."""
    org = describe(orgs) if described is True else described
    if not isinstance(org, Organization):
        return None
    if org.id == "unknown":
        return org
    with guard(org.errors, SERVICE, "ListRoots"):
        roots = [r for page in orgs.get_paginator("list_roots").paginate() for r in page["Roots"]]
        for root in roots:
            enabled = {t["Type"] for t in root.get("PolicyTypes", []) if t.get("Status") == "ENABLED"}
            org.scps_enabled = org.scps_enabled or "SERVICE_CONTROL_POLICY" in enabled
            org.rcps_enabled = org.rcps_enabled or "RESOURCE_CONTROL_POLICY" in enabled
            org.units.append(OrgUnit(id=root["Id"], name=root.get("Name")))
            _walk(orgs, root["Id"], org)
    for api_type, kind in _TYPES.items():
        if (kind == "SCP" and not org.scps_enabled) or (kind == "RCP" and not org.rcps_enabled):
            continue
        with guard(org.errors, SERVICE, "ListPolicies"):
            pages = orgs.get_paginator("list_policies").paginate(Filter=api_type)
            for summary in (p for page in pages for p in page["Policies"]):
                org.policies.append(_policy(orgs, summary, kind, org.errors))  # type: ignore[arg-type]
    org.units.sort(key=lambda u: u.id)
    org.policies.sort(key=lambda p: (p.kind, p.id))
    return org


def _walk(orgs: Any, parent: str, org: Organization) -> None:
    with guard(org.errors, SERVICE, "ListAccountsForParent", parent):
        for page in orgs.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            for acct in page["Accounts"]:
                org.account_parents[acct["Id"]] = parent
    children: list[dict[str, Any]] = []
    with guard(org.errors, SERVICE, "ListOrganizationalUnitsForParent", parent):
        for page in orgs.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
            children.extend(page["OrganizationalUnits"])
    for ou in children:
        org.units.append(OrgUnit(id=ou["Id"], name=ou.get("Name"), parent=parent))
        _walk(orgs, ou["Id"], org)


def _policy(orgs: Any, summary: dict[str, Any], kind: str, errors: list[CollectionError]) -> OrgPolicy:
    pid = summary["Id"]
    policy = OrgPolicy(
        id=pid,
        name=summary.get("Name", pid),
        kind=kind,
        document=None,  # type: ignore[arg-type]
        aws_managed=bool(summary.get("AwsManaged")),
    )
    with guard(errors, SERVICE, "DescribePolicy", pid):
        policy.document = orgs.describe_policy(PolicyId=pid)["Policy"]["Content"]
    with guard(errors, SERVICE, "ListTargetsForPolicy", pid):
        pages = orgs.get_paginator("list_targets_for_policy").paginate(PolicyId=pid)
        policy.targets = sorted(t["TargetId"] for page in pages for t in page["Targets"])
    return policy
