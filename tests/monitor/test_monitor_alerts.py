"""The monitor against a real moto server: drift between two scans, one alert per channel, received by real
local endpoints (HTTP webhook and Slack, SMTP, an SQS queue subscribed to the SNS topic), on SQLite and
PostgreSQL; de-duplication across cycles and restarts; the outbox when a channel is down."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.demo.emulator import Emulator
from kmsguard.monitor.channels import Channel, SlackChannel, SmtpChannel, SnsChannel, WebhookChannel, parse_smtp
from kmsguard.monitor.service import Monitor, MonitorSettings

from .endpoints import HttpRecorder, SmtpServer

ACCOUNT = "123456789012"
REGION = "us-east-1"


def key_policy(extra: list[dict[str, Any]] | None = None) -> str:
    statements = [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        *(extra or []),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


PUBLIC_DECRYPT = {"Sid": "Oops", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}


class Sinks:
    def __init__(self, http: HttpRecorder, smtp: SmtpServer, sqs: Any, queue_url: str, topic: str, sns: Any) -> None:
        self.http, self.smtp, self.sqs, self.queue_url = http, smtp, sqs, queue_url
        self.channels: list[Channel] = [
            WebhookChannel(http.url("/hook")),
            SlackChannel(http.url("/slack")),
            SmtpChannel(parse_smtp(smtp.address, "kmsguard@test", ["secops@test"])),
            SnsChannel(topic, sns),
        ]
        self.sns_seen: list[dict[str, Any]] = []

    def sns_messages(self) -> list[dict[str, Any]]:
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return self.sns_seen
            for m in got:
                self.sns_seen.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def counts(self) -> dict[str, int]:
        return {
            "webhook": len(self.http.on("/hook")),
            "slack": len(self.http.on("/slack")),
            "smtp": len(self.smtp.messages),
            "sns": len(self.sns_messages()),
        }


@pytest.fixture
def sinks(client: Callable[..., Any]) -> Iterator[Sinks]:
    sns, sqs = client("sns", REGION), client("sqs", REGION)
    topic = sns.create_topic(Name="kmsguard-alerts")["TopicArn"]
    url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    with HttpRecorder() as http, SmtpServer() as smtp:
        yield Sinks(http, smtp, sqs, url, topic, sns)


def monitor(aws: Emulator, db_url: str, channels: list[Channel]) -> Monitor:
    options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
    settings = MonitorSettings(db_url=db_url, options=options, retry_attempts=2, retry_base=0.05)
    return Monitor(settings, channels)


def test_policy_change_between_scans_alerts_once_per_channel(
    aws: Emulator, client: Callable[..., Any], sinks: Sinks, db_url: str
) -> None:
    kms = client("kms", REGION)
    arn = kms.create_key(Policy=key_policy(), Description="orders")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/orders", TargetKeyId=arn)

    mon = monitor(aws, db_url, sinks.channels)
    baseline = mon.full_cycle()
    # The first scan alerts once on what already fails (rotation off, missing tags ...), as one digest.
    assert baseline.alert_id is not None
    assert sinks.counts() == {"webhook": 1, "slack": 1, "smtp": 1, "sns": 1}

    quiet = mon.full_cycle()
    assert quiet.alert_id is None and quiet.drift == []
    assert sinks.counts() == {"webhook": 1, "slack": 1, "smtp": 1, "sns": 1}

    kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=key_policy([PUBLIC_DECRYPT]))
    changed = mon.full_cycle()
    assert {d.kind for d in changed.drift} >= {"key_policy_changed", "new_finding"}
    assert sinks.counts() == {"webhook": 2, "slack": 2, "smtp": 2, "sns": 2}

    payload = sinks.http.on("/hook")[-1]
    policy_item = next(i for i in payload["items"] if i["kind"] == "key_policy_changed")
    assert policy_item["resource_arn"] == arn and policy_item["account"] == ACCOUNT and policy_item["region"] == REGION
    assert any(g["principal"] == "*" or g["action"] == "kms:Decrypt" for g in policy_item["detail"]["gained"])
    assert any(i["kind"] == "new_finding" and i["detail"]["check_id"] == "key_policy_public" for i in payload["items"])
    assert payload["severity"] == "critical"
    assert f"/keys/{arn}" in policy_item["more"]
    for text in (
        sinks.smtp.messages[-1].get_content(),
        sinks.sns_messages()[-1]["Message"],
        sinks.http.on("/slack")[-1]["text"] + sinks.http.on("/slack")[-1]["blocks"][0]["text"]["text"],
    ):
        assert "alias/orders" in text and "key policy" in text and "kmsguard serve" in text
    assert sinks.smtp.envelopes[-1] == ("kmsguard@test", ["secops@test"])

    # Restarting the monitor on the same store neither repeats nor invents alerts.
    again = monitor(aws, db_url, sinks.channels)
    assert again.full_cycle().alert_id is None
    assert sinks.counts() == {"webhook": 2, "slack": 2, "smtp": 2, "sns": 2}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_resolved_finding_that_returns_alerts_again(
    aws: Emulator, client: Callable[..., Any], sinks: Sinks, db_url: str
) -> None:
    kms = client("kms", REGION)
    arn = kms.create_key(Policy=key_policy())["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=arn)
    hook = [WebhookChannel(sinks.http.url("/hook"))]
    mon = monitor(aws, db_url, list(hook))
    mon.full_cycle()

    def rotation_alerts() -> int:
        return sum(
            1
            for p in sinks.http.on("/hook")
            for i in p["items"]
            if i.get("detail", {}).get("check_id") == "key_rotation_disabled"
        )

    kms.disable_key_rotation(KeyId=arn)
    c = mon.full_cycle()
    assert "rotation_disabled" in {d.kind for d in c.drift}
    assert rotation_alerts() == 1
    mon.full_cycle()
    assert rotation_alerts() == 1  # still failing: no repeat
    kms.enable_key_rotation(KeyId=arn)
    assert "resolved_finding" in {d.kind for d in mon.full_cycle().drift}
    kms.disable_key_rotation(KeyId=arn)
    mon.full_cycle()
    assert rotation_alerts() == 2  # it came back: alerted again


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_outbox_keeps_alerts_while_a_channel_is_down_and_sends_them_once_after_restart(
    aws: Emulator, client: Callable[..., Any], sinks: Sinks, db_url: str
) -> None:
    kms = client("kms", REGION)
    kms.create_key(Policy=key_policy([PUBLIC_DECRYPT]))
    hook, slack = WebhookChannel(sinks.http.url("/hook")), SlackChannel(sinks.http.url("/slack"))
    sinks.http.fail = True
    first = monitor(aws, db_url, [hook, slack]).full_cycle()
    assert first.alert_id is not None
    assert sinks.http.received == []  # both refused; the alert waits in the outbox

    sinks.http.fail = False
    restarted = monitor(aws, db_url, [hook, slack])
    assert restarted.deliver() == {hook.name: 1, slack.name: 1}
    assert restarted.deliver() == {hook.name: 0, slack.name: 0}  # sent rows are not sent again
    assert len(sinks.http.on("/hook")) == 1 and len(sinks.http.on("/slack")) == 1
    assert sinks.http.on("/hook")[0]["scan_id"] == first.scan_id
