"""What CloudTrail logs showed, as typed facts on the Snapshot; ``checks/trail.py`` judges them.

``trail/`` reads the logs and asks its SQL; ``trail/facts.py`` turns the answers into these objects, once, so
no judge reads a SQL column by name. The facts ride on ``Snapshot.trail``, and the trail family are registered
checks like any other: check selection, mutes, severity overrides, compliance ids and ERROR findings apply to
them the same way. A snapshot without logs has ``trail`` None and the family yields nothing.

Times are epoch seconds (UTC), as the cache holds them. ``events`` are the first ``thresholds.cap`` events of a
group, as evidence (times already ISO 8601).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Callers as CloudTrail's userIdentity.type names them, and the stable principal the trail records for those without
# an IAM ARN of their own (trail.decode and the native scanner write them; checks/trail reads them).
SERVICE_CALLER = "AWSService"
ASSUMED_ROLE_CALLER = "AssumedRole"
SERVICE_PRINCIPAL_PREFIX = "service:"  # + invokedBy, e.g. "service:cloudtrail.amazonaws.com"
UNKNOWN_SERVICE = "unknown"  # what stands for invokedBy when a service's call is logged without it
ACCOUNT_PRINCIPAL_PREFIX = "account:"  # + accountId: a caller of another account, logged without an ARN
# The key a fact names when the calls did not name one (a failed Decrypt names its key only in the ciphertext):
# UNKNOWN_KEY_PREFIX + "ACCOUNT:REGION".
UNKNOWN_KEY_PREFIX = "unknown-key:"


def iso_utc(ts: int | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2024-06-10T12:00:00Z``): how every trail fact and finding writes a time."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrailThresholds(_Fact):
    """The detections' knobs (``kmsguard trail analyze`` options); the checks word their findings with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cap: int = 10  # evidence events per finding
    burst_window: int = 300  # seconds
    burst_threshold: int = 5  # a window with more errors than this is a burst (the guide's alarm: > 5 in 5 min)
    spike_k: float = 6.0  # robust z: hourly count above median + k * 1.4826 * MAD
    spike_min_count: int = 50  # an hour below this many calls is never a spike
    spike_min_hours: int = 24  # a baseline needs this many hours of history
    learn_days: float = 7.0  # first days of the logs in which principals are learnt, not reported
    unused_days: int = 90


class UnreadableLog(_Fact):
    """A log file that could not be read: its events are missing from every other fact."""

    file: str
    error: str
    records: int  # records read before the error
    account: str | None = None  # as the file's path names them
    region: str | None = None


class AdminEvents(_Fact):
    """Successful calls of one administrative event (ScheduleKeyDeletion, DisableKey, ...) on one key."""

    key: str  # the key ARN, or ``unknown-key:ACCOUNT:REGION`` when the calls did not name one
    event_name: str
    calls: int
    first_ts: int
    last_ts: int
    aliases: list[str] = Field(default_factory=list)  # alias names the calls carried (DeleteAlias)
    events: list[dict[str, Any]] = Field(default_factory=list)


class PolicyChange(_Fact):
    """A successful PutKeyPolicy, or a CreateKey (whose policy is the starting point of later changes)."""

    key: str
    key_account: str | None = None
    region: str | None = None
    event_name: str  # PutKeyPolicy or CreateKey
    ts: int
    event_id: str | None = None
    policy: str | None  # the policy the call set (JSON text); None when the request did not carry one
    event: dict[str, Any] = Field(default_factory=dict)


class GrantIssued(_Fact):
    """Successful CreateGrant calls on one key to principals of one other account."""

    key: str
    key_account: str | None = None
    grantee_account: str
    grantees: list[str]
    calls: int
    first_ts: int
    last_ts: int
    events: list[dict[str, Any]] = Field(default_factory=list)


class FailureWindow(_Fact):
    """A window of ``thresholds.burst_window`` seconds with more than ``burst_threshold`` failed calls on a key."""

    key: str
    start: int
    errors: int
    error_codes: list[str]
    account: str | None = None  # the recipient account and region of the calls
    region: str | None = None
    first_ts: int
    last_ts: int
    events: list[dict[str, Any]] = Field(default_factory=list)


class UsageSpike(_Fact):
    """An hour of one cryptographic action on a key far above that key's own hourly baseline."""

    key: str
    action: str
    hour: int
    calls: int
    median: float
    mad: float
    hours: int  # hours of baseline
    events: list[dict[str, Any]] = Field(default_factory=list)


class Newcomer(_Fact):
    """An account (``principal`` None) or a principal that first used a key after the key's learning window."""

    key: str
    principal_account: str | None = None
    principal: str | None = None
    principals: int = 1  # for an account: how many of its principals
    calls: int
    first_ts: int
    key_first_ts: int  # when the logs first show the key: its learning window starts here
    events: list[dict[str, Any]] = Field(default_factory=list)


class CrossAccountUse(_Fact):
    """Successful calls on a key by principals of another account."""

    key: str
    key_account: str | None = None
    principal_account: str
    calls: int
    principals: int
    first_ts: int
    last_ts: int
    events: list[dict[str, Any]] = Field(default_factory=list)


class KeyUse(_Fact):
    """Successful cryptographic calls of one action by one principal on one key (through one service)."""

    key: str
    principal: str  # as the usage tables name it (the role for assumed-role sessions, ``account:ID``)
    principal_arn: str | None = None  # the caller's own ARN (the session's for assumed roles)
    principal_type: str | None = None
    principal_account: str | None = None
    action: str  # the event name, e.g. Decrypt
    invoked_by: str | None = None  # the AWS service that called on the principal's behalf
    calls: int
    first_ts: int
    last_ts: int


class ResourceUse(_Fact):
    """Successful cryptographic calls on a key for one resource (the encryption context's ARN)."""

    key: str
    resource: str
    principal: str | None = None
    calls: int
    first_ts: int
    last_ts: int


class PrincipalKeyCalls(_Fact):
    key: str
    principal: str
    calls: int


class TrailFacts(_Fact):
    thresholds: TrailThresholds = Field(default_factory=TrailThresholds)
    window_start: int | None = None  # the first and last event analysed; None when there was none
    window_end: int | None = None
    unreadable: list[UnreadableLog] = Field(default_factory=list)
    admin_events: list[AdminEvents] = Field(default_factory=list)
    policy_changes: list[PolicyChange] = Field(default_factory=list)  # in time order
    external_grants: list[GrantIssued] = Field(default_factory=list)
    failure_windows: list[FailureWindow] = Field(default_factory=list)
    spikes: list[UsageSpike] = Field(default_factory=list)
    new_accounts: list[Newcomer] = Field(default_factory=list)
    new_principals: list[Newcomer] = Field(default_factory=list)
    cross_account: list[CrossAccountUse] = Field(default_factory=list)
    # The facts judged against the keys and resources of the snapshot; asked only when logs were read together
    # with a scan (a key's policy, tags and creation date are the scan's).
    uses: list[KeyUse] = Field(default_factory=list)
    resource_uses: list[ResourceUse] = Field(default_factory=list)
    principal_keys: list[PrincipalKeyCalls] = Field(default_factory=list)
    last_crypto_use: dict[str, int | None] = Field(default_factory=dict)  # key ARN -> last successful crypto call
    # Principal ARN -> its environment tag value (``trail analyze --principal-env``).
    principal_env: dict[str, str] = Field(default_factory=dict)
