"""What a new user met on a first day with kmsguard (issue 13, section 4), each driven through the real CLI.

AWS is the real moto server over HTTP (tests/conftest.py); faults come from the test proxy in front of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from faultproxy import FaultProxy
from kmsguard.cli.main import app
from kmsguard.demo.emulator import Emulator

ACCOUNT = "123456789012"
runner = CliRunner()

PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"},
    ],
}


def kmsguard(*args: str, **kw: Any) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False, **kw)


@pytest.fixture
def keys(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A public key (critical) in us-east-1 and a key without rotation (medium) in each of two regions."""
    east, west = client("kms", "us-east-1"), client("kms", "eu-west-1")
    public = east.create_key(Description="public", Policy=json.dumps(PUBLIC_POLICY))["KeyMetadata"]["Arn"]
    east.enable_key_rotation(KeyId=public)
    plain_east = east.create_key(Description="no rotation")["KeyMetadata"]["Arn"]
    plain_west = west.create_key(Description="no rotation")["KeyMetadata"]["Arn"]
    return {"public": public, "east": plain_east, "west": plain_west}


def scan_json(endpoint: str, out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    res = kmsguard("scan", "--endpoint-url", endpoint, "-f", "json", "-o", str(out), "-q", *args, env=env)
    return res.exit_code, json.loads(out.read_text()) if out.exists() else {}


# -- 1. --engine spark without pyspark ------------------------------------------------------------------------


def test_engine_spark_without_pyspark_names_the_extra(tmp_path: Path) -> None:
    # pyspark is installed here (the Spark tests need it): a sitecustomize on PYTHONPATH makes it unimportable
    # for the child process, as on a machine where `pip install kmsguard` left the extra out.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoPyspark:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyspark' or name.startswith('pyspark.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _NoPyspark())\n"
    )
    (tmp_path / "logs").mkdir()
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = subprocess.run(
        [sys.executable, "-m", "kmsguard.cli.main", "trail", "analyze", str(tmp_path / "logs"), "--engine", "spark"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "pip install 'kmsguard[spark]'" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


# -- 2. a region that does not exist ----------------------------------------------------------------------------


def test_an_unknown_region_is_a_usage_error_naming_it(aws: Emulator) -> None:
    res = kmsguard("scan", "--endpoint-url", aws.endpoint_url, "--regions", "us-east-1,us-east-9", "-q")
    assert res.exit_code == 2, res.output
    assert "--region/--regions: 'us-east-9' is not an AWS region" in res.output
    assert "did you mean" in res.output and "us-east-1" in res.output
    excluded = kmsguard("scan", "--endpoint-url", aws.endpoint_url, "--excluded-regions", "eu-wset-1", "-q")
    assert excluded.exit_code == 2 and "--excluded-regions: 'eu-wset-1'" in excluded.output


def test_opt_in_regions_and_regions_newer_than_botocore_are_not_rejected(aws: Emulator, tmp_path: Path) -> None:
    # af-south-1 is an opt-in region: it exists, whether or not this account enabled it.
    code, doc = scan_json(
        aws.endpoint_url, tmp_path / "a.json", "--regions", "af-south-1", "--checks", "key_rotation_disabled"
    )
    assert code != 2 and doc["regions"] == ["af-south-1"]
    # A region botocore's endpoint data does not know yet, but the account lists: the account is asked.
    proxy = FaultProxy(aws.endpoint_url).start()
    try:
        listed = "".join(
            f"<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint>"
            "<optInStatus>opt-in-not-required</optInStatus></item>"
            for r in ("us-east-1", "xx-future-1")
        )
        proxy.respond(
            "DescribeRegions", f"<DescribeRegionsResponse><regionInfo>{listed}</regionInfo></DescribeRegionsResponse>"
        )
        res = kmsguard("scan", "--endpoint-url", proxy.endpoint_url, "--regions", "xx-future-1", "-f", "json", "-q")
        assert res.exit_code != 2, res.output
        assert "is not an AWS region" not in res.output
        assert proxy.count("DescribeRegions") >= 1
    finally:
        proxy.stop()


# -- 3. --from-snapshot with KMSGUARD_ENDPOINT_URL exported -----------------------------------------------------


def test_from_snapshot_ignores_an_exported_endpoint_but_not_a_typed_one(
    aws: Emulator, keys: dict[str, str], tmp_path: Path
) -> None:
    snap = tmp_path / "estate.json"
    scan_json(aws.endpoint_url, tmp_path / "live.json", "--regions", "us-east-1", "--snapshot-out", str(snap))
    env = {"KMSGUARD_ENDPOINT_URL": aws.endpoint_url}  # exported, as `kmsguard demo --keep-running` suggests
    out = tmp_path / "r.json"
    res = kmsguard("scan", "--from-snapshot", str(snap), "-f", "json", "-o", str(out), env=env)
    assert res.exit_code == 1, res.output  # judged (the public key fails), no complaint about AWS options
    assert keys["public"] in out.read_text()
    report = ("report", "--framework", "cis", "--from-snapshot", str(snap), "-f", "json", "-o", str(tmp_path / "c"))
    assert kmsguard(*report, env=env).exit_code == 0
    typed = kmsguard("scan", "--from-snapshot", str(snap), "--endpoint-url", aws.endpoint_url)
    assert typed.exit_code == 2 and "drop the AWS options" in typed.output


# -- 5. checks --family bogus -----------------------------------------------------------------------------------


def test_an_unknown_check_family_lists_the_families() -> None:
    from kmsguard.checks.registry import load_builtin_checks

    res = kmsguard("checks", "--family", "bogus")
    assert res.exit_code == 2
    families = sorted({s.family for s in load_builtin_checks().values()})
    assert f"'bogus' is not one of {', '.join(families)}" in res.output


# -- 6. provision key --admin notanarn --------------------------------------------------------------------------


def test_provision_names_the_bad_admin_arn() -> None:
    res = kmsguard("provision", "key", "--alias", "alias/app", "--admin", "notanarn", "--output", "terraform")
    assert res.exit_code == 2
    assert "--admin: 'notanarn' is not an IAM role or user ARN" in res.output
    good = f"arn:aws:iam::{ACCOUNT}:role/KMSAdmin"
    user = kmsguard(
        "provision", "key", "--alias", "alias/app", "--admin", good, "--user", "app", "--output", "terraform"
    )
    assert user.exit_code == 2 and "--user: 'app'" in user.output


# -- 7. -o s3://bucket/key --------------------------------------------------------------------------------------


def test_outputs_to_s3_are_written_to_s3_not_to_a_folder_named_s3(
    aws: Emulator, client, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    s3 = client("s3")
    s3.create_bucket(Bucket="reports")
    live = ("--endpoint-url", aws.endpoint_url, "--regions", "us-east-1", "-q")
    res = kmsguard(
        "scan",
        *live,
        "-f",
        "json",
        "-o",
        "s3://reports/kmsguard/scan.json",
        "--snapshot-out",
        "s3://reports/snap.json.gz",
    )
    assert res.exit_code == 1, res.output
    doc = json.loads(s3.get_object(Bucket="reports", Key="kmsguard/scan.json")["Body"].read())
    assert keys["public"] in {f["resource_arn"] for f in doc["findings"]}
    snapshot = tmp_path / "snap.json.gz"
    snapshot.write_bytes(s3.get_object(Bucket="reports", Key="snap.json.gz")["Body"].read())
    again = kmsguard("scan", "--from-snapshot", str(snapshot), "-f", "json", "-o", str(tmp_path / "again.json"))
    assert again.exit_code == 1 and json.loads((tmp_path / "again.json").read_text())["findings"] == doc["findings"]

    rep = kmsguard("report", "--framework", "cis", *live, "-f", "markdown", "-o", "s3://reports/cis.md")
    assert rep.exit_code == 0, rep.output
    assert b"CIS" in s3.get_object(Bucket="reports", Key="cis.md")["Body"].read()
    assert not (tmp_path / "s3:").exists()

    no_key = kmsguard("scan", *live, "-f", "json", "-o", "s3://reports/")
    assert no_key.exit_code == 2 and "object key" in no_key.output
    no_bucket = kmsguard("scan", *live, "-f", "json", "-o", "s3://no-such-bucket/r.json")
    assert no_bucket.exit_code == 3 and "NoSuchBucket" in no_bucket.output
    charts = kmsguard("trail", "analyze", str(tmp_path), "--charts", "s3://reports/charts")
    assert charts.exit_code == 2 and "not a local directory" in charts.output
    assert not (tmp_path / "s3:").exists()


# -- 10. fix --rollback missing.json ----------------------------------------------------------------------------


def test_rollback_of_a_missing_journal_says_so_before_asking_for_yes(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    res = kmsguard("fix", "--rollback", str(missing))  # no --yes, and stdin is not a terminal
    assert res.exit_code == 2
    assert f"{missing}: no such file" in res.output and "--yes" not in res.output


# -- 12. -r is the region to scan everywhere ---------------------------------------------------------------------


def test_export_r_is_the_region_to_scan_and_the_security_hub_region_has_its_own_option(
    aws: Emulator, keys: dict[str, str]
) -> None:
    res = kmsguard(
        "export", "securityhub", "-r", "us-east-1", "--securityhub-region", "eu-west-1",
        "--endpoint-url", aws.endpoint_url, "--include-passed", "-q",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Security Hub (eu-west-1)" in res.output
    hub = boto3.client("securityhub", region_name="eu-west-1", endpoint_url=aws.endpoint_url)
    got = [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]]
    resources = {f["Resources"][0]["Id"] for f in got}
    assert keys["public"] in resources and keys["east"] in resources
    assert keys["west"] not in resources  # eu-west-1 was not scanned: -r means the region to scan
    # One --region and no --securityhub-region: the findings go to that region's Security Hub, as before.
    one = kmsguard("export", "securityhub", "--region", "us-east-1", "--endpoint-url", aws.endpoint_url, "-q")
    assert one.exit_code == 0 and "Security Hub (us-east-1)" in one.output


# -- 14. STS throttling or 5xx is not a credentials problem -----------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [("ServiceUnavailable", 503), ("Throttling", 400)])
def test_sts_unavailable_is_not_reported_as_rejected_credentials(aws: Emulator, code: str, status: int) -> None:
    proxy = FaultProxy(aws.endpoint_url).start()
    try:
        proxy.fail("GetCallerIdentity", code, status=status)
        res = kmsguard("scan", "--endpoint-url", proxy.endpoint_url, "--regions", "us-east-1", "-q")
    finally:
        proxy.stop()
    assert res.exit_code == 3, res.output
    assert "AWS is unavailable" in res.output and code in res.output
    assert "rejected the credentials" not in res.output


def test_sts_refusing_the_credentials_still_says_so(aws: Emulator) -> None:
    proxy = FaultProxy(aws.endpoint_url).start()
    try:
        proxy.fail("GetCallerIdentity", "InvalidClientTokenId", status=403)
        res = kmsguard("scan", "--endpoint-url", proxy.endpoint_url, "--regions", "us-east-1", "-q")
    finally:
        proxy.stop()
    assert res.exit_code == 3 and "AWS rejected the credentials" in res.output


# -- 15. monitor --once prints what changed ---------------------------------------------------------------------


def test_monitor_once_prints_each_change_and_the_alert(aws: Emulator, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = kms.create_key(Description="orders")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=arn)
    base = ("monitor", "--once", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--endpoint-url", aws.endpoint_url)
    first = kmsguard(*base, "--region", "us-east-1", "-q")
    assert first.exit_code == 0, first.output
    kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=json.dumps(PUBLIC_POLICY))
    second = kmsguard(*base, "--region", "us-east-1", "-q")
    assert second.exit_code == 0, second.output
    out = second.stdout
    assert "key_policy_changed" in out  # what
    assert f"where: account {ACCOUNT}, region us-east-1, {arn}" in out  # where
    assert "[CRITICAL]" in out  # how bad
    assert "alert" in out and "key_policy_public" in out  # the alert's items, as the channels get them


# -- 16. Prowler-style filters ----------------------------------------------------------------------------------


def test_scan_severity_status_and_excluded_regions(aws: Emulator, keys: dict[str, str], tmp_path: Path) -> None:
    both = ("--regions", "us-east-1,eu-west-1")
    _, everything = scan_json(aws.endpoint_url, tmp_path / "all.json", *both)
    assert {f["severity"] for f in everything["findings"]} > {"critical"}  # more than critical to filter out

    code, critical = scan_json(aws.endpoint_url, tmp_path / "c.json", *both, "--severity", "critical,HIGH")
    assert code == 1 and critical["findings"]
    assert {f["severity"] for f in critical["findings"]} <= {"critical", "high"}
    assert critical["findings"] == [f for f in everything["findings"] if f["severity"] in ("critical", "high")]

    code, passed = scan_json(aws.endpoint_url, tmp_path / "p.json", *both, "--status", "pass")
    assert code == 0 and passed["findings"]  # only PASS findings reported: nothing fails
    assert {f["status"] for f in passed["findings"]} == {"PASS"}

    code, east = scan_json(aws.endpoint_url, tmp_path / "e.json", *both, "--excluded-regions", "eu-west-1")
    assert east["regions"] == ["us-east-1"]
    assert keys["west"] not in {f["resource_arn"] for f in east["findings"]}

    bad = kmsguard("scan", "--endpoint-url", aws.endpoint_url, "--severity", "urgent", "-q")
    assert bad.exit_code == 2 and "--severity: 'urgent'" in bad.output
    bad = kmsguard("scan", "--endpoint-url", aws.endpoint_url, "--status", "broken", "-q")
    assert bad.exit_code == 2 and "--status: 'broken'" in bad.output


def test_excluded_regions_leave_the_enabled_regions_out(client) -> None:  # type: ignore[no-untyped-def]
    from kmsguard.aws.regions import resolve_regions

    ec2 = client("ec2")
    every = resolve_regions(ec2, None, "us-east-1").regions
    assert {"us-east-1", "eu-west-1"} <= set(every)
    assert resolve_regions(ec2, None, "us-east-1", ["eu-west-1"]).regions == [r for r in every if r != "eu-west-1"]


def test_checks_severity_filter() -> None:
    res = kmsguard("checks", "--severity", "critical", "-f", "json")
    assert res.exit_code == 0
    listed = json.loads(res.stdout)
    assert listed and {c["severity"] for c in listed} == {"critical"}
    info = json.loads(kmsguard("checks", "--severity", "informational", "-f", "json").stdout)
    assert info == json.loads(kmsguard("checks", "--severity", "info", "-f", "json").stdout)
    assert {c["severity"] for c in info} <= {"info"}
    bad = kmsguard("checks", "--severity", "urgent")
    assert bad.exit_code == 2 and "critical, high, medium, low, info" in bad.output
