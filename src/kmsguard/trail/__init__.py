"""CloudTrail analytics: what happened to each key, read from CloudTrail logs.

sources (files, S3, LookupEvents) -> decode (typed, per file, one process per core) -> cache (Parquet,
incremental) -> detections (SQL in DuckDB, or Spark SQL) -> findings (the scan's Finding model).
See docs/trail.md.
"""
