"""The Lambda entry point against moto: a scheduled invocation runs a full cycle, a KMS event re-reads one
key, and alerts reach the SNS topic (read back from an SQS queue subscribed to it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kmsguard.demo.emulator import Emulator
from kmsguard.monitor import lambda_handler

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_schedule_then_key_event(
    aws: Emulator, client: Callable[..., Any], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kms, sns, sqs = client("kms", REGION), client("sns", REGION), client("sqs", REGION)
    topic = sns.create_topic(Name="kmsguard")["TopicArn"]
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    for k, v in {
        "KMSGUARD_DB": db_url,
        "KMSGUARD_SNS_TOPIC": topic,
        "KMSGUARD_REGIONS": REGION,
        "KMSGUARD_ENDPOINT_URL": aws.endpoint_url,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(lambda_handler, "_monitor", None)

    first = lambda_handler.handler({"detail-type": "Scheduled Event", "source": "aws.events"})
    assert [c["kind"] for c in first["cycles"]] == ["full"]
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    event = {
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.kms",
        "account": ACCOUNT,
        "region": REGION,
        "detail": {"eventName": "ScheduleKeyDeletion", "requestParameters": {"keyId": arn}},
    }
    second = lambda_handler.handler(event)
    assert second["cycles"] == [{"scan_id": 2, "kind": "key", "drift": second["cycles"][0]["drift"], "alerted": True}]
    messages = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert any("scheduled for deletion" in m["Message"] and arn in m["Message"] for m in messages)
