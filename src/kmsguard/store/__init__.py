"""The store: scans, keys, findings, drift, alerts and mutes over time (SQLite by default, PostgreSQL)."""

from kmsguard.store.db import Store, StoreError, default_url, normalize_url, open_store

__all__ = ["Store", "StoreError", "default_url", "normalize_url", "open_store"]
