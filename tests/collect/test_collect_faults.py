"""Bad input and faults: each is reported on what it concerns, and the scan carries on where it can."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from faultproxy import FaultProxy  # tests/ is on sys.path: the shared HTTP fault proxy
from kmsguard.aws.errors import AwsUnavailable
from kmsguard.aws.options import AwsOptions
from kmsguard.aws.session import SessionFactory
from kmsguard.collect.snapshot import collect_snapshot

from .estate import EAST, WEST


def _new_key(client, description: str) -> str:  # type: ignore[no-untyped-def]
    return str(client("kms", EAST).create_key(Description=description)["KeyMetadata"]["KeyId"])


def test_no_credentials_is_aws_unavailable(aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(var, raising=False)
    for var in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # not an EC2 instance: don't wait for IMDS

    with pytest.raises(AwsUnavailable, match="no AWS credentials found: set AWS_PROFILE"):
        collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST]))


def test_unknown_profile_is_aws_unavailable(aws) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AwsUnavailable, match="profile 'no-such-profile' not found"):
        collect_snapshot(AwsOptions(profile="no-such-profile", endpoint_url=aws.endpoint_url, regions=[EAST]))


@pytest.mark.timeout(30)  # fails fast: one short probe, not the full adaptive-retry schedule
def test_unreachable_endpoint_is_aws_unavailable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.raises(AwsUnavailable, match=f"cannot reach AWS at {endpoint}"):
        collect_snapshot(AwsOptions(endpoint_url=endpoint, regions=[EAST]))


def test_requested_region_that_does_not_exist_is_an_error_on_that_region(client, aws) -> None:  # type: ignore[no-untyped-def]
    key_id = _new_key(client, "still-read")
    snap = collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST, "xx-nowhere-1"]))
    regions = {r.region: r for r in snap.accounts[0].regions}
    [err] = regions["xx-nowhere-1"].errors
    assert (err.service, err.operation, err.code) == ("ec2", "DescribeRegions", "RegionNotEnabled")
    assert regions["xx-nowhere-1"].keys == []
    assert [k.key_id for k in regions[EAST].keys if k.description == "still-read"] == [key_id]


def test_requested_region_not_opted_in_is_an_error_and_never_called(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    # moto reports every region as enabled; the proxy answers DescribeRegions the way AWS does for an
    # account that has not opted in to af-south-1.
    items = "".join(
        f"<item><regionName>{name}</regionName><regionEndpoint>ec2.{name}.amazonaws.com</regionEndpoint>"
        f"<optInStatus>{status}</optInStatus></item>"
        for name, status in [(EAST, "opt-in-not-required"), ("af-south-1", "not-opted-in")]
    )
    proxy.respond(
        "DescribeRegions",
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>1</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>",
    )
    _new_key(client, "east")
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=["af-south-1", EAST]))
    regions = {r.region: r for r in snap.accounts[0].regions}
    [err] = regions["af-south-1"].errors
    assert err.code == "RegionNotEnabled" and "af-south-1 is not enabled" in err.message
    assert any(k.description == "east" for k in regions[EAST].keys)
    assert not any("af-south-1" in c.body for c in proxy.calls if c.operation != "DescribeRegions")


def test_access_denied_on_one_key_is_an_error_on_that_key_only(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    # moto does not enforce key policies on GetKeyPolicy, so the proxy denies it for one key, as AWS
    # does when the key policy leaves the scanner out.
    denied, fine = _new_key(client, "denied"), _new_key(client, "fine")
    client("kms", EAST).create_alias(AliasName="alias/denied", TargetKeyId=denied)
    proxy.fail("GetKeyPolicy", "AccessDeniedException", contains=denied)
    proxy.fail("ListGrants", "AccessDeniedException", contains=denied)

    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST]))
    keys = {k.key_id: k for k in snap.all_keys()}
    bad = keys[denied]
    assert [(e.service, e.operation, e.code, e.resource) for e in bad.errors] == [
        ("kms", "GetKeyPolicy", "AccessDeniedException", bad.arn),
        ("kms", "ListGrants", "AccessDeniedException", bad.arn),
    ]
    assert bad.policy is None
    # Everything else about the key was still read.
    assert (bad.key_state, bad.key_spec, bad.aliases, bad.rotation_enabled) == (
        "Enabled",
        "SYMMETRIC_DEFAULT",
        ["alias/denied"],
        False,
    )
    assert keys[fine].errors == [] and keys[fine].policy
    assert snap.accounts[0].regions[0].errors == []


def test_access_denied_on_a_whole_service_is_a_region_error_and_the_rest_is_read(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    _new_key(client, "unseen")
    client("sns", EAST).create_topic(Name="still-seen")
    proxy.fail("ListKeys", "AccessDeniedException")
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST]))
    [region] = snap.accounts[0].regions
    assert [(e.service, e.operation, e.code) for e in region.errors] == [("kms", "ListKeys", "AccessDeniedException")]
    assert region.keys == []
    assert [r.name for r in region.resources] == ["still-seen"]


def test_throttling_is_retried_until_it_succeeds(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    key_id = _new_key(client, "busy")
    proxy.fail("DescribeKey", "ThrottlingException", contains=key_id, times=2)
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST], max_attempts=4))
    [key] = [k for k in snap.all_keys() if k.key_id == key_id]
    assert key.errors == [] and key.key_state == "Enabled"
    assert sum(1 for c in proxy.calls if c.operation == "DescribeKey" and key_id in c.body) == 3


def test_throttling_past_the_retries_is_an_error_on_the_key(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    key_id = _new_key(client, "always-busy")
    proxy.fail("GetKeyRotationStatus", "ThrottlingException", contains=key_id)
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST, WEST], max_attempts=3))
    [key] = [k for k in snap.all_keys() if k.key_id == key_id]
    assert [(e.operation, e.code) for e in key.errors] == [("GetKeyRotationStatus", "ThrottlingException")]
    assert key.rotation_enabled is None and key.policy is not None
    # --max-attempts counts the first call, as the AWS CLI's max_attempts does: 3 calls in all.
    assert sum(1 for c in proxy.calls if c.operation == "GetKeyRotationStatus" and key_id in c.body) == 3


def test_a_deadline_binds_only_the_reading_it_was_armed_for(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    key_id = _new_key(client, "late")
    # A deadline that has passed before the first call: every read is refused and says why.
    options = AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST], deadline=1e-6)
    snap = collect_snapshot(options)
    [region] = snap.accounts[0].regions
    assert ("kms", "ListKeys", "DeadlinePassed") in [(e.service, e.operation, e.code) for e in region.errors]
    assert options.clock.cut_short and proxy.count("ListKeys") == 0
    # After the reading, the same options call AWS again (fix applying, monitor reading one key).
    listed = SessionFactory(options).caller.client("kms", EAST).list_keys()["Keys"]
    assert [k["KeyId"] for k in listed] == [key_id]
