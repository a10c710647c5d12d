"""The dashboard end to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
log in with the token, read the overview, filter keys, open a key, mute a finding and unmute it.

The store is filled the way users fill it: a monitor cycle scanning a real moto server over HTTP."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kmsguard.aws.options import AwsOptions
from kmsguard.demo.emulator import Emulator, free_port
from kmsguard.monitor.service import Monitor, MonitorSettings
from kmsguard.store import open_store
from kmsguard.web.app import create_app

ACCOUNT = "123456789012"
REGION = "us-east-1"
TOKEN = "correct-horse-battery-staple-42"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def policy(extra: list[dict[str, Any]]) -> str:
    root = {
        "Sid": "Root",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *extra]})


@pytest.fixture
def estate(aws: Emulator, client: Callable[..., Any]) -> dict[str, str]:
    kms = client("kms", REGION)
    public = kms.create_key(
        Policy=policy(
            [{"Sid": "EveryoneDecrypts", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]
        )
    )["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/payments", TargetKeyId=public)
    tidy = kms.create_key(
        Policy=policy(
            [
                {
                    "Sid": "App",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Orders"},
                    "Action": ["kms:Decrypt", "kms:Encrypt"],
                    "Resource": "*",
                }
            ]
        ),
        Tags=[{"TagKey": "Environment", "TagValue": "prod"}],
    )["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=tidy)
    kms.create_alias(AliasName="alias/orders", TargetKeyId=tidy)
    return {"public": public, "tidy": tidy}


@pytest.fixture
def dashboard(aws: Emulator, estate: dict[str, str], db_url: str) -> Iterator[str]:
    options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
    Monitor(MonitorSettings(db_url=db_url, options=options)).full_cycle()
    with serving(db_url) as base:
        yield base


@contextmanager
def serving(db_url: str, token: str | None = TOKEN, **options: Any) -> Iterator[str]:
    """`kmsguard serve` on the store, on a free port, until the block ends (``options`` go to create_app)."""
    import uvicorn

    store = open_store(db_url)
    port = free_port()
    app = create_app(store, token, **options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/login", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is not installed (apt-get install -y chromium): the dashboard tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_login_filter_open_key_mute_and_unmute(
    browser: Any, dashboard: str, estate: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(dashboard + "/keys")
    assert page.url.startswith(dashboard + "/login")  # the token is required before anything shows
    page.fill("input[name=token]", "wrong-token-wrong-token")
    page.click("button[type=submit]")
    assert "Wrong token" in page.inner_text("[role=alert]")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    assert page.url == dashboard + "/keys"

    page.goto(dashboard + "/")
    score = float(page.inner_text("#score"))
    assert 0 <= score < 100  # the public key fails critical checks
    assert page.locator("svg.chart polyline").count() == 2

    # Filter: rotation off leaves the public key (its rotation was never enabled), not the tidy one.
    page.goto(dashboard + "/keys")
    page.select_option("select[name=rotation]", "off")
    page.select_option("select[name=manager]", "CUSTOMER")
    page.click("form.filters button")
    rows = page.inner_text("table")
    assert "alias/payments" in rows and "alias/orders" not in rows

    page.click("text=alias/payments")
    assert page.inner_text("h1") == "alias/payments"
    risky = page.locator(".stmt.risky")
    assert risky.count() == 1 and "EveryoneDecrypts" in risky.inner_text()
    assert "*" in page.inner_text("#decrypt")
    assert page.inner_text("#usage") == "no trail data"
    assert "disabled" in page.inner_text("#rotation")
    if db_url.startswith("sqlite"):
        page.screenshot(path=str(tmp_path / "dashboard-key.png"), full_page=True)

    # Mute the public-key finding from the findings list, with a reason and who.
    page.goto(dashboard + "/findings?status=FAIL&check=key_policy_public")
    row = page.locator("tr.finding", has_text=estate["public"])
    assert row.locator(".st").inner_text() == "FAIL"
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("public by design for the demo bucket")
    row.locator("input[name=who]").fill("alice")
    row.locator("button", has_text="Mute").click()
    assert "No finding matches" in page.inner_text("table")  # no longer FAIL: it is muted

    page.goto(dashboard + "/findings?status=MUTED&check=key_policy_public")
    muted = page.locator("tr.finding", has_text=estate["public"])
    assert muted.locator(".st").inner_text() == "MUTED"
    assert "muted by alice: public by design" in muted.inner_text()

    page.goto(dashboard + "/keys/" + estate["public"])
    assert "muted by alice" in page.inner_text("body")
    page.locator("button", has_text="Unmute").first.click()
    page.goto(dashboard + "/findings?status=FAIL&check=key_policy_public")
    assert page.locator("tr.finding", has_text=estate["public"]).locator(".st").inner_text() == "FAIL"

    page.goto(dashboard + "/compliance?framework=nist-800-171")
    assert "not met" in page.inner_text("table")
    page.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forms_refuse_a_missing_csrf_value(dashboard: str, estate: dict[str, str]) -> None:
    req = urllib.request.Request(
        dashboard + "/mutes",
        data=b"check_id=x&resource_arn=y&reason=r&who=w",
        method="POST",
        # From the dashboard itself (its Origin), so that only the missing CSRF value can be what is refused.
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": dashboard,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
    assert "CSRF check failed" in err.value.read().decode()


# -- CloudTrail usage (monitor --trail) ---------------------------------------------------------------------

T0 = datetime(2025, 2, 1, tzinfo=UTC)
ORDERS_ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Orders/s1"
FOREIGN_KEY = "arn:aws:kms:us-east-1:444455556666:key/9999ffff-0000-0000-0000-000000000009"


def _login(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_key_usage_from_monitor_trail(
    browser: Any,
    aws: Emulator,
    estate: dict[str, str],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The public key is used for three days (once a day also by its alias, with no resources block), the
    tidy key never, and a key of another account shows up in the logs: chart, sentences and top lists."""
    from kmsguard.trail.synth import event, write_trail_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    records = [
        event("Decrypt", estate["public"], ORDERS_ROLE, T0 + timedelta(days=d, hours=h))
        for d, per_day in enumerate((10, 4, 20))
        for h in range(per_day)
    ]
    records += [
        event(
            "Encrypt",
            "alias/payments",
            ORDERS_ROLE,
            T0 + timedelta(days=d, hours=22),
            recipient=ACCOUNT,
            with_resources=False,
        )
        for d in range(3)
    ]
    records += [event("Decrypt", FOREIGN_KEY, ORDERS_ROLE, T0 + timedelta(days=1, minutes=m)) for m in range(2)]
    write_trail_files(tmp_path / "logs", records)
    options = AwsOptions(endpoint_url=aws.endpoint_url, regions=[REGION], max_workers=4)
    Monitor(MonitorSettings(db_url=db_url, options=options, trail=[str(tmp_path / "logs")])).full_cycle()

    with serving(db_url) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        _login(page, base)

        page.goto(base + "/")
        section = page.locator("#trail-usage")
        assert "Key usage (CloudTrail)" in section.inner_text()
        top_keys = page.locator("#top-keys tr")
        assert "alias/payments" in top_keys.nth(1).inner_text() and "37" in top_keys.nth(1).inner_text()
        assert "(not in this scan)" in page.locator("#top-keys").inner_text()  # the other account's key
        orders = page.locator("#top-principals tr", has_text="role/Orders (123456789012)").locator("td")
        assert [orders.nth(i).inner_text() for i in range(3)] == ["role/Orders (123456789012)", "39", "2"]
        assert page.locator("#top-keys tr", has_text="alias/payments").locator("td").nth(2).inner_text() == "37"
        assert page.locator("svg.chart polyline").count() == 2  # the trend chart is still the only line chart

        page.click("#top-keys >> text=alias/payments")
        assert page.inner_text("h1") == "alias/payments"
        chart = page.locator("#usage svg.usage")
        assert chart.count() == 1 and chart.locator("rect").count() == 3  # one column per day with calls
        assert chart.bounding_box()["height"] > 60  # drawn, not collapsed
        assert page.inner_text("#usage-message") == "37 cryptographic call(s) from 2025-02-01 to 2025-02-03."
        totals = page.inner_text("#usage-totals")
        assert "37" in totals and "Errors" in totals
        page.screenshot(path=str(tmp_path / "key-usage.png"), full_page=True)

        page.goto(base + "/keys/" + estate["tidy"])
        assert page.inner_text("#usage-message") == "No call to this key in the CloudTrail logs analysed."
        assert page.locator("#usage svg").count() == 0
        page.close()
