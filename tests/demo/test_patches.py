"""The emulator layer: each test shows, through boto3 over HTTP, the AWS behaviour a patch restores."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from kmsguard.demo import patches

ACCOUNT = "123456789012"


def _error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _policy(*statements: dict) -> str:  # type: ignore[type-arg]
    root = {
        "Sid": "EnableIAMUserPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})


def test_apply_is_idempotent() -> None:
    import moto.kms.responses as kms_responses

    patches.apply()
    before = kms_responses.KmsResponse.get_key_rotation_status
    patches.apply()
    assert patches.is_applied()
    assert kms_responses.KmsResponse.get_key_rotation_status is before
    assert {name for name, _ in patches.describe()} >= {"aws_managed_keys", "rotation", "key_policy_deny"}


# --- AWS managed keys -----------------------------------------------------------------------------------------


def test_predefined_alias_is_listed_without_target_until_first_use(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    aliases = {a["AliasName"]: a for a in kms.get_paginator("list_aliases").paginate().build_full_result()["Aliases"]}
    assert "alias/aws/s3" in aliases and "TargetKeyId" not in aliases["alias/aws/s3"]
    assert kms.list_keys()["Keys"] == []  # no key exists until a service (or DescribeKey) uses it


def test_describe_predefined_alias_creates_an_aws_managed_key(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    meta = kms.describe_key(KeyId="alias/aws/sns")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    assert meta["Description"] == "Default key that protects my SNS topics when no other key is defined"
    assert meta["KeyState"] == "Enabled"
    # Same key on the next reference; the alias now has a target; ListKeys shows it like any key.
    assert kms.describe_key(KeyId="alias/aws/sns")["KeyMetadata"]["KeyId"] == meta["KeyId"]
    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/aws/sns"]["TargetKeyId"] == meta["KeyId"]
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [meta["KeyId"]]

    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    use, metadata = policy["Statement"]
    assert use["Principal"] == {"AWS": "*"}
    assert use["Condition"]["StringEquals"] == {
        "kms:CallerAccount": ACCOUNT,
        "kms:ViaService": "sns.us-east-1.amazonaws.com",
    }
    assert "kms:Decrypt" in use["Action"] and "kms:PutKeyPolicy" not in use["Action"]
    assert metadata["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}

    status = kms.get_key_rotation_status(KeyId=meta["KeyId"])
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 365


def test_aws_managed_keys_are_per_region(client) -> None:  # type: ignore[no-untyped-def]
    us = client("kms", "us-east-1").describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    eu = client("kms", "eu-west-1").describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert us["KeyId"] != eu["KeyId"]
    assert ":eu-west-1:" in eu["Arn"] and eu["KeyManager"] == "AWS"


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("put_key_policy", {"PolicyName": "default", "Policy": _policy()}),
        ("schedule_key_deletion", {"PendingWindowInDays": 7}),
        ("tag_resource", {"Tags": [{"TagKey": "Owner", "TagValue": "me"}]}),
        ("enable_key_rotation", {"RotationPeriodInDays": 90}),
        ("disable_key_rotation", {}),
        ("disable_key", {}),
    ],
)
def test_aws_managed_key_cannot_be_changed(client, operation: str, kwargs: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    kms = client("kms")
    key_id = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as exc:
        getattr(kms, operation)(KeyId=key_id, **kwargs)
    assert _error_code(exc) == "AccessDeniedException"
    assert f"kms:{exc.value.operation_name}" in str(exc.value)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []


def test_alias_aws_prefix_is_reserved(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key_id)
    assert _error_code(exc) == "NotAuthorizedException"


def test_services_using_their_default_key_create_it(client) -> None:  # type: ignore[no-untyped-def]
    """Encrypting with the service default (no key given) creates the AWS managed key, as in AWS."""
    s3 = client("s3")
    s3.create_bucket(Bucket="default-kms-bucket")
    s3.put_bucket_encryption(
        Bucket="default-kms-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    client("ec2").create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True)
    db = client("rds").create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin1",
        MasterUserPassword="correct-horse-battery",
        AllocatedStorage=20,
        StorageEncrypted=True,
    )["DBInstance"]
    client("secretsmanager").create_secret(Name="db-password", SecretString="x")
    client("ssm").put_parameter(Name="/app/token", Value="x", Type="SecureString")

    kms = client("kms")
    targets = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases(Limit=100)["Aliases"]}
    for service in ("s3", "ebs", "rds", "secretsmanager", "ssm"):
        key_id = targets[f"alias/aws/{service}"]
        assert key_id, service
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyManager"] == "AWS"
    # RDS reports the AWS managed key's ARN, not a placeholder.
    assert db["KmsKeyId"] == kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    assert targets["alias/aws/sns"] is None  # untouched services stay predefined-only


def test_aws_managed_key_endpoint(aws, client) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"account": ACCOUNT, "region": "eu-west-1", "service": "dynamodb"}).encode()
    req = urllib.request.Request(f"{aws.endpoint_url}/moto-api/kmsguard/aws-managed-key", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        created = json.loads(resp.read())["KeyMetadata"]
    meta = client("kms", "eu-west-1").describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]
    assert meta["KeyId"] == created["KeyId"] and meta["KeyManager"] == "AWS"


# --- Rotation -------------------------------------------------------------------------------------------------


def test_rotation_period_is_stored_and_returned(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert "RotationPeriodInDays" not in kms.get_key_rotation_status(KeyId=key_id)

    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 180
    expected = datetime.now(UTC) + timedelta(days=180)
    assert abs((status["NextRotationDate"] - expected).total_seconds()) < 120

    kms.enable_key_rotation(KeyId=key_id)  # no period: AWS's default
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 365


def test_rotation_period_outside_90_2560_is_rejected_by_the_server(aws) -> None:  # type: ignore[no-untyped-def]
    # boto3 validates the range client-side too; send the request raw so the server's own check is what answers.
    import boto3
    from botocore.config import Config

    kms = boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=aws.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(parameter_validation=False),
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for bad in (30, 3000):
        with pytest.raises(ClientError) as exc:
            kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=bad)
        assert _error_code(exc) == "ValidationException"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


@pytest.mark.parametrize(
    "create",
    [
        {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
        {"Origin": "EXTERNAL"},
    ],
    ids=["rsa", "ecc", "hmac", "imported"],
)
def test_rotation_unsupported_for_asymmetric_hmac_imported(client, create: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    kms = client("kms")
    key_id = kms.create_key(**create)["KeyMetadata"]["KeyId"]
    for call in (kms.get_key_rotation_status, kms.enable_key_rotation):
        with pytest.raises(ClientError) as exc:
            call(KeyId=key_id)
        assert _error_code(exc) == "UnsupportedOperationException"


def test_rotation_on_disabled_or_pending_deletion_key(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=365)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    with pytest.raises(ClientError) as exc:
        kms.enable_key_rotation(KeyId=key_id)
    assert _error_code(exc) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=key_id)  # AWS leaves the key Disabled, rotation setting as it was
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


# --- Key-policy Deny statements -------------------------------------------------------------------------------


def test_deny_insecure_transport_does_not_lock_out_tls_callers(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    deny_insecure = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    key_id = kms.create_key(Policy=_policy(deny_insecure))["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    assert "DenyInsecureTransport" in kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=365)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_unconditional_deny_denies_that_operation_only(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:GetKeyPolicy", "Resource": "*"}
    key_id = kms.create_key(Policy=_policy(deny))["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as exc:
        kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert _error_code(exc) == "AccessDeniedException"
    assert "explicit deny" in str(exc.value)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []


@pytest.mark.parametrize(
    ("condition", "denied"),
    [
        ({"StringEquals": {"kms:CallerAccount": ACCOUNT}}, True),
        ({"StringEquals": {"kms:CallerAccount": "999999999999"}}, False),
        ({"StringNotEquals": {"kms:CallerAccount": ACCOUNT}}, False),
        ({"StringNotEquals": {"kms:CallerAccount": "999999999999"}}, True),
        ({"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}, True),  # key absent: negated operator holds
        ({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}, False),  # key absent: positive operator fails
        ({"Null": {"kms:ViaService": "true"}}, True),  # a direct call has no kms:ViaService
        ({"Null": {"kms:ViaService": "false"}}, False),
        ({"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, True),
        ({"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"kms:CallerAccount": ACCOUNT}}, False),
    ],
)
def test_deny_conditions_are_evaluated(client, condition: dict, denied: bool) -> None:  # type: ignore[no-untyped-def,type-arg]
    kms = client("kms")
    deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:Describe*", "Resource": "*", "Condition": condition}
    key_id = kms.create_key(Policy=_policy(deny))["KeyMetadata"]["KeyId"]
    if denied:
        with pytest.raises(ClientError) as exc:
            kms.describe_key(KeyId=key_id)
        assert _error_code(exc) == "AccessDeniedException"
    else:
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id


def test_deny_for_another_principal_does_not_apply(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Intern"},
        "Action": "kms:*",
        "Resource": "*",
    }
    key_id = kms.create_key(Policy=_policy(deny))["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]


def test_encryption_context_condition(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:EncryptionContext:Environment": "Production"}},
    }
    key_id = kms.create_key(Policy=_policy(deny))["KeyMetadata"]["KeyId"]
    ok = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"Environment": "Production"})
    assert ok["CiphertextBlob"]
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"Environment": "Development"})
    assert _error_code(exc) == "AccessDeniedException"


# --- Tags, pagination, EBS default key --------------------------------------------------------------------------


def test_list_resource_tags_by_id_and_arn(client) -> None:  # type: ignore[no-untyped-def]
    """Verified on moto 5.2.5: no patch needed; kept as the contract the scanner relies on."""
    kms = client("kms")
    meta = kms.create_key(Tags=[{"TagKey": "Environment", "TagValue": "Production"}])["KeyMetadata"]
    kms.tag_resource(KeyId=meta["KeyId"], Tags=[{"TagKey": "Owner", "TagValue": "security"}])
    expected = {"Environment": "Production", "Owner": "security"}
    for ref in (meta["KeyId"], meta["Arn"]):
        tags = kms.list_resource_tags(KeyId=ref)["Tags"]
        assert {t["TagKey"]: t["TagValue"] for t in tags} == expected


def test_key_usage_defaults_to_encrypt_decrypt(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_key_state_operations_accept_a_key_arn(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_signing_keys_still_sign_with_lazy_key_material(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sig = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    ok = kms.verify(KeyId=key_id, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    assert ok["SignatureValid"] is True
    assert kms.get_public_key(KeyId=key_id)["PublicKey"]


def test_new_trail_records_management_events(client) -> None:  # type: ignore[no-untyped-def]
    client("s3").create_bucket(Bucket="trail-logs-bucket")
    ct = client("cloudtrail")
    ct.create_trail(Name="mgmt-trail", S3BucketName="trail-logs-bucket")
    selectors = ct.get_event_selectors(TrailName="mgmt-trail")["EventSelectors"]
    assert selectors == [
        {
            "ReadWriteType": "All",
            "IncludeManagementEvents": True,
            "DataResources": [],
            "ExcludeManagementEventSources": [],
        }
    ]


def test_list_keys_is_paginated(client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    first = kms.list_keys(Limit=3)
    assert len(first["Keys"]) == 3 and first["Truncated"] is True and first["NextMarker"]
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["Keys"]) for p in pages] == [3, 3, 1]
    assert {k["KeyId"] for p in pages for k in p["Keys"]} == created


def test_ebs_default_key(client) -> None:  # type: ignore[no-untyped-def]
    ec2, kms = client("ec2"), client("kms")
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=arn)
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == arn
    ec2.reset_ebs_default_kms_key_id()
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"


# --- Request counter ------------------------------------------------------------------------------------------


def test_request_counter_counts_answered_requests(aws, client) -> None:  # type: ignore[no-untyped-def]
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    patches.reset_request_counts()
    kms.describe_key(KeyId=key_id)
    kms.describe_key(KeyId=key_id)
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="00000000-0000-0000-0000-000000000000")  # errors are answers too
    client("s3").list_buckets()
    client("sns").list_topics()

    counts = patches.request_counts()
    assert counts[("kms", "DescribeKey")] == 3
    assert counts[("s3", "ListBuckets")] == 1
    assert counts[("sns", "ListTopics")] == 1
    assert patches.request_count() == 5

    with urllib.request.urlopen(f"{aws.endpoint_url}/moto-api/kmsguard/requests", timeout=10) as resp:
        over_http = json.loads(resp.read())
    assert over_http["total"] == 5  # the /moto-api/ call itself is not an AWS request
    assert over_http["requests"]["kms:DescribeKey"] == 3

    req = urllib.request.Request(f"{aws.endpoint_url}/moto-api/kmsguard/requests", method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["total"] == 0
    assert aws.request_count() == 0
