"""Deciding what to alert on, and the outbox that makes alerts survive restarts.

De-duplication: ``alert_state`` holds the fingerprints of failing findings already alerted. A failing
finding alerts only when it is not there (then it is added); when it stops failing it is removed, so if it
comes back it alerts again. Findings muted in the dashboard are neither alerted nor remembered, so ending
the mute alerts at the next cycle if they still fail.

Outbox: the alert and one delivery row per channel are written in the same transaction as the scan that
caused them. Delivery happens afterwards and marks each row sent. A crash between the two leaves the rows
pending, and the next start sends them: nothing is lost, and nothing already sent is sent again (a crash in
the instant between a channel accepting and the row being marked would repeat that one alert: at-least-once).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from kmsguard.model.finding import Severity
from kmsguard.monitor.channels import Channel
from kmsguard.store.db import Store
from kmsguard.store.drift import DriftItem
from kmsguard.store.mutes import muted_pairs
from kmsguard.store.schema import AlertRow, AlertStateRow, DeliveryRow, FindingRow

log = logging.getLogger(__name__)
_RANK = {s.value: s.rank for s in Severity}


def _failing(s: Session, scan_id: int, key_arn: str | None) -> dict[str, FindingRow]:
    q = select(FindingRow).where(FindingRow.scan_id == scan_id, FindingRow.status == "FAIL")
    if key_arn is not None:
        q = q.where(FindingRow.key_arn == key_arn)
    return {f.fingerprint: f for f in s.scalars(q)}


def plan_alert(
    s: Session,
    scan_id: int,
    drift: Sequence[DriftItem],
    channels: Iterable[str],
    *,
    key_arn: str | None = None,
    more: str,
    key_page: str,
) -> int | None:
    """Update the alert state for scan ``scan_id`` and record one alert (if anything is new) with a pending
    delivery per channel. ``key_arn``: a key-event scan, whose state change concerns that key only.
    ``more``: the command or page that shows everything; ``key_page``: a format string with {arn}."""
    failing = _failing(s, scan_id, key_arn)
    state_q = select(AlertStateRow.fingerprint)
    if key_arn is not None:
        state_q = state_q.where(AlertStateRow.resource_arn == key_arn)
    alerted = set(s.scalars(state_q))
    muted = muted_pairs(s)
    resolved = alerted - failing.keys()
    if resolved:
        s.execute(delete(AlertStateRow).where(AlertStateRow.fingerprint.in_(resolved)))
    new = [f for fp, f in failing.items() if fp not in alerted and (f.check_id, f.resource_arn) not in muted]
    if new:
        s.execute(
            insert(cast(Table, AlertStateRow.__table__)),
            [{"fingerprint": f.fingerprint, "resource_arn": f.resource_arn, "opened_scan_id": scan_id} for f in new],
        )
    items: list[dict[str, Any]] = [
        {
            "kind": d.kind,
            "severity": d.severity,
            "account": d.account,
            "region": d.region,
            "resource_arn": d.resource_arn,
            "summary": d.summary,
            "detail": d.detail,
            "more": key_page.format(arn=d.resource_arn),
        }
        for d in drift
        if d.alert
    ]
    new.sort(key=lambda f: (-f.severity_rank, f.check_id, f.resource_arn))
    items += [
        {
            "kind": "new_finding",
            "severity": f.severity,
            "account": f.account,
            "region": f.region,
            "resource_arn": f.resource_arn,
            "summary": f"{f.check_id}: {f.message}",
            "detail": {"check_id": f.check_id, "remediation": f.remediation},
            "more": key_page.format(arn=f.resource_arn) if f.key_arn else more,
        }
        for f in new
    ]
    if not items:
        return None
    payload = build_payload(scan_id, items, more)
    alert = AlertRow(
        scan_id=scan_id,
        created_at=datetime.now(UTC),
        severity=payload["severity"],
        title=payload["title"],
        payload=payload,
    )
    s.add(alert)
    s.flush()
    names = sorted(set(channels))
    if names:
        s.execute(
            insert(cast(Table, DeliveryRow.__table__)),
            [{"alert_id": alert.id, "channel": n, "sent": False, "attempts": 0} for n in names],
        )
    return alert.id


def build_payload(scan_id: int, items: list[dict[str, Any]], more: str) -> dict[str, Any]:
    worst = max((i["severity"] for i in items), key=lambda v: _RANK.get(v, 0))
    findings = sum(1 for i in items if i["kind"] == "new_finding")
    changes = len(items) - findings
    parts = []
    if changes:
        parts.append(f"{changes} dangerous change{'s' if changes != 1 else ''}")
    if findings:
        parts.append(f"{findings} new failing finding{'s' if findings != 1 else ''}")
    first = items[0]
    where = f"{first['account']}/{first['region']}"
    return {
        "source": "kmsguard",
        "title": f"kmsguard [{worst.upper()}]: {' and '.join(parts)} ({where}{' and more' if len(items) > 1 else ''})",
        "severity": worst,
        "scan_id": scan_id,
        "items": items,
        "more": more,
    }


def deliver_pending(store: Store, channels: Sequence[Channel], max_attempts: int = 20) -> dict[str, int]:
    """Send every pending delivery for the configured channels; return sent counts per channel.

    A failing channel keeps its rows pending (attempts and the error recorded) and does not hold up the
    others; a later call retries. Rows for channels no longer configured stay pending and untouched."""
    by_name = {c.name: c for c in channels}
    sent: dict[str, int] = {name: 0 for name in by_name}
    if not by_name:
        return sent
    with store.session() as s:
        pending = s.execute(
            select(DeliveryRow.id, DeliveryRow.channel, AlertRow.payload)
            .join(AlertRow, AlertRow.id == DeliveryRow.alert_id)
            .where(DeliveryRow.sent.is_(False), DeliveryRow.channel.in_(by_name), DeliveryRow.attempts < max_attempts)
            .order_by(DeliveryRow.alert_id, DeliveryRow.channel)
        ).all()
    failed: set[str] = set()
    for row_id, name, payload in pending:
        if name in failed:
            continue  # keep order per channel: a later alert must not overtake an earlier one
        error: str | None = None
        try:
            by_name[name].send(payload)
        except Exception as e:  # any channel failure is recorded and retried; it must not stop the monitor
            error = f"{type(e).__name__}: {e}"[:500]
            failed.add(name)
            log.warning("alert delivery to %s failed: %s", name, error)
        with store.session() as s:
            d = s.get(DeliveryRow, row_id)
            assert d is not None
            d.attempts += 1
            if error is None:
                d.sent, d.sent_at, d.last_error = True, datetime.now(UTC), None
                sent[name] += 1
            else:
                d.last_error = error
    return sent
