"""Detection rows -> Findings in the scan's model, joined with a Snapshot where one is given.

SQL found the groups and their first events; this module words them, attaches evidence (the triggering
events, capped, and the time window) and asks the policy engine what only it can answer: whether a
PutKeyPolicy widened access (``diff_policies`` when the old policy is known, ``analyze_key_policy`` when only
the new one is), and whether a principal's successful use was one the key policy allows (``evaluate``, once
per distinct key/principal/action, never per event).

What could not be read or judged is an ERROR finding of the check that needed it, saying what and why: log
files that failed (``trail_logs_unreadable``, one finding per reason), a PutKeyPolicy whose policy the engine
cannot analyse, a key policy the conformance check cannot read, and ``key_unused`` on logs shorter than its
window. Nothing goes only to a note that a scan or the monitor would drop.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kmsguard.arn import account_of, partition_in, root_arn
from kmsguard.arn import parse as parse_arn
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding, Severity, Status
from kmsguard.model.snapshot import Key, Snapshot
from kmsguard.trail.checks import make_finding
from kmsguard.trail.decode import FileStats
from kmsguard.trail.detections import EVIDENCE_COLUMNS, DetectionRows, Params
from kmsguard.trail.schema import ADMIN_EVENTS
from kmsguard.trail.sources import path_facts


def iso(ts: Any) -> str | None:
    """Epoch seconds or a datetime (Spark returns naive UTC ones) as ISO 8601 UTC."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        t = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return datetime.fromtimestamp(int(ts), UTC).isoformat().replace("+00:00", "Z")


def window(first: Any, last: Any) -> dict[str, str | None]:
    return {"start": iso(first), "end": iso(last)}


def event_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in EVIDENCE_COLUMNS}
    out["event_time"] = iso(out["event_time"])
    return {k: v for k, v in out.items() if v is not None}


def key_place(key: str, fallback_account: str | None = None, fallback_region: str | None = None) -> tuple[str, str]:
    """(account, region) of a key ARN; for a key id or an unknown key, what the events said."""
    parsed = parse_arn(key)
    if parsed is not None:
        return parsed.account or (fallback_account or "unknown"), parsed.region or (fallback_region or "unknown")
    parts = key.split(":")
    if key.startswith("unknown-key:") and len(parts) == 3:
        return parts[1], parts[2]
    return fallback_account or "unknown", fallback_region or "unknown"


@dataclass
class Context:
    params: Params
    config: ScanConfig
    snapshot: Snapshot | None
    notes: list[str] = field(default_factory=list)
    principal_env: dict[str, str] = field(default_factory=dict)

    def keys(self) -> dict[str, Key]:
        return {k.arn: k for k in self.snapshot.all_keys()} if self.snapshot else {}

    def trusted(self, account: str | None) -> bool:
        return account is not None and account in self.config.trusted_accounts


def _events(rows: DetectionRows, keys: tuple[str, ...], group: dict[str, Any]) -> list[dict[str, Any]]:
    return [event_dict(e) for e in rows.evidence_for(keys, group)]


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
    prefix = _shared_prefix(files)
    return prefix[: prefix.rfind("/") + 1] or prefix


def _shared_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def unreadable_log_findings(failed: list[FileStats], ctx: Context) -> Iterable[Finding]:
    """One ERROR finding per reason log files failed, naming up to FILES_LISTED of them: their events are
    missing from every other finding, so the run must say so wherever its findings go."""
    by_reason: dict[str, list[FileStats]] = defaultdict(list)
    for st in failed:
        by_reason[failure_reason(st.error or "unreadable")].append(st)
    for reason, stats in sorted(by_reason.items()):
        stats.sort(key=lambda st: st.file)
        names = [st.file for st in stats]
        facts = [path_facts(name) for name in names]
        where = _location(names)
        what = f"CloudTrail log file {where}" if len(names) == 1 else f"{len(names)} CloudTrail log files under {where}"
        yield make_finding(
            "trail_logs_unreadable",
            status=Status.ERROR,
            account=_common({f[0] for f in facts}),
            region=_common({f[1] for f in facts}),
            resource_type="AWS::CloudTrail::LogFile",
            resource_arn=where,
            message=f"could not read {what}: {reason}; the KMS events in {'it' if len(names) == 1 else 'them'} "
            "are not analysed",
            evidence={
                "reason": reason,
                "files": len(names),
                "failed": [
                    {"file": st.file, "error": st.error, "records_read": st.records} for st in stats[:FILES_LISTED]
                ],
            },
            config=ctx.config,
        )


# --- administrative events -------------------------------------------------------------------------------------


def admin_findings(rows: DetectionRows, ctx: Context) -> Iterable[Finding]:
    for g in rows.groups:
        check_id = ADMIN_EVENTS[g["event_name"]]
        key = g["kgroup"]
        account, region = key_place(key)
        events = _events(rows, ("kgroup", "event_name"), g)
        who = sorted({e.get("principal", "?") for e in events})
        evidence: dict[str, Any] = {
            "window": window(g["first_ts"], g["last_ts"]),
            "calls": g["calls"],
            "events": events,
        }
        if g.get("alias_name"):
            evidence["aliases"] = sorted({g["alias_name"], g.get("alias_name_max") or g["alias_name"]})
        what = f"{g['event_name']} on {key}"
        if evidence.get("aliases"):
            what = f"{g['event_name']} of {', '.join(evidence['aliases'])} (key {key})"
        yield make_finding(
            check_id,
            account=account,
            region=region,
            resource_arn=key,
            message=f"{what}: {g['calls']} call(s) by {', '.join(who)}",
            evidence=evidence,
            config=ctx.config,
        )


# --- PutKeyPolicy ------------------------------------------------------------------------------------------------


def _default_policy(account: str, partition: str) -> str:
    # The key policy KMS attaches when CreateKey names none: the account's IAM decides.
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": root_arn(account, partition)},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


def _policy_text(params: str | None) -> str | None:
    if not params:
        return None
    try:
        obj = json.loads(params)
    except ValueError:
        return None
    pol = obj.get("policy") if isinstance(obj, dict) else None
    if isinstance(pol, dict):
        return json.dumps(pol)
    return pol if isinstance(pol, str) else None


def policy_findings(events: list[dict[str, Any]], ctx: Context) -> Iterable[Finding]:
    from kmsguard.policy.analyze import analyze_key_policy
    from kmsguard.policy.diff import diff_policies

    known: dict[str, str] = {}
    snap_time = ctx.snapshot.collected_at if ctx.snapshot else None
    snap_keys = ctx.keys()
    for ev in events:
        key = ev["key_arn"]
        if not key:
            continue
        account, region = key_place(key, ev.get("key_account"), ev.get("region"))
        new = _policy_text(ev.get("params"))
        if ev["event_name"] == "CreateKey":
            known[key] = new or _default_policy(account, partition_in(key))
            continue
        if new is None:
            continue
        old = known.get(key)
        t = ev["event_ts"]
        # The snapshot's policy is the old one only if it was read before this change.
        if old is None and key in snap_keys and snap_time is not None and snap_time.timestamp() <= t:
            old = snap_keys[key].policy
        known[key] = new
        evidence: dict[str, Any] = {"window": window(t, t), "events": [event_dict(ev)], "new_policy": new}
        try:
            if old is not None:
                diff = diff_policies(old, new, account, key_arn=key)
                if not diff.gained:
                    continue
                gained = [r for r in diff.gained]
                outside = [r for r in gained if (r.principal_account or _acct(r.principal)) not in (account, None)]
                evidence.update(judged_by="diff", gained=diff.to_dict()["gained"][: ctx.params.cap], old_policy=old)
                sev = Severity.HIGH if outside else Severity.MEDIUM
                msg = f"PutKeyPolicy on {key} gave new access ({len(gained)} kind(s) of request"
                msg += ", some from outside the account)" if outside else ")"
            else:
                a = analyze_key_policy(
                    new,
                    account,
                    trusted_accounts=ctx.config.trusted_accounts,
                    trusted_org_ids=ctx.config.trusted_org_ids,
                )
                if not (a.public or a.external_principals):
                    continue
                evidence.update(judged_by="analysis", public=a.public, external_principals=a.external_principals)
                sev = Severity.CRITICAL if a.public else Severity.HIGH
                who = "everyone" if a.public else ", ".join(a.external_principals)
                msg = f"PutKeyPolicy on {key} set a policy that admits {who} (previous policy unknown)"
        except Exception as e:  # a policy the engine cannot analyse: said on the key, never fatal to the run
            evidence["error"] = str(e)
            yield make_finding(
                "trail_policy_widened",
                status=Status.ERROR,
                account=account,
                region=region,
                resource_arn=key,
                message=f"could not judge PutKeyPolicy {ev.get('event_id')} on {key}: the policy engine failed ({e})",
                evidence=evidence,
                config=ctx.config,
            )
            continue
        yield make_finding(
            "trail_policy_widened",
            account=account,
            region=region,
            resource_arn=key,
            message=msg,
            evidence=evidence,
            severity=sev,
            config=ctx.config,
        )


def _acct(arn: str) -> str | None:
    return account_of(arn)


# --- grants, bursts, spikes, newcomers, cross-account -------------------------------------------------------------


def grant_findings(rows: DetectionRows, ctx: Context) -> Iterable[Finding]:
    for g in rows.groups:
        if ctx.trusted(g["grantee_account"]):
            continue
        key = g["kgroup"]
        account, region = key_place(key, g.get("key_account"))
        grantees = sorted({g["grantee"], g.get("grantee_max") or g["grantee"]})
        yield make_finding(
            "trail_grant_external",
            account=account,
            region=region,
            resource_arn=key,
            message=f"CreateGrant on {key} to account {g['grantee_account']} ({', '.join(grantees)}): "
            f"{g['calls']} grant(s)",
            evidence={
                "window": window(g["first_ts"], g["last_ts"]),
                "grantee_account": g["grantee_account"],
                "grantees": grantees,
                "events": _events(rows, ("kgroup", "grantee_account"), g),
            },
            config=ctx.config,
        )


def burst_findings(rows: DetectionRows, ctx: Context) -> Iterable[Finding]:
    w = ctx.params.burst_window
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in rows.groups:
        by_key[g["kgroup"]].append(g)
    for key, groups in sorted(by_key.items()):
        groups.sort(key=lambda g: g["wstart"])
        # Consecutive burst windows are one episode: one finding, not one per five minutes.
        runs: list[list[dict[str, Any]]] = []
        for g in groups:
            if runs and g["wstart"] - runs[-1][-1]["wstart"] <= w:
                runs[-1].append(g)
            else:
                runs.append([g])
        for run in runs:
            account, region = key_place(key, run[0].get("account"), run[0].get("region"))
            errors = sum(g["errors"] for g in run)
            events: list[dict[str, Any]] = []
            for g in run:
                events += _events(rows, ("kgroup", "wstart"), g)
            codes = sorted({c for g in run for c in (g["error_code"], g.get("error_code_max")) if c})
            yield make_finding(
                "trail_decrypt_failure_burst",
                account=account,
                region=region,
                resource_arn=key,
                message=f"{errors} failed calls on {key} in {len(run)} window(s) of {w // 60} min "
                f"(threshold > {ctx.params.burst_threshold}); errors: {', '.join(codes)}",
                evidence={
                    "window": window(run[0]["first_ts"], run[-1]["last_ts"]),
                    "errors": errors,
                    "error_codes": codes,
                    "windows": [{"start": iso(g["wstart"]), "errors": g["errors"]} for g in run],
                    "threshold": ctx.params.burst_threshold,
                    "events": events[: ctx.params.cap],
                },
                config=ctx.config,
            )


def spike_findings(rows: DetectionRows, ctx: Context) -> Iterable[Finding]:
    p = ctx.params
    for g in rows.groups:
        key = g["key_arn"]
        account, region = key_place(key)
        med, mad = float(g["med"]), float(g["mad"])
        yield make_finding(
            "trail_usage_spike",
            account=account,
            region=region,
            resource_arn=key,
            message=f"{g['n']} {g['event_name']} calls on {key} in the hour from {iso(g['hour'])}; "
            f"its hourly baseline is a median of {med:g} (MAD {mad:g}) over {g['nhours']} hours",
            evidence={
                "window": window(g["hour"], g["hour"] + 3599),
                "action": g["event_name"],
                "calls": g["n"],
                "baseline": {"median": med, "mad": mad, "hours": g["nhours"]},
                "threshold": med + p.spike_k * max(1.4826 * mad, 1.0),
                "method": f"calls > median + {p.spike_k:g} * max(1.4826 * MAD, 1) and calls >= {p.spike_min_count}",
                "events": _events(rows, ("key_arn", "event_name", "hour"), g),
            },
            config=ctx.config,
        )


def newcomer_findings(principals: DetectionRows, accounts: DetectionRows, ctx: Context) -> Iterable[Finding]:
    span = int(ctx.params.learn_days * 86400)

    def learn(g: dict[str, Any]) -> dict[str, str | None]:
        return {"start": iso(g["key_t0"]), "end": iso(int(g["key_t0"]) + span)}

    new_accounts = {(g["key_arn"], g["principal_account"]) for g in accounts.groups}
    for g in accounts.groups:
        key = g["key_arn"]
        account, region = key_place(key)
        yield make_finding(
            "trail_new_principal",
            account=account,
            region=region,
            resource_arn=key,
            message=f"Account {g['principal_account']} first used {key} at {iso(g['first_ts'])} "
            f"({g['calls']} call(s) by {g['principals']} principal(s)), after the learning window",
            evidence={
                "kind": "account",
                "principal_account": g["principal_account"],
                "window": window(g["first_ts"], g["first_ts"]),
                "learning_window": learn(g),
                "events": _events(accounts, ("key_arn", "principal_account"), g),
            },
            config=ctx.config,
        )
    for g in principals.groups:
        if (g["key_arn"], g["account"]) in new_accounts:
            continue  # the account finding already says it
        key = g["key_arn"]
        account, region = key_place(key)
        yield make_finding(
            "trail_new_principal",
            account=account,
            region=region,
            resource_arn=key,
            message=f"{g['principal']} first used {key} at {iso(g['first_ts'])} ({g['calls']} call(s)), "
            "after the learning window",
            evidence={
                "kind": "principal",
                "principal": g["principal"],
                "window": window(g["first_ts"], g["first_ts"]),
                "learning_window": learn(g),
                "events": _events(principals, ("key_arn", "principal"), g),
            },
            config=ctx.config,
        )


def cross_account_findings(rows: DetectionRows, ctx: Context) -> Iterable[Finding]:
    for g in rows.groups:
        if ctx.trusted(g["principal_account"]):
            continue
        key = g["key_arn"]
        account, region = key_place(key, g.get("key_account"))
        yield make_finding(
            "trail_cross_account_use",
            account=account,
            region=region,
            resource_arn=key,
            message=f"{key} (account {account}) used by account {g['principal_account']}: "
            f"{g['calls']} call(s) by {g['principals']} principal(s)",
            evidence={
                "principal_account": g["principal_account"],
                "window": window(g["first_ts"], g["last_ts"]),
                "calls": g["calls"],
                "events": _events(rows, ("key_arn", "principal_account"), g),
            },
            config=ctx.config,
        )


# --- joined with the snapshot ------------------------------------------------------------------------------------


def _eval_principal(pair: dict[str, Any]) -> str | None:
    p = pair["principal"]
    if p.startswith("account:"):
        # An AWSAccount caller: what its account is allowed, in the key's partition.
        return root_arn(p.split(":", 1)[1], partition_in(str(pair.get("key_arn") or "")))
    if pair.get("principal_type") == "AssumedRole" and pair.get("principal_arn"):
        return str(pair["principal_arn"])  # the session: the engine knows sessions inherit their role
    return p if p.startswith("arn:") else None


def policy_use_findings(pairs: list[dict[str, Any]], ctx: Context) -> Iterable[Finding]:
    from kmsguard.policy.evaluate import evaluate
    from kmsguard.policy.model import Decision, Request
    from kmsguard.policy.normalize import parse_and_normalize

    keys = ctx.keys()
    parsed: dict[str, Any] = {}
    unjudged: dict[str, str] = {}  # key ARN -> why its key policy could not be read
    denied: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        key = keys.get(pair["key_arn"])
        if key is None or not key.policy:
            continue
        principal = _eval_principal(pair)
        if principal is None:
            continue
        if key.arn not in parsed:
            try:
                parsed[key.arn] = parse_and_normalize(key.policy, source=key.arn)
            except Exception as e:
                unjudged[key.arn] = str(e)
                parsed[key.arn] = None
        policy = parsed[key.arn]
        if policy is None:
            continue
        action = "kms:" + pair["event_name"]
        if _granted(key, pair, principal):
            continue
        context: dict[str, tuple[str, ...]] = {}
        if pair.get("principal_account"):
            context["kms:calleraccount"] = (pair["principal_account"],)
        via = pair.get("invoked_by") or ""
        if via.endswith(".amazonaws.com"):
            context["kms:viaservice"] = (f"{via.split('.')[0]}.{key.region}.amazonaws.com",)
        req = Request(principal=principal, action=action, resource=key.arn, context=context)
        result = evaluate(policy, req, assume_iam_allows=True, key_account=key.account)
        if result.decision is not Decision.ALLOW:
            denied[(key.arn, pair["principal"])].append(
                {
                    "action": action,
                    "calls": pair["calls"],
                    "decision": result.decision.value,
                    "notes": list(result.notes),
                    "window": window(pair["first_ts"], pair["last_ts"]),
                }
            )
    for arn, why in sorted(unjudged.items()):
        key = keys[arn]
        yield make_finding(
            "trail_use_not_allowed_by_policy",
            status=Status.ERROR,
            account=key.account,
            region=key.region,
            resource_arn=arn,
            message=f"could not judge whether the calls on {key.display_name} were allowed: its key policy could "
            f"not be read ({why})",
            evidence={"error": why},
            config=ctx.config,
        )
    for (arn, principal), uses in sorted(denied.items()):
        key = keys[arn]
        calls = sum(u["calls"] for u in uses)
        yield make_finding(
            "trail_use_not_allowed_by_policy",
            account=key.account,
            region=key.region,
            resource_arn=arn,
            message=f"{principal} made {calls} successful call(s) ({', '.join(sorted(u['action'] for u in uses))}) "
            f"on {key.display_name} that its key policy does not allow",
            evidence={
                "principal": principal,
                "uses": uses,
                "window": {
                    "start": min(u["window"]["start"] for u in uses),
                    "end": max(u["window"]["end"] for u in uses),
                },
                "note": "judged with the caller's IAM policies assumed to allow; conditions on request context "
                "the log does not carry (encryption context, source ARN) count as not met",
            },
            config=ctx.config,
        )


def _granted(key: Key, pair: dict[str, Any], principal: str) -> bool:
    names = {pair["principal"], principal, pair.get("principal_arn")}
    return any(g.grantee_principal in names and pair["event_name"] in g.operations for g in key.grants)


def _env(tags: dict[str, str], tag: str) -> str | None:
    v = tags.get(tag)
    return v.strip().lower() if v else None


def environment_findings(
    context_rows: list[dict[str, Any]], principal_rows: list[dict[str, Any]], ctx: Context
) -> Iterable[Finding]:
    if ctx.snapshot is None:
        return
    tag = ctx.config.environment_tag
    keys = ctx.keys()
    resources = {
        r.arn: r for a in ctx.snapshot.accounts for reg in a.regions for r in reg.resources if _env(r.tags, tag)
    }
    seen: set[tuple[str, str]] = set()
    for row in context_rows:
        key = keys.get(row["key_arn"])
        res = resources.get(row["context_arn"])
        if key is None or res is None:
            continue
        kenv, renv = _env(key.tags, tag), _env(res.tags, tag)
        if kenv is None or renv is None or kenv == renv:
            continue
        seen.add((key.arn, res.arn))
        yield make_finding(
            "trail_foreign_environment",
            account=key.account,
            region=key.region,
            resource_arn=key.arn,
            message=f"{key.display_name} ({tag}={kenv}) protected {res.arn} ({tag}={renv}): {row['calls']} call(s)",
            evidence={
                "key_environment": kenv,
                "resource": res.arn,
                "resource_environment": renv,
                "principal": row.get("principal"),
                "calls": row["calls"],
                "window": window(row["first_ts"], row["last_ts"]),
            },
            config=ctx.config,
        )
    envs = {k: v.strip().lower() for k, v in ctx.principal_env.items()}
    for row in principal_rows:
        key = keys.get(row["key_arn"])
        penv = envs.get(row["principal"])
        if key is None or penv is None:
            continue
        kenv = _env(key.tags, tag)
        if kenv is None or kenv == penv:
            continue
        yield make_finding(
            "trail_foreign_environment",
            account=key.account,
            region=key.region,
            resource_arn=key.arn,
            message=f"{key.display_name} ({tag}={kenv}) used by {row['principal']} ({tag}={penv}): "
            f"{row['calls']} call(s)",
            evidence={
                "key_environment": kenv,
                "principal": row["principal"],
                "principal_environment": penv,
                "calls": row["calls"],
            },
            config=ctx.config,
        )


def unused_findings(usage: list[dict[str, Any]], t0: int | None, t1: int | None, ctx: Context) -> Iterable[Finding]:
    """key_unused over the last ``unused_days`` of the logs. Logs shorter than that cannot tell an idle key from
    one used before they start: each key they would judge and do not show in use gets an ERROR finding saying
    how many days they cover (AWS Config's "insufficient data"), never silence."""
    if ctx.snapshot is None:
        return
    days = ctx.params.unused_days
    # Without events the window ends when the snapshot was taken (a key younger than the window is never judged).
    end = t1 if t1 is not None else int(ctx.snapshot.collected_at.timestamp())
    start = end - days * 86400
    covered = (t1 - t0) / 86400 if t0 is not None and t1 is not None else None
    short = covered is None or covered < days
    last_use = {r["key_arn"]: r["last_crypto_ts"] for r in usage}
    for key in ctx.snapshot.all_keys():
        if not key.is_customer_managed or key.key_state != "Enabled":
            continue
        if key.creation_date is not None and key.creation_date.timestamp() > start:
            continue  # younger than the window: not yet fair to call it unused
        last = last_use.get(key.arn)
        if last is not None and last >= start:
            continue
        if short:
            why = (
                "the logs hold no KMS events"
                if covered is None
                else f"the logs cover only {covered:.1f} of the {days} days key_unused needs (--unused-days) "
                "and show no cryptographic use of it"
            )
            yield make_finding(
                "key_unused",
                status=Status.ERROR,
                account=key.account,
                region=key.region,
                resource_arn=key.arn,
                message=f"{key.display_name}: cannot tell whether it is unused: {why}",
                evidence={
                    "days": days,
                    "covered_days": round(covered, 1) if covered is not None else 0,
                    "logs": window(t0, t1),
                },
                config=ctx.config,
            )
            continue
        when = f"last used {iso(last)}" if last is not None else "no use in the logs at all"
        yield make_finding(
            "key_unused",
            account=key.account,
            region=key.region,
            resource_arn=key.arn,
            message=f"{key.display_name} had no cryptographic use in the {days} days to {iso(t1)} ({when})",
            evidence={"window": window(start, t1), "days": days, "last_use": iso(last), "logs": window(t0, t1)},
            config=ctx.config,
        )
