"""Fill a moto server with an Organization: a management account and N member accounts, each seeded like seed.py.

The management account (123456789012, moto's default) creates the Organization and its members; each member is
seeded through the credentials of OrganizationAccountAccessRole assumed in it (moto serves an assumed role's
credentials from the role's account), with seed.py's mix per Region: K customer keys, a few resources under them
and the home Region's partial audit set-up. The management account holds no keys, as AWS recommends.

Deterministic: moto's random generator is seeded first (account ids follow from it) and the accounts are created
in order; every member gets the same mix (seed.py draws it per Region), so each account-Region holds the same
estate. Key ids differ between runs (keys are created in parallel), nothing a scan judges does.

Seeding runs with the server's AWS time paused (no latency, no quotas: at CreateKey's quota of 5 a second, 3,000
keys would take ten minutes) and in parallel across accounts.

The server side is here too: ``--serve-only`` starts an emulator in this process (with ``--aws-latency`` and
``--aws-quotas``) and adds a per-(account, Region) request counter in front of it, which the org benchmark needs
for the floor (the emulator counts per operation only).

Usage:
    python bench/seed_org.py --endpoint-url http://127.0.0.1:5000 --accounts 20 --keys-per-region 50
    python bench/seed_org.py --serve-only --aws-latency 30 --aws-quotas default   # prints {"endpoint_url": ...}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import seed

MANAGEMENT = seed.ACCOUNT
ROLE = "OrganizationAccountAccessRole"
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "us-west-2")
MOTO_SEED = 2026
AWS_TIME = "/moto-api/kmsguard/aws-time"
SCOPES = "/moto-api/kmsguard-bench/scopes"


# --- the server side: per-(account, Region) request counts ------------------------------------------------------


class ScopeCounter:
    """WSGI layer counting AWS requests by (account, Region, service, operation), in front of the emulator's own
    layers, so throttled answers count too (as in the emulator's own counter).

    GET ``/moto-api/kmsguard-bench/scopes`` -> ``{"scopes": [[account, region, service, operation, n], ...]}``;
    DELETE resets. The operation is exact for JSON-protocol services (KMS and every other X-Amz-Target service)
    and query-string calls; other calls (REST, form-encoded bodies) count as ``*``: reading their body would cost
    the server CPU the benchmark measures, and only KMS has quotas.
    """

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None
        self._counts: Counter[tuple[str, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from kmsguard.demo import patches

        assert self.app is not None
        path = environ.get("PATH_INFO", "")
        if path == SCOPES:
            return self._endpoint(environ, start_response)
        if patches.is_aws_request(path):
            self._record(environ)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _record(self, environ: dict[str, Any]) -> None:
        from urllib.parse import parse_qs

        from werkzeug.datastructures import EnvironHeaders

        from kmsguard.demo import patches

        request = _Headers(EnvironHeaders(environ))
        service = patches.service_of(request)
        target = request.headers.get("X-Amz-Target")
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
        operation = str(target).rsplit(".", 1)[-1] if target else (action or "*")
        key = (patches.account_of(request), patches.region_of(request), service, operation)
        with self._lock:
            self._counts[key] += 1

    def _endpoint(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self._counts.clear()
            rows = [[*k, n] for k, n in sorted(self._counts.items())]
        data = json.dumps({"scopes": rows}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


@dataclass
class _Headers:
    """The one attribute of a request that ``patches.account_of`` / ``region_of`` / ``service_of`` read."""

    headers: Any


def serve_only(latency: str | None, quotas: str | None, aws_managed_policies: bool = True) -> int:
    """An emulator with AWS's time as asked and the scope counter; serves until stdin closes."""
    from kmsguard.demo.emulator import Emulator

    counter = ScopeCounter()

    class CountingEmulator(Emulator):
        # Emulator has no public hook for another WSGI layer; _timing() is where it wraps moto's app.
        def _timing(self) -> Callable[[Any], Any] | None:
            inner = super()._timing()

            def wrap(app: Any) -> ScopeCounter:
                counter.app = inner(app) if inner is not None else app
                return counter

            return wrap

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emulator = CountingEmulator(aws_managed_policies=aws_managed_policies, aws_latency=latency, aws_quotas=quotas)
    emulator.start()
    print(json.dumps({"endpoint_url": emulator.endpoint_url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # returns when the parent closes our stdin (or dies)
    emulator.stop()
    return 0


# --- talking to the server's own endpoints -------------------------------------------------------------------------


def post_json(url: str, body: dict[str, Any] | None = None, method: str = "POST") -> tuple[int, Any]:
    """(status, parsed JSON answer or None); an HTTP error's status and body are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, _json_or_none(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _json_or_none(e.read())


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:  # moto's 404 page, when the server runs without AWS's time
        return None


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


@contextlib.contextmanager
def aws_time_paused(endpoint_url: str) -> Iterator[None]:
    """No latency and no quotas within the block (the emulator's aws-time endpoint); nothing when both are off."""
    status, _ = post_json(endpoint_url + AWS_TIME, {"paused": True})
    paused = status == 200  # 404: the server runs without AWS's time
    try:
        yield
    finally:
        if paused:
            post_json(endpoint_url + AWS_TIME, {"paused": False})


def scope_counts(endpoint_url: str) -> dict[tuple[str, str, str, str], int]:
    return {(a, r, s, o): n for a, r, s, o, n in get_json(endpoint_url + SCOPES)["scopes"]}


def reset_scope_counts(endpoint_url: str) -> None:
    post_json(endpoint_url + SCOPES, method="DELETE")


# --- the Organization ----------------------------------------------------------------------------------------------


@dataclass
class OrgSeedReport:
    endpoint_url: str
    organization_id: str
    management_account: str
    members: list[str]
    regions: list[str]
    customer_keys_per_region: int
    # account -> region -> keys ListKeys returns (customer keys plus the AWS managed keys the resources brought in)
    listed_keys: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    calls: int = 0
    deny_conditions_honoured: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def total_keys(self) -> int:
        return sum(n for regions in self.listed_keys.values() for n in regions.values())


def member_credentials(endpoint_url: str, account: str, role: str = ROLE) -> dict[str, str]:
    """The role's credentials in ``account``, in boto3's keyword names (what seed.client takes)."""
    sts = seed.client("sts", "us-east-1", endpoint_url)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="bench-seed")["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def create_organization(endpoint_url: str, members: int) -> tuple[str, list[str]]:
    """The Organization and its member accounts, created in order after seeding moto's generator (stable ids)."""
    post_json(f"{endpoint_url}/moto-api/seed?a={MOTO_SEED}")
    orgs = seed.client("organizations", "us-east-1", endpoint_url)
    org_id = str(orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"])
    ids = []
    for i in range(members):
        status = orgs.create_account(Email=f"member{i:03d}@example.com", AccountName=f"member{i:03d}")
        ids.append(str(status["CreateAccountStatus"]["AccountId"]))
    return org_id, ids


def seed_org(
    endpoint_url: str,
    members: int,
    regions: Iterable[str] = DEFAULT_REGIONS,
    keys_per_region: int = 50,
    parallel_accounts: int = 4,
    workers: int = 8,
) -> OrgSeedReport:
    """Create the Organization and seed every member, with the server's AWS time paused."""
    regions = list(regions)
    start = time.perf_counter()
    with aws_time_paused(endpoint_url):
        org_id, ids = create_organization(endpoint_url, members)
        report = OrgSeedReport(endpoint_url, org_id, MANAGEMENT, ids, regions, keys_per_region)
        probe = seed.client("kms", seed.PROBE_REGION, endpoint_url)
        report.deny_conditions_honoured = seed.probe_deny_conditions(probe)

        def one(account: str) -> seed.SeedReport:
            creds = member_credentials(endpoint_url, account)
            return seed.seed(
                endpoint_url,
                regions,
                keys_per_region,
                workers,
                True,
                account,
                creds,
                report.deny_conditions_honoured,
            )

        with ThreadPoolExecutor(max_workers=parallel_accounts) as pool:
            for account, r in zip(ids, pool.map(one, ids), strict=True):
                report.listed_keys[account] = r.listed_keys
                report.calls += r.calls
                report.warnings += [f"{account}: {w}" for w in r.warnings]
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint-url", help="seed this server (required unless --serve-only)")
    ap.add_argument("--accounts", type=int, default=20, help="member accounts (besides the management account)")
    ap.add_argument("--regions", default=",".join(DEFAULT_REGIONS))
    ap.add_argument("--keys-per-region", type=int, default=50)
    ap.add_argument("--parallel-accounts", type=int, default=4)
    ap.add_argument("--workers", type=int, default=8, help="threads per account")
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help='start an emulator with the per-account-Region counter, print {"endpoint_url": ...}, seed nothing, '
        "serve until stdin closes",
    )
    ap.add_argument("--aws-latency", help="with --serve-only: MS[:JITTER] per request")
    ap.add_argument("--aws-quotas", help="with --serve-only: default or a quota file")
    ap.add_argument(
        "--no-aws-managed-policies",
        action="store_true",
        help="with --serve-only: accounts without AWS managed IAM policies (faster IAM reads; no effective access)",
    )
    args = ap.parse_args(argv)
    if args.serve_only:
        return serve_only(args.aws_latency, args.aws_quotas, not args.no_aws_managed_policies)
    if not args.endpoint_url:
        ap.error("--endpoint-url is required (or --serve-only)")
    report = seed_org(
        args.endpoint_url,
        args.accounts,
        args.regions.split(","),
        args.keys_per_region,
        args.parallel_accounts,
        args.workers,
    )
    print(json.dumps({**asdict(report), "total_keys": report.total_keys}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
