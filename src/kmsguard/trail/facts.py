"""The SQL's answers -> ``model.trail.TrailFacts``: the one place that reads the detections' column names.

The detections found the groups and their first events; this module types them (times as epoch seconds, evidence
events with ISO times) and nothing more. Judging them is ``checks/trail.py``'s work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kmsguard.model.trail import (
    AdminEvents,
    CrossAccountUse,
    FailureWindow,
    GrantIssued,
    KeyUse,
    Newcomer,
    PolicyChange,
    PrincipalKeyCalls,
    ResourceUse,
    TrailFacts,
    TrailThresholds,
    UnreadableLog,
    UsageSpike,
    iso_utc,
)
from kmsguard.trail.decode import FileStats
from kmsguard.trail.detections import EVIDENCE_COLUMNS, DetectionRows
from kmsguard.trail.sources import path_facts

Row = dict[str, Any]


def epoch(ts: Any) -> int:
    """Epoch seconds from what an engine returned: an integer, an aware datetime (DuckDB's TIMESTAMPTZ) or a naive
    one (PySpark's collect() builds TimestampType values with ``datetime.fromtimestamp``: naive, in the driver's
    local time, whatever spark.sql.session.timeZone says). ``datetime.timestamp()`` reads a naive value as local
    time, which is what Spark meant."""
    if isinstance(ts, datetime):
        return int(ts.timestamp())
    return int(ts)


def iso(ts: Any) -> str | None:
    """An engine's time value (see ``epoch``) as ISO 8601 UTC."""
    return iso_utc(None if ts is None else epoch(ts))


def _opt_epoch(ts: Any) -> int | None:
    return None if ts is None else epoch(ts)


def event_dict(row: Row) -> dict[str, Any]:
    out = {c: row.get(c) for c in EVIDENCE_COLUMNS}
    out["event_time"] = iso(out["event_time"])
    return {k: v for k, v in out.items() if v is not None}


def _events(rows: DetectionRows, keys: tuple[str, ...], group: Row) -> list[dict[str, Any]]:
    return [event_dict(e) for e in rows.evidence_for(keys, group)]


def _pair(low: Any, high: Any) -> list[str]:
    """The distinct values among a group's min and max (what SQL can give of a set without list functions)."""
    return sorted({v for v in (low, high or low) if v})


def build(
    thresholds: TrailThresholds,
    coverage: Row,
    detections: dict[str, DetectionRows],
    summaries: dict[str, list[Row]],
    failed: list[FileStats],
    principal_env: dict[str, str],
) -> TrailFacts:
    d, s = detections, summaries
    return TrailFacts(
        thresholds=thresholds,
        window_start=_opt_epoch(coverage["t0"]),
        window_end=_opt_epoch(coverage["t1"]),
        unreadable=[_unreadable(st) for st in failed],
        admin_events=[_admin(d["admin"], g) for g in d["admin"].groups],
        policy_changes=[_policy_change(r) for r in s["policy_events"] if r["key_arn"]],
        external_grants=[_grant(d["grant_external"], g) for g in d["grant_external"].groups],
        failure_windows=[_failures(d["failure_burst"], g) for g in d["failure_burst"].groups],
        spikes=[_spike(d["usage_spike"], g) for g in d["usage_spike"].groups],
        new_accounts=[_new_account(d["new_account"], g) for g in d["new_account"].groups],
        new_principals=[_new_principal(d["new_principal"], g) for g in d["new_principal"].groups],
        cross_account=[_cross(d["cross_account"], g) for g in d["cross_account"].groups],
        uses=[_use(r) for r in s.get("use_pairs", ())],
        resource_uses=[_resource_use(r) for r in s.get("context_use", ())],
        # Judged only against --principal-env's environments: without them, every row would be built for nothing.
        principal_keys=[
            PrincipalKeyCalls(key=r["key_arn"], principal=r["principal"], calls=int(r["calls"]))
            for r in (s["principal_keys"] if principal_env else ())
        ],
        last_crypto_use={r["key_arn"]: _opt_epoch(r["last_crypto_ts"]) for r in s["key_usage"]},
        principal_env=dict(principal_env),
    )


def _unreadable(st: FileStats) -> UnreadableLog:
    account, region, _, _ = path_facts(st.file)
    return UnreadableLog(
        file=st.file, error=st.error or "unreadable", records=st.records, account=account, region=region
    )


def _admin(rows: DetectionRows, g: Row) -> AdminEvents:
    return AdminEvents(
        key=g["kgroup"],
        event_name=g["event_name"],
        calls=int(g["calls"]),
        first_ts=epoch(g["first_ts"]),
        last_ts=epoch(g["last_ts"]),
        aliases=_pair(g.get("alias_name"), g.get("alias_name_max")),
        events=_events(rows, ("kgroup", "event_name"), g),
    )


def _policy_change(r: Row) -> PolicyChange:
    return PolicyChange(
        key=r["key_arn"],
        key_account=r.get("key_account"),
        region=r.get("region"),
        event_name=r["event_name"],
        ts=epoch(r["event_ts"]),
        event_id=r.get("event_id"),
        policy=_policy_text(r.get("params")),
        event=event_dict(r),
    )


def _policy_text(params: str | None) -> str | None:
    """The policy a PutKeyPolicy or CreateKey request set, from its requestParameters (JSON text)."""
    import json

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


def _grant(rows: DetectionRows, g: Row) -> GrantIssued:
    return GrantIssued(
        key=g["kgroup"],
        key_account=g.get("key_account"),
        grantee_account=g["grantee_account"],
        grantees=_pair(g["grantee"], g.get("grantee_max")),
        calls=int(g["calls"]),
        first_ts=epoch(g["first_ts"]),
        last_ts=epoch(g["last_ts"]),
        events=_events(rows, ("kgroup", "grantee_account"), g),
    )


def _failures(rows: DetectionRows, g: Row) -> FailureWindow:
    return FailureWindow(
        key=g["kgroup"],
        start=epoch(g["wstart"]),
        errors=int(g["errors"]),
        error_codes=_pair(g["error_code"], g.get("error_code_max")),
        account=g.get("account"),
        region=g.get("region"),
        first_ts=epoch(g["first_ts"]),
        last_ts=epoch(g["last_ts"]),
        events=_events(rows, ("kgroup", "wstart"), g),
    )


def _spike(rows: DetectionRows, g: Row) -> UsageSpike:
    return UsageSpike(
        key=g["key_arn"],
        action=g["event_name"],
        hour=epoch(g["hour"]),
        calls=int(g["n"]),
        median=float(g["med"]),
        mad=float(g["mad"]),
        hours=int(g["nhours"]),
        events=_events(rows, ("key_arn", "event_name", "hour"), g),
    )


def _new_account(rows: DetectionRows, g: Row) -> Newcomer:
    return Newcomer(
        key=g["key_arn"],
        principal_account=g["principal_account"],
        principals=int(g["principals"]),
        calls=int(g["calls"]),
        first_ts=epoch(g["first_ts"]),
        key_first_ts=epoch(g["key_t0"]),
        events=_events(rows, ("key_arn", "principal_account"), g),
    )


def _new_principal(rows: DetectionRows, g: Row) -> Newcomer:
    return Newcomer(
        key=g["key_arn"],
        principal=g["principal"],
        principal_account=g.get("account"),
        calls=int(g["calls"]),
        first_ts=epoch(g["first_ts"]),
        key_first_ts=epoch(g["key_t0"]),
        events=_events(rows, ("key_arn", "principal"), g),
    )


def _cross(rows: DetectionRows, g: Row) -> CrossAccountUse:
    return CrossAccountUse(
        key=g["key_arn"],
        key_account=g.get("key_account"),
        principal_account=g["principal_account"],
        calls=int(g["calls"]),
        principals=int(g["principals"]),
        first_ts=epoch(g["first_ts"]),
        last_ts=epoch(g["last_ts"]),
        events=_events(rows, ("key_arn", "principal_account"), g),
    )


def _use(r: Row) -> KeyUse:
    return KeyUse(
        key=r["key_arn"],
        principal=r["principal"],
        principal_arn=r.get("principal_arn"),
        principal_type=r.get("principal_type"),
        principal_account=r.get("principal_account"),
        action=r["event_name"],
        invoked_by=r.get("invoked_by") or None,
        calls=int(r["calls"]),
        first_ts=epoch(r["first_ts"]),
        last_ts=epoch(r["last_ts"]),
    )


def _resource_use(r: Row) -> ResourceUse:
    return ResourceUse(
        key=r["key_arn"],
        resource=r["context_arn"],
        principal=r.get("principal"),
        calls=int(r["calls"]),
        first_ts=epoch(r["first_ts"]),
        last_ts=epoch(r["last_ts"]),
    )
