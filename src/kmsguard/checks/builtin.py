"""Imports every built-in check module so that each registers its checks.

The trail family judges what CloudTrail logs showed (``Snapshot.trail``, set by ``scan --trail`` and
``kmsguard trail analyze``); on a snapshot without logs its checks yield nothing.
"""

from kmsguard.checks import access, audit, iam, keys, policies, resources, scan_errors, trail  # noqa: F401
