"""Imports every built-in check module so that each registers its checks."""

from kmsguard.checks import audit, iam, keys, policies, resources, scan_errors  # noqa: F401
