"""Imports every built-in check module so that each registers its checks.

The trail family is registered too (its findings come from CloudTrail logs via ``scan --trail`` or
``kmsguard trail analyze``; in a plain scan its functions yield nothing), so every id a kmsguard report can
contain has one registry entry: title, severity, remediation and compliance ids in every format.
"""

from kmsguard.checks import access, audit, iam, keys, policies, resources, scan_errors  # noqa: F401
from kmsguard.trail import checks as trail_checks  # noqa: F401
