"""Which regions to scan in an account: the ones asked for, or every region enabled for it.

An explicitly requested region the account has not enabled (opt-in regions such as af-south-1 are
off until someone opts in) cannot be read; ``resolve_regions`` says so per region, so the scan
records an error on it and carries on with the others. One ec2:DescribeRegions call per account.

A requested region that is no AWS region at all (a typo: ``us-east-9``) is a usage error instead, found
before the scan by ``unknown_regions``. ``excluded`` regions (`--excluded-regions`) are never scanned.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.options import AwsOptions, CallTally

NOT_ENABLED = "not-opted-in"


@dataclass
class RegionPlan:
    regions: list[str]  # to scan
    # region -> (code, message) for requested regions that cannot be scanned
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    # set when DescribeRegions itself failed: (code, message)
    lookup_error: tuple[str, str] | None = None


def resolve_regions(
    ec2: Any, requested: list[str] | None, fallback: str, excluded: Iterable[str] | None = None
) -> RegionPlan:
    """Plan the regions of one account with ``ec2`` (any region's EC2 client of that account)."""
    skip = set(excluded or ())
    if requested is None:
        try:
            # AllRegions=False: only regions enabled for the account (opt-in-not-required or opted-in).
            found = ec2.describe_regions(AllRegions=False)["Regions"]
        except AWS_CALL_ERRORS as e:
            # Nothing says which regions exist: scan the session's region and say the list is partial.
            return RegionPlan([fallback] if fallback not in skip else [], lookup_error=error_code(e))
        enabled = (r["RegionName"] for r in found if r.get("OptInStatus") != NOT_ENABLED)
        return RegionPlan(sorted(r for r in enabled if r not in skip))

    wanted = [r for r in dict.fromkeys(requested) if r not in skip]  # keep the user's order, drop repeats
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


@functools.cache
def botocore_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data (no AWS call)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def unknown_regions(requested: Iterable[str], options: AwsOptions) -> list[str]:
    """The requested regions that are no AWS region: neither botocore's endpoint data nor the account's
    ec2:DescribeRegions(AllRegions=True) lists them. The account is asked only about a region botocore does not
    know (one newer than this botocore), so opt-in regions, enabled or not, are never rejected here.

    Raises AwsUnavailable when the account has to be asked and cannot be reached."""
    from kmsguard.aws.session import SessionFactory

    maybe = [r for r in dict.fromkeys(requested) if r not in botocore_regions()]
    if not maybe:
        return []
    factory = SessionFactory(replace(options, calls=CallTally()))  # not the run's calls: it must not count
    try:
        listed = factory.caller.client("ec2", factory.home_region).describe_regions(AllRegions=True)["Regions"]
    except AWS_CALL_ERRORS:
        return []  # cannot tell: the scan records each region's own failures
    names = {r["RegionName"] for r in listed}
    return [r for r in maybe if r not in names]
