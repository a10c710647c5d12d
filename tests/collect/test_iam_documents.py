"""IAM documents that do not parse (issue 13, section 3): collect/iam.py records a CollectionError on the role,
never an empty policy, and the scan reports it as an ERROR finding on that role.

moto stores a trust policy that is not a JSON object (AWS would refuse it; moto refuses such inline policies
but not trust policies), so the whole path runs against the real moto server over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from kmsguard.cli.main import app
from kmsguard.snapshot_io import load_snapshot

ACCOUNT = "123456789012"
# botocore decodes the URL-encoded document: JSON that is not an object arrives as a list.
WHY = {"prose": "trust policy: not JSON (", "listed": "trust policy: a list, not a document"}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def test_unparsable_trust_policies_are_collection_errors_and_error_findings(client, aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    iam = client("iam")
    iam.create_role(RoleName="prose", AssumeRolePolicyDocument="this is not json")
    iam.create_role(RoleName="listed", AssumeRolePolicyDocument="[1, 2]")
    iam.create_role(RoleName="fine", AssumeRolePolicyDocument=json.dumps(TRUST))
    client("kms").create_key(Description="k")
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    snap, out = tmp_path / "snap.json", tmp_path / "r.json"

    args = ["scan", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "-f", "json", "-q"]
    res = CliRunner().invoke(app, [*args, "-o", str(out), "--snapshot-out", str(snap)])
    assert res.exit_code == 1, res.output

    # Collected: each bad document is an error on its role, and the role has no trust policy rather than "{}".
    iam_inv = load_snapshot(snap).accounts[0].iam
    assert iam_inv is not None
    roles = {p.arn: p for p in iam_inv.principals}
    assert roles[role + "fine"].errors == [] and json.loads(roles[role + "fine"].trust_policy or "") == TRUST
    for name, why in WHY.items():
        (err,) = roles[role + name].errors
        assert (err.code, err.resource) == ("UnreadablePolicyDocument", role + name)
        assert err.message.startswith(why) and roles[role + name].trust_policy is None

    # Judged: an ERROR finding on each of those roles, saying what could not be read and why.
    findings: list[dict[str, Any]] = json.loads(out.read_text())["findings"]
    errors = {f["resource_arn"]: f for f in findings if f["check_id"] == "scan_collection_error"}
    assert set(errors) == {role + "prose", role + "listed"}
    for name, why in WHY.items():
        f = errors[role + name]
        assert f["status"] == "ERROR" and f["resource_type"] == "AWS::IAM::Role" and f["region"] == "global"
        assert f"could not read {role}{name}: " in f["message"] and why in f["message"]
        assert f["evidence"]["code"] == "UnreadablePolicyDocument"
