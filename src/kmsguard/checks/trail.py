"""The trail family: judgements of what CloudTrail logs showed (``Snapshot.trail``, ``model.trail.TrailFacts``).

``trail/`` reads the logs, asks its SQL and types the answers as facts on the Snapshot; these checks judge them
like every other check judges keys and policies, so check selection, mutes, severity overrides, compliance ids
and ERROR findings apply to them the same way. A snapshot without logs (a plain scan, a template) has no facts,
and every check here yields nothing.

Asked only of the policy engine, once per distinct question: whether a PutKeyPolicy widened access
(``diff_policies`` when the old policy is known, ``analyze_key_policy`` when only the new one is), and whether a
principal's successful use was one the key policy allows (``evaluate``, once per key, principal and action).

What could not be read or judged is an ERROR finding of the check that needed it, saying what and why: log files
that failed (``trail_logs_unreadable``, one finding per reason), a PutKeyPolicy whose policy the engine cannot
analyse, a key policy the conformance check cannot read, and ``key_unused`` on logs shorter than its window.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kmsguard.arn import parse as parse_arn
from kmsguard.arn import partition_in, root_arn
from kmsguard.checks.registry import REGISTRY, Result, check, key_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status
from kmsguard.model.trail import ACCOUNT_PRINCIPAL_PREFIX, ASSUMED_ROLE_CALLER, UNKNOWN_KEY_PREFIX, iso_utc
from kmsguard.policy.actions import ADMIN_EVENTS, permissions_of_event

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Snapshot
    from kmsguard.model.trail import FailureWindow, KeyUse, Newcomer, TrailFacts
    from kmsguard.policy.trust import Trusted

FAMILY = "trail"
KEY = "AWS::KMS::Key"

# Which check judges each administrative event (the events themselves: policy.actions.ADMIN_EVENTS).
CHECK_OF_ADMIN_EVENT = {
    "ScheduleKeyDeletion": "trail_key_deletion_scheduled",
    "DisableKey": "trail_key_disabled",
    "DisableKeyRotation": "trail_rotation_disabled",
    "DeleteAlias": "trail_alias_deleted",
    "ImportKeyMaterial": "trail_key_material_imported",
    "DeleteImportedKeyMaterial": "trail_key_material_deleted",
}
if set(CHECK_OF_ADMIN_EVENT) != set(ADMIN_EVENTS):
    raise RuntimeError("every administrative event in policy.actions.ADMIN_EVENTS needs its check here")


# --- shared helpers ---------------------------------------------------------------------------------------------


def window(first: int | None, last: int | None) -> dict[str, str | None]:
    return {"start": iso_utc(first), "end": iso_utc(last)}


def key_place(key: str, fallback_account: str | None = None, fallback_region: str | None = None) -> tuple[str, str]:
    """(account, region) of a key ARN; for a key id or an unknown key, what the events said."""
    parsed = parse_arn(key)
    if parsed is not None:
        return parsed.account or (fallback_account or "unknown"), parsed.region or (fallback_region or "unknown")
    parts = key.split(":")
    if key.startswith(UNKNOWN_KEY_PREFIX) and len(parts) == 3:
        return parts[1], parts[2]
    return fallback_account or "unknown", fallback_region or "unknown"


def _on_key(
    key: str,
    message: str,
    evidence: dict[str, Any],
    *,
    account: str | None = None,
    region: str | None = None,
    status: Status = Status.FAIL,
    severity: Severity | None = None,
) -> Result:
    where = key_place(key, account, region)
    return Result(status, where[0], where[1], KEY, key, message, evidence, severity)


def _facts(snapshot: Snapshot) -> TrailFacts | None:
    return snapshot.trail


def _keys(snapshot: Snapshot) -> dict[str, Key]:
    return snapshot.derived("keys_by_arn", lambda: {k.arn: k for k in snapshot.all_keys()})


def _trusted(snapshot: Snapshot, config: ScanConfig) -> Trusted:
    from kmsguard.policy.trust import trusted

    return trusted(snapshot, config)


# --- log files that could not be read ---------------------------------------------------------------------------

FILES_LISTED = 20  # failed files named in one finding; ``evidence.files`` gives the count
# The particulars of a file's error that differ between files failing the same way.
_PARTICULARS = re.compile(r" (?:at byte \d+|after \d+ records)$")


def failure_reason(error: str) -> str:
    """A file's error without its particulars: kmsguard's own words before the decoder's (in parentheses), without
    the byte or record count, so that files failing the same way make one finding."""
    return _PARTICULARS.sub("", error.split(" (", 1)[0])


def _common(values: set[str | None]) -> str:
    """The account (or region) every failed file's path names, else "unknown"."""
    only = next(iter(values)) if len(values) == 1 else None
    return only or "unknown"


def _location(files: list[str]) -> str:
    """The file itself, or the directory (or S3 prefix) that holds all of them."""
    if len(files) == 1:
        return files[0]
    first, last = min(files), max(files)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    prefix = first[:n]
    return prefix[: prefix.rfind("/") + 1] or prefix


def logs_unreadable(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    """One ERROR per reason log files failed, naming up to FILES_LISTED of them: their events are missing from
    every other finding, so the run must say so wherever its findings go."""
    facts = _facts(snapshot)
    if facts is None:
        return
    by_reason: dict[str, list[Any]] = defaultdict(list)
    for log in facts.unreadable:
        by_reason[failure_reason(log.error)].append(log)
    for reason, logs in sorted(by_reason.items()):
        logs.sort(key=lambda log: log.file)
        names = [log.file for log in logs]
        where = _location(names)
        what = f"CloudTrail log file {where}" if len(names) == 1 else f"{len(names)} CloudTrail log files under {where}"
        yield Result(
            Status.ERROR,
            _common({log.account for log in logs}),
            _common({log.region for log in logs}),
            "AWS::CloudTrail::LogFile",
            where,
            f"could not read {what}: {reason}; the KMS events in {'it' if len(names) == 1 else 'them'} "
            "are not analysed",
            {
                "reason": reason,
                "files": len(names),
                "failed": [
                    {"file": log.file, "error": log.error, "records_read": log.records} for log in logs[:FILES_LISTED]
                ],
            },
        )


# --- administrative events -------------------------------------------------------------------------------------


def _admin_check(event: str) -> Callable[[Snapshot, ScanConfig], Iterator[Result]]:
    def judge(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
        facts = _facts(snapshot)
        for g in facts.admin_events if facts is not None else ():
            if g.event_name != event:
                continue
            who = sorted({e.get("principal", "?") for e in g.events})
            evidence: dict[str, Any] = {"window": window(g.first_ts, g.last_ts), "calls": g.calls, "events": g.events}
            what = f"{g.event_name} on {g.key}"
            if g.aliases:
                evidence["aliases"] = g.aliases
                what = f"{g.event_name} of {', '.join(g.aliases)} (key {g.key})"
            yield _on_key(g.key, f"{what}: {g.calls} call(s) by {', '.join(who)}", evidence)

    return judge


# --- PutKeyPolicy ------------------------------------------------------------------------------------------------


def policy_widened(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    """Each PutKeyPolicy against the policy before it: the last CreateKey or PutKeyPolicy in the logs, else the
    snapshot's policy when the snapshot was read before the change."""
    facts = _facts(snapshot)
    if facts is None or not facts.policy_changes:
        return
    from kmsguard.policy.defaults import default_key_policy
    from kmsguard.policy.diff import diff_policies
    from kmsguard.policy.questions import analyze_key_policy
    from kmsguard.policy.trust import trusted

    trust = trusted(snapshot, config)
    known: dict[str, str] = {}
    snap_time = snapshot.collected_at.timestamp() if snapshot.accounts else None
    snap_keys = _keys(snapshot)
    for ev in facts.policy_changes:
        key = ev.key
        account, _ = key_place(key, ev.key_account, ev.region)
        new = ev.policy
        if ev.event_name == "CreateKey":
            known[key] = new or default_key_policy(account, partition_in(key))
            continue
        if new is None:
            continue
        old = known.get(key)
        # The snapshot's policy is the old one only if it was read before this change.
        if old is None and key in snap_keys and snap_time is not None and snap_time <= ev.ts:
            old = snap_keys[key].policy
        known[key] = new
        evidence: dict[str, Any] = {"window": window(ev.ts, ev.ts), "events": [ev.event], "new_policy": new}
        try:
            if old is not None:
                diff = diff_policies(old, new, account, key_arn=key)
                sev = diff.severity(account)  # the one scale of policy changes, drift's too
                if sev is None:  # nothing gained, nobody locked out
                    continue
                cap = facts.thresholds.cap
                evidence.update(
                    judged_by="diff",
                    gained=diff.to_dict()["gained"][:cap],
                    admin_lockout=diff.admin_lockout,
                    old_policy=old,
                )
                said = []
                if diff.admin_lockout:
                    said.append("locked every administrator out")
                if diff.gained:
                    outside = ", some from outside the account" if diff.gains_from_outside(account) else ""
                    said.append(f"gave new access ({len(diff.gained)} kind(s) of request{outside})")
                msg = f"PutKeyPolicy on {key} " + " and ".join(said)
            else:
                a = analyze_key_policy(new, account, trusted_accounts=trust.accounts, trusted_org_ids=trust.org_ids)
                if not (a.public or a.external_principals):
                    continue
                evidence.update(judged_by="analysis", public=a.public, external_principals=a.external_principals)
                sev = Severity.CRITICAL if a.public else Severity.HIGH
                who = "everyone" if a.public else ", ".join(a.external_principals)
                msg = f"PutKeyPolicy on {key} set a policy that admits {who} (previous policy unknown)"
        except Exception as e:  # a policy the engine cannot analyse: said on the key, never fatal to the run
            evidence["error"] = str(e)
            yield _on_key(
                key,
                f"could not judge PutKeyPolicy {ev.event_id} on {key}: the policy engine failed ({e})",
                evidence,
                account=ev.key_account,
                region=ev.region,
                status=Status.ERROR,
            )
            continue
        yield _on_key(key, msg, evidence, account=ev.key_account, region=ev.region, severity=sev)


# --- grants, bursts, spikes, newcomers, cross-account -------------------------------------------------------------


def grant_external(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    trust = _trusted(snapshot, config)
    for g in facts.external_grants if facts is not None else ():
        if trust.account(g.grantee_account):
            continue
        yield _on_key(
            g.key,
            f"CreateGrant on {g.key} to account {g.grantee_account} ({', '.join(g.grantees)}): {g.calls} grant(s)",
            {
                "window": window(g.first_ts, g.last_ts),
                "grantee_account": g.grantee_account,
                "grantees": g.grantees,
                "events": g.events,
            },
            account=g.key_account,
        )


def failure_burst(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    if facts is None:
        return
    t = facts.thresholds
    by_key: dict[str, list[FailureWindow]] = defaultdict(list)
    for g in facts.failure_windows:
        by_key[g.key].append(g)
    for key, windows in sorted(by_key.items()):
        windows.sort(key=lambda g: g.start)
        # Consecutive burst windows are one episode: one finding, not one per five minutes.
        runs: list[list[FailureWindow]] = []
        for g in windows:
            if runs and g.start - runs[-1][-1].start <= t.burst_window:
                runs[-1].append(g)
            else:
                runs.append([g])
        for run in runs:
            errors = sum(g.errors for g in run)
            codes = sorted({c for g in run for c in g.error_codes})
            events = [e for g in run for e in g.events]
            yield _on_key(
                key,
                f"{errors} failed calls on {key} in {len(run)} window(s) of {t.burst_window // 60} min "
                f"(threshold > {t.burst_threshold}); errors: {', '.join(codes)}",
                {
                    "window": window(run[0].first_ts, run[-1].last_ts),
                    "errors": errors,
                    "error_codes": codes,
                    "windows": [{"start": iso_utc(g.start), "errors": g.errors} for g in run],
                    "threshold": t.burst_threshold,
                    "events": events[: t.cap],
                },
                account=run[0].account,
                region=run[0].region,
            )


def usage_spike(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    if facts is None:
        return
    t = facts.thresholds
    for g in facts.spikes:
        yield _on_key(
            g.key,
            f"{g.calls} {g.action} calls on {g.key} in the hour from {iso_utc(g.hour)}; "
            f"its hourly baseline is a median of {g.median:g} (MAD {g.mad:g}) over {g.hours} hours",
            {
                "window": window(g.hour, g.hour + 3599),
                "action": g.action,
                "calls": g.calls,
                "baseline": {"median": g.median, "mad": g.mad, "hours": g.hours},
                "threshold": g.median + t.spike_k * max(1.4826 * g.mad, 1.0),
                "method": f"calls > median + {t.spike_k:g} * max(1.4826 * MAD, 1) and calls >= {t.spike_min_count}",
                "events": g.events,
            },
        )


def new_principal(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    if facts is None:
        return
    span = int(facts.thresholds.learn_days * 86400)

    def learn(g: Newcomer) -> dict[str, str | None]:
        return {"start": iso_utc(g.key_first_ts), "end": iso_utc(g.key_first_ts + span)}

    new_accounts = {(g.key, g.principal_account) for g in facts.new_accounts}
    for g in facts.new_accounts:
        yield _on_key(
            g.key,
            f"Account {g.principal_account} first used {g.key} at {iso_utc(g.first_ts)} "
            f"({g.calls} call(s) by {g.principals} principal(s)), after the learning window",
            {
                "kind": "account",
                "principal_account": g.principal_account,
                "window": window(g.first_ts, g.first_ts),
                "learning_window": learn(g),
                "events": g.events,
            },
        )
    for g in facts.new_principals:
        if (g.key, g.principal_account) in new_accounts:
            continue  # the account finding already says it
        yield _on_key(
            g.key,
            f"{g.principal} first used {g.key} at {iso_utc(g.first_ts)} ({g.calls} call(s)), after the learning window",
            {
                "kind": "principal",
                "principal": g.principal,
                "window": window(g.first_ts, g.first_ts),
                "learning_window": learn(g),
                "events": g.events,
            },
        )


def cross_account_use(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    trust = _trusted(snapshot, config)
    for g in facts.cross_account if facts is not None else ():
        if trust.account(g.principal_account):
            continue
        account, _ = key_place(g.key, g.key_account)
        yield _on_key(
            g.key,
            f"{g.key} (account {account}) used by account {g.principal_account}: "
            f"{g.calls} call(s) by {g.principals} principal(s)",
            {
                "principal_account": g.principal_account,
                "window": window(g.first_ts, g.last_ts),
                "calls": g.calls,
                "events": g.events,
            },
            account=g.key_account,
        )


# --- judged against the snapshot's keys and resources -------------------------------------------------------------


def _eval_principal(use: KeyUse) -> str | None:
    p = use.principal
    if p.startswith(ACCOUNT_PRINCIPAL_PREFIX):
        # An AWSAccount caller: what its account is allowed, in the key's partition.
        return root_arn(p.split(":", 1)[1], partition_in(use.key))
    if use.principal_type == ASSUMED_ROLE_CALLER and use.principal_arn:
        return use.principal_arn  # the session: the engine knows sessions inherit their role
    return p if p.startswith("arn:") else None


def _granted(key: Key, use: KeyUse, principal: str) -> bool:
    """A grant to the caller explains the call (``policy.grants.grant_covers``: a constrained grant does not, as
    the log does not say whether the call's encryption context met the constraint)."""
    from kmsguard.policy.grants import grant_covers

    names = {use.principal, principal, use.principal_arn}
    return any(
        g.grantee_principal in names and grant_covers(g.operations, g.constraints, use.action) for g in key.grants
    )


def use_not_allowed(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    if facts is None or not facts.uses:
        return
    from kmsguard.policy.evaluate import evaluate
    from kmsguard.policy.model import Decision, Request
    from kmsguard.policy.normalize import parse_and_normalize

    keys = _keys(snapshot)
    parsed: dict[str, Any] = {}
    unjudged: dict[str, str] = {}  # key ARN -> why its key policy could not be read
    denied: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for use in facts.uses:
        key = keys.get(use.key)
        if key is None or not key.policy:
            continue
        principal = _eval_principal(use)
        if principal is None:
            continue
        if key.arn not in parsed:
            try:
                parsed[key.arn] = parse_and_normalize(key.policy, source=key.arn)
            except Exception as e:
                unjudged[key.arn] = str(e)
                parsed[key.arn] = None
        policy = parsed[key.arn]
        if policy is None or _granted(key, use, principal):
            continue
        context: dict[str, tuple[str, ...]] = {}
        if use.principal_account:
            context["kms:calleraccount"] = (use.principal_account,)
        via = use.invoked_by or ""
        if via.endswith(".amazonaws.com"):
            context["kms:viaservice"] = (f"{via.split('.')[0]}.{key.region}.amazonaws.com",)
        # A call logged as ReEncrypt needed ReEncryptFrom or ReEncryptTo of this key: either one explains it.
        for action in permissions_of_event(use.action):
            req = Request(principal=principal, action=action, resource=key.arn, context=context)
            result = evaluate(policy, req, assume_iam_allows=True, key_account=key.account)
            if result.decision is Decision.ALLOW:
                break
        else:
            denied[(key.arn, use.principal)].append(
                {
                    "action": "kms:" + use.action,  # the call as logged (ReEncrypt: neither permission allowed)
                    "calls": use.calls,
                    "decision": result.decision.value,
                    "notes": list(result.notes),
                    "window": window(use.first_ts, use.last_ts),
                }
            )
    for arn, why in sorted(unjudged.items()):
        key = keys[arn]
        yield key_result(
            key,
            Status.ERROR,
            f"could not judge whether the calls on {key.display_name} were allowed: its key policy could "
            f"not be read ({why})",
            {"error": why},
        )
    for (arn, principal), uses in sorted(denied.items()):
        key = keys[arn]
        calls = sum(u["calls"] for u in uses)
        yield key_result(
            key,
            Status.FAIL,
            f"{principal} made {calls} successful call(s) ({', '.join(sorted(u['action'] for u in uses))}) "
            f"on {key.display_name} that its key policy does not allow",
            {
                "principal": principal,
                "uses": uses,
                "window": {
                    "start": min(u["window"]["start"] for u in uses),
                    "end": max(u["window"]["end"] for u in uses),
                },
                "note": "judged with the caller's IAM policies assumed to allow; conditions on request context "
                "the log does not carry (encryption context, source ARN) count as not met",
            },
        )


def _env(tags: dict[str, str], tag: str) -> str | None:
    v = tags.get(tag)
    return v.strip().lower() if v else None


def foreign_environment(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    facts = _facts(snapshot)
    if facts is None or not snapshot.accounts:
        return
    tag = config.environment_tag
    keys = _keys(snapshot)
    resources = {r.arn: r for a in snapshot.accounts for reg in a.regions for r in reg.resources if _env(r.tags, tag)}
    for row in facts.resource_uses:
        key = keys.get(row.key)
        res = resources.get(row.resource)
        if key is None or res is None:
            continue
        kenv, renv = _env(key.tags, tag), _env(res.tags, tag)
        if kenv is None or renv is None or kenv == renv:
            continue
        yield key_result(
            key,
            Status.FAIL,
            f"{key.display_name} ({tag}={kenv}) protected {res.arn} ({tag}={renv}): {row.calls} call(s)",
            {
                "key_environment": kenv,
                "resource": res.arn,
                "resource_environment": renv,
                "principal": row.principal,
                "calls": row.calls,
                "window": window(row.first_ts, row.last_ts),
            },
        )
    envs = {k: v.strip().lower() for k, v in facts.principal_env.items()}
    for pk in facts.principal_keys:
        key = keys.get(pk.key)
        penv = envs.get(pk.principal)
        if key is None or penv is None:
            continue
        kenv = _env(key.tags, tag)
        if kenv is None or kenv == penv:
            continue
        yield key_result(
            key,
            Status.FAIL,
            f"{key.display_name} ({tag}={kenv}) used by {pk.principal} ({tag}={penv}): {pk.calls} call(s)",
            {"key_environment": kenv, "principal": pk.principal, "principal_environment": penv, "calls": pk.calls},
        )


def key_unused(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    """key_unused over the last ``unused_days`` of the logs. Logs shorter than that cannot tell an idle key from
    one used before they start: each key they would judge and do not show in use gets an ERROR saying how many
    days they cover (AWS Config's "insufficient data"), never silence."""
    facts = _facts(snapshot)
    if facts is None:
        return
    days = facts.thresholds.unused_days
    t0, t1 = facts.window_start, facts.window_end
    # Without events the window ends when the snapshot was taken (a key younger than the window is never judged).
    end = t1 if t1 is not None else int(snapshot.collected_at.timestamp())
    start = end - days * 86400
    covered = (t1 - t0) / 86400 if t0 is not None and t1 is not None else None
    short = covered is None or covered < days
    for key in snapshot.all_keys():
        if not key.is_customer_managed or key.key_state != "Enabled":
            continue
        if key.creation_date is not None and key.creation_date.timestamp() > start:
            continue  # younger than the window: not yet fair to call it unused
        last = facts.last_crypto_use.get(key.arn)
        if last is not None and last >= start:
            continue
        if short:
            why = (
                "the logs hold no KMS events"
                if covered is None
                else f"the logs cover only {covered:.1f} of the {days} days key_unused needs (--unused-days) "
                "and show no cryptographic use of it"
            )
            yield key_result(
                key,
                Status.ERROR,
                f"{key.display_name}: cannot tell whether it is unused: {why}",
                {"days": days, "covered_days": round(covered, 1) if covered is not None else 0, "logs": window(t0, t1)},
            )
            continue
        when = f"last used {iso_utc(last)}" if last is not None else "no use in the logs at all"
        yield key_result(
            key,
            Status.FAIL,
            f"{key.display_name} had no cryptographic use in the {days} days to {iso_utc(t1)} ({when})",
            {"window": window(start, t1), "days": days, "last_use": iso_utc(last), "logs": window(t0, t1)},
        )


# --- the registry entries ----------------------------------------------------------------------------------------

_SPECS: list[tuple[str, str, Severity, str, str, tuple[str, ...]]] = [
    (
        "trail_key_deletion_scheduled",
        "A key was scheduled for deletion",
        Severity.HIGH,
        "Deleting a key makes everything encrypted under it unreadable; scheduling deletion is a ransomware and "
        "sabotage move, and the waiting period is the only chance to stop it.",
        "Confirm the deletion was intended; otherwise run kms:CancelKeyDeletion and re-enable the key, then find "
        "out who had kms:ScheduleKeyDeletion.",
        ("key_not_pending_deletion", "key_usage_anomalies"),
    ),
    (
        "trail_key_disabled",
        "A key was disabled",
        Severity.HIGH,
        "A disabled key stops every workload that decrypts with it, at once; CIS alarms on it with scheduled "
        "deletion, and drift between scans grades it the same.",
        "Confirm the change was intended; otherwise run kms:EnableKey.",
        ("key_enabled", "key_usage_anomalies"),
    ),
    (
        "trail_policy_widened",
        "A key policy change widened access or locked the administrators out",
        Severity.HIGH,
        "A PutKeyPolicy that admits new principals, other accounts or everyone is how attackers keep access to "
        "data, and how mistakes expose it; one that leaves no administrator is how a key is taken from its owners.",
        "Review the change (evidence lists the access gained and admin_lockout); restore the previous policy if it "
        "was not intended.",
        ("key_policy_least_privilege", "key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_grant_external",
        "A grant was created for a principal outside the key's account",
        Severity.HIGH,
        "Grants give use of a key without appearing in its policy; one to another account is a quiet way out.",
        "Confirm the grantee is trusted; otherwise retire or revoke the grant (kms:RevokeGrant).",
        ("key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_rotation_disabled",
        "Automatic rotation was disabled on a key",
        Severity.MEDIUM,
        "Rotation limits how much data one key version protects; turning it off is a compliance regression.",
        "Run kms:EnableKeyRotation on the key.",
        ("rotation_enabled", "key_usage_anomalies"),
    ),
    (
        "trail_alias_deleted",
        "An alias was deleted",
        Severity.LOW,
        "Applications that name keys by alias fail, or silently use another key if the alias is re-created.",
        "Confirm the change was intended; re-create the alias on the right key if not.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_key_material_imported",
        "Key material was imported",
        Severity.MEDIUM,
        "Imported material is outside AWS's durability guarantees, and an attacker who controls it controls the data.",
        "Confirm who imported the material and where its copy is kept.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_key_material_deleted",
        "Imported key material was deleted",
        Severity.HIGH,
        "Deleting imported material makes the key unusable at once, with no waiting period.",
        "Re-import the same key material if it is still held; find out who called DeleteImportedKeyMaterial.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_decrypt_failure_burst",
        "A burst of failed calls on a key",
        Severity.MEDIUM,
        "Many AccessDenied or other errors on one key in a few minutes is someone probing for access, or a "
        "workload that broke (the guide's alarm fires above 5 in 5 minutes).",
        "Look at the principals and error codes in the evidence; block the caller or fix the workload.",
        ("key_usage_anomalies", "metric_filters_and_alarms"),
    ),
    (
        "trail_usage_spike",
        "Key use far above its own hourly baseline",
        Severity.MEDIUM,
        "A sudden surge of Decrypt or GenerateDataKey calls is what bulk exfiltration looks like.",
        "Check who made the calls in the spike hour and whether a job explains them.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_new_principal",
        "A principal or account used a key for the first time",
        Severity.LOW,
        "A key's users are usually a stable set; a newcomer after the learning period deserves a look.",
        "Confirm the principal (or account) should use this key; tighten the key policy if not.",
        ("key_usage_anomalies",),
    ),
    (
        "trail_cross_account_use",
        "A key was used from another account",
        Severity.MEDIUM,
        "Use from outside the key's account crosses a trust boundary.",
        "Confirm the account is trusted (add it to trusted_accounts); remove its access otherwise.",
        ("key_policy_no_external_access", "key_usage_anomalies"),
    ),
    (
        "trail_foreign_environment",
        "A key was used for a resource of another environment",
        Severity.MEDIUM,
        "Keys are per environment; a production key protecting a development resource (or the reverse) breaks "
        "the isolation the tags promise.",
        "Use a key of the resource's own environment.",
        ("environment_isolation", "key_usage_anomalies"),
    ),
    (
        "trail_use_not_allowed_by_policy",
        "A key was used by a principal its key policy does not allow",
        Severity.HIGH,
        "A successful call that the key policy (as the policy engine reads it) does not allow means a grant, an "
        "out-of-date policy copy, or a policy the scan misreads; each needs an explanation.",
        "Find what allowed the call (grants, the policy at the time) and remove that access if it is not intended.",
        ("key_policy_least_privilege", "key_usage_anomalies"),
    ),
    (
        "trail_logs_unreadable",
        "CloudTrail log files could not be read",
        Severity.MEDIUM,
        "The events of a log file that cannot be read are missing from every trail finding and from the key usage: "
        "whatever they recorded goes unseen.",
        "Fix what the reason names (s3:GetObject on the bucket and kms:Decrypt on its key for S3 errors; copy a "
        "truncated or corrupt file again) and re-run: files that failed are read again on every run.",
        ("key_usage_anomalies",),
    ),
    (
        "key_unused",
        "A customer managed key has not been used",
        Severity.LOW,
        "A key nobody uses still costs money and still decrypts old data for whoever can call it.",
        "Confirm the key is not needed (old ciphertext may still need it), disable it, then schedule deletion.",
        ("unused_keys",),
    ),
]


_JUDGES: dict[str, Callable[[Snapshot, ScanConfig], Iterable[Result]]] = {
    **{cid: _admin_check(event) for event, cid in CHECK_OF_ADMIN_EVENT.items()},
    "trail_policy_widened": policy_widened,
    "trail_grant_external": grant_external,
    "trail_decrypt_failure_burst": failure_burst,
    "trail_usage_spike": usage_spike,
    "trail_new_principal": new_principal,
    "trail_cross_account_use": cross_account_use,
    "trail_foreign_environment": foreign_environment,
    "trail_use_not_allowed_by_policy": use_not_allowed,
    "trail_logs_unreadable": logs_unreadable,
    "key_unused": key_unused,
}

for _id, _title, _sev, _why, _fix, _topics in _SPECS:
    if _id in REGISTRY:  # re-import safe (tests reload modules)
        continue
    check(
        _id,
        title=_title,
        severity=_sev,
        family=FAMILY,
        rationale=_why,
        remediation=_fix,
        topics=_topics,
        live_only=True,  # judged from CloudTrail logs, never from a template
    )(_JUDGES[_id])

TRAIL_CHECK_IDS = tuple(s[0] for s in _SPECS)
