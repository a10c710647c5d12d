"""Imports every built-in check module so that each registers its checks."""

from kmsguard.checks import audit, keys, policies, resources, scan_errors  # noqa: F401
