"""What the user said about where and how to reach AWS (shared by scan, fix, monitor ...)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AwsOptions:
    profile: str | None = None
    # None: every region enabled for the account (ec2:DescribeRegions).
    regions: list[str] | None = None
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
