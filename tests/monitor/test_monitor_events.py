"""The monitor loop with EventBridge events from SQS (moto): one key re-read and re-judged within the loop,
alerted once; a clean stop; and the `monitor` command itself stopping on SIGTERM between scans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kmsguard.aws.options import AwsOptions
from kmsguard.demo.emulator import Emulator
from kmsguard.monitor.channels import WebhookChannel
from kmsguard.monitor.events import SqsEvents, key_event, queue_url
from kmsguard.monitor.schedule import parse_schedule
from kmsguard.monitor.service import Monitor, MonitorSettings
from kmsguard.store import open_store
from kmsguard.store.schema import DriftRow, ScanRow

from .endpoints import HttpRecorder

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROOT = {
    "Sid": "Root",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def cloudtrail_event(name: str, key_id: str) -> dict[str, Any]:
    """What EventBridge delivers for a KMS API call recorded by CloudTrail."""
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.kms",
        "account": ACCOUNT,
        "region": REGION,
        "time": "2025-01-06T10:00:00Z",
        "resources": [],
        "detail": {
            "eventSource": "kms.amazonaws.com",
            "eventName": name,
            "awsRegion": REGION,
            "requestParameters": {"keyId": key_id, "policyName": "default"},
        },
    }


def wait_for(cond: Callable[[], bool], timeout: float = 180) -> None:
    # A liveness bound, not a speed assertion: generous, because CI shares two cores with the whole suite.
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def scans(db_url: str) -> list[ScanRow]:
    store = open_store(db_url)
    try:
        with store.session() as s:
            return list(s.scalars(select(ScanRow).order_by(ScanRow.id)))
    finally:
        store.close()


def test_event_rereads_only_that_key_and_alerts_once(aws: Emulator, client: Callable[..., Any], db_url: str) -> None:
    kms, sqs = client("kms", REGION), client("sqs", REGION)
    arn = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [ROOT]}))["KeyMetadata"]["Arn"]
    other = kms.create_key()["KeyMetadata"]["Arn"]
    url = sqs.create_queue(QueueName="kms-events")["QueueUrl"]
    options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
    with HttpRecorder() as http:
        hook = WebhookChannel(http.url("/hook"))
        mon = Monitor(MonitorSettings(db_url=db_url, options=options, retry_base=0.05), [hook])
        loop = threading.Thread(target=mon.run, args=(parse_schedule("1h"), SqsEvents(sqs, url, wait_seconds=1)))
        loop.start()
        try:
            # The first cycle on an empty store alerts once on what already fails; the alert is sent after
            # the scan is stored, so wait for its delivery too before taking the baseline (else it races).
            wait_for(lambda: len(scans(db_url)) == 1 and len(http.on("/hook")) == 1)
            baseline_alerts = len(http.on("/hook"))
            public = {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
            kms.put_key_policy(
                KeyId=arn,
                PolicyName="default",
                Policy=json.dumps({"Version": "2012-10-17", "Statement": [ROOT, public]}),
            )
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(cloudtrail_event("PutKeyPolicy", arn)))
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"source": "aws.s3", "detail": {}}))  # ignored

            def queue_drained() -> bool:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                return all(v == "0" for v in attrs.values())

            wait_for(lambda: len(scans(db_url)) == 2 and len(http.on("/hook")) == baseline_alerts + 1)
            wait_for(queue_drained)
        finally:
            mon.stop.set()
            loop.join(30)
        assert not loop.is_alive()  # the stop request ended the loop
        time.sleep(0.5)
        assert len(http.on("/hook")) == baseline_alerts + 1
        alert = http.on("/hook")[-1]
    full, keyscan = scans(db_url)
    assert (full.kind, keyscan.kind, keyscan.scope) == ("full", "key", arn)
    assert keyscan.key_count == full.key_count
    kinds = {i["kind"] for i in alert["items"]}
    assert "key_policy_changed" in kinds and {i["resource_arn"] for i in alert["items"]} == {arn}
    store = open_store(db_url)
    with store.session() as s:
        drift = s.scalars(select(DriftRow).where(DriftRow.scan_id == keyscan.id)).all()
    assert {d.resource_arn for d in drift} == {arn} and other not in {d.resource_arn for d in drift}
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # handled messages were deleted


def test_event_parsing_shapes() -> None:
    ev = key_event(json.dumps(cloudtrail_event("DisableKey", "1234abcd")))
    assert ev is not None and (ev.event_name, ev.account, ev.region, ev.key_ref) == (
        "DisableKey",
        ACCOUNT,
        REGION,
        "1234abcd",
    )
    wrapped = {"Type": "Notification", "Message": json.dumps(cloudtrail_event("ScheduleKeyDeletion", "k"))}
    assert key_event(json.dumps(wrapped)) is not None  # EventBridge -> SNS -> SQS
    by_arn = cloudtrail_event("CreateGrant", "arn:aws:kms:eu-west-1:999999999999:key/abc")
    ev2 = key_event(by_arn)
    assert ev2 is not None and (ev2.account, ev2.region) == ("999999999999", "eu-west-1")
    assert key_event(cloudtrail_event("Decrypt", "k")) is None  # read-only call: nothing changes
    failed = cloudtrail_event("PutKeyPolicy", "k")
    failed["detail"]["errorCode"] = "AccessDeniedException"
    assert key_event(failed) is None
    assert key_event("not json") is None
    assert queue_url("sqs://sqs.eu-west-1.amazonaws.com/1/q") == "https://sqs.eu-west-1.amazonaws.com/1/q"
    with pytest.raises(ValueError, match="sqs://"):
        queue_url("https://x/1/q")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_monitor_command_stops_cleanly_on_sigterm(
    aws: Emulator, client: Callable[..., Any], db_url: str, tmp_path: Path
) -> None:
    client("kms", REGION).create_key()
    script = (
        "import typer\nfrom kmsguard.cli.monitor import monitor\napp = typer.Typer()\napp.command()(monitor)\napp()\n"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            "--db",
            db_url,
            "--endpoint-url",
            aws.endpoint_url,
            "--region",
            REGION,
            "--interval",
            "1h",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(scans(db_url)) == 1 or proc.poll() is not None, timeout=120)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert len(scans(db_url)) == 1
