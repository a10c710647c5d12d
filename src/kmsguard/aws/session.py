"""The one session factory: profile, endpoint, assume-role, retries, pacing and thread-safe client caching.

Every AWS client kmsguard uses comes from an ``AccountSession`` made here, so every client gets the
same ``--endpoint-url``, retries with exponential back-off and jitter, ``--timeout``, ``--max-attempts``,
``--deadline`` and pacing below AWS's request quotas (``--quotas``, see ``pacing``), and reads
its answers through ``parsing.CheckedParserFactory`` (an answer that is not the protocol is a call error, never
a crash). Clients are created once per
(account, region, service) and shared by the collector threads: botocore clients are thread-safe,
but creating them from one ``boto3.Session`` concurrently is not (and it is slow: ~20-100 ms each,
most of it loading the service model), hence the lock and the cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from kmsguard import __version__
from kmsguard.arn import partition_in, partition_of
from kmsguard.aws.errors import NO_CREDENTIALS, AwsUnavailable, aws_busy, error_code, throttling
from kmsguard.aws.options import AwsOptions, CallTally
from kmsguard.aws.pacing import Pacer
from kmsguard.aws.parsing import CheckedParserFactory
from kmsguard.aws.quotas import load_quotas

# Global services (IAM, Organizations, the S3 bucket list) are called in the partition's home region.
_GLOBAL_REGION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
SESSION_NAME = "kmsguard"


@dataclass(frozen=True)
class Credentials:
    """An assumed role's temporary credentials."""

    access_key: str
    secret_key: str
    token: str


@dataclass(frozen=True)
class CallerIdentity:
    account_id: str
    arn: str
    partition: str


def global_region(partition: str) -> str:
    return _GLOBAL_REGION.get(partition, "us-east-1")


def home_region(configured: str | None, requested: list[str] | None) -> str:
    """Where STS is asked who the caller is: the profile's region when it is in the partition the run
    scans, else that partition's home region. GovCloud or China credentials are refused by STS in
    us-east-1, so a `--regions us-gov-west-1` run without a configured region must not ask there."""
    if not requested:
        return configured or "us-east-1"
    partition = partition_of(requested[0])
    if configured and partition_of(configured) == partition:
        return configured
    return global_region(partition)


class AccountSession:
    """Clients for one account, created once per (region, service) and shared by every thread.

    Every account's clients come from the run's one botocore session (``core``), the caller's own with its
    credential chain, the others with their assumed role's credentials passed to each client: the service
    models, endpoint rules and client classes that session loads and caches serve every account. A session
    per account would load them again for each: about 20 ms of CPU per client, most of an Organization scan's
    start-up in each account.
    """

    def __init__(
        self,
        core: botocore.session.Session,
        account_id: str,
        partition: str,
        options: AwsOptions,
        lock: threading.Lock,
        credentials: Credentials | None = None,
    ) -> None:
        self._core = core
        self.account_id = account_id
        self.partition = partition
        self._options = options
        self._config = client_config(options)
        self._credentials = credentials  # None: the caller's own credential chain
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = lock  # the factory's: creating clients from one botocore session is not thread-safe

    def client(self, service: str, region: str) -> Any:
        key = (region, service)
        found = self._clients.get(key)
        if found is not None:
            return found
        creds = self._credentials
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = self._core.create_client(
                    service,
                    region_name=region,
                    endpoint_url=self._options.endpoint_url,
                    config=self._config,
                    aws_access_key_id=creds.access_key if creds else None,
                    aws_secret_access_key=creds.secret_key if creds else None,
                    aws_session_token=creds.token if creds else None,
                )
                if service != "sts":  # signing in (AssumeRole) reads nothing of the estate: it cannot unblind a run
                    count_calls(found, self._options.calls, region)
                # First: past the deadline no attempt starts, nor waits for a slot.
                found.meta.events.register_first("before-send", _deadline_guard(self._options))
                if self._options.pacer is not None:
                    pace(found, self._options.pacer, self.account_id, region, service, self._options)
                self._clients[key] = found
            return found

    def global_client(self, service: str) -> Any:
        return self.client(service, global_region(self.partition))

    def close(self) -> None:
        """Close this account's clients and forget them (about 300 KB each, a dozen per Region): an Organization
        scan releases each account's once it is read, so memory follows the accounts in flight, not all of them.
        A later ``client`` call makes a new one."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()


def count_calls(client: Any, tally: CallTally, region: str) -> None:
    """Count every call ``client`` makes (after its retries) as a success or a failure in ``tally``."""
    service = client.meta.service_model.service_name

    def answered(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            tally.success()
            return
        err = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
        code = err.get("Code") or http_response.status_code
        tally.failure(f"{service}:{model.name} in {region}: {code}: {err.get('Message') or ''}".rstrip(": "))

    def not_answered(exception: Exception, event_name: str = "", **_: Any) -> None:
        code, message = error_code(exception)
        tally.failure(f"{service}:{event_name.rsplit('.', 1)[-1]} in {region}: {code}: {message}")

    client.meta.events.register("after-call", answered)
    client.meta.events.register("after-call-error", not_answered)


def pace(client: Any, pacer: Pacer, account: str, region: str, service: str, options: AwsOptions) -> None:
    """Every attempt of ``client`` (retries included: they spend quota too) waits for its lane's slot, and
    every throttling answer slows that lane down."""

    def before_send(event_name: str = "", **_: Any) -> None:
        pacer.wait(account, region, service, event_name.rsplit(".", 1)[-1])
        options.clock.check()  # the wait may have outlasted the deadline

    def after_attempt(response: tuple[Any, dict[str, Any]] | None = None, event_name: str = "", **_: Any) -> None:
        if response is not None and throttling(response[0].status_code, response[1]):
            pacer.throttled(account, region, service, event_name.rsplit(".", 1)[-1])

    client.meta.events.register("before-send", before_send)
    # needs-retry is emitted after every attempt; a handler returning None leaves the retry decision alone.
    client.meta.events.register("needs-retry", after_attempt)


def _deadline_guard(options: AwsOptions) -> Any:
    """A before-send handler: refuse each attempt (first call or retry) once the run's deadline has passed."""

    def guard(**_: Any) -> None:
        options.clock.check()

    return guard


def botocore_session() -> botocore.session.Session:
    """A botocore session whose clients parse answers with ``CheckedParserFactory``."""
    core = botocore.session.Session()
    core.register_component("response_parser_factory", CheckedParserFactory())
    return core


def client_config(options: AwsOptions) -> Config:
    return Config(
        # total_max_attempts counts the first call, as --max-attempts does (botocore's "max_attempts" does not).
        # Standard mode: exponential back-off with full jitter. Not adaptive: its one rate limiter per client
        # would slow every operation of a service when one is throttled; ``pacing`` keeps one lane per quota.
        retries={"mode": "standard", "total_max_attempts": options.max_attempts},
        connect_timeout=options.timeout,
        read_timeout=options.timeout,
        # One connection per worker thread, or urllib3 discards and reopens connections under load.
        max_pool_connections=max(10, options.max_workers),
        user_agent_extra=f"kmsguard/{__version__}",
    )


class SessionFactory:
    """Opens the caller's session (failing fast when AWS is unusable) and assumes roles into accounts."""

    def __init__(self, options: AwsOptions) -> None:
        self.options = options
        if options.quotas is not None and options.pacer is None:
            options.pacer = Pacer(load_quotas(options.quotas))  # QuotaFileError: the CLI checked it already
        try:
            self._core = botocore_session()
            self._base = boto3.Session(botocore_session=self._core, profile_name=options.profile)
        except ProfileNotFound as e:
            raise AwsUnavailable(f"AWS profile {options.profile!r} not found in the AWS config files ({e})") from e
        self._lock = threading.Lock()  # creating clients from the one botocore session, for every account
        self.home_region = home_region(self._base.region_name, options.regions)
        self.identity = self._caller_identity()
        self.caller = AccountSession(self._core, self.identity.account_id, self.identity.partition, options, self._lock)

    def _caller_identity(self) -> CallerIdentity:
        """One sts:GetCallerIdentity with a short timeout and few retries: no credentials or no endpoint
        is reported in seconds instead of after the full adaptive-retry schedule."""
        probe = Config(
            retries={"mode": "standard", "total_max_attempts": min(self.options.max_attempts, 3)},
            connect_timeout=min(self.options.timeout, 3.0),
            read_timeout=min(self.options.timeout, 10.0),
        )
        where = self.options.endpoint_url or f"the STS endpoint in {self.home_region}"
        try:
            sts = self._base.client(
                "sts", region_name=self.home_region, endpoint_url=self.options.endpoint_url, config=probe
            )
            ident = sts.get_caller_identity()
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise AwsUnavailable(
                NO_CREDENTIALS if isinstance(e, NoCredentialsError) else f"{NO_CREDENTIALS} ({e})"
            ) from e
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as e:
            raise AwsUnavailable(f"cannot reach AWS at {where}: {e}") from e
        except ClientError as e:
            code, message = error_code(e)
            if aws_busy(e):
                # Throttling or a server error says nothing about the credentials: do not send the user to fix them.
                raise AwsUnavailable(
                    f"AWS is unavailable at {where} (sts:GetCallerIdentity: {code}: {message}); try again later"
                ) from e
            raise AwsUnavailable(f"AWS rejected the credentials (sts:GetCallerIdentity: {code}: {message})") from e
        except (BotoCoreError, ResponseParserError) as e:
            raise AwsUnavailable(f"could not use the AWS credentials: {e}") from e
        arn = ident["Arn"]
        return CallerIdentity(account_id=ident["Account"], arn=arn, partition=partition_in(arn))

    def assume(self, account_id: str, role_name: str) -> AccountSession:
        """An AccountSession in ``account_id`` through sts:AssumeRole (raises ClientError/BotoCoreError)."""
        if account_id == self.identity.account_id:
            return self.caller  # the caller's own account: its credentials already work there
        role_arn = f"arn:{self.identity.partition}:iam::{account_id}:role/{role_name}"
        sts = self.caller.client("sts", self.home_region)
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)["Credentials"]
        credentials = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        return AccountSession(self._core, account_id, self.identity.partition, self.options, self._lock, credentials)
