"""The terminal table (placeholder until the outputs land)."""

from kmsguard.model.result import ScanResult


def print_table(result: ScanResult) -> None:
    for f in result.findings:
        print(f.status, f.severity, f.check_id, f.resource_arn, f.message)
