"""Fixtures: a SQLite file and a throwaway PostgreSQL cluster (tests/pg.py)."""

from pg import db_url, pg_cluster

__all__ = ["db_url", "pg_cluster"]
