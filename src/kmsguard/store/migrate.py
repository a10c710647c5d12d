"""A small versioned migration runner (instead of alembic: one file, no env.py, runs on every open).

``MIGRATIONS`` is an ordered list of (version, description, function). Opening a store applies, in one
transaction, every migration newer than the version recorded in ``kmsguard_schema``. On PostgreSQL a
transaction-scoped advisory lock serialises two processes opening the same database at once (monitor and
serve started together); on SQLite the first write takes the database lock for the same effect.

Rule for later versions: never edit a shipped migration; add one. Version 1 builds the tables of version 1
from the metadata (``V1_TABLES``); a later table or change to ``schema.py`` must come with its own migration,
which writes its DDL out as it stands then.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column as C
from sqlalchemy import Connection, DateTime, ForeignKey, Integer, MetaData, String, Table, Text, select, text

from kmsguard.store.schema import NAMING, Base

Migration = tuple[int, str, Callable[[Connection], None]]

_meta = MetaData()
VERSION_TABLE = Table("kmsguard_schema", _meta, C("version", Integer, primary_key=True), C("description", String(200)))


# The tables version 1 created. Later tables are left to their own migration, so that a new database and an
# upgraded one go through the same steps and end up alike.
V1_TABLES = ("scans", "snapshots", "keys", "findings", "drift", "alert_state", "alerts", "deliveries", "mutes")


def _v1(conn: Connection) -> None:
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[name] for name in V1_TABLES])


def _v2(conn: Connection) -> None:
    # The table as it stood at version 2, written out rather than taken from schema.py, which may move on.
    meta = MetaData(naming_convention=NAMING)
    Table("scans", meta, C("id", Integer, primary_key=True))  # referenced only, never created here
    Table(
        "trail_usage",
        meta,
        C("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
        C("window_start", DateTime(timezone=True), nullable=True),
        C("window_end", DateTime(timezone=True), nullable=True),
        C("events", Integer, nullable=False),
        C("data", Text, nullable=False),
    ).create(conn)


MIGRATIONS: list[Migration] = [
    (1, "scans, snapshots, keys, findings, drift, alert outbox, mutes", _v1),
    (2, "trail_usage: the CloudTrail key usage summary of a scan", _v2),
]
LATEST = MIGRATIONS[-1][0]


class SchemaTooNew(Exception):
    """The database was migrated by a newer kmsguard: refuse rather than misread it."""


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, VERSION_TABLE.name):
        return 0
    found = conn.execute(select(VERSION_TABLE.c.version).order_by(VERSION_TABLE.c.version.desc())).first()
    return int(found[0]) if found else 0


def migrate(conn: Connection) -> list[int]:
    """Apply pending migrations inside the caller's transaction; return the versions applied."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7419305)"))  # arbitrary constant: "kmsguard schema"
    elif conn.dialect.name == "sqlite":
        # Take the write lock before looking: two processes opening a new file at once (monitor and serve)
        # would otherwise both see version 0 and both create the tables. busy_timeout makes the other wait.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    _meta.create_all(conn)
    have = current_version(conn)
    if have > LATEST:
        raise SchemaTooNew(f"the database is at schema version {have}; this kmsguard knows up to {LATEST}")
    applied = []
    for version, description, fn in MIGRATIONS:
        if version > have:
            fn(conn)
            conn.execute(VERSION_TABLE.insert().values(version=version, description=description))
            applied.append(version)
    return applied
