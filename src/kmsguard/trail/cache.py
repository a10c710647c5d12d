"""The columnar cache: KMS events as Parquet, filled incrementally, one worker process per core.

Layout of a cache directory::

    manifest.json        every file ever ingested: uri -> size, mtime, the part holding its rows, its stats
    parts/<id>.parquet   one part per unit of work (a group of files), written by the worker that read them

A re-run lists the sources, keeps the files whose (size, mtime) the manifest already has, and reads only
the rest. A file that changed invalidates its part: the part is deleted and every file it held is read
again, so no event is ever counted twice. Parts the manifest does not name (a run that died before saving
it) are deleted on the next run for the same reason. Files are the unit of work: each worker decodes whole
files and writes its own part, so rows never cross a process boundary.

A file that fails (an S3 error, a truncated or corrupt file) is never recorded as done: the next run reads it
again, so an error that has passed does not hide the file for good, and none of its rows stay in the part (a
file that failed after N records leaves none of them, rather than an unknown share of its events).
"""

from __future__ import annotations

import gc
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kmsguard import gunzip
from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.aws.options import AwsOptions
from kmsguard.trail import decode, fastpath
from kmsguard.trail.decode import FileStats, Row
from kmsguard.trail.schema import ARROW_SCHEMA, COLUMNS
from kmsguard.trail.sources import LogFile, open_s3, path_facts

# 2: rows are cryptographic by trail/schema.CRYPTO_ACTIONS, which gained Encapsulate and Decapsulate; a cache of
# version 1 is read again from the logs rather than kept with those calls counted as not cryptographic.
MANIFEST_VERSION = 2
# Work is cut into units of about this many compressed bytes (and at most MAX_FILES_PER_UNIT files), and into
# at least a few units per worker so that one slow unit does not leave the other cores idle.
UNIT_BYTES = 24 * 1024 * 1024
MAX_FILES_PER_UNIT = 2000
# Below this much input, start no processes: spawning workers costs more than decoding a few MB.
IN_PROCESS_BYTES = 8 * 1024 * 1024
# zstd at its fastest level: about the size of the default level at a fraction of the cost; row groups as
# large as a batch, so DuckDB reads few, long column chunks. Dictionary encoding only where values repeat
# (hashing unique ids and times only to fall back to plain encoding costs a quarter of the write), and
# min/max statistics only on the columns the run's filters can skip row groups by.
_UNIQUE_COLUMNS = {"event_time", "event_ts", "event_id", "params", "context_arn"}
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": [f.name for f in ARROW_SCHEMA if f.name not in _UNIQUE_COLUMNS],
    "write_statistics": ["event_time", "event_ts", "region", "recipient_account"],
}
ROW_GROUP = 1 << 20
# Columns are turned into Arrow every this many rows (small files are gathered first: each conversion has a cost).
CONVERT_ROWS = 1000
# Decompressed bytes of files handed to the native scanner in one call, and the size of an event for guessing
# how many rows they hold.
FAST_BATCH_BYTES = 8 * 1024 * 1024
APPROX_EVENT_BYTES = 1400

Progress = Callable[[int], None]
# What reading and inflating one file raises when the file (not the run) is at fault.
_FILE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, *gunzip.GZIP_ERRORS)
# Runs units of work elsewhere (Spark tasks): [(files, part path, aws)] -> each unit's file stats.
Runner = Callable[[list[tuple[list[LogFile], str, AwsOptions | None]]], list[list[FileStats]]]


@dataclass
class Manifest:
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, cache_dir: Path) -> Manifest:
        path = cache_dir / "manifest.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError):
            # A damaged manifest cannot vouch for any part: start over rather than double-count.
            return cls(path)
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            return cls(path)
        return cls(path, dict(data.get("files", {})))

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "files": self.files}), encoding="utf-8")
        os.replace(tmp, self.path)

    def parts(self) -> set[str]:
        return {e["part"] for e in self.files.values() if e.get("part")}


@dataclass
class IngestReport:
    files_listed: int = 0
    files_pruned: int = 0  # left out by --since/--until/--account/--region from their path
    files_read: int = 0  # read in this run
    files_cached: int = 0  # already in the cache
    stats: list[FileStats] = field(default_factory=list)  # every file in scope (read now or earlier)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.stats)

    @property
    def kms_events(self) -> int:
        return sum(s.kms for s in self.stats)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.stats)

    @property
    def failed(self) -> list[FileStats]:
        return [s for s in self.stats if s.error]

    @property
    def with_skips(self) -> list[FileStats]:
        return [s for s in self.stats if s.skipped or s.error]


# --- rows -> Arrow ---------------------------------------------------------------------------------------------


# Times no CloudTrail event has: before the service began, more than a day ahead of the clock (clock skew and
# time zones are minutes, not days), or more than two days from the day the file's path names (CloudTrail delivers
# within minutes). Rows with such times are skipped, with the reason, not analysed: two records dated 0001 and
# 9999 would otherwise stretch every hourly table of the analysis over ten thousand years.
CLOUDTRAIL_BEGAN = datetime(2013, 11, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
PATH_SLACK = timedelta(days=2)
BEFORE_CLOUDTRAIL = "eventTime before CloudTrail began (2013-11-01)"
IN_THE_FUTURE = "eventTime more than a day in the future"
FAR_FROM_PATH = "eventTime more than 2 days from the date in the file's path"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _parse_time(text: str) -> int | None:
    """Epoch microseconds of a time that is not CloudTrail's ``YYYY-MM-DDTHH:MM:SSZ`` (exports: fractions, offsets,
    a space); UTC when it names no offset. Arithmetic on the offset, not a conversion: an offset that carries year
    9999 into 10000 gives a time to judge, not an error."""
    try:
        t = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _US


def rows_to_table(rows: Sequence[Row], stats: dict[str, FileStats]) -> pa.Table:
    """Rows as an Arrow table in ARROW_SCHEMA; a row whose time cannot be read is dropped and counted."""
    cols = decode.Columns()
    if rows:
        cols.cols = [list(c) for c in zip(*rows, strict=True)]
    return columns_to_table(cols, stats)


_TYPES = [ARROW_SCHEMA.field(name).type for name in COLUMNS[1:]]


def columns_to_table(cols: decode.Columns, stats: dict[str, FileStats]) -> pa.Table:
    """Columns as an Arrow table in ARROW_SCHEMA. A row whose time cannot be read, or is one no CloudTrail event
    has (``CLOUDTRAIL_BEGAN``), is dropped and counted in its file's stats with the reason."""
    data = cols.cols
    times = pa.array(data[0], pa.string())
    ts = pc.strptime(times, format="%Y-%m-%dT%H:%M:%SZ", unit="us", error_is_null=True).cast(pa.int64())
    if ts.null_count:
        ts = _reparse(ts, times)
    secs = pc.divide(ts, 1_000_000)
    arrays = [ts.cast(pa.timestamp("us", tz="UTC")), secs]
    arrays += [pa.array(col, typ) for col, typ in zip(data[1:], _TYPES, strict=True)]
    table = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    if not len(secs):
        return table
    began, latest = _seconds(CLOUDTRAIL_BEGAN), _seconds(datetime.now(UTC) + FUTURE_SLACK)
    bad = pc.fill_null(_outside(secs, arrays[-1], began, latest), True)  # null: the time could not be read
    if not bad.true_count:
        return table
    reasons = [
        "unreadable eventTime"
        if t is None
        else BEFORE_CLOUDTRAIL
        if t < began
        else IN_THE_FUTURE
        if t > latest
        else FAR_FROM_PATH
        for t in secs.filter(bad).to_pylist()
    ]
    for f, reason in zip(arrays[-1].filter(bad).to_pylist(), reasons, strict=True):
        st = stats.get(f)
        if st is not None:
            st.skip(reason)
            st.kms -= 1
    return table.filter(pc.invert(bad))


def _reparse(ts: pa.Array, times: pa.Array) -> pa.Array:
    """``ts`` with the rows strptime could not read parsed by ``_parse_time`` (null when that cannot either)."""
    missing = pc.is_null(ts)
    texts = times.filter(missing).to_pylist()
    parsed = pa.array([_parse_time(t) if t is not None else None for t in texts], pa.int64())
    return pc.replace_with_mask(ts, missing, parsed)


def _outside(secs: pa.Array, files: pa.Array, began: int, latest: int) -> pa.Array:
    """Which rows' times (epoch seconds) lie outside their file's ``_window`` (null where the time is). A file's
    rows come in runs, so each run's window is worked out once and the comparison is vectorised."""
    runs = pc.run_end_encode(files)
    names = runs.values.to_pylist()
    windows = {f: _window(f, began, latest) for f in set(names)}

    def bound(i: int) -> pa.Array:
        per_run = pa.array([windows[f][i] for f in names], pa.int64())
        return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(runs.run_ends, per_run))

    return pc.or_(pc.less(secs, bound(0)), pc.greater(secs, bound(1)))


def _window(file: str, began: int, latest: int) -> tuple[int, int]:
    """The epoch seconds an event of ``file`` may have: from CloudTrail's start to a day ahead, and within two
    days of the date its path names, when it names one."""
    _, _, start, end = path_facts(file)
    if start is None or end is None:
        return began, latest
    slack = int(PATH_SLACK.total_seconds())
    return max(began, _seconds(start) - slack), min(latest, _seconds(end) + slack)


def _seconds(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(seconds=1)


# --- one unit of work (runs in a worker process) ------------------------------------------------------------


def _read_file(f: LogFile, aws: AwsOptions | None) -> tuple[bytes | None, Iterable[bytes] | None]:
    """The file's decompressed bytes, or (for a huge file) an iterator of its raw chunks to stream. A file is
    huge by its size, or by what it inflates to (``gunzip.expand`` stops at the threshold: a gzip bomb is
    streamed, never inflated whole)."""
    if f.uri.startswith("s3://"):
        body = open_s3(f.uri, aws or AwsOptions())
        if f.size > decode.STREAM_THRESHOLD // 8:
            return None, body.iter_chunks(8 * 1024 * 1024)
        raw = body.read()
        data = _expand(raw)
        return (data, None) if data is not None else (None, _pieces(raw))
    if f.size <= decode.STREAM_THRESHOLD:
        with open(f.uri, "rb") as fh:
            data = _expand(fh.read())
        if data is not None:
            return data, None
    fh = open(f.uri, "rb")  # noqa: SIM115 - closed by _closing_chunks when streaming ends
    return None, _closing_chunks(fh)


def _expand(raw: bytes) -> bytes | None:
    """``raw`` inflated whole, or None for the streaming decoder: when it inflates past the threshold, and when
    it is truncated or corrupt (streamed, it fails the same way, saying after how many records)."""
    try:
        return gunzip.expand(raw, decode.STREAM_THRESHOLD)
    except gunzip.GZIP_ERRORS:
        return None


def _pieces(raw: bytes, size: int = 8 * 1024 * 1024) -> Iterable[bytes]:
    """Compressed bytes already read, in the chunks the streaming decoder takes."""
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


def _closing_chunks(fh: Any) -> Iterable[bytes]:
    with fh:
        yield from decode.read_chunks(fh.read)


def ingest_unit(files: list[LogFile], part_path: str | None, aws: AwsOptions | None) -> list[FileStats]:
    """Decode ``files`` and write their KMS events to ``part_path`` (no file when there are none)."""
    # The cyclic GC would walk every string and list held in the pending columns again and again (a large
    # share of the run); decoding creates no reference cycles, so it is off while a unit is decoded.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _ingest_unit(files, part_path, aws)
    finally:
        if gc_was_enabled:
            gc.enable()


def _ingest_unit(files: list[LogFile], part_path: str | None, aws: AwsOptions | None) -> list[FileStats]:
    stats_by_file: dict[str, FileStats] = {}
    writer: pq.ParquetWriter | None = None
    cols = decode.Columns()
    tables: list[pa.Table] = []
    pending = 0
    gathered: list[tuple[bytes, str, FileStats]] = []  # decompressed files waiting for the native fast path
    gathered_bytes = 0

    def convert() -> None:
        # Columns become Arrow right after their file is decoded, while its strings are still in the CPU
        # cache: converting (and freeing) a whole batch of scattered strings later costs twice as much.
        nonlocal pending
        if len(cols):
            table = columns_to_table(cols, stats_by_file)
            cols.clear()
            tables.append(table)
            pending += table.num_rows

    def add_table(table: pa.Table) -> None:
        nonlocal pending
        if table.num_rows:
            tables.append(table)
            pending += table.num_rows

    def decode_gathered() -> None:
        # The native scanner takes many files per call (its fixed cost per call is more than msgspec spends
        # on a small file); what it does not take goes through msgspec, file by file.
        nonlocal gathered_bytes
        if not gathered:
            return
        table, taken = fastpath.decode_tables(gathered)
        add_table(table)
        for (data, name, st), ok in zip(gathered, taken, strict=True):
            if not ok:
                _decode_file(data, name, st, cols)
        gathered.clear()
        gathered_bytes = 0
        if len(cols) >= CONVERT_ROWS:
            convert()

    def fast_piece(doc: bytes, name: str, st: FileStats) -> bool:
        table = fastpath.decode_table(doc, name, st)
        if table is None:
            return False
        add_table(table)
        return True

    def flush() -> None:
        nonlocal writer, pending
        decode_gathered()
        convert()
        if not tables:
            return
        table = pa.concat_tables(tables)
        tables.clear()
        pending = 0
        if part_path is None or table.num_rows == 0:
            return
        if writer is None:
            Path(part_path).parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(part_path + ".tmp", ARROW_SCHEMA, **PARQUET_OPTIONS)
        writer.write_table(table, row_group_size=ROW_GROUP)

    for f in files:
        st = FileStats(f.uri, size=f.size)
        stats_by_file[f.uri] = st
        try:
            data, chunks = _read_file(f, aws)
            if data is not None and fastpath.AVAILABLE:
                gathered.append((data, f.uri, st))
                gathered_bytes += len(data)
                if gathered_bytes >= FAST_BATCH_BYTES:
                    decode_gathered()
            elif data is not None:
                _decode_file(data, f.uri, st, cols)
            elif chunks is not None:
                fast = fast_piece if fastpath.AVAILABLE else None
                for _ in decode.stream_into(chunks, f.uri, st, cols, fast):
                    if len(cols) >= CONVERT_ROWS:  # Arrow holds rows in a fraction of their Python objects' memory
                        convert()
                    if pending + len(cols) >= decode.BATCH_ROWS:
                        flush()
            del data
        except AWS_CALL_ERRORS as e:  # S3 refused or failed: reported on the file, read again next run
            code, message = error_code(e)
            st.error = f"S3 GetObject failed with {code} ({message})"
        except _FILE_ERRORS as e:  # truncated/corrupt gzip, unreadable file
            st.error = _file_error(e)
        except Exception as e:  # anything else: reported on the file, never fatal
            st.error = f"{type(e).__name__} ({e})"
        if len(cols) >= CONVERT_ROWS:
            convert()
        if pending + len(cols) + gathered_bytes // APPROX_EVENT_BYTES >= decode.BATCH_ROWS:
            flush()
    flush()
    failed = {st.file for st in stats_by_file.values() if st.error}
    for name in failed:
        stats_by_file[name].kms = 0  # its rows are dropped below: the counts say what the cache holds
    if writer is not None and part_path is not None:
        writer.close()
        tmp = part_path + ".tmp"
        if failed and not _drop_files(tmp, failed):
            os.unlink(tmp)  # only rows of failed files: no part
        else:
            os.replace(tmp, part_path)
    return list(stats_by_file.values())


def _drop_files(path: str, files: set[str]) -> bool:
    """Rewrite the part at ``path`` without the rows of ``files`` (files that failed part-way: a streamed file
    may have had rows written before its failure); False when no row is left. Batch by batch: memory stays
    bounded whatever the part's size."""
    dropped = pa.array(sorted(files), pa.string())
    kept = 0
    out = path + ".keep"
    source = pq.ParquetFile(path)
    try:
        with pq.ParquetWriter(out, ARROW_SCHEMA, **PARQUET_OPTIONS) as writer:
            for batch in source.iter_batches(batch_size=ROW_GROUP):
                table = pa.Table.from_batches([batch]).cast(ARROW_SCHEMA)
                table = table.filter(pc.invert(pc.is_in(table.column("file"), value_set=dropped)))
                if table.num_rows:
                    writer.write_table(table, row_group_size=ROW_GROUP)
                    kept += table.num_rows
    finally:
        source.close()
    if kept:
        os.replace(out, path)
    else:
        os.unlink(out)
    return kept > 0


def _decode_file(data: bytes, name: str, st: FileStats, cols: decode.Columns) -> None:
    """The msgspec decoder on one file; what it raises (invalid UTF-8 in a field, nesting too deep for the
    generic parser) fails that file, with its reason, and no other."""
    try:
        decode.decode_into(data, name, st, cols)
    except (ValueError, RecursionError) as e:
        st.error = f"corrupt or unreadable ({type(e).__name__}: {e})"


def _file_error(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if isinstance(e, gunzip.GZIP_ERRORS) or "end-of-stream" in text or "truncated" in text.lower():
        return decode.truncated_gzip(0, text)  # inflated whole before any record was read
    if isinstance(e, OSError) and e.strerror:
        return f"cannot read: {e.strerror}"
    return f"corrupt or unreadable ({text})"


# --- the ingest run ---------------------------------------------------------------------------------------------


def plan_units(files: list[LogFile], workers: int) -> list[list[LogFile]]:
    """Group files into units of similar size, biggest first (better packing at the end of the run)."""
    total = sum(f.size for f in files)
    target = max(1, min(UNIT_BYTES, total // max(1, workers * 4) + 1))
    units: list[list[LogFile]] = []
    cur: list[LogFile] = []
    cur_bytes = 0
    for f in sorted(files, key=lambda f: -f.size):
        cur.append(f)
        cur_bytes += f.size
        if cur_bytes >= target or len(cur) >= MAX_FILES_PER_UNIT:
            units.append(cur)
            cur, cur_bytes = [], 0
    if cur:
        units.append(cur)
    return units


def ingest(
    files: list[LogFile],
    cache_dir: Path,
    *,
    aws: AwsOptions | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    listed: int | None = None,
    runner: Runner | None = None,
) -> tuple[IngestReport, list[str]]:
    """Bring the cache up to date with ``files``; returns the report and the parts that hold their events."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(cache_dir)
    report = IngestReport(files_listed=listed if listed is not None else len(files))
    report.files_pruned = report.files_listed - len(files)

    # A changed file invalidates its part and every file in it. So does a file recorded with an error (a cache
    # written before failed files were left out of the manifest): its part may hold rows of its failed read.
    changed = {
        f.uri
        for f in files
        if f.uri in manifest.files
        and (
            tuple(manifest.files[f.uri]["identity"]) != f.identity
            or manifest.files[f.uri].get("stats", {}).get("error")
        )
    }
    stale_parts = {manifest.files[u]["part"] for u in changed if manifest.files[u].get("part")}
    for uri in [u for u, e in manifest.files.items() if u in changed or e.get("part") in stale_parts]:
        del manifest.files[uri]
    _remove_orphans(cache_dir, manifest.parts())

    todo = [f for f in files if f.uri not in manifest.files]
    report.files_read = len(todo)
    report.files_cached = len(files) - len(todo)
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    units = plan_units(todo, n_workers)
    results: list[tuple[str | None, list[FileStats]]] = []
    if runner is not None:
        jobs = [(unit, str(cache_dir / _part_name(cache_dir)), aws) for unit in units]
        for (unit, part, _), stats in zip(jobs, runner(jobs), strict=True):
            results.append((str(Path(part).relative_to(cache_dir)), stats))
            if progress:
                progress(len(unit))
    elif n_workers <= 1 or len(units) <= 1 or sum(f.size for f in todo) < IN_PROCESS_BYTES:
        for unit in units:
            part = _part_name(cache_dir)
            stats = ingest_unit(unit, str(cache_dir / part), aws)
            results.append((part, stats))
            if progress:
                progress(len(unit))
    else:
        # spawn, not fork: the parent may hold DuckDB/Arrow/boto threads, which fork would copy half-alive.
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
            futures = {}
            for unit in units:
                part = _part_name(cache_dir)
                futures[pool.submit(ingest_unit, unit, str(cache_dir / part), aws)] = (part, len(unit))
            for fut in as_completed(futures):
                part, n = futures[fut]
                results.append((part, fut.result()))
                if progress:
                    progress(n)

    by_uri = {f.uri: f for f in todo}
    failed: dict[str, FileStats] = {}
    for done_part, stats in results:
        exists = done_part is not None and (cache_dir / done_part).exists()
        for st in stats:
            if st.error:
                failed[st.file] = st  # not done: read again next run (ingest_unit kept none of its rows)
                continue
            manifest.files[st.file] = {
                "identity": list(by_uri[st.file].identity),
                "part": done_part if exists else None,
                "stats": asdict(st),
            }
    manifest.save()

    in_scope = [manifest.files[f.uri] for f in files if f.uri in manifest.files]
    report.stats = [
        failed[f.uri] if f.uri in failed else FileStats(**manifest.files[f.uri]["stats"])
        for f in files
        if f.uri in failed or f.uri in manifest.files
    ]
    parts = sorted({e["part"] for e in in_scope if e.get("part")})
    return report, [str(cache_dir / p) for p in parts]


def write_records(records: Iterable[dict[str, Any]], name: str, cache_dir: Path) -> tuple[FileStats, str | None]:
    """Events that come as records rather than files (LookupEvents): decoded and written to their own part,
    replaced on every run (the API has no file identity to be incremental on)."""
    st = FileStats(name)
    cols = decode.Columns()
    decode._Rows(name, st, cols).add(decode.records_from_objects(records, st))
    table = columns_to_table(cols, {name: st})
    safe = "".join(c if c.isalnum() else "_" for c in name)
    path = cache_dir / "lookup" / f"{safe}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if table.num_rows == 0:
        path.unlink(missing_ok=True)
        return st, None
    pq.write_table(table, path, row_group_size=ROW_GROUP, **PARQUET_OPTIONS)
    return st, str(path)


def _part_name(cache_dir: Path) -> str:
    return f"parts/{uuid.uuid4().hex}.parquet"


def _remove_orphans(cache_dir: Path, keep: set[str]) -> None:
    parts = cache_dir / "parts"
    if not parts.is_dir():
        return
    for p in parts.iterdir():
        rel = f"parts/{p.name}"
        if rel not in keep:
            p.unlink(missing_ok=True)


__all__ = ["IngestReport", "Manifest", "columns_to_table", "ingest", "ingest_unit", "rows_to_table", "write_records"]
