"""The typed CloudTrail decoder: bytes of one log file -> rows of KMS events, and what could not be read.

Speed comes from materialising only what the detections need. ``Record`` names a handful of fields; msgspec
skips the rest in C. ``requestParameters`` and ``responseElements`` differ per AWS service (a field that is a
string for KMS may be an object for S3), so they are kept as ``msgspec.Raw`` (unparsed bytes) and decoded,
with KMS's own types, only for KMS records that need them. A file that still does not fit the schema (a
field of another type, a bare array, EventBridge envelopes) goes through a full generic parse whose
records are cleaned and decoded one by one, so nothing is dropped for want of a fast path.

Shapes read: ``{"Records": [...]}`` (trail files), a bare JSON array of records, one record, JSON lines
(CloudTrail Lake and SIEM exports; EventBridge ``{"detail": {...}}`` envelopes too), each gzipped or not.
A file larger than ``STREAM_THRESHOLD`` is streamed record by record so memory stays bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from kmsguard.arn import build as build_arn
from kmsguard.arn import parse as parse_arn
from kmsguard.gunzip import GZIP_ERRORS, inflate
from kmsguard.model.trail import (
    ACCOUNT_PRINCIPAL_PREFIX,
    ASSUMED_ROLE_CALLER,
    SERVICE_CALLER,
    SERVICE_PRINCIPAL_PREFIX,
    UNKNOWN_SERVICE,
)
from kmsguard.trail.schema import COLUMNS, CRYPTO_ACTIONS, KMS_SOURCE

_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, *GZIP_ERRORS)

# What msgspec raises on bytes it cannot read. Invalid UTF-8 in a string has come out as UnicodeDecodeError
# (msgspec 0.22) and as a DecodeError saying so (0.23): kmsguard catches both and names the cause itself.
_UNREADABLE: tuple[type[Exception], ...] = (msgspec.DecodeError, UnicodeDecodeError)

# Files whose decompressed size exceeds this are streamed in pieces (bounded memory).
STREAM_THRESHOLD = 64 * 1024 * 1024
# A "record" larger than this is not CloudTrail's (its events are at most a few hundred KB): the file fails rather
# than being buffered whole, which a gzip bomb of one endless record or string would make unbounded.
MAX_RECORD_BYTES = 16 * 1024 * 1024
# Rows are handed on in batches of at most this many, so a huge file never holds all its rows at once.
BATCH_ROWS = 100_000


class SessionIssuer(msgspec.Struct, gc=False):
    arn: str | None = None


class SessionContext(msgspec.Struct, gc=False):
    sessionIssuer: SessionIssuer | None = None


class UserIdentity(msgspec.Struct, gc=False):
    type: str | None = None
    arn: str | None = None
    accountId: str | None = None
    invokedBy: str | None = None
    sessionContext: SessionContext | None = None


class ResourceRef(msgspec.Struct, gc=False):
    ARN: str | None = None


class Record(msgspec.Struct, gc=False):
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    awsRegion: str | None = None
    eventID: str | None = None
    recipientAccountId: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    userIdentity: UserIdentity | None = None
    resources: list[ResourceRef] | None = None
    requestParameters: msgspec.Raw = msgspec.Raw()
    responseElements: msgspec.Raw = msgspec.Raw()


class Envelope(msgspec.Struct, gc=False):
    Records: list[Record] | None = None


class KmsParams(msgspec.Struct, gc=False):
    keyId: str | None = None
    granteePrincipal: str | None = None
    aliasName: str | None = None
    encryptionContext: dict[str, str] | None = None


class KeyMetadata(msgspec.Struct, gc=False):
    arn: str | None = None


class KmsResponse(msgspec.Struct, gc=False):
    keyId: str | None = None
    keyMetadata: KeyMetadata | None = None


_ENVELOPE = msgspec.json.Decoder(Envelope)
_RECORD = msgspec.json.Decoder(Record)
_PARAMS = msgspec.json.Decoder(KmsParams)
_PARAMS_LIST = msgspec.json.Decoder(list[KmsParams | None])
_RESPONSE = msgspec.json.Decoder(KmsResponse)
_ANY = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder()

_STR_FIELDS = (
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "eventID",
    "recipientAccountId",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
)
_KEY_ID = re.compile(r"(?:mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32}")

Row = tuple[Any, ...]


@dataclass
class FileStats:
    """What one file gave: every record counts either as read (KMS or not) or as skipped, with a reason."""

    file: str
    size: int = 0
    records: int = 0  # records parsed (any service)
    kms: int = 0  # KMS records kept
    skipped: int = 0  # records that could not be used (missing fields, not an object, bad time ...)
    error: str | None = None  # why the file (or its tail) could not be read
    fallback: bool = False  # did not fit the typed schema: read through the generic parser
    skip_reasons: dict[str, int] | None = None

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        if self.skip_reasons is None:
            self.skip_reasons = {}
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + n


class Columns:
    """KMS events column by column (``schema.COLUMNS`` order): one list per column, extended file after file.

    Built with one list comprehension per column over a file's records rather than one tuple per row: no
    per-event Python function call, no transposition, and lists that go straight into ``pa.array``."""

    __slots__ = ("cols",)

    def __init__(self) -> None:
        self.cols: list[list[Any]] = [[] for _ in COLUMNS]

    def __len__(self) -> int:
        return len(self.cols[0])

    def rows(self) -> list[Row]:
        return list(zip(*self.cols, strict=True))

    def clear(self) -> None:
        self.cols = [[] for _ in COLUMNS]


class _Rows:
    """Turns Records into columns (see schema.COLUMNS) for one file, with the file's accounting."""

    __slots__ = ("cols", "file", "stats")

    def __init__(self, file: str, stats: FileStats, cols: Columns | None = None) -> None:
        self.file = file
        self.stats = stats
        self.cols = cols if cols is not None else Columns()

    def add(self, records: Iterable[Record]) -> None:
        recs = records if isinstance(records, list) else list(records)
        stats = self.stats
        kept = [r for r in recs if r.eventSource == KMS_SOURCE and r.eventName is not None and r.eventTime is not None]
        if len(kept) != len(recs):  # something to account for (other services, incomplete records)
            kept = []
            for rec in recs:
                if rec.eventSource != KMS_SOURCE:
                    if rec.eventSource is None and rec.eventName is None and rec.eventTime is None:
                        stats.skip("not a CloudTrail record")
                    continue
                if rec.eventName is None or rec.eventTime is None:
                    stats.skip("KMS record without eventName or eventTime")
                    continue
                kept.append(rec)
        stats.records += len(recs)
        stats.kms += len(kept)
        if kept:
            _extend(self.cols.cols, kept, self.file)

    def take(self) -> list[Row]:
        rows = self.cols.rows()
        self.cols.clear()
        return rows


def _account_of(key: str) -> str | None:
    parts = key.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _key_accounts(keys: list[str | None], recipients: list[str | None]) -> list[str | None]:
    """The account in each key ARN, else the record's recipient account."""
    acct: dict[str | None, str | None] = {k: _account_of(k) for k in set(keys) if k is not None}
    acct[None] = None
    return [acct[k] or fallback for k, fallback in zip(keys, recipients, strict=True)]


def _principals(idents: list[UserIdentity | None]) -> list[str | None]:
    """The stable identity of each caller: the role of an assumed-role session, ``service:NAME`` for AWS
    services, ``account:ID`` for AWSAccount callers (other accounts are logged without an ARN)."""
    return [
        None
        if i is None
        else SERVICE_PRINCIPAL_PREFIX + (i.invokedBy or UNKNOWN_SERVICE)
        if i.type == SERVICE_CALLER
        else (i.sessionContext.sessionIssuer.arn or i.arn)
        if i.type == ASSUMED_ROLE_CALLER and i.sessionContext is not None and i.sessionContext.sessionIssuer
        else i.arn
        if i.arn is not None
        else ACCOUNT_PRINCIPAL_PREFIX + i.accountId
        if i.accountId is not None
        else None
        for i in idents
    ]


def _first_key(res: list[ResourceRef] | None) -> str | None:
    if res:
        for r in res:
            a = r.ARN
            if a is not None and ":key/" in a:
                return a
    return None


def _resource_keys(recs: list[Record]) -> list[str | None]:
    """The first KMS key ARN in each record's resources (one resource, the key, is the common case)."""
    res_lists = [r.resources for r in recs]
    return [
        a
        if rs is not None and len(rs) == 1 and (a := rs[0].ARN) is not None and ":key/" in a
        else _first_key(rs)
        if rs
        else None
        for rs in res_lists
    ]


def _decode_params(raws: list[msgspec.Raw]) -> list[KmsParams | None]:
    """requestParameters of many records in one decoder call; one by one (with cleaning) if any does not fit."""
    try:
        return _PARAMS_LIST.decode(b"[" + b",".join(raws) + b"]")
    except msgspec.DecodeError:
        return [_params(r) for r in raws]


def _extend(cols: list[list[Any]], recs: list[Record], file: str) -> None:
    """Append the columns of ``recs`` (KMS records with eventName and eventTime) to ``cols``."""
    names: list[str] = [r.eventName for r in recs]  # type: ignore[misc]  # checked by the caller
    regions = [r.awsRegion for r in recs]
    recipients = [r.recipientAccountId for r in recs]
    idents = [r.userIdentity for r in recs]
    keys = _resource_keys(recs)
    crypto = [n in CRYPTO_ACTIONS for n in names]
    n = len(recs)
    params_text: list[str | None] = [None] * n
    grantee: list[str | None] = [None] * n
    alias: list[str | None] = [None] * n
    context: list[str | None] = [None] * n

    # requestParameters are decoded (all at once) only where something needs them: the key is not in
    # resources, the event is an administrative one (its parameters are evidence), or the encryption
    # context may name a resource.
    idx = [i for i, r in enumerate(recs) if r.requestParameters]
    if idx:
        raws = [recs[i].requestParameters for i in idx]
        for i, raw, p in zip(idx, raws, _decode_params(raws), strict=True):
            is_crypto = crypto[i]
            if p is not None:
                ctx_arn = None
                if p.encryptionContext:
                    for v in p.encryptionContext.values():
                        if v.startswith("arn:"):
                            # An S3 object: its bucket is the resource that carries tags (and keeps this small).
                            ctx_arn = v.split("/", 1)[0] if _is_s3(v) else v
                            break
                if keys[i] is None or not is_crypto or ctx_arn is not None:
                    needed = True
                elif p.granteePrincipal is not None or p.aliasName is not None:
                    needed = b"arn:" in bytes(raw)  # rare: decide exactly as a per-record check would
                else:
                    needed = False  # a cryptographic call on a known key whose parameters name no resource
                if needed:
                    if keys[i] is None and p.keyId is not None:
                        keys[i] = _qualify(p.keyId, recs[i])
                    context[i] = ctx_arn
                    grantee[i] = p.granteePrincipal
                    alias[i] = p.aliasName
            if not is_crypto:
                text = bytes(raw).decode("utf-8", "replace")
                params_text[i] = None if text == "null" else text
    for i, rec in enumerate(recs):
        if keys[i] is None and not crypto[i] and rec.responseElements:
            resp = _response(rec.responseElements)
            if resp is not None:
                keys[i] = (resp.keyMetadata.arn if resp.keyMetadata else None) or (
                    _qualify(resp.keyId, rec) if resp.keyId else None
                )

    cols[0] += [r.eventTime for r in recs]
    cols[1] += names
    cols[2] += [r.eventID for r in recs]
    cols[3] += regions
    cols[4] += recipients
    cols[5] += keys
    cols[6] += _key_accounts(keys, recipients)
    cols[7] += _principals(idents)
    cols[8] += [i.arn if i is not None else None for i in idents]
    cols[9] += [i.type if i is not None else None for i in idents]
    cols[10] += [i.accountId if i is not None else None for i in idents]
    cols[11] += [i.invokedBy if i is not None else None for i in idents]
    cols[12] += [r.sourceIPAddress for r in recs]
    cols[13] += [r.userAgent for r in recs]
    cols[14] += [r.errorCode for r in recs]
    cols[15] += crypto
    cols[16] += params_text
    cols[17] += grantee
    cols[18] += alias
    cols[19] += context
    cols[20] += [file] * n


def _is_s3(value: str) -> bool:
    """An S3 ARN in any partition (``arn:aws-us-gov:s3:::bucket/key`` too)."""
    parsed = parse_arn(value)
    return parsed is not None and parsed.service == "s3" and not parsed.region and not parsed.account


def _qualify(key_id: str, rec: Record) -> str:
    """A bare key id as an ARN in the record's region and account (ids are unique only there); an alias or
    anything else stays as logged."""
    if key_id.startswith("arn:") or not _KEY_ID.fullmatch(key_id):
        return key_id
    if rec.awsRegion and rec.recipientAccountId:
        return build_arn("kms", rec.awsRegion, rec.recipientAccountId, f"key/{key_id}")
    return key_id


def _params(raw: msgspec.Raw) -> KmsParams | None:
    try:
        return _PARAMS.decode(raw)
    except msgspec.DecodeError:
        # Another type somewhere (e.g. a non-string encryption context value): clean and retry.
        try:
            obj = _ANY.decode(raw)
        except msgspec.DecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        ctx = obj.get("encryptionContext")
        return KmsParams(
            keyId=_str(obj.get("keyId")),
            granteePrincipal=_str(obj.get("granteePrincipal")),
            aliasName=_str(obj.get("aliasName")),
            encryptionContext={str(k): str(v) for k, v in ctx.items()} if isinstance(ctx, dict) else None,
        )


def _response(raw: msgspec.Raw) -> KmsResponse | None:
    try:
        return _RESPONSE.decode(raw)
    except msgspec.DecodeError:
        return None


def _str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return str(v)
    return None


# --- the generic path: anything that is JSON but not the typed shape -----------------------------------------


def _clean(obj: dict[str, Any]) -> bytes:
    """A record dict with the typed fields coerced to their types, re-encoded for the typed decoder."""
    out: dict[str, Any] = {k: _str(obj.get(k)) for k in _STR_FIELDS}
    ident = obj.get("userIdentity")
    if isinstance(ident, dict):
        issuer = ((ident.get("sessionContext") or {}) if isinstance(ident.get("sessionContext"), dict) else {}).get(
            "sessionIssuer"
        )
        out["userIdentity"] = {
            "type": _str(ident.get("type")),
            "arn": _str(ident.get("arn")),
            "accountId": _str(ident.get("accountId")),
            "invokedBy": _str(ident.get("invokedBy")),
            "sessionContext": {"sessionIssuer": {"arn": _str(issuer.get("arn"))}} if isinstance(issuer, dict) else None,
        }
    res = obj.get("resources")
    if isinstance(res, list):
        out["resources"] = [{"ARN": _str(r.get("ARN"))} for r in res if isinstance(r, dict)]
    for k in ("requestParameters", "responseElements"):
        v = obj.get(k)
        if isinstance(v, str) and v.startswith("{"):
            # CloudTrail Lake and some SIEM exports store these as JSON text.
            try:
                v = _ANY.decode(v)
            except msgspec.DecodeError:
                v = None
        out[k] = v
    return _ENCODE.encode(out)


def _unwrap(obj: Any) -> dict[str, Any] | None:
    """The CloudTrail record inside ``obj``: itself, or an EventBridge / Lookup envelope's payload."""
    if not isinstance(obj, dict):
        return None
    if "eventName" in obj or "eventSource" in obj:
        return obj
    detail = obj.get("detail")
    if isinstance(detail, dict) and ("eventName" in detail or "eventSource" in detail):
        return detail
    inner = obj.get("CloudTrailEvent")
    if isinstance(inner, str):
        try:
            return _unwrap(_ANY.decode(inner))
        except msgspec.DecodeError:
            return None
    return None


def records_from_objects(objs: Iterable[Any], stats: FileStats) -> Iterator[Record]:
    """Typed Records from generic JSON values; what is not a record is counted as skipped."""
    for obj in objs:
        rec = _unwrap(obj)
        if rec is None:
            stats.skip("not a CloudTrail record")
            continue
        try:
            yield _RECORD.decode(_clean(rec))
        except msgspec.DecodeError:  # pragma: no cover - _clean produces the typed shape
            stats.skip("record does not fit the schema")


def unreadable(data: bytes, error: Exception | None = None) -> str:
    """kmsguard's reason for a document the JSON decoder refused: ``invalid UTF-8 at byte N`` or ``not JSON``,
    then the decoder's own words in parentheses. Those words (and even the exception type) change between
    msgspec releases; the leading words are kmsguard's and stay. JSON text is UTF-8 (RFC 8259, 8.1), so a
    document that is not UTF-8 is reported as such wherever its first syntax error may be."""
    detail = f" ({error})" if error is not None else ""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start}{detail}"
    return f"not JSON{detail}"


def _bad_part(part: str, data: bytes) -> str:
    """The skip reason for one line or record of a file that the decoder refused."""
    return f"{part} is {'not JSON' if unreadable(data).startswith('not JSON') else 'not valid UTF-8'}"


def _generic(data: bytes, stats: FileStats, rows: _Rows) -> bool:
    """Full parse of a whole document; False when it is not one JSON document."""
    try:
        doc = _ANY.decode(data)
    except _UNREADABLE:
        return False
    stats.fallback = True
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        items: list[Any] = doc["Records"]
    elif isinstance(doc, list):
        items = doc
    elif _unwrap(doc) is not None:
        items = [doc]
    else:
        what = "object without Records" if isinstance(doc, dict) else type(doc).__name__
        stats.error = f"JSON of another shape ({what}), not CloudTrail records"
        return True
    rows.add(records_from_objects(items, stats))
    return True


def _lines(data: bytes, stats: FileStats, rows: _Rows) -> None:
    """JSON lines: one record (or envelope) a line; bad lines are counted, good ones kept. A line counts as good only
    when it gives a record: random bytes have lines that parse as JSON (a digit alone), and a file with no record
    in it fails rather than passing as read."""
    good = bad = 0
    last: Exception | None = None
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rec = _RECORD.decode(line)
            if rec.eventName is None and rec.eventSource is None:
                raise msgspec.ValidationError("envelope")
            rows.add((rec,))
            good += 1
            continue
        except _UNREADABLE:
            pass
        try:
            obj = _ANY.decode(line)
        except _UNREADABLE as e:
            bad += 1
            last = e
            stats.skip(_bad_part("line", line))
            continue
        recs = list(records_from_objects((obj,), stats))  # what is not a record is counted as skipped there
        if recs:
            good += 1
            rows.add(recs)
    if good == 0:
        stats.error = unreadable(data, last) if bad else "JSON of another shape (no line is a CloudTrail record)"
        stats.fallback = True
    elif bad or stats.fallback:
        stats.fallback = True


def decode_bytes(data: bytes, file: str, stats: FileStats | None = None) -> tuple[list[Row], FileStats]:
    """Rows of the KMS events in ``data`` (already decompressed), with the file's stats."""
    stats = stats or FileStats(file)
    cols = Columns()
    decode_into(data, file, stats, cols)
    return cols.rows(), stats


def decode_into(data: bytes, file: str, stats: FileStats, cols: Columns) -> None:
    """Append the KMS events in ``data`` (already decompressed) to ``cols``; account for the file in ``stats``."""
    rows = _Rows(file, stats, cols)
    try:
        env = _ENVELOPE.decode(data)
    except msgspec.ValidationError:
        env = None  # JSON, but not the typed shape: generic parse
    except _UNREADABLE as e:
        # Not one JSON document: JSON lines, or not readable at all.
        if b"\n" in data.strip():
            _lines(data, stats, rows)
        else:
            stats.error = unreadable(data, e)
        return
    if env is not None and env.Records is not None:
        rows.add(env.Records)
    elif not _generic(data, stats, rows):
        # The typed decoder stopped at a field of another type, before the bytes the generic parse refused.
        stats.error = unreadable(data)


# --- reading: decompression and the streaming path for huge files ------------------------------------------


def decode_stream(chunks: Iterable[bytes], file: str, stats: FileStats) -> Iterator[list[Row]]:
    """Stream a large file (gzip or plain chunks); yields its rows in batches."""
    cols = Columns()
    for _ in stream_into(chunks, file, stats, cols):
        if len(cols) >= BATCH_ROWS:
            yield cols.rows()
            cols.clear()
    yield cols.rows()


# Decodes a whole trail document some faster way and keeps its rows itself; False leaves it to msgspec.
FastDecode = Callable[[bytes, str, FileStats], bool]


def stream_into(
    chunks: Iterable[bytes], file: str, stats: FileStats, cols: Columns, fast: FastDecode | None = None
) -> Iterator[None]:
    """Stream a large file into ``cols`` (or through ``fast``), yielding after every piece so the caller can
    write out what has gathered; what is left at the end stays in ``cols``.

    A trail file is cut into pieces of about ``PIECE_BYTES`` at record boundaries found by a byte search (a
    record's ``}`` then ``,`` then the next record's ``{"eventVersion"``), and each piece is decoded as a
    whole document by the fast path. A boundary the search gets wrong (the pattern inside a nested array)
    leaves a piece with unbalanced braces, which does not parse: from there on the file goes through the
    exact, slower record splitter, so a wrong guess costs time, never events."""
    rows = _Rows(file, stats, cols)
    stream = inflate(chunks)
    buf = b""
    try:
        buf = _take_head(stream)
        while True:
            # A chunk may inflate to many pieces: cut each at the last boundary within its first PIECE_BYTES.
            while len(buf) >= PIECE_BYTES:
                cut = _last_boundary(buf, PIECE_BYTES)
                if cut is None:
                    # No record boundary in sight: a record larger than the exact splitter takes (it fails the
                    # file), or not CloudTrail's own layout. Either way, buffering more would only cost memory.
                    if len(buf) > PIECE_BYTES + MAX_RECORD_BYTES:
                        raise _Exact(buf)
                    break
                end, start = cut
                if not _decode_piece(buf[:end], rows, fast):
                    raise _Exact(buf)
                buf = buf[start:]
                yield None
            chunk = next(stream, None)
            if chunk is None:
                break
            buf += chunk
        tail = _TAIL.search(buf)
        if tail is None or not _decode_piece(buf[: tail.start() + 1], rows, fast):
            raise _Exact(buf)
    except _Exact as rest:
        # ``rest.data`` is the document's start, or whole records from a record's start on; the rest of the
        # stream follows it.
        yield from _exact_into(_chain(rest.data, stream), rows, base=rest.base)
    except _READ_ERRORS as e:
        # Truncated: the whole records already in the buffer are kept; the exact splitter finds them.
        yield from _exact_into(iter((buf,)), rows, base=1, error=e)


class _Exact(Exception):
    """Leave the fast piece-wise path: ``data`` still has to be read, from a record's start (base 1) or from
    the document's start (base None: the splitter finds the layout)."""

    def __init__(self, data: bytes, base: int | None = 1) -> None:
        self.data = data
        self.base = base


# Where a trail file's records begin, and where the last record ends.
_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[\s*')
_TAIL = re.compile(rb"\}\s*\]\s*\}\s*$")
_BETWEEN = re.compile(rb"\}\s*,\s*$")
_NEXT_RECORD = b'{"eventVersion"'
# Decompressed bytes per piece of a streamed file (thousands of records: enough that the fast path's fixed cost
# per call does not count, few enough that a piece and its copies stay small).
PIECE_BYTES = 8 * 1024 * 1024


def _take_head(stream: Iterator[bytes]) -> bytes:
    """The stream's first bytes after ``{"Records": [``; raises _Exact if it does not start that way."""
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= 64:
            break
    m = _HEAD.match(head)
    if m is None:
        raise _Exact(head, base=None)
    return head[m.end() :]


def _last_boundary(buf: bytes, limit: int) -> tuple[int, int] | None:
    """(end of the piece, start of the next) at the last apparent record boundary before ``limit``, else (a
    record larger than a piece) at the first one after it."""
    i = buf.rfind(_NEXT_RECORD, 0, limit)
    while i > 0:
        if cut := _boundary_at(buf, i):
            return cut
        i = buf.rfind(_NEXT_RECORD, 0, i)
    i = buf.find(_NEXT_RECORD, limit)
    while i > 0:
        if cut := _boundary_at(buf, i):
            return cut
        i = buf.find(_NEXT_RECORD, i + 1)
    return None


def _boundary_at(buf: bytes, i: int) -> tuple[int, int] | None:
    """When ``buf[i:]`` starts a record right after a ``},``: (end of the previous record, i)."""
    m = _BETWEEN.search(buf, max(0, i - 64), i)
    return (m.start() + 1, i) if m else None


def _decode_piece(piece: bytes, rows: _Rows, fast: FastDecode | None) -> bool:
    """Decode a run of whole records as a trail document; False when it does not parse (a wrong cut)."""
    doc = b'{"Records":[' + piece + b"]}"
    if fast is not None and fast(doc, rows.file, rows.stats):
        return True
    try:
        env = _ENVELOPE.decode(doc)
    except msgspec.ValidationError:
        env = None  # JSON, but not the typed shape
    except _UNREADABLE:
        return False
    if env is not None and env.Records is not None:
        rows.add(env.Records)
        return True
    # The typed decoder may stop at a field of another type before bytes that do not parse: then the piece
    # is not read here, and the exact splitter reads it record by record.
    return _generic(doc, rows.stats, rows)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class RecordTooLarge(ValueError):
    """A record (or a string in it) runs past MAX_RECORD_BYTES: not CloudTrail's, and not to be buffered whole."""


def _exact_into(
    chunks: Iterator[bytes], rows: _Rows, base: int | None, error: BaseException | None = None
) -> Iterator[None]:
    """Record by record with the exact splitter (any layout, any nesting): the slow, sure path."""
    stats = rows.stats
    pending: list[Record] = []
    read = unreadable_parts = 0
    try:
        for raw_rec in split_records(chunks, base):
            try:
                pending.append(_RECORD.decode(raw_rec))
            except msgspec.ValidationError:
                try:
                    pending.extend(records_from_objects((_ANY.decode(raw_rec),), stats))
                except _UNREADABLE:
                    unreadable_parts += 1
                    stats.skip(_bad_part("record", raw_rec))
            except _UNREADABLE:
                unreadable_parts += 1
                stats.skip(_bad_part("record", raw_rec))
            if len(pending) >= 10_000:
                read += len(pending)
                rows.add(pending)
                pending = []
                yield None
    except _READ_ERRORS as e:
        error = e
    except RecordTooLarge as e:
        stats.error = f"{e} after {stats.records + len(pending)} records"
        return  # the file failed: what it gave is dropped with it
    read += len(pending)
    rows.add(pending)
    if error is not None:
        stats.error = truncated_gzip(stats.records, error)
    elif not read and (unreadable_parts or base is None):
        # Nothing in it was a record: noise whose braces looked like objects, or another kind of document.
        stats.error = (
            f"not JSON ({unreadable_parts} parts that look like records, none readable)"
            if unreadable_parts
            else "JSON of another shape (no CloudTrail record found)"
        )


def truncated_gzip(records: int, error: BaseException | str) -> str:
    """The one wording of a gzip file that ends early or is corrupt, whichever path inflated it."""
    return f"truncated or corrupt gzip after {records} records ({error})"


# A JSON string (group 1 set when it closed) or a brace. Braces inside strings are skipped by the regex
# engine in C, so Python only sees strings and braces, never every byte. Possessive: nothing after a string can
# fail, so no backtracking position is worth keeping, and keeping one per character cost ~100 bytes each (a 16 MB
# string took 2 GB).
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+(")?|[{}]', re.DOTALL)


def split_records(chunks: Iterable[bytes], base: int | None = None) -> Iterator[bytes]:
    """The objects at depth 2 of a stream like ``{"Records": [{...}, {...}]}`` (also a bare array's
    objects, or JSON lines' objects at depth 1 ... see ``base``), one bytes slice each. ``base`` is the depth
    of the records when the caller knows it (1: the stream starts at a record); else the start decides."""
    buf = b""
    depth = 0
    start = -1
    # depth at which records live: 2 under {"Records": [...]}, 1 for a bare array or JSON lines
    base = -1 if base is None else base
    for chunk in _at_least(chunks, 64):
        if not buf and b'"' not in chunk and b"{" not in chunk and b"}" not in chunk:
            continue  # between records, with no token in it (whitespace, commas; a bomb's gigabyte of spaces)
        buf += chunk
        cut = len(buf)
        for m in _TOKEN.finditer(buf):
            tok = m.group(0)
            if tok[0] == 0x22:  # '"'
                if m.group(1) is None:  # string runs past the chunk: resume from here (or the record start)
                    cut = m.start()
                    break
                continue
            if base < 0:
                base = 2 if buf.lstrip()[:1] == b"{" and depth == 0 and _opens_records(buf) else 1
            if tok == b"{":
                depth += 1
                if depth == base:
                    start = m.start()
            else:
                if depth == base and start >= 0:
                    yield buf[start : m.end()]
                    start = -1
                depth -= 1
        else:
            cut = len(buf)
        if start >= 0:
            # Inside a record: rescan it whole next time from its opening brace (depth restored to base-1).
            depth = base - 1
            buf = buf[start:]
            start = -1
        else:
            buf = buf[cut:]  # empty, or the unterminated string that straddles the chunk boundary
        if len(buf) > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"a record or string larger than {MAX_RECORD_BYTES // (1024 * 1024)} MB")


def _at_least(chunks: Iterable[bytes], n: int) -> Iterator[bytes]:
    """The chunks, the first one grown to ``n`` bytes: deciding the document's shape needs its first bytes."""
    it = iter(chunks)
    head = b""
    for c in it:
        head += c
        if len(head) >= n:
            break
    if head:
        yield head
    yield from it


def _opens_records(buf: bytes) -> bool:
    head = buf.lstrip()[:64]
    return head.startswith(b"{") and b'"Records"' in head


def read_chunks(read: Callable[[int], bytes], size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    while True:
        b = read(size)
        if not b:
            return
        yield b
