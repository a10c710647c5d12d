"""Valid inputs the fuzz suites start from: real files from the repository where there are some (the policy
corpus, the documented kmsguard.yaml, the CloudTrail samples) and files written by kmsguard's own writers
(snapshots, a signed fix journal) for the rest."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from checks.builders import (
    GUIDE_POLICY_PATTERN,
    alarm,
    aws_managed_key,
    config_rule,
    error,
    key,
    metric_filter,
    recorder,
    region,
    resource,
    snapshot,
    trail,
)
from kmsguard.model.snapshot import Snapshot
from kmsguard.snapshot_io import snapshot_bytes
from web.access_estate import snapshot as access_snapshot

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
ACCOUNT = "111122223333"
CLOUDTRAIL = TESTS / "data" / "cloudtrail"
# One real trail file with KMS events (MIT, tests/data/cloudtrail/README.md), and the KMS guide's examples.
TRAIL_FILE = (
    CLOUDTRAIL / "invictus_ir_aws_dataset" / "218007301253_CloudTrail_us-east-1_20230710T1205Z_nx9Yx1FyJdBaTqKj.json"
)
DEVGUIDE = CLOUDTRAIL / "kms_devguide_examples.json"
# What a delivered trail file is called: its account, region and date are read from the name.
TRAIL_NAME = f"{ACCOUNT}_CloudTrail_us-west-2_20240501T1200Z_fuzz0001.json"


# --- policies ---------------------------------------------------------------------------------------------


@cache
def policies() -> list[Any]:
    """The key policies of the policy corpus (tests/policy/corpus: 111 hand-checked cases)."""
    return [yaml.safe_load(p.read_text())["policy"] for p in sorted((TESTS / "policy" / "corpus").glob("*.yaml"))]


@cache
def policy_files() -> list[bytes]:
    """The corpus policies as files, written three ways: as people write them, compact, and with a BOM."""
    out = []
    for i, doc in enumerate(policies()):
        text = json.dumps(doc, indent=2) if i % 3 == 0 else json.dumps(doc, separators=(",", ":"))
        out.append(("\ufeff" if i % 3 == 2 else "").encode() + text.encode())
    return out


# --- snapshots --------------------------------------------------------------------------------------------


def audit_snapshot() -> Snapshot:
    """Keys in every state the checks judge, a resource on a key, the audit set-up of a region and read errors."""
    public = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
            ],
        }
    )
    good = key(policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    pending = key(key_state="PendingDeletion", deletion_date=datetime(2026, 3, 8, tzinfo=UTC), policy=public)
    return snapshot(
        keys=[
            good,
            pending,
            key(rotation_enabled=False, tags={}, aliases=[]),
            key(region="eu-west-1", errors=[error("GetKeyPolicy")]),
            aws_managed_key("s3"),
        ],
        resources=[resource("bucket", uses=good), resource("queue", service="sqs", encryption="none")],
        regions=[
            region(
                trails=[trail()],
                metric_filters=[metric_filter(GUIDE_POLICY_PATTERN)],
                alarms=[alarm()],
                config_rules=[config_rule("CMK_BACKING_KEY_ROTATION_ENABLED")],
                config_recorders=[recorder()],
                errors=[error("DescribeTrails", service="cloudtrail")],
            )
        ],
    )


@cache
def snapshots() -> list[Snapshot]:
    return [access_snapshot(), audit_snapshot()]


@cache
def snapshot_files() -> list[bytes]:
    return [snapshot_bytes(s) for s in snapshots()]


# --- kmsguard.yaml ----------------------------------------------------------------------------------------


@cache
def config_files() -> list[bytes]:
    """The kmsguard.yaml documented in docs/configuration.md and in config_file.py, and two small ones."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert documented is not None, "docs/configuration.md no longer shows a kmsguard.yaml"
    module = (ROOT / "src" / "kmsguard" / "config_file.py").read_text()
    example = re.search(r"Example::\n\n(.*?)\"\"\"", module, re.S)
    assert example is not None, "config_file.py's docstring no longer shows an example"
    small = "trusted_accounts: ['444455556666']\nmutes:\n  - reason: accepted\n    check: key_no_alias\n"
    return [documented.group(1).encode(), _dedent(example.group(1)).encode(), small.encode(), b"{}\n"]


def _dedent(text: str) -> str:
    return "\n".join(line.removeprefix("    ") for line in text.splitlines()) + "\n"


@cache
def configs() -> list[Any]:
    return [yaml.safe_load(c) for c in config_files()]


# --- CloudTrail -------------------------------------------------------------------------------------------


@cache
def trail_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(DEVGUIDE.read_text())["Records"]
    return records


@cache
def trail_files() -> list[bytes]:
    """A real delivered file, the KMS guide's examples (moved to the date of the file's name, as a delivered file
    would be), and the same records one per line."""
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    moved = [
        {**r, "eventTime": (at + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i, r in enumerate(trail_records())
    ]
    return [
        TRAIL_FILE.read_bytes(),
        json.dumps({"Records": moved}).encode(),
        "".join(json.dumps(r) + "\n" for r in moved[:20]).encode(),
    ]
