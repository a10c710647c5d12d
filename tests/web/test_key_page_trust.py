"""The key page reads the scan's answer on who is outside, never its own (issue 19, "read, don't re-judge").

A scan trusts the configured accounts, every scanned account and their organisations (``policy.trust``); the
key page used to re-analyse the key policy trusting only the key's own account, so it marked statements and
listed principals "outside the account" that the scan had passed. Over real HTTP against a real server: a key
shared with a configured trusted account and one shared with a scanned sibling account show nothing outside;
a key shared with an account nobody trusts still does, on the statement that grants it."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import web.test_dashboard_browser as dash
from checks.builders import ACCOUNT, OTHER_ACCOUNT, key, snapshot
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Status
from kmsguard.pipeline import judge
from kmsguard.store import open_store
from kmsguard.store.writer import insert_full_scan

CONFIGURED = "999988887777"  # trusted_accounts in the scan's configuration
STRANGER = "123456789012"  # trusted by nobody


def shared_with(account: str, sid: str) -> str:
    statements: list[dict[str, Any]] = [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*"},
    ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def page(base: str, arn: str) -> str:
    req = urllib.request.Request(base + "/keys/" + arn, headers={"Authorization": f"Bearer {dash.TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.read().decode())


def test_the_key_page_flags_only_whom_the_scan_flagged(db_url: str) -> None:
    configured = key(policy=shared_with(CONFIGURED, "ConfiguredPartner"))
    sibling = key(policy=shared_with(OTHER_ACCOUNT, "SiblingAccount"))
    stranger = key(policy=shared_with(STRANGER, "Stranger"))
    in_sibling = key(account=OTHER_ACCOUNT)  # makes OTHER_ACCOUNT a scanned account
    snap = snapshot(keys=[configured, sibling, stranger, in_sibling])
    result = judge(snap, ScanConfig(trusted_accounts=[CONFIGURED]), warn=lambda _: None)
    external = {f.resource_arn: f.status for f in result.findings if f.check_id == "key_policy_external_access"}
    assert external[configured.arn] == external[sibling.arn] == Status.PASS  # the scan's answer
    assert external[stranger.arn] == Status.FAIL
    store = open_store(db_url)
    try:
        with store.session() as s:
            insert_full_scan(s, snap, result)
    finally:
        store.close()

    with dash.serving(db_url) as base:
        for passed in (configured, sibling):
            html = page(base, passed.arn)
            assert "stmt risky" not in html and 'id="external"' not in html
            assert "outside the" not in html
            assert 'id="policy-not-judged"' not in html

        html = page(base, stranger.arn)
        assert f"Outside the trusted accounts: arn:aws:iam::{STRANGER}:root" in html
        risky = re.findall(r'<div class="stmt risky">(.*?)</div><pre>', html, re.S)
        assert len(risky) == 1 and "statement 1 (Stranger)" in risky[0]
        assert f"grants arn:aws:iam::{STRANGER}:root (outside the trusted accounts)" in risky[0]
