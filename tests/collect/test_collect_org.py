"""Organization scans: every ACTIVE account through an assumed role; a failed assume is that account's error."""

from __future__ import annotations

import boto3

from faultproxy import FaultProxy  # tests/ is on sys.path: the shared HTTP fault proxy
from kmsguard.aws.options import AwsOptions
from kmsguard.collect.snapshot import collect_snapshot

from .estate import ACCOUNT, EAST

ROLE = "OrganizationAccountAccessRole"


def _org(client) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    orgs = client("organizations")
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    members = [
        orgs.create_account(Email=f"m{i}@example.com", AccountName=f"member{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(2)
    ]
    return org_id, members


def _member_kms(client, account: str):  # type: ignore[no-untyped-def]
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        "kms",
        region_name=EAST,
        endpoint_url=client("sts").meta.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_org_scan_reads_each_active_account_and_records_failed_assumes(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    org_id, (ok, refused) = _org(client)
    member_key = _member_kms(client, ok).create_key(Description="member key")["KeyMetadata"]["Arn"]
    client("kms", EAST).create_key(Description="management key")
    proxy.fail("AssumeRole", "AccessDenied", contains=refused)

    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST], org=True))

    accounts = {a.account_id: a for a in snap.accounts}
    assert sorted(accounts) == sorted([ACCOUNT, ok, refused])
    assert {a.organization_id for a in snap.accounts} == {org_id}
    member = accounts[ok]
    assert member.errors == []
    assert [k.arn for r in member.regions for k in r.keys if k.key_manager == "CUSTOMER"] == [member_key]
    mgmt = [k.description for r in accounts[ACCOUNT].regions for k in r.keys if k.key_manager == "CUSTOMER"]
    assert mgmt == ["management key"]
    [err] = accounts[refused].errors
    assert (err.service, err.operation, err.code) == ("sts", "AssumeRole", "AccessDenied")
    assert err.resource == f"arn:aws:iam::{refused}:role/{ROLE}"
    assert accounts[refused].regions == []
    # The management account is read with the caller's own credentials, never through the role.
    assert not any(ACCOUNT in c.body for c in proxy.calls if c.operation == "AssumeRole")


def test_accounts_filter_restricts_the_org_and_names_strangers(client, aws) -> None:  # type: ignore[no-untyped-def]
    _org_id, (ok, _other) = _org(client)
    snap = collect_snapshot(
        AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST], org=True, accounts=[ok, "999999999999"])
    )
    accounts = {a.account_id: a for a in snap.accounts}
    assert sorted(accounts) == sorted([ok, "999999999999"])
    assert accounts[ok].errors == [] and [r.region for r in accounts[ok].regions] == [EAST]
    [err] = accounts["999999999999"].errors
    assert err.code == "AccountNotInOrganization"


def test_org_scan_outside_an_organization_reads_the_caller_and_says_why(client, proxy: FaultProxy) -> None:  # type: ignore[no-untyped-def]
    # AWS answers AWSOrganizationsNotInUseException; moto answers an empty list instead: both are covered.
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST], org=True))
    [acct] = snap.accounts
    assert acct.account_id == ACCOUNT and [r.region for r in acct.regions] == [EAST]
    assert [(e.service, e.operation, e.code) for e in acct.errors] == [
        ("organizations", "ListAccounts", "NoAccountsListed")
    ]

    proxy.fail("ListAccounts", "AWSOrganizationsNotInUseException")
    snap = collect_snapshot(AwsOptions(endpoint_url=proxy.endpoint_url, regions=[EAST], org=True))
    [acct] = snap.accounts
    assert acct.account_id == ACCOUNT and [r.region for r in acct.regions] == [EAST]
    assert [(e.service, e.operation, e.code) for e in acct.errors] == [
        ("organizations", "ListAccounts", "AWSOrganizationsNotInUseException")
    ]


def test_an_organization_is_read_a_few_accounts_at_a_time_and_each_releases_its_clients(
    client,
    aws,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Clients cost ~300 KB each, a dozen per Region: an Organization of hundreds of accounts must not hold them all.
    The sessions are observed (the real ones run, counted on the way through), never replaced."""
    from kmsguard.aws.session import AccountSession, SessionFactory
    from kmsguard.collect.snapshot import accounts_in_flight

    orgs = client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    members = [
        orgs.create_account(Email=f"m{i}@example.com", AccountName=f"m{i}")["CreateAccountStatus"]["AccountId"]
        for i in range(5)
    ]
    for account in members:
        _member_kms(client, account).create_key(Description=f"key of {account}")
    open_now: set[str] = set()
    most_open = 0
    closed: list[str] = []
    assume, close = SessionFactory.assume, AccountSession.close

    def counted_assume(self: SessionFactory, account_id: str, role_name: str) -> AccountSession:
        nonlocal most_open
        session = assume(self, account_id, role_name)
        if session is not self.caller:
            open_now.add(account_id)
            most_open = max(most_open, len(open_now))
        return session

    def counted_close(self: AccountSession) -> None:
        open_now.discard(self.account_id)
        closed.append(self.account_id)
        close(self)

    monkeypatch.setattr(SessionFactory, "assume", counted_assume)
    monkeypatch.setattr(AccountSession, "close", counted_close)
    snap = collect_snapshot(AwsOptions(endpoint_url=aws.endpoint_url, regions=[EAST], org=True, max_workers=4))

    assert accounts_in_flight(4) == 2
    assert 1 <= most_open <= 2  # never more than two member accounts at once
    assert sorted(closed) == sorted(members) and not open_now  # every member's clients were released
    read = {a.account_id: [k.description for r in a.regions for k in r.keys] for a in snap.accounts}
    assert all(read[m] == [f"key of {m}"] for m in members)
    assert all(a.errors == [] for a in snap.accounts)
