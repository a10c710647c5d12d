"""kmsguard.arn: the one home for ARNs, in every partition (AWS General Reference, "Amazon Resource Names
(ARNs)": arn:partition:service:region:account-id:resource; partitions aws, aws-cn, aws-us-gov)."""

from __future__ import annotations

import pytest

from kmsguard import arn


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("arn:aws:kms:us-east-1:111122223333:key/1234", ("aws", "kms", "us-east-1", "111122223333", "key/1234")),
        ("arn:aws-us-gov:iam::111122223333:root", ("aws-us-gov", "iam", "", "111122223333", "root")),
        ("arn:aws-cn:iam::111122223333:role/path/App", ("aws-cn", "iam", "", "111122223333", "role/path/App")),
        ("arn:aws-iso-b:s3:::bucket/a:b", ("aws-iso-b", "s3", "", "", "bucket/a:b")),
        ("arn:aws:logs:us-east-1:1:log-group:/aws/x:*", ("aws", "logs", "us-east-1", "1", "log-group:/aws/x:*")),
    ],
)
def test_parse(text: str, parts: tuple[str, ...]) -> None:
    parsed = arn.parse(text)
    assert parsed is not None
    assert (parsed.partition, parsed.service, parsed.region, parsed.account, parsed.resource) == parts
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["", "arn:aws:kms", "arn:aws:kms:us-east-1:1", "xarn:aws:s3:::b", "arn:awsx:s3:::b",
                                  "arn:aws-:s3:::b", "arn:AWS:s3:::b", "arn::s3:::b", "111122223333", "*"])  # fmt: skip
def test_not_arns(text: str) -> None:
    assert arn.parse(text) is None
    assert arn.account_of(text) is None
    assert arn.partition_in(text) == "aws"


def test_resource_type_and_id() -> None:
    role = arn.parse("arn:aws:iam::111122223333:role/team/App")
    key = arn.parse("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/abcd")
    group = arn.parse("arn:aws:logs:us-east-1:111122223333:log-group:trail")
    assert role is not None and (role.resource_type, role.resource_id) == ("role", "App")
    assert key is not None and (key.resource_type, key.resource_id) == ("key", "abcd")
    assert group is not None and (group.resource_type, group.resource_id) == ("log-group", "trail")


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("eu-central-2", "aws"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-gov-east-1", "aws-us-gov"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("us-gov-north-9", "aws-us-gov"),  # a Region botocore does not list yet: placed by the partition's pattern
    ],
)
def test_partition_of_region(region: str, partition: str) -> None:
    assert arn.partition_of(region) == partition


def test_build_takes_the_region_s_partition() -> None:
    assert arn.build("kms", "us-gov-west-1", "1", "key/k") == "arn:aws-us-gov:kms:us-gov-west-1:1:key/k"
    assert arn.build("kms", "cn-north-1", "1", "key/k") == "arn:aws-cn:kms:cn-north-1:1:key/k"
    assert arn.build("iam", "", "1", "root") == "arn:aws:iam::1:root"
    assert arn.build("iam", "", "1", "root", partition="aws-cn") == arn.root_arn("1", "aws-cn")


def test_every_region_botocore_lists_is_in_its_partition() -> None:
    import botocore.session

    for p in botocore.session.get_session().get_data("partitions")["partitions"]:
        for region in p.get("regions", {}):
            assert arn.partition_of(region) == p["id"], region
