"""The native fast path: decompressed trail files -> an Arrow table, with no Python object per event.

``_fastdecode.scan`` (C, see ``_fastdecode.c``) reads plain ``{"Records": [...]}`` files strictly and writes the
cache's columns for the KMS records ``decode._Rows.add`` keeps straight into Arrow buffers, applying
``decode._extend``'s per-record rules as it goes (the row filter and its accounting, the first key in resources,
the "needed" rule for requestParameters, the S3 bucket of an encryption context, parameters as text for
non-cryptographic calls, ``_principals``, ``_account_of``). Arrow's string kernels cost more per row than the whole
scan, so they are used here only for what is rare: keys that the resources do not name (``_qualify``'s regular
expression, response keys, their accounts), over just those rows. The table then goes through
``cache.columns_to_table`` itself (time parsing, unreadable and implausible times), so both paths share that step.

A file the scanner does not read exactly (other shapes, fields of other types, escapes in needed strings,
duplicate members, malformed JSON or UTF-8 ...) is left alone, its stats untouched, for the msgspec path.
``decode_table`` does one file; ``decode_tables`` many at once, which small files need (each call has a fixed
cost of a few hundred microseconds, more than msgspec spends on a file of ten records). Without a C compiler at
install time the extension is missing, ``AVAILABLE`` is False, and no file is taken.

The names the scanner matches or writes (the KMS event source, the cryptographic calls, the caller types and the
principal prefixes) live in ``schema`` and go with every call (``_VOCABULARY``); the C keeps no copy. What it does
keep, because its hand-written matchers need them as literals (the partition pattern, JSON member names), the tests
hold equal to their homes (``arn.PARTITION_PATTERN``, decode's Structs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from kmsguard.arn import partition_of
from kmsguard.model import trail as trail_model
from kmsguard.trail import decode, schema
from kmsguard.trail.decode import FileStats
from kmsguard.trail.schema import ARROW_SCHEMA, COLUMNS

# The call and result layout this module uses; the extension says which one it has (a stale build is not used).
_ABI_VERSION = 4

# The names the scanner matches or writes, from their home in schema.py: the C keeps no copy of them. They go with
# every call, as one tuple in the order the extension names them (its VOCABULARY).
_VOCABULARY_BY_NAME: dict[str, bytes | tuple[bytes, ...]] = {
    "kms_source": schema.KMS_SOURCE.encode(),
    "crypto_actions": tuple(sorted(a.encode() for a in schema.CRYPTO_ACTIONS)),
    "service_caller": trail_model.SERVICE_CALLER.encode(),
    "assumed_role_caller": trail_model.ASSUMED_ROLE_CALLER.encode(),
    "service_principal_prefix": trail_model.SERVICE_PRINCIPAL_PREFIX.encode(),
    "unknown_service": trail_model.UNKNOWN_SERVICE.encode(),
    "account_principal_prefix": trail_model.ACCOUNT_PRINCIPAL_PREFIX.encode(),
}

_native: ModuleType | None
try:
    _native = importlib.import_module("kmsguard.trail._fastdecode")
except ImportError:  # no compiler at install time: the msgspec path does everything
    _native = None
if _native is not None and (
    getattr(_native, "ABI_VERSION", None) != _ABI_VERSION or set(_native.VOCABULARY) != set(_VOCABULARY_BY_NAME)
):
    _native = None

AVAILABLE = _native is not None

_VOCABULARY = tuple(_VOCABULARY_BY_NAME[name] for name in _native.VOCABULARY) if _native is not None else ()
_STRING = pa.string()
# decode._KEY_ID, anchored: re.fullmatch in RE2 terms ("$" is the end of the text there, as for fullmatch).
_KEY_ID_FULL = f"^(?:{decode._KEY_ID.pattern})$"
# decode._account_of: the 5th ":"-separated part when there are at least 6 parts and it is not empty ([^:] also
# matches a newline in RE2, as str.split does not care).
_ACCOUNT = r"^[^:]*:[^:]*:[^:]*:[^:]*:(?P<account>[^:]+):"


def decode_table(data: bytes, file: str, stats: FileStats) -> pa.Table | None:
    """The table ``cache.columns_to_table`` makes of ``decode.decode_into(data, file, stats, ...)``, with ``stats``
    updated the same way; None (``stats`` untouched) when the file is not for the fast path."""
    table, taken = decode_tables([(data, file, stats)])
    return table if taken[0] else None


def decode_tables(files: Sequence[tuple[bytes, str, FileStats]]) -> tuple[pa.Table, list[bool]]:
    """Many files at once (``decode_table`` has a fixed cost per call of about 200 µs, more than msgspec needs for
    a small file: gather small files and decode them together). Returns one table with the rows of the files it
    took, file after file in the given order, and which ones it took: their stats are updated as decode_table
    would; the others are untouched and need the msgspec path. File names must be distinct."""
    if len({f for _, f, _ in files}) != len(files):
        raise ValueError("decode_tables: file names must be distinct")
    if _native is None:
        return _empty_table(), [False] * len(files)
    data: list[bytes] = []
    names: list[bytes] = []
    for d, f, _ in files:
        try:
            name = f.encode()
        except UnicodeEncodeError:  # surrogates: not a valid Arrow string (nor for the msgspec path's pa.array)
            name, d = b"", b""
        # b"" is not a trail file: the scan leaves it to the msgspec path.
        data.append(d if type(d) is bytes else b"")
        names.append(name)
    per_file, n, cols, crypto_bits = _native.scan(tuple(data), tuple(names), _VOCABULARY)
    c = {name: _strings(n, col) for name, col in zip(_native.COLUMNS, cols, strict=True)}
    if c["key_arn"].null_count:
        _derived_keys(c)
    by_name: dict[str, Any] = {
        **c,
        "is_crypto": pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(crypto_bits)], null_count=0),
    }
    stats_by_file: dict[str, FileStats] = {}
    for counts, (_, file, stats) in zip(per_file, files, strict=True):
        if counts is None:
            continue
        # decode._Rows.add's accounting (skip reasons in the order the file first gave them).
        records, not_records, incomplete, rows, first_skip = counts
        stats.records += records
        stats.kms += rows
        reasons = [("not a CloudTrail record", not_records), ("KMS record without eventName or eventTime", incomplete)]
        if first_skip == 2:
            reasons.reverse()
        for reason, count in reasons:
            if count:
                stats.skip(reason, count)
        stats_by_file[file] = stats
    from kmsguard.trail import cache  # at call time: cache may import this module

    table = cache.columns_to_table(
        cast(decode.Columns, _ArrowColumns([by_name[name] for name in COLUMNS])), stats_by_file
    )
    return table, [counts is not None for counts in per_file]


def _empty_table() -> pa.Table:
    return pa.Table.from_batches([], schema=ARROW_SCHEMA)


def _strings(n: int, col: tuple[Any, Any, Any, int]) -> pa.Array:
    valid, offsets, data, nulls = col
    buffers = [None if valid is None else pa.py_buffer(valid), pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(_STRING, n, buffers, null_count=nulls)


def _derived_keys(c: dict[str, pa.Array]) -> None:
    """key_arn and key_account of the rows whose resources name no key (decode._extend): requestParameters.keyId
    qualified, else (non-cryptographic calls) responseElements.keyMetadata.arn, else its keyId qualified, each
    only when not empty (``or``). The scanner gives those inputs only where they decide the key."""
    regions, recipients = c["region"], c["recipient_account"]

    def qualify(ids: pa.Array, region: pa.Array, recipient: pa.Array) -> pa.Array:
        """decode._qualify: a bare key id as an ARN in the record's region and account (when both are given and not
        empty); anything else as it is."""
        placed = pc.fill_null(pc.and_(pc.not_equal(region, ""), pc.not_equal(recipient, "")), False)
        arn = pc.binary_join_element_wise(
            "arn:", _partitions(region), ":kms:", region, ":", recipient, ":key/", ids, ""
        )
        return pc.if_else(pc.and_kleene(pc.match_substring_regex(ids, _KEY_ID_FULL), placed), arn, ids)

    keys = c["key_arn"]
    params_ids = c["params_key_id"]
    keys = _patch(keys, pc.is_valid(params_ids), qualify, params_ids, regions, recipients)
    meta_arns, response_ids = c["response_key_arn"], c["response_key_id"]
    by_arn = _truthy(meta_arns)
    keys = _patch(keys, by_arn, _same, meta_arns)
    by_id = pc.and_(pc.invert(by_arn), _truthy(response_ids))
    keys = _patch(keys, by_id, qualify, response_ids, regions, recipients)
    # decode._key_accounts for those keys (the scanner gave the recipient there).
    derived = pc.and_(pc.is_null(c["key_arn"]), pc.is_valid(keys))
    c["key_account"] = _patch(c["key_account"], derived, _account_or, keys, recipients)
    c["key_arn"] = keys


def _partitions(regions: pa.Array) -> pa.Array:
    """Each row's partition (``arn.partition_of`` its region), worked out once per distinct region."""
    distinct = pc.unique(regions).drop_null()
    names = pa.array([partition_of(r) for r in distinct.to_pylist()], pa.string())
    return pc.take(names, pc.index_in(regions, value_set=distinct))


def _patch(values: pa.Array, mask: pa.Array, fn: Callable[..., pa.Array], *inputs: pa.Array) -> pa.Array:
    """``values`` with the rows where ``mask`` (no nulls) holds replaced by ``fn`` of those rows of ``inputs``: the
    work is proportional to the rows that need it, not to the file."""
    if not mask.true_count:
        return values
    return pc.replace_with_mask(values, mask, fn(*(pc.filter(x, mask) for x in inputs)))


def _truthy(values: pa.Array) -> pa.Array:
    """Not null and not empty (what Python's ``or`` keeps), without nulls."""
    return pc.fill_null(pc.not_equal(values, ""), False)


def _same(values: pa.Array) -> pa.Array:
    return values


def _account_or(keys: pa.Array, recipients: pa.Array) -> pa.Array:
    return pc.coalesce(pc.struct_field(pc.extract_regex(keys, _ACCOUNT), [0]), recipients)


class _ArrowColumns:
    """A ``decode.Columns`` look-alike whose columns are Arrow arrays (``pa.array`` returns them as they are)."""

    __slots__ = ("cols",)

    def __init__(self, cols: list[Any]) -> None:
        self.cols = cols


__all__ = ["AVAILABLE", "decode_table", "decode_tables"]
