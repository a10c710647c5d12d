"""Every detection as SQL over the ``events`` view of the cache, in the dialect DuckDB and Spark SQL share.

Portability rules (the same text runs on both engines): time arithmetic on ``event_ts`` (epoch seconds)
with ``%`` instead of dialect-specific date functions; ``median``, ``regexp_extract``, ``greatest``,
``coalesce``, ``concat``, window ``row_number()``; no QUALIFY, no lambdas, no list or struct functions.
The hour calendar that spike detection needs is a table ``hours(hour)`` that each engine builds (``calendar``:
the analysed window, at most HOURS_CAP hours).

``prepare`` first materialises, in one pass over the events each, the tables most questions read instead of
the events: ``usage_agg`` and ``hourly_agg`` (aggregates) and ``rare_events`` (failed calls, administrative
and policy changes). A detection is a ``base`` relation (events, or rare events, with derived columns,
filtered) and a ``groups`` query over it or over the aggregates; ``run`` materialises its groups, and its
evidence is the first ``cap`` base rows of each group, by a window function, read from ``rare_events`` or from
the events of the keys with findings: one more pass in all, not one query per finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kmsguard.model.trail import SERVICE_CALLER, UNKNOWN_KEY_PREFIX, TrailThresholds
from kmsguard.policy.actions import ADMIN_EVENTS
from kmsguard.trail.engines import Engine, each
from kmsguard.trail.schema import ARROW_SCHEMA
from kmsguard.trail.sources import Filters

# A principal acting, not AWS acting on its own: AWSService callers (CloudTrail encrypting its logs) and
# records with no userIdentity.type at all (AwsServiceEvent: KMS rotating or deleting a key on schedule,
# "invokedBy": "AWS Internal") are AWS's own work, never a new or foreign principal.
HUMAN = f"coalesce(principal_type, '{SERVICE_CALLER}') <> '{SERVICE_CALLER}'"
# The key a row belongs to; a failed call may not name one (Decrypt names its key only inside the ciphertext).
KEY_GROUP = (
    f"coalesce(key_arn, concat('{UNKNOWN_KEY_PREFIX}', coalesce(recipient_account, '?'), ':', coalesce(region, '?')))"
)
GRANTEE_ACCOUNT = "regexp_extract(coalesce(grantee, ''), '^(?:arn:[^:]*:[^:]*::)?([0-9]{12})', 1)"

EVIDENCE_COLUMNS = (
    "event_time",
    "event_name",
    "event_id",
    "principal",
    "principal_arn",
    "principal_account",
    "invoked_by",
    "source_ip",
    "user_agent",
    "error_code",
    "region",
    "file",
)


# The detections' knobs: one home, on the facts they produce (checks word their findings with them).
Params = TrailThresholds


@dataclass(frozen=True)
class Detection:
    name: str
    base: str  # SELECT ... FROM {events} ... (derived columns and the rows that matter)
    groups: str  # SELECT ... FROM base (or later CTEs) ... GROUP BY
    keys: tuple[str, ...]  # columns of base and groups that identify a group
    ctes: str = ""  # extra CTEs between base and groups, ", name AS (...)" each
    # The relation {events} stands for: RARE (prepared) for detections of rare events; "events" for the
    # others, whose evidence then comes from EVIDENCE (the events of the keys with findings).
    source: str = "events"

    @property
    def table(self) -> str:
        """Where ``run`` materialises the groups, so that evidence joins them instead of recomputing them."""
        return f"found_{self.name}"

    @property
    def evidence_source(self) -> str:
        return self.source if self.source == RARE else EVIDENCE

    def groups_sql(self) -> str:
        base = self.base.replace("{events}", self.source)
        return f"WITH base AS ({base}){self.ctes}, g AS ({self.groups}) SELECT * FROM g"

    def evidence_sql(self, cap: int) -> str:
        """The first ``cap`` events of each group in ``self.table``."""
        on = " AND ".join(f"b.{k} = g.{k}" for k in self.keys)
        part = ", ".join(f"b.{k}" for k in self.keys)
        cols = ", ".join(f"b.{c}" for c in (*self.keys, *EVIDENCE_COLUMNS))
        base = self.base.replace("{events}", self.evidence_source)
        return (
            f"WITH base AS ({base}) "
            f"SELECT * FROM (SELECT {_dedupe(cols)}, row_number() OVER (PARTITION BY {part} "
            f"ORDER BY b.event_ts, b.event_id) AS rn FROM base b JOIN {self.table} g ON {on}) t "
            f"WHERE rn <= {int(cap)}"
        )


def _dedupe(cols: str) -> str:
    seen: list[str] = []
    for c in cols.split(", "):
        if c not in seen:
            seen.append(c)
    return ", ".join(seen)


_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")


def dup_ids_sql(source: str) -> str:
    """Event ids delivered more than once (CloudTrail delivers some events in two files; the SANS sample has
    them). Engines materialise this small table once, so deduplication costs one pass, not one per query.
    The pass groups by a hash of the id (an integer: a fraction of the memory and time of grouping millions of
    36-character strings); ids whose hash repeats are then grouped exactly, so a collision costs nothing."""
    return (
        f"SELECT event_id FROM {source} WHERE event_id IS NOT NULL AND hash(event_id) IN "
        f"(SELECT hash(event_id) FROM {source} WHERE event_id IS NOT NULL GROUP BY hash(event_id) "
        "HAVING count(*) > 1) GROUP BY event_id HAVING count(*) > 1"
    )


def events_view(source: str, f: Filters, dups: bool = True, deduped: str | None = None) -> str:
    """The ``events`` relation: ``source`` filtered, each duplicated event kept once (table ``dup_ids``).

    A re-delivered event repeats its id, name, time and outcome; hand-edited logs (the KMS guide's examples)
    reuse ids for different events, so those count as different and are kept. ``dups=False`` (the engine
    found ``dup_ids`` empty) gives the same rows without the per-row anti-join every query would pay.
    ``deduped`` names a table the engine made of ``dedup_sql``: the window over the duplicated events then runs
    once, not in every query that reads ``events`` (a file of a million copies of one event made each query sort
    them all again)."""
    cols = ", ".join(c.name for c in ARROW_SCHEMA)
    where = where_clause(f)
    if not dups:
        return f"SELECT {cols} FROM {source} WHERE {where}"
    once = deduped if deduped is not None else f"({dedup_sql(source, f)}) d"
    return (
        f"SELECT {cols} FROM {source} WHERE {where} AND (event_id IS NULL OR event_id NOT IN "
        f"(SELECT event_id FROM dup_ids)) UNION ALL SELECT {cols} FROM {once}"
    )


def dedup_sql(source: str, f: Filters) -> str:
    """One row of each event whose id ``dup_ids`` holds: the first by file and principal of those with the same
    id, name, time and outcome."""
    cols = ", ".join(c.name for c in ARROW_SCHEMA)
    return (
        f"SELECT {cols} FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY event_id, event_name, event_ts, error_code ORDER BY file, principal_arn) AS dup "
        f"FROM {source} WHERE {where_clause(f)} AND event_id IN (SELECT event_id FROM dup_ids)) d WHERE dup = 1"
    )


def where_clause(f: Filters) -> str:
    """The exact event filter (files were only pruned by path). Values are validated before they are
    written into SQL."""
    conds: list[str] = []
    if f.since is not None:
        conds.append(f"event_ts >= {int(f.since.timestamp())}")
    if f.until is not None:
        conds.append(f"event_ts <= {int(f.until.timestamp())}")
    if f.accounts:
        bad = [a for a in f.accounts if not _ACCOUNT.fullmatch(a)]
        if bad:
            raise ValueError(f"--account: {bad[0]!r} is not a 12-digit AWS account id")
        conds.append("recipient_account IN (" + ", ".join(f"'{a}'" for a in sorted(f.accounts)) + ")")
    if f.regions:
        bad = [r for r in f.regions if not _REGION.fullmatch(r)]
        if bad:
            raise ValueError(f"--region: {bad[0]!r} is not an AWS region name")
        conds.append("region IN (" + ", ".join(f"'{r}'" for r in sorted(f.regions)) + ")")
    return " AND ".join(conds) if conds else "TRUE"


# --- the hour calendar -----------------------------------------------------------------------------------------

# The most hours the calendar (table ``hours``) holds: a year (366 days). Spike detection fills every hour of a
# key's history with zeros to take its median, so the calendar's length multiplies the work of every key; a year
# of hours is baseline enough, and logs of ten years cost what one year does.
HOURS_CAP = 366 * 24


def calendar(t0: int, t1: int) -> tuple[int, int]:
    """The first and last second the ``hours`` calendar covers for events from ``t0`` to ``t1`` (epoch seconds):
    the analysed window, or its last HOURS_CAP hours when it is longer."""
    first = t0 - t0 % 3600
    last_hour = t1 - t1 % 3600
    return max(first, last_hour - (HOURS_CAP - 1) * 3600), t1


# --- aggregates -----------------------------------------------------------------------------------------------

# Most questions are about (key, principal, action) combinations, not single events. Each engine materialises
# these two aggregates once per run (one pass over the events each); the summaries and most detections then
# read thousands of aggregate rows instead of re-reading millions of events. Only filters that pick out few
# events (administrative calls, errors, grants) and the evidence queries go back to ``events``.
USAGE_AGG = f"""
SELECT key_arn, key_account, principal, principal_type, principal_account, event_name, region,
       coalesce(invoked_by, '') AS invoked_by, is_crypto, error_code IS NULL AS ok, {HUMAN} AS human,
       count(*) AS n, min(event_ts) AS first_ts, max(event_ts) AS last_ts, min(principal_arn) AS principal_arn
FROM events
GROUP BY key_arn, key_account, principal, principal_type, principal_account, event_name, region,
         coalesce(invoked_by, ''), is_crypto, error_code IS NULL
"""

HOURLY_AGG = f"""
SELECT key_arn, event_name, event_ts - event_ts % 3600 AS hour, is_crypto, error_code IS NULL AS ok,
       {HUMAN} AS human, count(*) AS n
FROM events WHERE key_arn IS NOT NULL
GROUP BY key_arn, event_name, event_ts - event_ts % 3600, is_crypto, error_code IS NULL, {HUMAN}
"""

# Events that are rare by nature (failed calls, administrative and policy changes): the detections about them
# and their evidence read this small table instead of scanning every event again.
RARE = "rare_events"
_RARE_NAMES = ", ".join(f"'{n}'" for n in sorted({*ADMIN_EVENTS, "CreateGrant", "PutKeyPolicy", "CreateKey"}))
RARE_EVENTS = f"SELECT * FROM events WHERE error_code IS NOT NULL OR event_name IN ({_RARE_NAMES})"
# The events of the keys that some usage detection found something on: their evidence comes from here.
EVIDENCE = "evidence_events"

AGGREGATES = {"usage_agg": USAGE_AGG, "hourly_agg": HOURLY_AGG, RARE: RARE_EVENTS}


def prepare(engine: Engine) -> None:
    """Build the aggregates every summary and most detections read (after ``events`` and ``hours`` exist)."""
    each(engine, lambda item: engine.materialize(*item), AGGREGATES.items())


# --- summaries ------------------------------------------------------------------------------------------------

COVERAGE = "SELECT count(*) AS events, min(event_ts) AS t0, max(event_ts) AS t1 FROM events"

_ERRORS = "sum(CASE WHEN ok THEN 0 ELSE n END)"

KEY_USAGE = f"""
SELECT key_arn, min(key_account) AS key_account, sum(n) AS calls,
       sum(CASE WHEN is_crypto THEN n ELSE 0 END) AS crypto_calls,
       {_ERRORS} AS errors,
       count(DISTINCT CASE WHEN human THEN principal END) AS principals,
       count(DISTINCT CASE WHEN human THEN principal_account END) AS accounts,
       count(DISTINCT region) AS regions,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts,
       max(CASE WHEN is_crypto AND ok THEN last_ts END) AS last_crypto_ts
FROM usage_agg WHERE key_arn IS NOT NULL GROUP BY key_arn
"""

KEY_ACTIONS = f"""
SELECT key_arn, event_name, sum(n) AS calls, {_ERRORS} AS errors
FROM usage_agg WHERE key_arn IS NOT NULL GROUP BY key_arn, event_name
"""

PRINCIPAL_KEYS = f"""
SELECT principal, min(principal_type) AS principal_type, min(principal_account) AS principal_account,
       key_arn, sum(n) AS calls, {_ERRORS} AS errors
FROM usage_agg WHERE key_arn IS NOT NULL AND principal IS NOT NULL GROUP BY principal, key_arn
"""

# Hourly cryptographic calls of the busiest keys, for the usage charts. Bounded: every key of a large estate
# would be hundreds of thousands of rows, and turning rows into Python objects is the slow part of a query. Only
# the hours of the calendar (``calendar``: the last HOURS_CAP hours of the window) are kept, so 25 keys over ten
# years are not two million rows.
HOURLY_TOP_KEYS = 25
HOURLY = f"""
WITH k AS (SELECT key_arn, sum(n) AS total FROM hourly_agg WHERE is_crypto GROUP BY key_arn),
top AS (SELECT key_arn FROM (SELECT key_arn, row_number() OVER (ORDER BY total DESC, key_arn) AS rk FROM k) r
        WHERE rk <= {HOURLY_TOP_KEYS})
SELECT h.key_arn, h.hour, sum(h.n) AS calls FROM hourly_agg h JOIN top t ON h.key_arn = t.key_arn
JOIN hours c ON h.hour = c.hour
WHERE h.is_crypto GROUP BY h.key_arn, h.hour ORDER BY h.key_arn, h.hour
"""

# Distinct (key, principal, action, via) of successful human use: the policy engine judges each once.
USE_PAIRS = """
SELECT key_arn, principal, min(principal_arn) AS principal_arn, min(principal_type) AS principal_type,
       min(principal_account) AS principal_account, event_name, invoked_by,
       sum(n) AS calls, min(first_ts) AS first_ts, max(last_ts) AS last_ts
FROM usage_agg
WHERE ok AND key_arn LIKE 'arn:%' AND human AND principal IS NOT NULL AND is_crypto
GROUP BY key_arn, principal, event_name, invoked_by
"""

CONTEXT_USE = """
SELECT key_arn, context_arn, count(*) AS calls, min(event_ts) AS first_ts, max(event_ts) AS last_ts,
       min(principal) AS principal
FROM events WHERE context_arn IS NOT NULL AND key_arn IS NOT NULL AND error_code IS NULL AND is_crypto
GROUP BY key_arn, context_arn
"""

# --- detections -----------------------------------------------------------------------------------------------

_ADMIN_NAMES = ", ".join(f"'{n}'" for n in sorted(ADMIN_EVENTS))

ADMIN = Detection(
    "admin",
    base=f"SELECT *, {KEY_GROUP} AS kgroup FROM {{events}} WHERE error_code IS NULL AND event_name IN ({_ADMIN_NAMES})",
    groups="SELECT kgroup, event_name, count(*) AS calls, min(event_ts) AS first_ts, max(event_ts) AS last_ts, "
    "min(alias_name) AS alias_name, max(alias_name) AS alias_name_max FROM base GROUP BY kgroup, event_name",
    keys=("kgroup", "event_name"),
    source=RARE,
)

# Policy changes and key creations, in time order: checks/trail.policy_widened diffs consecutive policies per key.
POLICY_EVENTS = """
SELECT key_arn, key_account, event_name, event_time, event_ts, event_id, params, principal, principal_arn,
       source_ip, region, file
FROM rare_events
WHERE error_code IS NULL AND event_name IN ('PutKeyPolicy', 'CreateKey') AND params IS NOT NULL
ORDER BY event_ts, event_id
"""

GRANTS = Detection(
    "grant_external",
    base=f"SELECT *, {KEY_GROUP} AS kgroup, {GRANTEE_ACCOUNT} AS grantee_account FROM {{events}} "
    f"WHERE error_code IS NULL AND event_name = 'CreateGrant'",
    groups="SELECT kgroup, grantee_account, min(key_account) AS key_account, count(*) AS calls, "
    "min(grantee) AS grantee, max(grantee) AS grantee_max, min(event_ts) AS first_ts, max(event_ts) AS last_ts "
    "FROM base WHERE grantee_account <> '' AND grantee_account <> coalesce(key_account, '') "
    "GROUP BY kgroup, grantee_account",
    keys=("kgroup", "grantee_account"),
    source=RARE,
)


def bursts(p: Params) -> Detection:
    w = int(p.burst_window)
    return Detection(
        "failure_burst",
        base=f"SELECT *, {KEY_GROUP} AS kgroup, event_ts - event_ts % {w} AS wstart FROM {{events}} "
        "WHERE error_code IS NOT NULL",
        groups="SELECT kgroup, wstart, count(*) AS errors, count(DISTINCT principal) AS principals, "
        "min(error_code) AS error_code, max(error_code) AS error_code_max, min(recipient_account) AS account, "
        "min(region) AS region, min(event_ts) AS first_ts, max(event_ts) AS last_ts "
        f"FROM base GROUP BY kgroup, wstart HAVING count(*) > {int(p.burst_threshold)}",
        keys=("kgroup", "wstart"),
        source=RARE,
    )


def spikes(p: Params) -> Detection:
    """Hourly calls per key and action against that key's own robust baseline: the median and MAD of every hour
    from the key's first use to the end of the logs, quiet hours counted as zero.

    Quiet hours are counted, not listed: there are ``z`` of them, all 0, below every busy hour, so the one or two
    middle positions of the sorted hours (``p1``, ``p2``) are read off the busy hours' ranks; likewise for the
    deviations from the median, where the quiet hours' deviation (the median itself) sits after the ``c`` busy
    deviations not above it. The cost follows the busy hours (at most one per event), not the span of the logs times
    the keys: two events ten thousand years apart cost what two events an hour apart do. Only a key and action
    with an hour of at least ``spike_min_count`` calls can spike, so only those get a baseline."""
    pair = "key_arn, event_name"

    def on(a: str, b: str) -> str:
        return f"{a}.key_arn = {b}.key_arn AND {a}.event_name = {b}.event_name"

    def middle(pos: str) -> str:  # the value at position ``pos`` of the deviations, quiet hours' included
        return (
            f"CASE WHEN {pos} > c AND {pos} <= c + z THEN med ELSE "
            f"max(CASE WHEN r = CASE WHEN {pos} <= c THEN {pos} ELSE {pos} - z END THEN d END) END"
        )

    return Detection(
        "usage_spike",
        base="SELECT *, event_ts - event_ts % 3600 AS hour FROM {events} "
        f"WHERE is_crypto AND error_code IS NULL AND key_arn IS NOT NULL AND {HUMAN}",
        ctes=(
            f", hourly AS (SELECT {pair}, hour, sum(n) AS n FROM hourly_agg "
            f"WHERE is_crypto AND ok AND human GROUP BY {pair}, hour)"
            f", span AS (SELECT h.key_arn, h.event_name, count(*) AS busy, "
            "CAST((max(c.last_hour) - min(h.hour)) / 3600 AS BIGINT) + 1 AS nhours "
            "FROM hourly h CROSS JOIN (SELECT max(hour) AS last_hour FROM hours) c "
            f"GROUP BY h.key_arn, h.event_name HAVING max(h.n) >= {int(p.spike_min_count)})"
            f", pos AS (SELECT {pair}, nhours, nhours - busy AS z, CAST(floor((nhours + 1) / 2) AS BIGINT) AS p1, "
            "CAST(floor(nhours / 2) AS BIGINT) + 1 AS p2 FROM span)"
            f", ranked AS (SELECT h.key_arn, h.event_name, h.n, row_number() OVER (PARTITION BY h.key_arn, "
            f"h.event_name ORDER BY h.n) AS r FROM hourly h JOIN pos q ON {on('h', 'q')})"
            ", stats AS (SELECT q.key_arn, q.event_name, q.nhours, q.z, q.p1, q.p2, "
            "(coalesce(max(CASE WHEN k.r = q.p1 - q.z THEN k.n END), 0) "
            "+ coalesce(max(CASE WHEN k.r = q.p2 - q.z THEN k.n END), 0)) / 2.0 AS med "
            f"FROM pos q JOIN ranked k ON {on('k', 'q')} GROUP BY q.key_arn, q.event_name, q.nhours, q.z, q.p1, q.p2)"
            ", devs AS (SELECT h.key_arn, h.event_name, abs(h.n - s.med) AS d, s.med, s.z, s.p1, s.p2 "
            f"FROM hourly h JOIN stats s ON {on('h', 's')})"
            f", dranked AS (SELECT *, row_number() OVER (PARTITION BY {pair} ORDER BY d) AS r, "
            f"sum(CASE WHEN d <= med THEN 1 ELSE 0 END) OVER (PARTITION BY {pair}) AS c FROM devs)"
            f", dev AS (SELECT {pair}, ({middle('p1')} + {middle('p2')}) / 2.0 AS mad FROM dranked "
            f"GROUP BY {pair}, med, z, p1, p2, c)"
        ),
        groups="SELECT h.key_arn, h.event_name, h.hour, h.n, s.med, d.mad, s.nhours FROM hourly h "
        f"JOIN stats s ON {on('h', 's')} JOIN dev d ON {on('h', 'd')} "
        f"WHERE s.nhours >= {int(p.spike_min_hours)} AND h.n >= {int(p.spike_min_count)} "
        f"AND h.n > s.med + {float(p.spike_k)} * greatest(1.4826 * d.mad, 1.0)",
        keys=("key_arn", "event_name", "hour"),
    )


# Each key learns its own users: the learning window starts when the logs first show the key (a key created
# after the logs begin has its own first days to learn in, so its first users are not all "new").
_KEY_T0 = ", t AS (SELECT key_arn AS tk, min(first_ts) AS t0 FROM usage_agg WHERE key_arn IS NOT NULL GROUP BY key_arn)"
# Successful calls by a principal (not AWS on its own) on a known key: the rows newcomers are judged on.
_HUMAN_USE = "b.key_arn IS NOT NULL AND b.ok AND b.human"


def new_principals(p: Params) -> Detection:
    learn = int(p.learn_days * 86400)
    return Detection(
        "new_principal",
        base=f"SELECT * FROM {{events}} WHERE key_arn IS NOT NULL AND error_code IS NULL AND {HUMAN} "
        "AND principal IS NOT NULL",
        ctes=_KEY_T0,
        groups="SELECT b.key_arn, b.principal, min(b.principal_account) AS account, min(b.first_ts) AS first_ts, "
        "min(t.t0) AS key_t0, sum(b.n) AS calls FROM usage_agg b JOIN t ON b.key_arn = t.tk "
        f"WHERE {_HUMAN_USE} AND b.principal IS NOT NULL "
        f"GROUP BY b.key_arn, b.principal HAVING min(b.first_ts) >= min(t.t0) + {learn}",
        keys=("key_arn", "principal"),
    )


def new_accounts(p: Params) -> Detection:
    learn = int(p.learn_days * 86400)
    return Detection(
        "new_account",
        base=f"SELECT * FROM {{events}} WHERE key_arn IS NOT NULL AND error_code IS NULL AND {HUMAN} "
        "AND principal_account IS NOT NULL",
        ctes=_KEY_T0,
        groups="SELECT b.key_arn, b.principal_account, min(b.first_ts) AS first_ts, sum(b.n) AS calls, "
        "min(t.t0) AS key_t0, count(DISTINCT b.principal) AS principals FROM usage_agg b JOIN t ON b.key_arn = t.tk "
        f"WHERE {_HUMAN_USE} AND b.principal_account IS NOT NULL "
        f"GROUP BY b.key_arn, b.principal_account HAVING min(b.first_ts) >= min(t.t0) + {learn}",
        keys=("key_arn", "principal_account"),
    )


CROSS_ACCOUNT = Detection(
    "cross_account",
    base=f"SELECT * FROM {{events}} WHERE key_arn IS NOT NULL AND error_code IS NULL AND {HUMAN} "
    "AND principal_account IS NOT NULL AND key_account IS NOT NULL AND principal_account <> key_account",
    groups="SELECT b.key_arn, b.principal_account, min(b.key_account) AS key_account, sum(b.n) AS calls, "
    "count(DISTINCT b.principal) AS principals, min(b.first_ts) AS first_ts, max(b.last_ts) AS last_ts "
    f"FROM usage_agg b WHERE {_HUMAN_USE} AND b.principal_account IS NOT NULL AND b.key_account IS NOT NULL "
    "AND b.principal_account <> b.key_account GROUP BY b.key_arn, b.principal_account",
    keys=("key_arn", "principal_account"),
)


def all_detections(p: Params) -> list[Detection]:
    return [ADMIN, GRANTS, bursts(p), spikes(p), new_principals(p), new_accounts(p), CROSS_ACCOUNT]


@dataclass
class DetectionRows:
    groups: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    _index: dict[tuple[str, ...], dict[tuple[Any, ...], list[dict[str, Any]]]] = field(default_factory=dict)

    def evidence_for(self, keys: tuple[str, ...], group: dict[str, Any]) -> list[dict[str, Any]]:
        # Indexed once per key set: thousands of groups each scanning every evidence row would be quadratic.
        index = self._index.get(keys)
        if index is None:
            index = self._index[keys] = {}
            for e in self.evidence:
                index.setdefault(tuple(e[k] for k in keys), []).append(e)
        return list(index.get(tuple(group[k] for k in keys), ()))


def run(engine: Engine, p: Params, tick: Callable[[], None] | None = None) -> dict[str, DetectionRows]:
    """Every detection's groups, and evidence for the ones that found something; ``tick`` after each."""
    dets = all_detections(p)

    def groups(d: Detection) -> list[dict[str, Any]]:
        engine.materialize(d.table, d.groups_sql())
        return engine.query(f"SELECT * FROM {d.table}")

    found = dict(zip((d.name for d in dets), each(engine, groups, dets), strict=True))
    keyed = [d for d in dets if d.evidence_source == EVIDENCE and found[d.name]]
    if keyed:
        # One more pass over the events, for the keys with findings only; every evidence query reads that.
        keys = " UNION ".join(f"SELECT key_arn FROM {d.table}" for d in keyed)
        engine.materialize(EVIDENCE, f"SELECT * FROM events WHERE key_arn IN ({keys})")

    def evidence(d: Detection) -> list[dict[str, Any]]:
        rows = engine.query(d.evidence_sql(p.cap)) if found[d.name] else []
        if tick is not None:
            tick()
        return rows

    return {
        d.name: DetectionRows(found[d.name], rows) for d, rows in zip(dets, each(engine, evidence, dets), strict=True)
    }


SUMMARIES = {
    "coverage": COVERAGE,
    "key_usage": KEY_USAGE,
    "key_actions": KEY_ACTIONS,
    "principal_keys": PRINCIPAL_KEYS,
    "hourly": HOURLY,
    "use_pairs": USE_PAIRS,
    "context_use": CONTEXT_USE,
    "policy_events": POLICY_EVENTS,
}
