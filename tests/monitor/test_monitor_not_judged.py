"""The monitor alerts on a key policy change the engine cannot judge (issue 13, section 3): the estate is a real
moto server, which accepts a policy the engine refuses; the alert is received by a real local webhook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from kmsguard.aws.options import AwsOptions
from kmsguard.demo.emulator import Emulator
from kmsguard.monitor.channels import WebhookChannel
from kmsguard.monitor.service import Monitor, MonitorSettings
from kmsguard.store.schema import FindingRow

from .endpoints import HttpRecorder
from .test_monitor_alerts import ACCOUNT, REGION, key_policy

# The effective-access checks (checks/access.py) that judge every key without options: they need the engine to
# read the key policy.
ACCESS_CHECKS = {"key_decrypt_via_broad_iam", "role_chain_to_decrypt", "key_admin_can_grant_itself_use"}
# An Effect AWS does not know: KMS would refuse it, moto stores it, the engine cannot judge it.
UNKNOWN_EFFECT = {"Sid": "Odd", "Effect": "Maybe", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_policy_change_the_engine_cannot_judge_is_alerted_as_such(
    aws: Emulator, client: Callable[..., Any], db_url: str
) -> None:
    kms = client("kms", REGION)
    arn = kms.create_key(Policy=key_policy(), Description="orders")["KeyMetadata"]["Arn"]
    with HttpRecorder() as http:
        options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
        settings = MonitorSettings(db_url=db_url, options=options, retry_attempts=2, retry_base=0.05)
        mon = Monitor(settings, [WebhookChannel(http.url("/hook"))])
        mon.full_cycle()
        kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=key_policy([UNKNOWN_EFFECT]))
        assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])["Statement"][1] == (
            UNKNOWN_EFFECT
        )
        changed = mon.full_cycle()
        assert changed.alert_id is not None
        payload = http.on("/hook")[-1]
    (item,) = [i for i in payload["items"] if i["kind"] == "key_policy_changed"]
    assert item["resource_arn"] == arn and item["account"] == ACCOUNT
    assert item["severity"] == "high"
    assert "could not judge what access it gives: the policy engine failed (" in item["summary"]
    assert 'Effect must be "Allow" or "Deny"' in item["summary"] and "no access gained" not in item["summary"]
    # The scan itself judged the key as far as it could: the effective-access checks say they could not, on the
    # key, instead of the engine's error stopping the whole cycle.
    with mon.store.session() as s:
        rows = s.scalars(
            select(FindingRow).where(FindingRow.scan_id == changed.scan_id, FindingRow.resource_arn == arn)
        ).all()
    access = {f.check_id: f for f in rows if f.check_id in ACCESS_CHECKS}
    assert set(access) == set(ACCESS_CHECKS)
    assert all(f.status == "ERROR" and "the policy engine failed (" in f.message for f in access.values())
