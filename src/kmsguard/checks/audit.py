"""Checks of the audit family: would key misuse be recorded, and would anyone be told?

Where things live, and so how each check is scoped:

* A multi-region trail appears in DescribeTrails of every region (a "shadow" copy whose home_region
  names the real one); an organization trail appears in every member account. Trails are therefore
  de-duplicated by ARN, preferring the copy read in the trail's home region.
* ``cloudtrail_no_multi_region_trail`` is judged once per account (region "global"): one multi-region
  trail covers the whole account, so a per-region finding would repeat one fact N times.
* ``cloudtrail_log_validation_disabled`` / ``cloudtrail_no_cloudwatch_logs`` are judged once per trail,
  in its home region, under the account that owns it (from its ARN).
* The two alarm checks and the two Config rule checks are judged per account and scanned region, because
  KMS events, Config rules and recorders are regional: a region is watched only if a logging trail that
  covers it (multi-region, or single-region at home there) delivers to a CloudWatch Logs group, a metric
  filter on that group (which lives in the trail's home region, as does the metric) matches the events,
  and an alarm on that metric, in that same account and region, has an action.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kmsguard.arn import account_of, log_group, partition_of, root_arn
from kmsguard.arn import build as build_arn
from kmsguard.checks.metric_pattern import FilterPattern, PatternError, parse
from kmsguard.checks.registry import Result, check, region_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status, region_arn

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import (
        AccountSnapshot,
        Alarm,
        CollectionError,
        MetricFilter,
        RegionSnapshot,
        Snapshot,
        Trail,
    )


_WRITES = frozenset({"All", "WriteOnly"})
_READS = frozenset({"All", "ReadOnly"})


def records_kms(trail: Trail, rw: frozenset[str]) -> bool:
    """Whether the trail records KMS's management write events (``_WRITES``) or read events (``_READS``).

    The collector sets ``kms_writes_recorded`` / ``kms_reads_recorded`` from the selectors evaluated one by one;
    a snapshot without them (older, or built by hand) falls back to the summary fields.
    """
    flag = trail.kms_writes_recorded if rw == _WRITES else trail.kms_reads_recorded
    if flag is not None:
        return flag
    return trail.logs_management_events and trail.management_read_write_type in rw and not trail.kms_events_excluded


def _arn_account(arn: str) -> str | None:
    return account_of(arn)


# --- trails, de-duplicated ----------------------------------------------------------------------------------


def _merge(copies: list[tuple[str, Trail]]) -> Trail:
    """One trail from the copies DescribeTrails returned in each region (region seen, trail)."""
    home = next((t for seen, t in copies if seen == t.home_region), copies[0][1])
    if home.is_logging is None:
        # GetTrailStatus may have failed in one region and worked in another: the status is the same.
        status = next((t.is_logging for _, t in copies if t.is_logging is not None), None)
        if status is not None:
            home = home.model_copy(update={"is_logging": status})
    return home


def _account_trails(acct: AccountSnapshot) -> list[Trail]:
    copies: dict[str, list[tuple[str, Trail]]] = defaultdict(list)
    for reg in acct.regions:
        for trail in reg.trails:
            copies[trail.arn].append((reg.region, trail))
    return [_merge(c) for c in copies.values()]


def _all_trails(snapshot: Snapshot) -> list[tuple[str, str, Trail]]:
    """(owning account, partition, trail) for every distinct trail in the snapshot."""
    copies: dict[str, list[tuple[str, Trail]]] = defaultdict(list)
    owner: dict[str, tuple[str, str]] = {}
    for acct in snapshot.accounts:
        for reg in acct.regions:
            for trail in reg.trails:
                copies[trail.arn].append((reg.region, trail))
                owner.setdefault(trail.arn, (_arn_account(trail.arn) or acct.account_id, acct.partition))
    return [(owner[arn][0], owner[arn][1], _merge(c)) for arn, c in copies.items()]


def _trail_result(account: str, trail: Trail, status: Status, message: str, evidence: dict[str, Any]) -> Result:
    return Result(status, account, trail.home_region, "AWS::CloudTrail::Trail", trail.arn, message, evidence)


def _errors(regs: Iterable[RegionSnapshot], services: Iterable[str]) -> list[CollectionError]:
    wanted = set(services)
    return [e for r in regs for e in r.errors if e.service in wanted]


def _error_texts(errors: Iterable[CollectionError]) -> list[str]:
    return [f"{e.service}:{e.operation} {e.code}" for e in errors]


# --- multi-region trail ------------------------------------------------------------------------------------------


def _multi_region_gaps(trail: Trail) -> list[str]:
    """Why this trail is not an active multi-region trail recording management writes ([] when it is)."""
    gaps = []
    if not trail.is_multi_region:
        gaps.append("single-region")
    if not records_kms(trail, _WRITES):
        if trail.kms_events_excluded:
            gaps.append("excludes KMS events (kms.amazonaws.com)")
        elif trail.kms_writes_recorded is None:
            gaps.append(f"does not record management write events ({trail.management_read_write_type})")
        else:
            # From the selectors, each judged as a whole: the type says which of KMS's events are recorded.
            rw = trail.management_read_write_type
            detail = f" (KMS events recorded: {rw})" if rw not in _WRITES else ""
            gaps.append(f"does not record KMS management write events{detail}")
    if trail.is_logging is False:
        gaps.append("not logging")
    elif trail.is_logging is None:
        gaps.append("logging status unknown")
    return gaps


@check(
    "cloudtrail_no_multi_region_trail",
    title="No active multi-region trail records management events",
    severity=Severity.HIGH,
    family="audit",
    rationale="KMS records every key administration and cryptographic call in CloudTrail, but only a trail keeps "
    "them beyond 90 days and only a multi-region trail covers regions nobody thought to watch. A trail that "
    "is stopped, single-region or not recording management writes leaves key misuse unseen. Judged once per "
    "account (region 'global').",
    remediation="aws cloudtrail create-trail --name org-audit --s3-bucket-name <bucket> --is-multi-region-trail "
    "--enable-log-file-validation && aws cloudtrail start-logging --name org-audit",
    topics=["cloudtrail_multi_region"],
)
def cloudtrail_no_multi_region_trail(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for acct in snapshot.accounts:
        if acct.regions:
            yield _judge_multi_region(acct)


def _judge_multi_region(acct: AccountSnapshot) -> Result:
    trails = _account_trails(acct)
    gaps = {t.arn: _multi_region_gaps(t) for t in trails}
    ok = [t for t in trails if not gaps[t.arn]]

    def result(status: Status, message: str, evidence: dict[str, Any]) -> Result:
        arn = region_arn(acct.partition, acct.account_id, "global")
        return Result(status, acct.account_id, "global", "AWS::Account", arn, message, evidence)

    if ok:
        names = ", ".join(sorted(t.name for t in ok))
        return result(Status.PASS, f"account {acct.account_id}: multi-region trail {names} is logging", {})
    evidence: dict[str, Any] = {"trails": {t.arn: gaps[t.arn] for t in trails}}
    unread = [r.region for r in acct.regions if any(e.operation == "DescribeTrails" for e in r.errors)]
    unknown = [t for t in trails if gaps[t.arn] == ["logging status unknown"]]
    if len(unread) == len(acct.regions) or unknown:
        # Either no region's trails could be listed, or the one candidate's status could not be read.
        evidence["errors"] = _error_texts(_errors(acct.regions, ["cloudtrail"]))
        return result(Status.ERROR, f"account {acct.account_id}: the trails could not be fully read", evidence)
    if not trails:
        return result(Status.FAIL, f"account {acct.account_id}: no CloudTrail trail at all", evidence)
    return result(
        Status.FAIL,
        f"account {acct.account_id}: none of {len(trails)} trail(s) is a logging multi-region trail "
        "recording management write events",
        evidence,
    )


# --- per-trail settings ----------------------------------------------------------------------------------------------


@check(
    "cloudtrail_log_validation_disabled",
    title="Trail log file validation is off",
    severity=Severity.MEDIUM,
    family="audit",
    rationale="Without log file validation nobody can prove that the CloudTrail record of key use was not "
    "edited or deleted after delivery, which is what an assessor asks of audit information.",
    remediation="aws cloudtrail update-trail --name <trail> --enable-log-file-validation",
    topics=["cloudtrail_log_validation"],
)
def cloudtrail_log_validation_disabled(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for account, _, trail in _all_trails(snapshot):
        evidence = {"log_file_validation_enabled": trail.log_file_validation_enabled}
        if trail.log_file_validation_enabled:
            yield _trail_result(account, trail, Status.PASS, f"trail {trail.name}: log file validation is on", evidence)
        else:
            yield _trail_result(
                account, trail, Status.FAIL, f"trail {trail.name}: log file validation is off", evidence
            )


@check(
    "cloudtrail_no_cloudwatch_logs",
    title="Trail does not deliver to CloudWatch Logs",
    severity=Severity.MEDIUM,
    family="audit",
    rationale="Metric filters and alarms only see events delivered to a CloudWatch Logs group; a trail that "
    "only writes to S3 records key policy changes and deletions but tells nobody until someone reads the logs.",
    remediation="aws cloudtrail update-trail --name <trail> --cloud-watch-logs-log-group-arn <log-group-arn> "
    "--cloud-watch-logs-role-arn <role-arn>",
    topics=["metric_filters_and_alarms"],
)
def cloudtrail_no_cloudwatch_logs(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for account, _, trail in _all_trails(snapshot):
        group = trail.cloudwatch_logs_log_group_arn
        if group:
            msg = f"trail {trail.name}: delivers to CloudWatch Logs"
            yield _trail_result(account, trail, Status.PASS, msg, {"log_group_arn": group})
        else:
            msg = f"trail {trail.name}: does not deliver to CloudWatch Logs, so no metric filter can see its events"
            yield _trail_result(account, trail, Status.FAIL, msg, {"log_group_arn": None})


# --- synthetic CloudTrail events the alarms must catch ----------------------------------------------------------------


def _session(
    account: str, partition: str, role: str, session: str, mfa: bool, key: str, **extra: Any
) -> dict[str, Any]:
    """An assumed-role identity (role session, console federation or a service acting for the role)."""
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEROLEID:{session}",
        "arn": build_arn("sts", "", account, f"assumed-role/{role}/{session}", partition=partition),
        "accountId": account,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEROLEID",
                "arn": build_arn("iam", "", account, f"role/{role}", partition=partition),
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "true" if mfa else "false"},
        },
        **extra,
    }


def _identity(kind: str, account: str, partition: str) -> dict[str, Any]:
    """userIdentity of each kind of caller the alarms must catch (see ``_CALLERS``), in the account's partition
    (a filter written for ``arn:aws-us-gov:iam::*:root`` must be tried on GovCloud's ARNs)."""
    if kind == "AssumedRole":
        return _session(account, partition, "KMSAdministrator", "session", False, "ASIAEXAMPLEKEYID")
    if kind == "ConsoleRole":  # SSO / console federation, MFA at sign-in
        return _session(
            account,
            partition,
            "AWSReservedSSO_Admin_0123456789abcdef",
            "alice@example.com",
            True,
            "ASIAEXAMPLECONSOLE",
            sessionCredentialFromConsole="true",
        )
    if kind == "ServiceForRole":  # a service calling KMS with the caller's credentials (forward access session)
        fas = {"invokedBy": "cloudformation.amazonaws.com"}
        return _session(account, partition, "AppDeployer", "deploy", False, "ASIAEXAMPLEFAS", **fas)
    if kind == "Root":
        return {
            "type": "Root",
            "principalId": account,
            "arn": root_arn(account, partition),
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEROOTKEY",
            "sessionContext": {"attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "true"}},
        }
    if kind == "AWSService":  # no principal, no access key: the service itself
        return {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEUSERID",
        "arn": build_arn("iam", "", account, "user/alice", partition=partition),
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLEKEYID",
        "userName": "alice",
    }


@dataclass(frozen=True)
class _Caller:
    """How one variant of a required event differs in fields the checks do not care about."""

    who: str  # _identity kind
    user_agent: str
    source_ip: str
    request_parameters: bool = True  # False: requestParameters is null, as CloudTrail writes it for some callers


_CALLERS = (
    _Caller("IAMUser", "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.amzn.2023 prompt/off", "192.0.2.10"),
    _Caller("AssumedRole", "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1.0 lang/python#3.11.8", "198.51.100.23"),
    _Caller("ConsoleRole", "AWS Internal", "203.0.113.7"),
    _Caller("ConsoleRole", "console.amazonaws.com", "2001:db8:85a3::8a2e:370:7334"),
    _Caller(
        "Root",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
        "2001:db8::1",
    ),
    _Caller("ServiceForRole", "cloudformation.amazonaws.com", "AWS Internal"),
    _Caller("AWSService", "cloudformation.amazonaws.com", "cloudformation.amazonaws.com", request_parameters=False),
    _Caller(
        "IAMUser",
        "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0 "
        "aws-sdk-go-v2/1.25.3",
        "AWS Internal",
        request_parameters=False,
    ),
    _Caller("AssumedRole", "aws-sdk-java/2.25.0 Linux/6.1 OpenJDK_64-Bit_Server_VM/17.0.10", "10.0.12.34"),
)

# Kept for callers that ask which kinds of identity the synthetic events cover.
_WHO = tuple(dict.fromkeys(c.who for c in _CALLERS))

_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def _kms_event(name: str, account: str, region: str, caller: _Caller | str, **fields: Any) -> dict[str, Any]:
    c = caller if isinstance(caller, _Caller) else next(x for x in _CALLERS if x.who == caller)
    key_arn = build_arn("kms", region, account, f"key/{_KEY_ID}")
    event: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": _identity(c.who, account, partition_of(region)),
        "eventTime": "2026-01-01T12:00:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": c.source_ip,
        "userAgent": c.user_agent,
        "requestParameters": {"keyId": _KEY_ID},
        "responseElements": None,
        "requestID": "00000000-0000-0000-0000-000000000001",
        "eventID": "00000000-0000-0000-0000-000000000002",
        "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    event.update(fields)
    if not c.request_parameters:
        event["requestParameters"] = None
    if c.who == "AWSService":
        event["sharedEventID"] = "00000000-0000-0000-0000-000000000003"
    return event


def key_policy_change_events(account: str, region: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, event): successful PutKeyPolicy, ScheduleKeyDeletion and DisableKey, each sent by every caller
    variant in ``_CALLERS`` (users, roles, console sessions with and without MFA, root, services, CLI, SDKs,
    IPv4/IPv6/"AWS Internal" source addresses, with and without requestParameters). A filter must match every
    variant of a label to cover it, so conditions on fields the alarm has no business testing are caught."""
    policy = '{"Version":"2012-10-17","Statement":[]}'
    key_arn = build_arn("kms", region, account, f"key/{_KEY_ID}")
    out: list[tuple[str, dict[str, Any]]] = []
    for caller in _CALLERS:
        put = {"keyId": _KEY_ID, "policyName": "default", "policy": policy, "bypassPolicyLockoutSafetyCheck": False}
        out.append(("PutKeyPolicy", _kms_event("PutKeyPolicy", account, region, caller, requestParameters=put)))
        response = {
            "keyId": key_arn,
            "keyState": "PendingDeletion",
            "pendingWindowInDays": 7,
            "deletionDate": "Jan 8, 2026, 12:00:00 PM",
        }
        request = {"keyId": _KEY_ID, "pendingWindowInDays": 7}
        out.append(
            (
                "ScheduleKeyDeletion",
                _kms_event(
                    "ScheduleKeyDeletion", account, region, caller, requestParameters=request, responseElements=response
                ),
            )
        )
        out.append(("DisableKey", _kms_event("DisableKey", account, region, caller)))
    return out


def decrypt_failure_events(account: str, region: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, event): a Decrypt refused with AccessDenied (a read-only event), sent by every caller variant."""
    out: list[tuple[str, dict[str, Any]]] = []
    for caller in _CALLERS:
        who = _identity(caller.who, account, partition_of(region)).get("arn", "cloudformation.amazonaws.com")
        message = f"User: {who} is not authorized to perform: kms:Decrypt on this resource"
        request = {
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "keyId": _KEY_ID,
            "encryptionContext": {"Department": "Finance"},
        }
        event = _kms_event(
            "Decrypt",
            account,
            region,
            caller,
            readOnly=True,
            errorCode="AccessDenied",
            errorMessage=message,
            requestParameters=request,
        )
        out.append(("Decrypt failed (AccessDenied)", event))
    return out


# --- alarm coverage ---------------------------------------------------------------------------------------------


@dataclass
class _Estate:
    """Everything the alarm checks look up, indexed once per check run."""

    filters: dict[tuple[str, str, str], list[MetricFilter]]  # (account, region, log group name)
    alarms: dict[tuple[str, str, str, str], list[Alarm]]  # (account, region, namespace, metric)
    regions: dict[tuple[str, str], RegionSnapshot]  # scanned (account, region)
    patterns: dict[str, FilterPattern | PatternError] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot) -> _Estate:
        filters: dict[tuple[str, str, str], list[MetricFilter]] = defaultdict(list)
        alarms: dict[tuple[str, str, str, str], list[Alarm]] = defaultdict(list)
        regions = {}
        for acct in snapshot.accounts:
            for reg in acct.regions:
                regions[(acct.account_id, reg.region)] = reg
                for f in reg.metric_filters:
                    filters[(acct.account_id, reg.region, f.log_group_name)].append(f)
                for a in reg.alarms:
                    if a.namespace and a.metric_name:
                        alarms[(acct.account_id, reg.region, a.namespace, a.metric_name)].append(a)
        return cls(dict(filters), dict(alarms), regions)

    def pattern(self, text: str) -> FilterPattern | PatternError:
        # Parse each distinct pattern once, however many regions and events it is evaluated for.
        if text not in self.patterns:
            try:
                self.patterns[text] = parse(text)
            except PatternError as e:
                self.patterns[text] = e
        return self.patterns[text]


def _actionable(alarm: Alarm) -> bool:
    return alarm.actions_enabled and bool(alarm.alarm_actions)


@dataclass
class _Coverage:
    covered: set[int] = field(default_factory=set)  # indexes of the synthetic events some alarm would catch
    trails: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    unscanned_groups: list[str] = field(default_factory=list)
    unknown_trails: list[str] = field(default_factory=list)


def _watching_trails(trails: list[Trail], region: str, rw: frozenset[str]) -> Iterator[Trail]:
    for t in trails:
        covers = t.is_multi_region or t.home_region == region
        if covers and records_kms(t, rw):
            yield t


def _coverage(
    estate: _Estate, trails: list[Trail], region: str, rw: frozenset[str], events: list[tuple[str, dict[str, Any]]]
) -> _Coverage:
    cov = _Coverage()
    judged: set[tuple[str, str, str]] = set()  # two trails may deliver to one log group: judge its filters once
    for trail in _watching_trails(trails, region, rw):
        group = log_group(trail.cloudwatch_logs_log_group_arn or "")
        if trail.is_logging is None and group:
            cov.unknown_trails.append(trail.name)
        if not trail.is_logging or group is None:
            continue
        cov.trails.append({"trail": trail.name, "log_group": trail.cloudwatch_logs_log_group_arn})
        if (group[0], group[1]) not in estate.regions:
            cov.unscanned_groups.append(trail.cloudwatch_logs_log_group_arn or "")
            continue
        if group in judged:
            continue
        judged.add(group)
        for mf in estate.filters.get(group, []):
            cov.filters.append(_judge_filter(estate, group, mf, events, cov.covered))
    return cov


def _judge_filter(
    estate: _Estate,
    group: tuple[str, str, str],
    mf: MetricFilter,
    events: list[tuple[str, dict[str, Any]]],
    covered: set[int],
) -> dict[str, Any]:
    info: dict[str, Any] = {"log_group": mf.log_group_name, "filter": mf.name, "pattern": mf.pattern}
    parsed = estate.pattern(mf.pattern)
    if isinstance(parsed, PatternError):
        info["error"] = f"unparseable pattern, treated as matching nothing: {parsed}"
        return info
    hits = {i for i, (_, event) in enumerate(events) if parsed.matches(event)}
    labels = _labels(events)
    info["matches"] = [lb for lb in labels if _all_of(lb, events, hits)]
    info["misses"] = [lb for lb in labels if lb not in info["matches"]]
    info["matched_events"] = len(hits)  # of the synthetic events (each label is sent by several callers)
    alarms = [a for ns, name in mf.metrics for a in estate.alarms.get((group[0], group[1], ns, name), [])]
    info["alarms"] = [a.name for a in alarms if _actionable(a)]
    info["alarms_without_actions"] = [a.name for a in alarms if not _actionable(a)]
    if info["alarms"]:
        covered |= hits
    return info


def _labels(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return list(dict.fromkeys(label for label, _ in events))


def _all_of(label: str, events: list[tuple[str, dict[str, Any]]], hits: set[int]) -> bool:
    return all(i in hits for i, (lb, _) in enumerate(events) if lb == label)


EventFactory = Callable[[str, str], list[tuple[str, dict[str, Any]]]]


def _alarm_results(
    snapshot: Snapshot, rw: frozenset[str], events_for: EventFactory, what: str, needs: str
) -> Iterator[Result]:
    estate = _Estate.of(snapshot)
    for acct in snapshot.accounts:
        trails = _account_trails(acct)
        for reg in acct.regions:
            events = events_for(acct.account_id, reg.region)
            cov = _coverage(estate, trails, reg.region, rw, events)
            yield _alarm_result(acct, reg, estate, events, cov, what, needs)


def _alarm_result(
    acct: AccountSnapshot,
    reg: RegionSnapshot,
    estate: _Estate,
    events: list[tuple[str, dict[str, Any]]],
    cov: _Coverage,
    what: str,
    needs: str,
) -> Result:
    missing = [lb for lb in _labels(events) if not _all_of(lb, events, cov.covered)]
    evidence: dict[str, Any] = {"trails": cov.trails, "filters": cov.filters, "not_covered": missing}

    def result(status: Status, message: str) -> Result:
        return region_result(acct.partition, acct.account_id, reg.region, status, message, evidence)

    if not missing:
        alarms = sorted({a for f in cov.filters if f.get("matched_events") for a in f.get("alarms", [])})
        return result(Status.PASS, f"{reg.region}: {what} raise alarm(s) {', '.join(alarms)}")
    reason = _failure_reason(cov, needs, missing)
    group_regions = [
        estate.regions[(g[0], g[1])]
        for t in cov.trails
        if (g := log_group(t["log_group"] or "")) and (g[0], g[1]) in estate.regions
    ]
    errors = _errors([reg, *group_regions], ["cloudtrail", "logs", "cloudwatch"])
    if errors or cov.unscanned_groups or cov.unknown_trails:
        evidence["errors"] = _error_texts(errors)
        evidence["log_groups_not_scanned"] = cov.unscanned_groups
        evidence["trails_with_unknown_status"] = cov.unknown_trails
        return result(Status.ERROR, f"{reg.region}: could not tell whether {what} raise an alarm: {reason}")
    return result(Status.FAIL, f"{reg.region}: no alarm would fire on {', '.join(missing)}: {reason}")


def _failure_reason(cov: _Coverage, needs: str, missing: list[str]) -> str:
    if not cov.trails:
        return f"no logging trail covering this region delivers {needs} to CloudWatch Logs"
    if not cov.filters:
        return "no metric filter on the trail's log group"
    matching = [f for f in cov.filters if f.get("matches")]
    if not matching:
        bad = [f["filter"] for f in cov.filters if "error" in f]
        extra = f" ({', '.join(bad)} could not be parsed)" if bad else ""
        return f"no metric filter pattern matches {', '.join(missing)}{extra}"
    unalarmed = [f["filter"] for f in matching if not f.get("alarms")]
    if unalarmed and all(not f.get("alarms") for f in matching):
        return f"metric filter(s) {', '.join(unalarmed)} match but no alarm with an action watches their metric"
    partial = ", ".join(f"{f['filter']} matches only {', '.join(f['matches'])}" for f in matching)
    return partial


@check(
    "alarm_missing_key_policy_changes",
    title="No alarm on key policy changes, disabling or scheduled deletion",
    severity=Severity.MEDIUM,
    family="audit",
    rationale="Changing a key policy, disabling a key or scheduling its deletion are how an attacker (or a "
    "mistake) takes data hostage or opens a key up. The metric filter's pattern is parsed and evaluated "
    "against PutKeyPolicy, ScheduleKeyDeletion and DisableKey events from kms.amazonaws.com, not matched by "
    "name, and must match every variant of each (users, roles, root and services; CLI, SDK and console callers; "
    "any source address); its metric needs an alarm with an action, in the log group's region.",
    remediation="aws logs put-metric-filter --log-group-name <trail-log-group> --filter-name KMSKeyPolicyChanges "
    "--filter-pattern '{ ($.eventSource = kms.amazonaws.com) && (($.eventName = PutKeyPolicy) || "
    "($.eventName = ScheduleKeyDeletion) || ($.eventName = DisableKey)) }' --metric-transformations "
    "metricName=KMSPolicyChanges,metricNamespace=Security/KMS,metricValue=1 && aws cloudwatch put-metric-alarm "
    "--alarm-name KMS-Key-Policy-Changes --namespace Security/KMS --metric-name KMSPolicyChanges --statistic Sum "
    "--period 300 --evaluation-periods 1 --threshold 1 --comparison-operator GreaterThanOrEqualToThreshold "
    "--alarm-actions <sns-topic-arn>",
    topics=["metric_filters_and_alarms"],
)
def alarm_missing_key_policy_changes(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    yield from _alarm_results(
        snapshot,
        _WRITES,
        key_policy_change_events,
        "key policy changes, disabling and deletion",
        "management write events",
    )


@check(
    "alarm_missing_decrypt_failures",
    title="No alarm on failed Decrypt calls",
    severity=Severity.LOW,
    family="audit",
    rationale="A burst of refused Decrypt calls is what someone probing for data they may not read looks like. "
    "The metric filter's pattern is evaluated against a Decrypt event from kms.amazonaws.com refused with "
    "AccessDenied (every kind of caller); Decrypt is a read-only event, so the trail's selectors must record "
    "KMS's management read events.",
    remediation="aws logs put-metric-filter --log-group-name <trail-log-group> --filter-name KMSDecryptFailures "
    "--filter-pattern '{ ($.eventSource = kms.amazonaws.com) && ($.eventName = Decrypt) && ($.errorCode = \"*\") }' "
    "--metric-transformations metricName=KMSDecryptFailures,metricNamespace=Security/KMS,metricValue=1 && "
    "aws cloudwatch put-metric-alarm --alarm-name KMS-Decrypt-Failures --namespace Security/KMS --metric-name "
    "KMSDecryptFailures --statistic Sum --period 300 --evaluation-periods 1 --threshold 5 "
    "--comparison-operator GreaterThanThreshold --alarm-actions <sns-topic-arn>",
    topics=["metric_filters_and_alarms", "key_usage_anomalies"],
)
def alarm_missing_decrypt_failures(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    yield from _alarm_results(
        snapshot, _READS, decrypt_failure_events, "failed Decrypt calls", "management read events"
    )


# --- AWS Config rules -------------------------------------------------------------------------------------------


def _config_results(snapshot: Snapshot, identifier: str, purpose: str) -> Iterator[Result]:
    for acct in snapshot.accounts:
        for reg in acct.regions:
            yield _judge_config(acct, reg, identifier, purpose)


def _judge_config(acct: AccountSnapshot, reg: RegionSnapshot, identifier: str, purpose: str) -> Result:
    rules = [r for r in reg.config_rules if r.source_identifier == identifier]
    active = [r for r in rules if r.state == "ACTIVE"]
    recording = [r.name for r in reg.config_recorders if r.recording]
    evidence: dict[str, Any] = {
        "rules": {r.name: r.state for r in rules},
        "recorders": {r.name: r.recording for r in reg.config_recorders},
    }

    def result(status: Status, message: str) -> Result:
        return region_result(acct.partition, acct.account_id, reg.region, status, message, evidence)

    if active and recording:
        return result(Status.PASS, f"{reg.region}: Config rule {active[0].name} ({identifier}) is evaluating")
    errors = _errors([reg], ["config"])
    if errors:
        evidence["errors"] = _error_texts(errors)
        return result(Status.ERROR, f"{reg.region}: AWS Config could not be read; {identifier} cannot be judged")
    if active:
        return result(
            Status.FAIL,
            f"{reg.region}: Config rule {active[0].name} ({identifier}) is ACTIVE but no configuration recorder "
            "is recording, so it evaluates nothing",
        )
    states = f" (found: {', '.join(f'{r.name} {r.state}' for r in rules)})" if rules else ""
    recorder = "" if recording else "; no configuration recorder is recording either"
    return result(Status.FAIL, f"{reg.region}: no ACTIVE Config rule {identifier} {purpose}{states}{recorder}")


@check(
    "config_rule_rotation_missing",
    title="No AWS Config rule watches key rotation",
    severity=Severity.LOW,
    family="audit",
    rationale="The managed rule cmk-backing-key-rotation-enabled (CMK_BACKING_KEY_ROTATION_ENABLED) keeps "
    "rotation under continuous evaluation between scans. Config rules are regional, and a rule evaluates "
    "nothing unless a configuration recorder is recording in that region.",
    remediation="aws configservice start-configuration-recorder --configuration-recorder-name <recorder> && "
    'aws configservice put-config-rule --config-rule \'{"ConfigRuleName":"cmk-backing-key-rotation-enabled",'
    '"Source":{"Owner":"AWS","SourceIdentifier":"CMK_BACKING_KEY_ROTATION_ENABLED"},'
    '"MaximumExecutionFrequency":"TwentyFour_Hours"}\'',
    topics=["config_rules"],
)
def config_rule_rotation_missing(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    yield from _config_results(snapshot, "CMK_BACKING_KEY_ROTATION_ENABLED", "watches key rotation")


@check(
    "config_rule_deletion_missing",
    title="No AWS Config rule watches keys scheduled for deletion",
    severity=Severity.LOW,
    family="audit",
    rationale="The managed rule kms-cmk-not-scheduled-for-deletion (KMS_CMK_NOT_SCHEDULED_FOR_DELETION) flags "
    "a key scheduled for deletion while the waiting period still allows cancelling it. Config rules are "
    "regional, and a rule evaluates nothing unless a configuration recorder is recording in that region.",
    remediation="aws configservice start-configuration-recorder --configuration-recorder-name <recorder> && "
    'aws configservice put-config-rule --config-rule \'{"ConfigRuleName":"kms-cmk-not-scheduled-for-deletion",'
    '"Source":{"Owner":"AWS","SourceIdentifier":"KMS_CMK_NOT_SCHEDULED_FOR_DELETION"}}\'',
    topics=["config_rules"],
)
def config_rule_deletion_missing(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    yield from _config_results(snapshot, "KMS_CMK_NOT_SCHEDULED_FOR_DELETION", "watches keys scheduled for deletion")
