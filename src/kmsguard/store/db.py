"""Opening a store: URL resolution (default: SQLite in the user's data directory), engine, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kmsguard.store.migrate import migrate


class StoreError(Exception):
    """The database URL is wrong or the database cannot be opened; the message names the URL (no password)."""


def default_url() -> str:
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('kmsguard')) / 'kmsguard.db'}"


def normalize_url(url: str | None) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver kmsguard ships with)."""
    url = url or default_url()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class Store:
    """An open, migrated database. ``session()`` gives a transaction: committed on success, else rolled back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: the dashboard reads while the monitor writes. busy_timeout: wait for the writer, don't fail.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating as needed) the store at ``url``. Raises StoreError."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StoreError(f"--db: {url!r} is not a database URL (sqlite:///PATH or postgresql://...)") from e
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise StoreError(f"--db: cannot use {safe_url(url)}: {e}") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as conn:
            migrate(conn)
    except SQLAlchemyError as e:
        engine.dispose()
        raise StoreError(f"cannot open the store {safe_url(url)}: {str(e).splitlines()[0]}") from e
    return Store(engine)
