"""collect_snapshot: read accounts -> regions -> keys, audit set-up and resources into one Snapshot.

Flow (every step a task on one bounded pool, see ``runner``):

1. sts:GetCallerIdentity up front (short timeout): no credentials or no endpoint fails in seconds
   with AwsUnavailable instead of after the full retry schedule.
2. Accounts: the caller's, ``--accounts``, or the ACTIVE accounts of the Organization; a role is
   assumed in each account other than the caller's. A failed AssumeRole is an error on that account.
   At most ``accounts_in_flight`` accounts are read at once, and each one's clients are closed when it is
   done, so an Organization's size changes how long the scan takes, not how many clients it holds.
3. Per account: ec2:DescribeRegions (which regions), IAM (one paginated call: every user, group, role and
   used managed policy), the S3 bucket list. Beside the accounts, from the caller: the Organization's OU
   tree, SCPs and RCPs (``organization``).
4. Per region: the KMS key list (then one task per key, at most 5 calls each: see ``kms``), and one
   task per other service (CloudTrail, CloudWatch, Config, EBS, RDS, Secrets Manager, DynamoDB, SNS,
   SQS, CloudWatch Logs, SSM). A service failing for the whole region is an error on the region.
5. Afterwards, without calls: key references resolved to key ARNs, shadow trails given their home
   copy's status, everything sorted so two scans of the same estate give the same snapshot.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from kmsguard import __version__
from kmsguard.aws.errors import AWS_CALL_ERRORS
from kmsguard.aws.options import AwsOptions
from kmsguard.aws.org import plan_accounts
from kmsguard.aws.regions import resolve_regions
from kmsguard.aws.session import AccountSession, SessionFactory
from kmsguard.collect import (
    cloudtrail,
    cloudwatch,
    configservice,
    dynamodb,
    ebs,
    iam,
    kms,
    logs,
    organization,
    rds,
    s3,
    secretsmanager,
    sns,
    sqs,
    ssm,
)
from kmsguard.collect.context import RegionContext
from kmsguard.collect.errors import collection_error, guard
from kmsguard.collect.progress import NullProgress, Progress
from kmsguard.collect.runner import Runner, Scope
from kmsguard.model.keyrefs import KeyResolver
from kmsguard.model.snapshot import AccountSnapshot, CollectionError, Key, Organization, RegionSnapshot, Snapshot

# (service, the operation to blame if it fails before any call names itself, collector)
RegionCollector = tuple[str, str, Callable[[RegionContext], None]]
REGION_COLLECTORS: list[RegionCollector] = [
    ("cloudtrail", "DescribeTrails", cloudtrail.collect),
    ("cloudwatch", "DescribeAlarms", cloudwatch.collect),
    ("config", "DescribeConfigRules", configservice.collect),
    ("ec2", "DescribeVolumes", ebs.collect),
    ("rds", "DescribeDBInstances", rds.collect),
    ("secretsmanager", "ListSecrets", secretsmanager.collect),
    ("dynamodb", "ListTables", dynamodb.collect),
    ("sns", "ListTopics", sns.collect),
    ("sqs", "ListQueues", sqs.collect),
    ("logs", "DescribeLogGroups", logs.collect),
    ("ssm", "DescribeParameters", ssm.collect),
]


def accounts_in_flight(concurrency: int) -> int:
    """How many accounts are read at once: each brings a dozen tasks per Region (one per service, then one per
    key), so a quarter of the threads' worth keeps every thread busy while spreading the calls over many
    account-Regions (each with quotas of its own)."""
    return max(2, concurrency // 4)


def collect_snapshot(options: AwsOptions, progress: Progress | None = None) -> Snapshot:
    """Collect everything ``options`` points at. Raises AwsUnavailable when nothing can be read.
    Past ``options.deadline`` no call starts: what was not read is a CollectionError (DeadlinePassed)."""
    with options.clock.running(options.deadline):
        return _Collection(options, progress or NullProgress()).run()


class _LockedProgress:
    """Progress calls come from many threads; the bar behind them need not be thread-safe."""

    def __init__(self, inner: Progress) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def add_total(self, kind: str, n: int) -> None:
        with self._lock:
            self._inner.add_total(kind, n)

    def advance(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._inner.advance(kind, n)


class _Collection:
    def __init__(self, options: AwsOptions, progress: Progress) -> None:
        self.options = options
        self.progress = _LockedProgress(progress)
        self.contexts: list[RegionContext] = []
        self._lock = threading.Lock()
        # Accounts not started yet: at most ``accounts_in_flight`` are read at once (see _start_accounts).
        self._waiting: deque[AccountSnapshot] = deque()
        self._in_flight = 0
        self._sessions: dict[str, AccountSession] = {}  # assumed-role sessions of the accounts in flight
        self.accounts_in_flight = accounts_in_flight(options.max_workers)

    def run(self) -> Snapshot:
        started = datetime.now(UTC)
        factory = SessionFactory(self.options)  # AwsUnavailable propagates: exit 3
        self.factory = factory
        caller = factory.caller
        orgs = caller.global_client("organizations")
        described = organization.describe(orgs)  # one DescribeOrganization serves the account plan and the tree
        known = described is None or described.id != "unknown"
        org_id = (described.id if described else None) if known else None
        plan = plan_accounts(orgs, caller.account_id, self.options.org, self.options.accounts, org_id)
        accounts: list[AccountSnapshot] = []
        self.progress.add_total("accounts", len(plan.accounts))
        self.organization: Organization | None = None
        self.aws_managed = iam.AwsManagedCache()
        with Runner(self.options.max_workers) as runner:
            self.runner = runner
            # The OU tree, SCPs and RCPs, for effective access: read from the caller, beside the accounts.
            runner.submit(None, self._organization, orgs, described)
            for ap in plan.accounts:
                acct = AccountSnapshot(
                    account_id=ap.account_id, partition=caller.partition, organization_id=plan.organization_id
                )
                accounts.append(acct)
                if plan.error is not None and ap.account_id == caller.account_id:
                    op, code, message = plan.error
                    acct.errors.append(
                        CollectionError(service="organizations", operation=op, code=code, message=message)
                    )
                if ap.refused is not None:
                    op, code, message = ap.refused
                    acct.errors.append(
                        CollectionError(service="organizations", operation=op, code=code, message=message)
                    )
                    self.progress.advance("accounts")
                    continue
                self._waiting.append(acct)
            self._start_accounts()
            runner.wait()
        self._finish(accounts)
        return Snapshot(
            kmsguard_version=__version__,
            collected_at=started,
            source="aws",
            accounts=accounts,
            organization=self.organization,
        )

    def _start_accounts(self) -> None:
        """Start waiting accounts while fewer than ``accounts_in_flight`` are being read. Called at the start and
        whenever an account finishes, so an Organization of any size holds the clients, connections and queued
        tasks of a few accounts at a time, not of all of them."""
        while True:
            with self._lock:
                if not self._waiting or self._in_flight >= self.accounts_in_flight:
                    return
                acct = self._waiting.popleft()
                self._in_flight += 1
            scope = Scope(on_done=functools.partial(self._account_done, acct))
            self.runner.submit(scope, self._account, acct, scope)
            scope.close()

    def _account_done(self, acct: AccountSnapshot) -> None:
        """Everything of ``acct`` is read: release its clients, start the next account."""
        self.progress.advance("accounts")
        with self._lock:
            self._in_flight -= 1
            session = self._sessions.pop(acct.account_id, None)
        if session is not None:
            session.close()
        self._start_accounts()

    def _organization(self, orgs: object, described: Organization | None) -> None:
        self.organization = organization.collect(orgs, described)

    # -- per account ----------------------------------------------------------------------------

    def _account(self, acct: AccountSnapshot, scope: Scope) -> None:
        try:
            session = self.factory.assume(acct.account_id, self.options.role_name)
        except AWS_CALL_ERRORS as e:
            role = f"arn:{acct.partition}:iam::{acct.account_id}:role/{self.options.role_name}"
            acct.errors.append(collection_error("sts", "AssumeRole", e, role))
            return
        ec2 = session.client("ec2", self.factory.home_region)
        plan = resolve_regions(ec2, self.options.regions, self.factory.home_region, self.options.excluded_regions)
        if plan.lookup_error is not None:
            code, message = plan.lookup_error
            note = f"{message} (scanned only {self.factory.home_region})"
            acct.errors.append(CollectionError(service="ec2", operation="DescribeRegions", code=code, message=note))
        for region, (code, message) in plan.refused.items():
            error = CollectionError(service="ec2", operation="DescribeRegions", code=code, message=message)
            acct.regions.append(RegionSnapshot(region=region, errors=[error]))
        self.progress.add_total("regions", len(plan.regions))
        contexts: dict[str, RegionContext] = {}
        for region in plan.regions:
            ctx = RegionContext(session, region, RegionSnapshot(region=region))
            acct.regions.append(ctx.snapshot)
            contexts[region] = ctx
            with self._lock:
                self.contexts.append(ctx)
            rscope = scope.child(on_done=lambda: self.progress.advance("regions"))
            lane = (acct.account_id, region)  # the unit AWS's quotas are counted in
            self.runner.submit(rscope, self._kms_region, ctx, rscope, lane=lane)
            for service, operation, fn in REGION_COLLECTORS:
                self.runner.submit(rscope, self._region_service, ctx, service, operation, fn, lane=lane)
            rscope.close()
        self.runner.submit(scope, self._iam, acct, session, lane=(acct.account_id, "iam"))
        self.runner.submit(scope, self._s3, acct, session, contexts, scope)
        if session is not self.factory.caller:  # the caller's clients also read the Organization: kept
            with self._lock:
                self._sessions[acct.account_id] = session

    def _iam(self, acct: AccountSnapshot, session: AccountSession) -> None:
        with guard(acct.errors, "iam", iam.OPERATION):
            acct.iam = iam.collect(session, self.aws_managed)
            acct.iam_policies = iam.kms_policies(acct.iam)

    def _s3(
        self, acct: AccountSnapshot, session: AccountSession, contexts: dict[str, RegionContext], scope: Scope
    ) -> None:
        with guard(acct.errors, "s3", "ListBuckets"):
            for name, region in s3.list_buckets(session):
                self.runner.submit(
                    scope, self._bucket, acct, session, contexts, name, region, lane=(acct.account_id, "s3")
                )

    def _bucket(
        self,
        acct: AccountSnapshot,
        session: AccountSession,
        contexts: dict[str, RegionContext],
        name: str,
        region: str | None,
    ) -> None:
        region = region or s3.bucket_region(session, name, acct.errors)
        ctx = contexts.get(region) if region else None
        if ctx is not None:  # buckets of regions outside the scan are left out with those regions
            s3.read_bucket(ctx, name)

    # -- per region -----------------------------------------------------------------------------

    def _kms_region(self, ctx: RegionContext, rscope: Scope) -> None:
        with guard(ctx.snapshot.errors, "kms", "ListKeys"):
            keys = kms.list_keys(ctx)
            ctx.snapshot.keys = keys
            self.progress.add_total("keys", len(keys))
            for key in keys:
                self.runner.submit(rscope, self._key, ctx, key, lane=(ctx.account, ctx.region))

    def _key(self, ctx: RegionContext, key: Key) -> None:
        kms.read_key(ctx, key)
        self.progress.advance("keys")

    def _region_service(
        self, ctx: RegionContext, service: str, operation: str, fn: Callable[[RegionContext], None]
    ) -> None:
        with guard(ctx.snapshot.errors, service, operation):
            fn(ctx)

    # -- afterwards: no calls -------------------------------------------------------------------

    def _finish(self, accounts: list[AccountSnapshot]) -> None:
        for ctx in self.contexts:
            snap = ctx.snapshot
            resolver = KeyResolver(ctx.partition, ctx.account, ctx.region, snap.keys, ctx.aliases)
            for res in snap.resources:
                res.key_arn = resolver.resolve(res.key_ref)
            snap.ebs_default_key_arn = resolver.resolve(snap.ebs_default_key_ref)
        for acct in accounts:
            cloudtrail.share_trail_status({r.region: r.trails for r in acct.regions})
            _sort_account(acct)
        accounts.sort(key=lambda a: a.account_id)


def _error_order(e: CollectionError) -> tuple[str, str, str, str]:
    return (e.service, e.operation, e.resource or "", e.code)


def _sort_account(acct: AccountSnapshot) -> None:
    acct.regions.sort(key=lambda r: r.region)
    acct.errors.sort(key=_error_order)
    for r in acct.regions:
        r.keys.sort(key=lambda k: k.arn)
        for k in r.keys:
            k.grants.sort(key=lambda g: g.grant_id)
        r.trails.sort(key=lambda t: t.arn)
        r.metric_filters.sort(key=lambda f: (f.log_group_name, f.name))
        r.alarms.sort(key=lambda a: a.name)
        r.config_rules.sort(key=lambda c: c.name)
        r.config_recorders.sort(key=lambda c: c.name)
        r.resources.sort(key=lambda x: (x.service, x.resource_type, x.arn))
        r.errors.sort(key=_error_order)
