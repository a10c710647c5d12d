"""Effective access on the dashboard, in real headless Chromium: the key page lists who can decrypt and
administer the key by every path the engine finds (key policy + IAM, grants with their constraints, role
chains), never a principal a permissions boundary keeps out; each principal links to a page listing its keys.
The store holds a scan of a hand-built snapshot with an IAM inventory (tests/web/access_estate.py), written
by the store's writer; old snapshots without IAM and scans that kept no snapshot say so."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import web.test_dashboard_browser as dash
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.pipeline import judge
from kmsguard.store import open_store
from kmsguard.store.schema import ScanRow
from kmsguard.store.writer import insert_full_scan, insert_key_scan
from kmsguard.web.access_view import AccessCache, key_access_view, key_fingerprint
from web.access_estate import (
    ACCOUNT,
    ADMIN,
    ALICE,
    BOUNDED,
    GRANTEE,
    HOP,
    HOSTILE,
    KEY,
    OTHER_KEY,
    READER,
    VAULT,
    keys,
    snapshot,
)

ROOT = f"arn:aws:iam::{ACCOUNT}:root"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(dash.CHROMIUM):
        pytest.fail("Chromium is not installed (apt-get install -y chromium): the dashboard tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=dash.CHROMIUM, args=dash.ARGS, headless=True)
        yield b
        b.close()


def store_scan(db_url: str, snap: Snapshot, *, keep_snapshot: bool = True) -> int:
    store = open_store(db_url)
    try:
        with store.session() as s:
            return insert_full_scan(s, snap, judge(snap, warn=lambda _: None), keep_snapshot=keep_snapshot)
    finally:
        store.close()


def row(page: Any, table: str, principal: str) -> Any:
    return page.locator(f"#{table} tr.access-row").filter(has=page.locator(f'a.principal:text-is("{principal}")'))


def principals_in(page: Any, table: str) -> set[str]:
    return {a.inner_text() for a in page.locator(f"#{table} a.principal").all()}


def test_key_page_lists_effective_access_and_links_principal_pages(browser: Any, db_url: str, tmp_path: Path) -> None:
    store_scan(db_url, snapshot())
    with dash.serving(db_url) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        dash._login(page, base)
        page.goto(base + "/keys/" + KEY)
        assert page.inner_text("h1") == "alias/finance"

        decrypt = principals_in(page, "decrypt")
        assert {READER, GRANTEE, ALICE, HOP, VAULT, ADMIN, HOSTILE, ROOT} <= decrypt
        assert BOUNDED not in decrypt  # kms:* inline, but its boundary allows only s3:*
        assert BOUNDED not in page.inner_text("body")

        reader = row(page, "decrypt", READER).inner_text()
        assert "allowed" in reader and "key_policy+iam" in reader
        assert "key policy: Sid EnableIAM" in reader and "iam: role/IamReader inline decrypt" in reader

        grantee = row(page, "decrypt", GRANTEE)
        assert grantee.locator(".decision").inner_text() == "conditional"
        assert grantee.locator(".via").inner_text() == "grant"
        assert "finance-reader" in grantee.inner_text()
        assert "StringEquals kms:encryptioncontext:dept = finance" in grantee.locator(".cond").inner_text()

        alice = row(page, "decrypt", ALICE)
        assert alice.locator(".via").inner_text() == "assume_role"
        assert alice.locator(".chain").inner_text() == f"assumes {HOP} → {VAULT}"
        assert "trust: role/Hop" in alice.inner_text()

        # Administer: the AWS managed AdministratorAccess holder, once per administrative action.
        assert BOUNDED not in principals_in(page, "administer") and READER not in principals_in(page, "administer")
        admin_rows = page.locator("#administer tr.access-row", has=page.locator(f'a.principal:text-is("{ADMIN}")'))
        assert admin_rows.count() == 1  # the principal cell spans its action rows
        actions = [
            r.get_attribute("data-action") for r in page.locator(f'#administer tr[data-principal="{ADMIN}"]').all()
        ]
        assert actions == ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"]
        assert "iam: AWS managed AdministratorAccess" in page.inner_text("#administer")

        # A principal's ARN with markup in its IAM path is text: shown as written, nothing injected.
        assert page.locator("script").count() == 0 and page.locator("#decrypt a.principal script").count() == 0
        assert row(page, "decrypt", HOSTILE).count() == 1

        assert "session policies" in page.inner_text("#assumptions")
        assert "scan #" in page.inner_text("#access-source")
        # What was there stays: the key policy statement by statement, and the usage section.
        assert page.locator(".stmt").count() == 1 and "EnableIAM" in page.inner_text(".stmt")
        assert page.inner_text("#usage") == "no trail data"
        if db_url.startswith("sqlite"):
            page.screenshot(path=str(tmp_path / "key-access.png"), full_page=True)

        # The principal page of the user who reaches the key through two roles.
        row(page, "decrypt", ALICE).locator("a.principal").click()
        assert page.inner_text("h1") == ALICE
        assert page.inner_text("#principal-kind") == "user"
        held = page.locator("#decrypt tr.access-row", has=page.locator('a.key:text-is("alias/finance")'))
        assert held.locator(".via").inner_text() == "assume_role"
        assert HOP in held.locator(".chain").inner_text()
        assert "alias/other" in page.inner_text("#decrypt")  # the same chain reaches the other key
        assert page.inner_text("#administer tr:nth-child(2)") == "none"
        page.click("#decrypt >> text=alias/finance")
        assert page.inner_text("h1") == "alias/finance"

        # The hostile name on its own page: the link round-trips the ARN, the heading shows it as text.
        row(page, "decrypt", HOSTILE).locator("a.principal").click()
        assert page.inner_text("h1") == HOSTILE
        assert page.locator("script").count() == 0 and page.locator("h1 *").count() == 0
        assert "alias/finance" in page.inner_text("#decrypt")

        # The grantee: conditional, only for the key with the grant.
        page.goto(base + "/principal?arn=" + quote(GRANTEE, safe=""))
        assert page.locator("#decrypt .decision").all_inner_texts() == ["conditional"]
        assert "alias/other" not in page.inner_text("#decrypt")

        page.goto(base + "/principal?arn=" + quote(ADMIN, safe=""))
        assert page.locator("#administer tr.access-row").count() == 6  # 3 actions on each of the 2 keys

        # A principal the boundary keeps out exists, and can do nothing with either key.
        page.goto(base + "/principal?arn=" + quote(BOUNDED, safe=""))
        assert page.inner_text("h1") == BOUNDED
        assert page.inner_text("#decrypt tr:nth-child(2)") == "none"
        assert page.inner_text("#administer tr:nth-child(2)") == "none"

        response = page.goto(base + "/principal?arn=" + quote(f"arn:aws:iam::{ACCOUNT}:role/Nobody", safe=""))
        assert response is not None and response.status == 404
        assert "no principal" in page.inner_text("body")
        page.close()

        # Logging in from a link to a principal page lands on that page, query string included.
        fresh = browser.new_page()
        fresh.goto(base + "/principal?arn=" + quote(ALICE, safe=""))
        assert "/login" in fresh.url
        fresh.fill("input[name=token]", dash.TOKEN)
        fresh.click("button[type=submit]")
        assert fresh.inner_text("h1") == ALICE
        fresh.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_old_snapshot_without_iam_says_not_collected(browser: Any, db_url: str) -> None:
    store_scan(db_url, snapshot(iam=False))
    with dash.serving(db_url) as base:
        page = browser.new_page()
        dash._login(page, base)
        page.goto(base + "/keys/" + KEY)
        notice = page.inner_text("#access-unavailable")
        assert "IAM users, roles and policies were not collected in scan #1" in notice
        assert "snapshot schema 1" in notice
        assert page.locator("#decrypt").count() == 0 and page.locator("#administer").count() == 0
        # The key policy's own answer stays, under a heading that says what it is.
        assert "not effective access" in page.inner_text("body")
        assert ROOT in page.inner_text("#policy-decrypt")

        page.goto(base + "/principal?arn=" + quote(ROOT, safe=""))
        assert "were not collected" in page.inner_text("#access-unavailable")
        assert page.locator("#decrypt").count() == 0
        page.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scan_without_kept_snapshot_says_so(browser: Any, db_url: str) -> None:
    store_scan(db_url, snapshot(), keep_snapshot=False)
    with dash.serving(db_url) as base:
        page = browser.new_page()
        dash._login(page, base)
        page.goto(base + "/keys/" + KEY)
        assert "scan #1 did not keep its snapshot" in page.inner_text("#access-unavailable")
        assert page.locator("#decrypt").count() == 0
        page.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_key_event_scan_is_judged_against_its_full_scan(browser: Any, db_url: str) -> None:
    """A key-event scan stores no snapshot: the key as re-read (its grant retired) is evaluated against the IAM
    inventory of the full scan it derives from."""
    snap = snapshot()
    store_scan(db_url, snap)
    store = open_store(db_url)
    with store.session() as s:
        retired = keys(grant=False)[0]
        insert_key_scan(s, 1, KEY, retired, [], snap.collected_at)
    store.close()
    with dash.serving(db_url) as base:
        page = browser.new_page()
        dash._login(page, base)
        page.goto(base + "/keys/" + KEY)
        assert GRANTEE not in principals_in(page, "decrypt") and READER in principals_in(page, "decrypt")
        assert "(scan #2 re-read this key only)" in page.inner_text("#access-source")
        page.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_evaluator_is_built_once_per_full_scan(db_url: str) -> None:
    snap = snapshot()
    store_scan(db_url, snap)
    store = open_store(db_url)
    cache = AccessCache(store, scans=1)
    key = snap.all_keys()[0]
    fp = key_fingerprint(key.model_dump_json())
    try:
        with store.session() as s:
            first = s.get(ScanRow, 1)
            assert first is not None
            a = key_access_view(cache, s, first, key, fp)
            b = key_access_view(cache, s, first, key, fp)
            assert cache.builds == 1 and a.decrypt == b.decrypt and a.shown
            insert_key_scan(s, 1, OTHER_KEY, Key.model_validate(keys()[1].model_dump()), [], snap.collected_at)
        with store.session() as s:
            derived = s.get(ScanRow, 2)
            assert derived is not None and derived.kind == "key"
            key_access_view(cache, s, derived, key, fp)
            assert cache.builds == 1  # the key-event scan shares its full scan's evaluator
            insert_full_scan(s, snap, judge(snap, warn=lambda _: None))
        with store.session() as s:
            newest = s.get(ScanRow, 3)
            assert newest is not None
            key_access_view(cache, s, newest, key, fp)
            key_access_view(cache, s, first, key, fp)  # evicted (one scan kept): built again
            assert cache.builds == 3
    finally:
        store.close()
