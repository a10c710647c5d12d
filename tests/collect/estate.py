"""A small KMS estate in two regions, built in moto through its public API, for the collector tests.

``build(client)`` returns what the tests assert against (ids and ARNs moto generated), so the
expected snapshot is derived from what was created, not hard-coded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
EAST, WEST = "us-east-1", "eu-west-1"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@dataclass
class Estate:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> KeyMetadata
    arns: dict[str, str] = field(default_factory=dict)  # resource name -> ARN
    trail_arn: str = ""
    log_group_arn: str = ""


def _policy(*actions: str) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}
    )


def build_keys(client: Any) -> Estate:
    est = Estate()
    east, west = client("kms", EAST), client("kms", WEST)

    def key(name: str, kms: Any, **kw: Any) -> str:
        md = kms.create_key(Description=name, **kw)["KeyMetadata"]
        est.keys[name] = md
        return str(md["KeyId"])

    rot = key(
        "rotating", east, Tags=[{"TagKey": "Environment", "TagValue": "prod"}, {"TagKey": "Owner", "TagValue": "sec"}]
    )
    east.enable_key_rotation(KeyId=rot)
    east.create_alias(AliasName="alias/app-prod", TargetKeyId=rot)
    east.create_alias(AliasName="alias/app-prod-2026", TargetKeyId=rot)
    east.create_grant(KeyId=rot, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/app", Operations=["Decrypt", "Encrypt"])
    norot = key("not-rotating", east)
    east.create_alias(AliasName="alias/app-dev", TargetKeyId=norot)
    key("signing", east, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    key("mac", east, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    disabled = key("disabled", east)
    east.disable_key(KeyId=disabled)
    pending = key("pending", east)
    east.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    eu = key("eu", west)
    west.enable_key_rotation(KeyId=eu)
    west.create_alias(AliasName="alias/eu-data", TargetKeyId=eu)
    return est


def build_audit(client: Any, est: Estate) -> None:
    logs = client("logs", EAST)
    logs.create_log_group(logGroupName="trail-logs")
    est.log_group_arn = f"arn:aws:logs:{EAST}:{ACCOUNT}:log-group:trail-logs:*"
    role = client("iam").create_role(RoleName="trail-to-logs", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    client("s3", EAST).create_bucket(Bucket="trail-bucket-0001")
    ct = client("cloudtrail", EAST)
    trail = ct.create_trail(
        Name="main",
        S3BucketName="trail-bucket-0001",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        CloudWatchLogsLogGroupArn=est.log_group_arn,
        CloudWatchLogsRoleArn=role,
    )
    est.trail_arn = trail["TrailARN"]
    ct.start_logging(Name="main")
    ct.put_event_selectors(
        TrailName="main", EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]
    )
    logs.put_metric_filter(
        logGroupName="trail-logs",
        filterName="KMSKeyPolicyChanges",
        filterPattern="{ ($.eventSource = kms.amazonaws.com) && ($.eventName = PutKeyPolicy) }",
        metricTransformations=[
            {"metricName": "KMSPolicyChanges", "metricNamespace": "Security/KMS", "metricValue": "1"}
        ],
    )
    topic = client("sns", EAST).create_topic(Name="security-alerts")["TopicArn"]
    est.arns["security-alerts"] = topic
    client("cloudwatch", EAST).put_metric_alarm(
        AlarmName="KMS-Key-Policy-Changes",
        Namespace="Security/KMS",
        MetricName="KMSPolicyChanges",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
    )
    cfg = client("config", EAST)
    cfg.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": role, "recordingGroup": {"allSupported": True}}
    )
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "trail-bucket-0001"})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    cfg.put_config_rule(
        ConfigRule={
            "ConfigRuleName": "cmk-backing-key-rotation-enabled",
            "Source": {"Owner": "AWS", "SourceIdentifier": "CMK_BACKING_KEY_ROTATION_ENABLED"},
            "MaximumExecutionFrequency": "TwentyFour_Hours",
        }
    )


def build_resources(client: Any, est: Estate) -> None:
    rot = est.keys["rotating"]
    s3 = client("s3", EAST)
    s3.create_bucket(Bucket="data-cmk-0001")
    s3.put_bucket_encryption(
        Bucket="data-cmk-0001",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/app-prod"}}
            ]
        },
    )
    s3.put_bucket_tagging(Bucket="data-cmk-0001", Tagging={"TagSet": [{"Key": "DataClassification", "Value": "CUI"}]})
    s3.create_bucket(Bucket="data-sse-s3-0001")
    s3.put_bucket_encryption(
        Bucket="data-sse-s3-0001",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3w = client("s3", WEST)
    s3w.create_bucket(Bucket="data-eu-0001", CreateBucketConfiguration={"LocationConstraint": WEST})
    s3w.put_bucket_encryption(
        Bucket="data-eu-0001",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )

    ec2 = client("ec2", EAST)
    est.arns["vol-cmk"] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=rot["Arn"])[
        "VolumeId"
    ]
    est.arns["vol-plain"] = ec2.create_volume(
        AvailabilityZone="us-east-1a",
        Size=1,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Environment", "Value": "dev"}]}],
    )["VolumeId"]

    rds = client("rds", EAST)
    est.arns["db-cmk"] = rds.create_db_instance(
        DBInstanceIdentifier="db-cmk",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin1",
        MasterUserPassword="password123",
        AllocatedStorage=20,
        StorageEncrypted=True,
        KmsKeyId=rot["Arn"],
        Tags=[{"Key": "Environment", "Value": "prod"}],
    )["DBInstance"]["DBInstanceArn"]

    sm = client("secretsmanager", EAST)
    est.arns["secret-default"] = sm.create_secret(Name="secret-default", SecretString="x")["ARN"]
    est.arns["secret-cmk"] = sm.create_secret(Name="secret-cmk", SecretString="x", KmsKeyId="alias/app-prod")["ARN"]

    ddb = client("dynamodb", EAST)
    table = {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}
    attrs = [{"AttributeName": "id", "AttributeType": "S"}]
    est.arns["table-default"] = ddb.create_table(TableName="table-default", AttributeDefinitions=attrs, **table)[
        "TableDescription"
    ]["TableArn"]
    est.arns["table-cmk"] = ddb.create_table(
        TableName="table-cmk",
        AttributeDefinitions=attrs,
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": rot["Arn"]},
        Tags=[{"Key": "Environment", "Value": "prod"}],
        **table,
    )["TableDescription"]["TableArn"]

    sns = client("sns", EAST)
    est.arns["topic-cmk"] = sns.create_topic(Name="topic-cmk", Attributes={"KmsMasterKeyId": "alias/app-prod"})[
        "TopicArn"
    ]
    est.arns["topic-aws"] = sns.create_topic(Name="topic-aws", Attributes={"KmsMasterKeyId": "alias/aws/sns"})[
        "TopicArn"
    ]

    sqs = client("sqs", EAST)
    sqs.create_queue(QueueName="queue-cmk", Attributes={"KmsMasterKeyId": rot["KeyId"]}, tags={"Environment": "prod"})
    sqs.create_queue(QueueName="queue-sqs", Attributes={"SqsManagedSseEnabled": "true"})

    logs = client("logs", EAST)
    logs.create_log_group(logGroupName="app-logs", kmsKeyId=rot["Arn"])

    ssm = client("ssm", EAST)
    ssm.put_parameter(Name="/app/default", Value="x", Type="SecureString")
    ssm.put_parameter(Name="/app/cmk", Value="x", Type="SecureString", KeyId="alias/app-prod")
    ssm.put_parameter(Name="/app/plain", Value="x", Type="String")


def build_iam(client: Any) -> None:
    iam = client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="app", PolicyName="decrypt", PolicyDocument=_policy("kms:Decrypt"))
    iam.put_role_policy(RoleName="app", PolicyName="s3-only", PolicyDocument=_policy("s3:GetObject"))
    arn = iam.create_policy(PolicyName="kms-admin", PolicyDocument=_policy("kms:*"))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=arn)
    iam.create_policy(PolicyName="logs-only", PolicyDocument=_policy("logs:*"))


def build(client: Any) -> Estate:
    est = build_keys(client)
    build_audit(client, est)
    build_resources(client, est)
    build_iam(client)
    return est
