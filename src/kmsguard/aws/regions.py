"""Which regions to scan in an account: the ones asked for, or every region enabled for it.

An explicitly requested region the account has not enabled (opt-in regions such as af-south-1 are
off until someone opts in) cannot be read; ``resolve_regions`` says so per region, so the scan
records an error on it and carries on with the others. One ec2:DescribeRegions call per account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code

NOT_ENABLED = "not-opted-in"


@dataclass
class RegionPlan:
    regions: list[str]  # to scan
    # region -> (code, message) for requested regions that cannot be scanned
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    # set when DescribeRegions itself failed: (code, message)
    lookup_error: tuple[str, str] | None = None


def resolve_regions(ec2: Any, requested: list[str] | None, fallback: str) -> RegionPlan:
    """Plan the regions of one account with ``ec2`` (any region's EC2 client of that account)."""
    if requested is None:
        try:
            # AllRegions=False: only regions enabled for the account (opt-in-not-required or opted-in).
            found = ec2.describe_regions(AllRegions=False)["Regions"]
        except AWS_CALL_ERRORS as e:
            # Nothing says which regions exist: scan the session's region and say the list is partial.
            return RegionPlan([fallback], lookup_error=error_code(e))
        return RegionPlan(sorted(r["RegionName"] for r in found if r.get("OptInStatus") != NOT_ENABLED))

    wanted = list(dict.fromkeys(requested))  # keep the user's order, drop repeats
    try:
        status = {r["RegionName"]: r.get("OptInStatus") for r in ec2.describe_regions(AllRegions=True)["Regions"]}
    except AWS_CALL_ERRORS:
        # Cannot check: try every requested region; one that is not enabled fails on its own calls.
        return RegionPlan(wanted)
    plan = RegionPlan([])
    for region in wanted:
        if region not in status:
            plan.refused[region] = ("RegionNotEnabled", f"{region} is not a region of this account's partition")
        elif status[region] == NOT_ENABLED:
            plan.refused[region] = ("RegionNotEnabled", f"{region} is not enabled for this account (opt-in required)")
        else:
            plan.regions.append(region)
    return plan
