/*
 * kmsguard.trail._fastdecode: a strict, specialised JSON scanner for CloudTrail trail files.
 *
 * Why: decoding a trail file through msgspec builds ~20 Python strings per event and then converts them to Arrow,
 * which costs several times more than inflating the file. This scanner reads decompressed files ({"Records": [...]})
 * and writes the cache's columns for the KMS events straight into Arrow string buffers (validity bitmap, int32
 * offsets, data), so no Python object is created per event. kmsguard/trail/fastpath.py is its only user.
 *
 * What it computes: decode.py's per-record rules (see kept_row and end_record: the row filter and its counts, the
 * first key in resources, the "needed" rule for requestParameters, an S3 object's bucket, parameters as text for
 * non-cryptographic calls, decode._principals, decode._account_of). Doing these here rather than with Arrow's string
 * kernels is what makes the path fast: each such kernel costs more per row than the whole scan. decode._qualify (a
 * regular expression) and the key of a record whose resources name none stay in fastpath.py. The names it matches
 * or writes (event source, cryptographic calls, caller types, principal prefixes) come from Python with each call
 * (see V_*): their home is kmsguard.trail.schema.
 *
 * Contract: a file is refused (no row of it is kept, the caller takes the msgspec path for it) whenever it is anything
 * but the plain, typed shape that msgspec's typed decoder in decode.py accepts and that this scanner reads exactly:
 * bailing out is always safe, a wrong answer never is. It refuses: malformed JSON (RFC 8259, strictly: control
 * characters, bad escapes, unpaired surrogates, invalid or overlong UTF-8, bad numbers, trailing bytes), nesting
 * deeper than MAX_DEPTH, a top level that is not an object with one "Records" array of objects, a typed field of
 * another type (msgspec would fail validation and take its generic path), a duplicated typed member, an escaped
 * member name where the name matters, a backslash escape in a string the kept event needs (strings are copied raw,
 * never unescaped), an allocation failure or a column beyond int32 offsets.
 *
 * Only the CPython API and the C standard library are used; SSE2 (baseline on x86-64) classifies 64 bytes at a time
 * for the string scan when the compiler offers it, with a table-driven loop otherwise. The scan runs without the GIL.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* KMSGUARD_NO_SIMD forces the portable loop (to test it on x86-64). */
#if defined(__SSE2__) && defined(__GNUC__) && !defined(KMSGUARD_NO_SIMD)
#include <emmintrin.h>
#define HAVE_SSE2 1
#endif

/* Bumped whenever scan()'s arguments, VOCABULARY, COLUMNS or the result tuple change: fastpath.py refuses a stale
   build. */
#define ABI_VERSION 4
/* Containers nested deeper than this make the scan bail (msgspec itself recurses without a hard limit). */
#define MAX_DEPTH 64
/* Encryption context keys checked for duplicates (a duplicate changes which value msgspec's dict keeps). */
#define MAX_CONTEXT_KEYS 32
/* Cryptographic action names scan() accepts (schema.CRYPTO_ACTIONS has 14). */
#define MAX_CRYPTO 64

/* The names CloudTrail gives that the scanner matches or writes. Their home is Python (kmsguard.trail.schema), which
   passes them with every call as one tuple in this order; fastpath.py builds that tuple by these names, so the two
   sides cannot disagree on the order, and this file keeps no copy of the values to drift from Python's. */
enum {
    V_KMS_SOURCE,      /* schema.KMS_SOURCE: the eventSource of the records kept */
    V_CRYPTO_ACTIONS,  /* schema.CRYPTO_ACTIONS: a tuple of eventNames, at most MAX_CRYPTO */
    V_SERVICE_CALLER,  /* schema.SERVICE_CALLER: userIdentity.type of an AWS service acting */
    V_ASSUMED_ROLE,    /* schema.ASSUMED_ROLE_CALLER: userIdentity.type of a role session */
    V_SERVICE_PREFIX,  /* schema.SERVICE_PRINCIPAL_PREFIX: an AWS service's principal is this + invokedBy */
    V_UNKNOWN_SERVICE, /* schema.UNKNOWN_SERVICE: ... or this when invokedBy is missing or empty */
    V_ACCOUNT_PREFIX,  /* schema.ACCOUNT_PRINCIPAL_PREFIX: the principal of a caller logged by its account only */
    N_VOCABULARY
};

static const char *const VOCABULARY_NAMES[N_VOCABULARY] = {
    "kms_source",
    "crypto_actions",
    "service_caller",
    "assumed_role_caller",
    "service_principal_prefix",
    "unknown_service",
    "account_principal_prefix",
};

/* The partitions an ARN may name. This one stays here: is_s3_arn matches it by hand (a regular expression engine
   per value would cost more than the scan), so the pattern is exported and tests/trail/test_fastpath.py holds it
   equal to its home, kmsguard.arn.PARTITION_PATTERN, and checks the matcher against that regular expression. */
#define PARTITION_FIRST "aws" /* the pattern's literal start; is_s3_arn matches the rest by hand */
static const char PARTITION_PATTERN[] = PARTITION_FIRST "(?:-[a-z]+)*";
/* An S3 object's ARN in any partition: "arn:" PARTITION ":s3:::" (no region, no account). */
static const char S3_SERVICE[] = ":s3:::";

/* What a record gives, as read (decode.Record and the KmsParams / KmsResponse parts). */
enum {
    F_EVENT_TIME,
    F_EVENT_NAME,
    F_EVENT_ID,
    F_AWS_REGION,
    F_RECIPIENT,
    F_SOURCE_IP,
    F_USER_AGENT,
    F_ERROR_CODE,
    F_UI_TYPE,
    F_UI_ARN,
    F_UI_ACCOUNT,
    F_UI_INVOKED_BY,
    F_ISSUER_ARN,
    F_RESOURCE_KEY, /* the first resources[].ARN containing ":key/" (decode._resource_keys) */
    F_RP_KEY_ID,
    F_RP_GRANTEE,
    F_RP_ALIAS,
    F_RP_CONTEXT_ARN, /* the first encryptionContext value starting with "arn:" */
    F_RP_RAW,         /* requestParameters as msgspec.Raw: the value's own bytes */
    F_RE_KEY_ID,
    F_RE_METADATA_ARN,
    N_FIELDS
};

/* The output columns, by schema.COLUMNS' names (event_time is still text; is_crypto comes as a separate bitmap),
   plus what fastpath.py needs for the key of a record whose resources name none (decode._qualify's regular expression
   and the account of such a key stay in Python, vectorised over just those rows). Python maps them by name. */
enum {
    O_EVENT_TIME, /* raw text: cache.columns_to_table parses it */
    O_EVENT_NAME,
    O_EVENT_ID,
    O_REGION,
    O_RECIPIENT,
    O_KEY_ARN,     /* the resource key only; fastpath.py fills the rest */
    O_KEY_ACCOUNT, /* final for rows with a resource key, else the recipient (fastpath.py corrects derived keys) */
    O_PRINCIPAL,
    O_PRINCIPAL_ARN,
    O_PRINCIPAL_TYPE,
    O_PRINCIPAL_ACCOUNT,
    O_INVOKED_BY,
    O_SOURCE_IP,
    O_USER_AGENT,
    O_ERROR_CODE,
    O_PARAMS,
    O_GRANTEE,
    O_ALIAS_NAME,
    O_CONTEXT_ARN,
    O_PARAMS_KEY_ID,    /* requestParameters.keyId where the resources name no key */
    O_RESPONSE_KEY_ARN, /* responseElements.keyMetadata.arn where neither they nor keyId do (non-crypto only) */
    O_RESPONSE_KEY_ID,  /* responseElements.keyId, likewise */
    O_FILE,             /* the name the caller gave the file */
    N_OUT
};

static const char *const OUT_NAMES[N_OUT] = {
    "event_time",
    "event_name",
    "event_id",
    "region",
    "recipient_account",
    "key_arn",
    "key_account",
    "principal",
    "principal_arn",
    "principal_type",
    "principal_account",
    "invoked_by",
    "source_ip",
    "user_agent",
    "error_code",
    "params",
    "grantee",
    "alias_name",
    "context_arn",
    "params_key_id",
    "response_key_arn",
    "response_key_id",
    "file",
};

/* A string's raw content inside the input (between its quotes). p == NULL: absent or JSON null (msgspec's None). */
typedef struct {
    const uint8_t *p;
    size_t n;
} Span;

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int32_t *offsets; /* rows + 1 entries once any row exists */
    uint8_t *valid;   /* one bit per row, LSB first (Arrow's layout) */
    Py_ssize_t nulls;
} Column;

typedef struct {
    const uint8_t *p, *end; /* cursor; p <= end always holds */
    const uint8_t *blk;     /* next_special's 64-byte block (starting at or before p) and its flags */
    uint64_t blk_mask;
    /* The vocabulary (see V_*), from the caller. */
    Span kms_source, service_caller, assumed_role_caller, service_prefix, unknown_service, account_prefix;
    Span crypto[MAX_CRYPTO];
    int n_crypto;
    Span file; /* the file being read: its name, for O_FILE */

    /* The record being read. */
    Span f[N_FIELDS];
    Span source;
    int has_issuer;     /* userIdentity.sessionContext.sessionIssuer is an object */
    int escaped;        /* a string this record's row would need holds an escape, or a relevant name is escaped */
    int params_bad;     /* requestParameters does not fit decode.KmsParams (or is ambiguous): bail if kept */
    int response_bad;   /* responseElements has a duplicated typed member: bail if kept */
    int response_unfit; /* responseElements does not fit decode.KmsResponse: msgspec gives None, and so do we */

    /* Counts for FileStats, as decode._Rows.add keeps them. */
    Py_ssize_t records, not_records, incomplete;
    int first_skip; /* which skip reason came first: 0 none, 1 "not a CloudTrail record", 2 "KMS record without..." */

    /* Output. */
    Py_ssize_t rows, cap_rows;
    Column col[N_OUT];
    uint8_t *is_crypto; /* bitmap, no nulls */
} Scanner;

#define TRY(expr)               \
    do {                        \
        if ((expr) < 0)         \
            return -1;          \
    } while (0)

/* ---------------------------------------------------------------------------------------------------------------- */
/* Generic JSON: whitespace, strings, numbers, literals, and skipping (but fully validating) any value.             */

static inline void skip_ws(Scanner *s)
{
    const uint8_t *p = s->p, *end = s->end;
    /* Whitespace and control bytes are all <= 0x20: one compare settles the common case (no whitespace, or the
       single space of ", " and ": "). */
    while (p < end && *p <= 0x20 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    s->p = p;
}

/* 1 for bytes a string may hold as they are: printable ASCII except '"' and '\\'. */
static const uint8_t PLAIN[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the 4 hex digits at p, or -1. Needs end - p >= 4 (checked by the caller). */
static inline long hex4(const uint8_t *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* One UTF-8 sequence starting at p (p[0] >= 0x80): the byte after it, or NULL when it is not well-formed per Unicode
   table 3-7 (no overlongs, no surrogates, nothing above U+10FFFF, no truncation). */
static const uint8_t *utf8_char(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    ptrdiff_t avail = end - p;
    if (c < 0xC2)
        return NULL; /* continuation byte, or an overlong 2-byte lead */
    if (c < 0xE0) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80)
            return NULL;
        return p + 2;
    }
    if (c < 0xF0) {
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80; /* E0: overlong below A0 */
        uint8_t hi = c == 0xED ? 0x9F : 0xBF; /* ED: A0..BF would be surrogates */
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return NULL;
        return p + 3;
    }
    if (c < 0xF5) {
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80; /* F0: overlong below 90 */
        uint8_t hi = c == 0xF4 ? 0x8F : 0xBF; /* F4: above 8F is beyond U+10FFFF */
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return NULL;
        return p + 4;
    }
    return NULL;
}

static inline int ctz64(uint64_t m)
{
#if defined(__GNUC__)
    return __builtin_ctzll(m);
#else
    int n = 0;
    while (!(m & 1)) {
        m >>= 1;
        n++;
    }
    return n;
#endif
}

/* Bit i set: byte b[i] needs a look inside a string ('"', '\\', a control or non-ASCII byte) or lies past the end. */
static uint64_t special_mask(const uint8_t *b, const uint8_t *end)
{
    uint64_t m = 0;
#ifdef HAVE_SSE2
    if (end - b >= 64) {
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        /* Signed compare: bytes >= 0x80 are negative, so "< 0x20" catches both control and non-ASCII bytes. */
#define SPECIAL16(i)                                                                                               \
    do {                                                                                                           \
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * (i)));                               \
        __m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),           \
                                  _mm_cmplt_epi8(v, space));                                                       \
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(sp) << (16 * (i));                                            \
    } while (0)
        SPECIAL16(0);
        SPECIAL16(1);
        SPECIAL16(2);
        SPECIAL16(3);
#undef SPECIAL16
        return m;
    }
#endif
    for (int i = 0; i < 64; i++)
        if (end - b <= i || !PLAIN[b[i]])
            m |= (uint64_t)1 << i;
    return m;
}

/* The first byte at or after p that special_mask flags (end at the latest). Strings are short, and a branch per
   string on "found within these 16 bytes?" mispredicts often; instead the flags of one 64-byte block are kept and
   the next string in the same block costs a shift and a count. */
static inline const uint8_t *next_special(Scanner *s, const uint8_t *p)
{
    size_t off = (size_t)(p - s->blk); /* p only moves forward: p >= s->blk */
    if (off >= 64) {
        s->blk = p;
        s->blk_mask = special_mask(p, s->end);
        off = 0;
    }
    uint64_t m = s->blk_mask >> off;
    if (m)
        return p + ctz64(m);
    for (;;) {
        /* The block had no flag, so it lies wholly before the end: the next one starts at or before it. */
        s->blk += 64;
        s->blk_mask = special_mask(s->blk, s->end);
        if (s->blk_mask)
            return s->blk + ctz64(s->blk_mask);
    }
}

#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#else
#define HOT_INLINE static inline
#endif

/* The string at s->p (which is '"'). *out gets its raw content and *escaped whether it holds a backslash escape. */
HOT_INLINE int scan_string(Scanner *s, Span *out, int *escaped)
{
    const uint8_t *p = s->p + 1, *end = s->end;
    const uint8_t *start = p;
    int esc = 0;
    for (;;) {
        p = next_special(s, p);
        if (p >= end)
            return -1; /* unterminated */
        uint8_t c = *p;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = 1;
            if (end - p < 2)
                return -1;
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;
            case 'u': {
                if (end - p < 6)
                    return -1;
                long cu = hex4(p + 2);
                if (cu < 0)
                    return -1;
                p += 6;
                if (cu >= 0xDC00 && cu <= 0xDFFF)
                    return -1; /* a low surrogate alone */
                if (cu >= 0xD800 && cu <= 0xDBFF) {
                    /* A high surrogate must be followed by an escaped low one (msgspec rejects anything else). */
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                        return -1;
                    long lo = hex4(p + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    p += 6;
                }
                continue;
            }
            default:
                return -1;
            }
        }
        if (c < 0x20)
            return -1; /* control characters must be escaped */
        /* c >= 0x80 */
        p = utf8_char(p, end);
        if (p == NULL)
            return -1;
    }
    out->p = start;
    out->n = (size_t)(p - start);
    *escaped = esc;
    s->p = p + 1;
    return 0;
}

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* A number per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (any magnitude: msgspec skips them all). */
static int skip_number(Scanner *s)
{
    const uint8_t *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    /* What follows (a digit after a leading 0, a letter ...) is rejected by the caller, which expects , ] } or end. */
    s->p = p;
    return 0;
}

static int skip_literal(Scanner *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static inline const uint8_t *ws(const uint8_t *p, const uint8_t *end)
{
    /* Most calls find no whitespace or the one space of ", " / ": ": test for those before looping. */
    if (p < end && *p > 0x20)
        return p;
    if (p < end && *p == ' ' && end - p > 1 && p[1] > 0x20)
        return p + 1;
    while (p < end && *p <= 0x20 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Inside an object (just after '{' or after a member's value): 1 and the cursor on the next member's value (its name
   in *key), 0 at the end of the object ('}' consumed), -1 if malformed. *first is set before the first member.
   The cursor lives in a local variable here (this runs for every member of every record). */
HOT_INLINE int next_member(Scanner *s, int *first, Span *key, int *key_escaped)
{
    const uint8_t *p = ws(s->p, s->end), *end = s->end;
    if (p >= end)
        return -1;
    if (*p == '}') {
        s->p = p + 1;
        return 0;
    }
    if (*first)
        *first = 0;
    else {
        if (*p != ',')
            return -1;
        p = ws(p + 1, end);
        if (p >= end)
            return -1;
    }
    if (*p != '"') /* also rejects a trailing comma */
        return -1;
    s->p = p;
    TRY(scan_string(s, key, key_escaped));
    p = ws(s->p, end);
    if (p >= end || *p != ':')
        return -1;
    p = ws(p + 1, end);
    s->p = p;
    return p < end ? 1 : -1;
}

/* Inside an array: 1 and the cursor on the next element, 0 at the end (']' consumed), -1 if malformed. */
static int next_element(Scanner *s, int *first)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == ']') {
        s->p++;
        return 0;
    }
    if (*first)
        *first = 0;
    else {
        if (*s->p != ',')
            return -1;
        s->p++;
        skip_ws(s);
        if (s->p >= s->end || *s->p == ']') /* trailing comma */
            return -1;
    }
    return 1;
}

/* Any value, validated and skipped. depth: the nesting level a container opened here would have. */
static int skip_value(Scanner *s, int depth)
{
    if (s->p >= s->end)
        return -1;
    int first = 1, r, esc;
    Span sp;
    switch (*s->p) {
    case '"':
        return scan_string(s, &sp, &esc);
    case '{':
        if (depth > MAX_DEPTH)
            return -1;
        s->p++;
        while ((r = next_member(s, &first, &sp, &esc)) == 1)
            TRY(skip_value(s, depth + 1));
        return r;
    case '[':
        if (depth > MAX_DEPTH)
            return -1;
        s->p++;
        while ((r = next_element(s, &first)) == 1)
            TRY(skip_value(s, depth + 1));
        return r;
    case 't':
        return skip_literal(s, "true", 4);
    case 'f':
        return skip_literal(s, "false", 5);
    case 'n':
        return skip_literal(s, "null", 4);
    default:
        return skip_number(s); /* fails on anything that is not a number either */
    }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The typed shape: the members decode.py's msgspec Structs name.                                                    */

static inline int span_is(Span k, const char *lit, size_t n)
{
    return k.n == n && memcmp(k.p, lit, n) == 0;
}
#define IS(k, lit) span_is((k), (lit), sizeof(lit) - 1)

/* Two spans hold the same bytes (neither is null). */
static inline int span_equal(Span a, Span b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int span_contains(Span h, const char *needle, size_t n)
{
    if (h.p == NULL || h.n < n)
        return 0;
    for (size_t i = 0; i + n <= h.n; i++)
        if (h.p[i] == (uint8_t)needle[0] && memcmp(h.p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* decode's test for an S3 ARN: "arn:", a partition (PARTITION_PATTERN: PARTITION_FIRST, then any number of "-" and
   one or more lower-case letters), ":s3:::". */
static int is_s3_arn(Span v)
{
    static const char prefix[] = "arn:" PARTITION_FIRST;
    if (v.n < sizeof prefix - 1 + sizeof S3_SERVICE - 1 || memcmp(v.p, prefix, sizeof prefix - 1) != 0)
        return 0;
    size_t i = sizeof prefix - 1;
    while (i < v.n && v.p[i] == '-') {
        size_t start = ++i;
        while (i < v.n && v.p[i] >= 'a' && v.p[i] <= 'z')
            i++;
        if (i == start)
            return 0;
    }
    return v.n - i >= sizeof S3_SERVICE - 1 && memcmp(v.p + i, S3_SERVICE, sizeof S3_SERVICE - 1) == 0;
}

/* A value typed ``str | None``: 0 and *out set (p NULL for null), 1 if of another type (not consumed), -1 if
   malformed. *escaped is or-ed with whether the string holds an escape. */
static int read_str_or_null(Scanner *s, Span *out, int *escaped)
{
    if (*s->p == '"') {
        int e;
        TRY(scan_string(s, out, &e));
        *escaped |= e;
        return 0;
    }
    if (*s->p == 'n') {
        TRY(skip_literal(s, "null", 4));
        out->p = NULL;
        out->n = 0;
        return 0;
    }
    return 1;
}

/* A member typed ``str | None`` of a Struct every record is validated against: another type fails msgspec's typed
   decode of the whole file, so we bail. */
static int typed_str(Scanner *s, Span *out)
{
    int r = read_str_or_null(s, out, &s->escaped);
    return r == 0 ? 0 : -1;
}

/* A member typed ``SomeStruct | None``: 1 if it is an object ('{' consumed), 0 if null, -1 otherwise (bail). */
static int typed_object(Scanner *s)
{
    if (*s->p == '{') {
        s->p++;
        return 1;
    }
    if (*s->p == 'n') {
        TRY(skip_literal(s, "null", 4));
        return 0;
    }
    return -1;
}

/* userIdentity.sessionContext.sessionIssuer (decode.SessionIssuer). */
static int parse_issuer(Scanner *s, int depth)
{
    int first = 1, r, kesc, seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1; /* once unescaped it might be a typed name */
        if (IS(key, "arn")) {
            if (seen)
                return -1;
            seen = 1;
            TRY(typed_str(s, &s->f[F_ISSUER_ARN]));
        } else
            TRY(skip_value(s, depth + 1));
    }
    return r;
}

/* userIdentity.sessionContext (decode.SessionContext). */
static int parse_session_context(Scanner *s, int depth)
{
    int first = 1, r, kesc, seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1;
        if (IS(key, "sessionIssuer")) {
            if (seen)
                return -1;
            seen = 1;
            TRY(r = typed_object(s));
            if (r == 1) {
                s->has_issuer = 1;
                TRY(parse_issuer(s, depth + 1));
            }
        } else
            TRY(skip_value(s, depth + 1));
    }
    return r;
}

/* userIdentity (decode.UserIdentity). */
static int parse_identity(Scanner *s, int depth)
{
    static const int field[] = {F_UI_TYPE, F_UI_ARN, F_UI_ACCOUNT, F_UI_INVOKED_BY, -1 /* sessionContext */};
    int first = 1, r, kesc;
    unsigned seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1;
        int m = IS(key, "type")             ? 0
                : IS(key, "arn")            ? 1
                : IS(key, "accountId")      ? 2
                : IS(key, "invokedBy")      ? 3
                : IS(key, "sessionContext") ? 4
                                            : -1;
        if (m < 0) {
            TRY(skip_value(s, depth + 1));
            continue;
        }
        if (seen & (1u << m))
            return -1; /* duplicate: msgspec keeps the last, we do not try */
        seen |= 1u << m;
        if (field[m] >= 0)
            TRY(typed_str(s, &s->f[field[m]]));
        else {
            TRY(r = typed_object(s));
            if (r == 1)
                TRY(parse_session_context(s, depth + 1));
        }
    }
    return r;
}

/* One element of resources (decode.ResourceRef): the first ARN containing ":key/" is the record's key. */
static int parse_resource(Scanner *s, int depth)
{
    int first = 1, r, kesc, seen = 0;
    Span key, arn;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1;
        if (IS(key, "ARN")) {
            if (seen)
                return -1;
            seen = 1;
            /* An escaped ARN counts as escaped even when it is not the key: unescaped, it might be one. */
            TRY(typed_str(s, &arn));
            if (arn.p != NULL && s->f[F_RESOURCE_KEY].p == NULL && span_contains(arn, ":key/", 5))
                s->f[F_RESOURCE_KEY] = arn;
        } else
            TRY(skip_value(s, depth + 1));
    }
    return r;
}

static int parse_resources(Scanner *s, int depth)
{
    int first = 1, r;
    while ((r = next_element(s, &first)) == 1) {
        if (*s->p != '{')
            return -1; /* list[ResourceRef]: every element must be an object */
        s->p++;
        TRY(parse_resource(s, depth + 1));
    }
    return r;
}

/* requestParameters.encryptionContext (dict[str, str]): the first value starting with "arn:". A duplicated key
   would make msgspec's dict keep the last value at the first key's position, so duplicates are flagged. */
static int parse_context(Scanner *s, int depth)
{
    Span keys[MAX_CONTEXT_KEYS];
    int nkeys = 0, first = 1, r, kesc;
    Span key, value;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            s->escaped = 1; /* duplicates cannot be told apart on raw bytes */
        if (nkeys == MAX_CONTEXT_KEYS)
            s->params_bad = 1;
        else {
            for (int i = 0; i < nkeys; i++)
                if (keys[i].n == key.n && memcmp(keys[i].p, key.p, key.n) == 0)
                    s->params_bad = 1;
            keys[nkeys++] = key;
        }
        if (*s->p == '"') {
            int e;
            TRY(scan_string(s, &value, &e));
            if (e)
                s->escaped = 1; /* unescaped, it might start with "arn:" or differ from the raw text */
            if (s->f[F_RP_CONTEXT_ARN].p == NULL && value.n >= 4 && memcmp(value.p, "arn:", 4) == 0)
                s->f[F_RP_CONTEXT_ARN] = value;
        } else {
            s->params_bad = 1; /* not a string (null included): decode._params would stringify it */
            TRY(skip_value(s, depth + 1));
        }
    }
    return r;
}

/* requestParameters as decode.KmsParams. Only a kept KMS record's parameters are decoded by decode.py, and a record's
   eventSource may come after them, so problems are flagged here and judged when the record ends. */
static int parse_params(Scanner *s, int depth)
{
    static const int field[] = {F_RP_KEY_ID, F_RP_GRANTEE, F_RP_ALIAS, -1 /* encryptionContext */};
    int first = 1, r, kesc;
    unsigned seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        int m = -1;
        if (kesc)
            s->escaped = 1; /* it might be one of the names below */
        else
            m = IS(key, "keyId")               ? 0
                : IS(key, "granteePrincipal")  ? 1
                : IS(key, "aliasName")         ? 2
                : IS(key, "encryptionContext") ? 3
                                               : -1;
        if (m < 0) {
            TRY(skip_value(s, depth + 1));
            continue;
        }
        if (seen & (1u << m))
            s->params_bad = 1;
        seen |= 1u << m;
        if (field[m] >= 0) {
            r = read_str_or_null(s, &s->f[field[m]], &s->escaped);
            TRY(r);
            if (r == 1) {
                s->params_bad = 1;
                TRY(skip_value(s, depth + 1));
            }
        } else if (*s->p == '{') {
            s->p++;
            TRY(parse_context(s, depth + 1));
        } else if (*s->p == 'n')
            TRY(skip_literal(s, "null", 4));
        else {
            s->params_bad = 1;
            TRY(skip_value(s, depth + 1));
        }
    }
    return r;
}

/* responseElements.keyMetadata (decode.KeyMetadata). */
static int parse_metadata(Scanner *s, int depth)
{
    int first = 1, r, kesc, seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            s->escaped = 1;
        else if (IS(key, "arn")) {
            if (seen)
                s->response_bad = 1;
            seen = 1;
            r = read_str_or_null(s, &s->f[F_RE_METADATA_ARN], &s->escaped);
            TRY(r);
            if (r == 0)
                continue;
            s->response_unfit = 1;
        }
        TRY(skip_value(s, depth + 1));
    }
    return r;
}

/* responseElements as decode.KmsResponse: decode._response returns None when it does not fit, which is exact to
   reproduce (response_unfit), unlike a duplicated member (response_bad). */
static int parse_response(Scanner *s, int depth)
{
    int first = 1, r, kesc;
    unsigned seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc) {
            s->escaped = 1;
            TRY(skip_value(s, depth + 1));
            continue;
        }
        int m = IS(key, "keyId") ? 0 : IS(key, "keyMetadata") ? 1 : -1;
        if (m < 0) {
            TRY(skip_value(s, depth + 1));
            continue;
        }
        if (seen & (1u << m))
            s->response_bad = 1;
        seen |= 1u << m;
        if (m == 0) {
            r = read_str_or_null(s, &s->f[F_RE_KEY_ID], &s->escaped);
            TRY(r);
            if (r == 0)
                continue;
            s->response_unfit = 1;
            TRY(skip_value(s, depth + 1));
        } else if (*s->p == '{') {
            s->p++;
            TRY(parse_metadata(s, depth + 1));
        } else if (*s->p == 'n')
            TRY(skip_literal(s, "null", 4));
        else {
            s->response_unfit = 1;
            TRY(skip_value(s, depth + 1));
        }
    }
    return r;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Output.                                                                                                            */

static int grow_rows(Scanner *s)
{
    Py_ssize_t old = s->cap_rows, cap = old ? old * 2 : 1024;
    size_t old_bytes = (size_t)(old + 7) / 8, bytes = (size_t)(cap + 7) / 8;
    if (cap > INT32_MAX)
        return -1;
    for (int i = 0; i < N_OUT; i++) {
        Column *c = &s->col[i];
        int32_t *offsets = realloc(c->offsets, sizeof(int32_t) * (size_t)(cap + 1));
        if (offsets == NULL)
            return -1;
        if (c->offsets == NULL)
            offsets[0] = 0;
        c->offsets = offsets;
        uint8_t *valid = realloc(c->valid, bytes);
        if (valid == NULL)
            return -1;
        memset(valid + old_bytes, 0, bytes - old_bytes);
        c->valid = valid;
    }
    uint8_t *bits = realloc(s->is_crypto, bytes);
    if (bits == NULL)
        return -1;
    memset(bits + old_bytes, 0, bytes - old_bytes);
    s->is_crypto = bits;
    s->cap_rows = cap;
    return 0;
}

/* memcpy for the short strings of a row (ids, ARNs, times): fixed-size 8-byte moves that overlap instead of a call
   into libc per field. Only [d, d + n) is written. */
static inline void copy_short(uint8_t *d, const uint8_t *src, size_t n)
{
    if (n < 8 || n > 64) {
        memcpy(d, src, n);
        return;
    }
    uint64_t w;
    size_t half = n > 16 ? (n > 32 ? 32 : 16) : 8; /* head and tail of `half` bytes each cover [0, n) */
    for (size_t i = 0; i < half; i += 8) {
        memcpy(&w, src + i, 8);
        memcpy(d + i, &w, 8);
        memcpy(&w, src + n - half + i, 8);
        memcpy(d + n - half + i, &w, 8);
    }
}

/* Appends prefix + v to the column's data. */
static int append(Column *c, const char *prefix, size_t prefix_n, Span v)
{
    size_t n = prefix_n + v.n;
    if (n > (size_t)INT32_MAX - c->len)
        return -1; /* beyond int32 offsets */
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        if (cap < c->len + n)
            cap = c->len + n;
        if (cap > (size_t)INT32_MAX)
            cap = (size_t)INT32_MAX;
        uint8_t *data = realloc(c->data, cap);
        if (data == NULL)
            return -1;
        c->data = data;
        c->cap = cap;
    }
    if (prefix_n)
        memcpy(c->data + c->len, prefix, prefix_n);
    if (v.n)
        copy_short(c->data + c->len + prefix_n, v.p, v.n);
    c->len += n;
    return 0;
}

/* Appends one row: o[i] (p NULL: null) to each column, the principal after principal_prefix (p NULL: none). */
static int emit_row(Scanner *s, const Span *o, Span principal_prefix, int crypto)
{
    if (s->rows == s->cap_rows)
        TRY(grow_rows(s));
    Py_ssize_t row = s->rows;
    uint8_t bit = (uint8_t)(1u << (row & 7));
    for (int i = 0; i < N_OUT; i++) {
        Column *c = &s->col[i];
        if (o[i].p != NULL) {
            Span pre = i == O_PRINCIPAL ? principal_prefix : (Span){NULL, 0};
            TRY(append(c, (const char *)pre.p, pre.p != NULL ? pre.n : 0, o[i]));
            c->valid[row >> 3] |= bit;
        } else
            c->nulls++;
        c->offsets[row + 1] = (int32_t)c->len;
    }
    if (crypto)
        s->is_crypto[row >> 3] |= bit;
    s->rows++;
    return 0;
}

/* decode._account_of: parts = key.split(":", 5); parts[4] if len(parts) == 6 and parts[4] else None. */
static Span account_of(Span key)
{
    Span none = {NULL, 0};
    size_t colons = 0, start = 0;
    if (key.p == NULL)
        return none;
    for (size_t i = 0; i < key.n; i++) {
        if (key.p[i] != ':')
            continue;
        if (++colons == 4)
            start = i + 1;
        else if (colons == 5) {
            Span acct = {key.p + start, i - start};
            return acct.n ? acct : none;
        }
    }
    return none; /* fewer than 6 parts */
}

static int is_crypto_action(const Scanner *s, Span name)
{
    for (int i = 0; i < s->n_crypto; i++)
        if (span_equal(s->crypto[i], name))
            return 1;
    return 0;
}

static inline int truthy(Span v)
{
    return v.p != NULL && v.n > 0; /* what Python's ``or`` keeps of a str | None */
}

/* A kept record's row: decode._extend's rules, record by record. */
static int kept_row(Scanner *s)
{
    const Span *f = s->f;
    const Span none = {NULL, 0};
    Span o[N_OUT]; /* every element is assigned below (no memset: its startup cost shows at this rate) */
    o[O_GRANTEE] = o[O_ALIAS_NAME] = o[O_CONTEXT_ARN] = o[O_PARAMS] = o[O_PRINCIPAL] = none;
    o[O_PARAMS_KEY_ID] = o[O_RESPONSE_KEY_ARN] = o[O_RESPONSE_KEY_ID] = none;
    o[O_EVENT_TIME] = f[F_EVENT_TIME];
    o[O_FILE] = s->file;
    o[O_EVENT_NAME] = f[F_EVENT_NAME];
    o[O_EVENT_ID] = f[F_EVENT_ID];
    o[O_REGION] = f[F_AWS_REGION];
    o[O_RECIPIENT] = f[F_RECIPIENT];
    o[O_PRINCIPAL_ARN] = f[F_UI_ARN];
    o[O_PRINCIPAL_TYPE] = f[F_UI_TYPE];
    o[O_PRINCIPAL_ACCOUNT] = f[F_UI_ACCOUNT];
    o[O_INVOKED_BY] = f[F_UI_INVOKED_BY];
    o[O_SOURCE_IP] = f[F_SOURCE_IP];
    o[O_USER_AGENT] = f[F_USER_AGENT];
    o[O_ERROR_CODE] = f[F_ERROR_CODE];
    int crypto = is_crypto_action(s, f[F_EVENT_NAME]);

    /* requestParameters: "needed" when the key is not in resources, the call is not cryptographic, the encryption
       context names a resource, or (rare) grantee/alias are given and the raw text holds "arn:". Without an object
       of parameters all of these fields are null, as with KmsParams(None). */
    Span key = f[F_RESOURCE_KEY], ctx = f[F_RP_CONTEXT_ARN];
    if (ctx.p != NULL && is_s3_arn(ctx)) {
        /* An S3 object: its bucket is the resource that carries tags (v.split("/", 1)[0]). */
        const uint8_t *slash = memchr(ctx.p, '/', ctx.n);
        if (slash != NULL)
            ctx.n = (size_t)(slash - ctx.p);
    }
    int named = f[F_RP_GRANTEE].p != NULL || f[F_RP_ALIAS].p != NULL;
    if (key.p == NULL || !crypto || ctx.p != NULL || (named && span_contains(f[F_RP_RAW], "arn:", 4))) {
        o[O_GRANTEE] = f[F_RP_GRANTEE];
        o[O_ALIAS_NAME] = f[F_RP_ALIAS];
        o[O_CONTEXT_ARN] = ctx;
    }
    /* The key: resources, else requestParameters.keyId, else (non-crypto) the response's; Python qualifies ids. */
    o[O_KEY_ARN] = key;
    if (key.p == NULL) {
        if (f[F_RP_KEY_ID].p != NULL)
            o[O_PARAMS_KEY_ID] = f[F_RP_KEY_ID];
        else if (!crypto && !s->response_unfit) {
            o[O_RESPONSE_KEY_ARN] = f[F_RE_METADATA_ARN];
            o[O_RESPONSE_KEY_ID] = f[F_RE_KEY_ID];
        }
    }
    /* decode._key_accounts: the key's account, else the recipient. */
    Span acct = account_of(key);
    o[O_KEY_ACCOUNT] = acct.p != NULL ? acct : f[F_RECIPIENT];
    /* Parameters as text, for non-cryptographic calls only; JSON null is null. */
    Span raw = f[F_RP_RAW];
    if (!crypto && raw.p != NULL && !(raw.n == 4 && memcmp(raw.p, "null", 4) == 0))
        o[O_PARAMS] = raw;

    /* decode._principals: the service prefix + (invokedBy or the unknown service) for AWS services; for an assumed
       role with a session issuer, the issuer's ARN or (when that is null or empty) the session ARN; else the ARN;
       else the account prefix + accountId; else null. */
    Span prefix = none;
    Span type = f[F_UI_TYPE];
    if (type.p != NULL && span_equal(type, s->service_caller)) {
        prefix = s->service_prefix;
        o[O_PRINCIPAL] = truthy(f[F_UI_INVOKED_BY]) ? f[F_UI_INVOKED_BY] : s->unknown_service;
    } else if (type.p != NULL && span_equal(type, s->assumed_role_caller) && s->has_issuer)
        o[O_PRINCIPAL] = truthy(f[F_ISSUER_ARN]) ? f[F_ISSUER_ARN] : f[F_UI_ARN];
    else if (f[F_UI_ARN].p != NULL)
        o[O_PRINCIPAL] = f[F_UI_ARN];
    else if (f[F_UI_ACCOUNT].p != NULL) {
        prefix = s->account_prefix;
        o[O_PRINCIPAL] = f[F_UI_ACCOUNT];
    }
    return emit_row(s, o, prefix, crypto);
}

/* The accounting and row filter of decode._Rows.add, and the checks that depend on whether the record is kept. */
static int end_record(Scanner *s)
{
    s->records++;
    int kms = s->source.p != NULL && span_equal(s->source, s->kms_source);
    if (!kms) {
        if (s->source.p == NULL && s->f[F_EVENT_NAME].p == NULL && s->f[F_EVENT_TIME].p == NULL) {
            s->not_records++;
            if (!s->first_skip)
                s->first_skip = 1;
        }
        return 0;
    }
    if (s->f[F_EVENT_NAME].p == NULL || s->f[F_EVENT_TIME].p == NULL) {
        s->incomplete++;
        if (!s->first_skip)
            s->first_skip = 2;
        return 0;
    }
    if (s->escaped || s->params_bad || s->response_bad)
        return -1;
    return kept_row(s);
}

/* decode.Record's members. */
enum {
    R_EVENT_TIME,
    R_EVENT_SOURCE,
    R_EVENT_NAME,
    R_AWS_REGION,
    R_EVENT_ID,
    R_RECIPIENT,
    R_SOURCE_IP,
    R_USER_AGENT,
    R_ERROR_CODE,
    R_IDENTITY,
    R_RESOURCES,
    R_PARAMS,
    R_RESPONSE,
};

/* The string members and their columns (-1: not a plain captured string). */
static const int RECORD_FIELD[] = {
    F_EVENT_TIME, -1, F_EVENT_NAME, F_AWS_REGION, F_EVENT_ID, F_RECIPIENT, F_SOURCE_IP, F_USER_AGENT, F_ERROR_CODE,
    -1,           -1, -1,           -1,
};

#define MATCH(k, lit, id)                                 \
    do {                                                  \
        if (memcmp((k).p, (lit), sizeof(lit) - 1) == 0) \
            return (id);                                  \
    } while (0)

/* The R_* member named k, or -1. Dispatching on the length first makes every comparison a fixed-size memcmp,
   which the compiler inlines: records have ~20 members and this runs for each. That is why the member names (here
   and in the parse_* functions) are literals in this file rather than passed in: their home is decode.py's msgspec
   Structs, and tests/trail/test_fastpath.py holds the names read here equal to those Structs' fields. */
static inline int record_member(Span k)
{
    switch (k.n) {
    case 7:
        MATCH(k, "eventID", R_EVENT_ID);
        break;
    case 9:
        MATCH(k, "eventTime", R_EVENT_TIME);
        MATCH(k, "eventName", R_EVENT_NAME);
        MATCH(k, "awsRegion", R_AWS_REGION);
        MATCH(k, "userAgent", R_USER_AGENT);
        MATCH(k, "errorCode", R_ERROR_CODE);
        MATCH(k, "resources", R_RESOURCES);
        break;
    case 11:
        MATCH(k, "eventSource", R_EVENT_SOURCE);
        break;
    case 12:
        MATCH(k, "userIdentity", R_IDENTITY);
        break;
    case 15:
        MATCH(k, "sourceIPAddress", R_SOURCE_IP);
        break;
    case 16:
        MATCH(k, "responseElements", R_RESPONSE);
        break;
    case 17:
        MATCH(k, "requestParameters", R_PARAMS);
        break;
    case 18:
        MATCH(k, "recipientAccountId", R_RECIPIENT);
        break;
    }
    return -1;
}

/* One element of Records (decode.Record); s->p is just after its '{'. */
static int parse_record(Scanner *s, int depth)
{
    for (int i = 0; i < N_FIELDS; i++) /* a Span is absent when p is NULL; n is not read then */
        s->f[i].p = NULL;
    s->source.p = NULL;
    s->source.n = 0;
    s->has_issuer = 0;
    s->escaped = s->params_bad = s->response_bad = s->response_unfit = 0;

    int first = 1, r, kesc;
    unsigned seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1; /* once unescaped it might be a typed name, with a type to check */
        int m = record_member(key);
        if (m < 0) {
            TRY(skip_value(s, depth + 1));
            continue;
        }
        if (seen & (1u << m))
            return -1;
        seen |= 1u << m;
        if (RECORD_FIELD[m] >= 0) {
            TRY(typed_str(s, &s->f[RECORD_FIELD[m]]));
            continue;
        }
        switch (m) {
        case R_EVENT_SOURCE: {
            int e = 0;
            /* An escaped eventSource may or may not be KMS once unescaped: nothing to decide on. */
            if (read_str_or_null(s, &s->source, &e) != 0 || e)
                return -1;
            break;
        }
        case R_IDENTITY:
            TRY(r = typed_object(s));
            if (r == 1)
                TRY(parse_identity(s, depth + 1));
            break;
        case R_RESOURCES:
            if (*s->p == '[') {
                s->p++;
                TRY(parse_resources(s, depth + 1));
            } else
                TRY(skip_literal(s, "null", 4));
            break;
        case R_PARAMS: {
            /* msgspec.Raw: the value's bytes from its first to its last character, whitespace around excluded. */
            const uint8_t *start = s->p;
            if (*s->p == '{') {
                s->p++;
                TRY(parse_params(s, depth + 1));
            } else if (*s->p == 'n')
                TRY(skip_literal(s, "null", 4));
            else {
                s->params_bad = 1; /* decode._params would return None: not worth reproducing */
                TRY(skip_value(s, depth + 1));
            }
            s->f[F_RP_RAW].p = start;
            s->f[F_RP_RAW].n = (size_t)(s->p - start);
            break;
        }
        case R_RESPONSE:
            if (*s->p == '{') {
                s->p++;
                TRY(parse_response(s, depth + 1));
            } else {
                s->response_unfit = 1; /* null included: decode._response(b"null") is None */
                TRY(skip_value(s, depth + 1));
            }
            break;
        }
    }
    TRY(r);
    return end_record(s);
}

static int parse_records(Scanner *s, int depth)
{
    int first = 1, r;
    while ((r = next_element(s, &first)) == 1) {
        if (*s->p != '{')
            return -1; /* list[Record]: anything else fails msgspec's typed decode */
        s->p++;
        TRY(parse_record(s, depth + 1));
    }
    return r;
}

/* The whole document: an object with exactly one "Records" array, then nothing but whitespace. */
static int parse_document(Scanner *s)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return -1;
    s->p++;
    int first = 1, r, kesc, seen = 0;
    Span key;
    while ((r = next_member(s, &first, &key, &kesc)) == 1) {
        if (kesc)
            return -1;
        if (IS(key, "Records")) {
            if (seen || *s->p != '[')
                return -1; /* duplicated, or null / another type: the generic path's business */
            seen = 1;
            s->p++;
            TRY(parse_records(s, 2));
        } else
            TRY(skip_value(s, 2));
    }
    if (r < 0 || !seen)
        return -1;
    skip_ws(s);
    return s->p == s->end ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Python interface.                                                                                                */

static void free_scanner(Scanner *s)
{
    for (int i = 0; i < N_OUT; i++) {
        free(s->col[i].data);
        free(s->col[i].offsets);
        free(s->col[i].valid);
    }
    free(s->is_crypto);
}

/* A read-only buffer owning malloc'ed memory: the scanner's output is handed to Arrow (pa.py_buffer) without a copy.
   The memory is freed when the last Arrow array using it goes. */
typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t len;
} Buffer;

typedef struct {
    PyTypeObject *buffer_type;
} ModuleState;

static int buffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    static char empty[1];
    Buffer *b = (Buffer *)self;
    return PyBuffer_FillInfo(view, self, b->data != NULL ? b->data : empty, b->len, 1, flags);
}

static void buffer_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    free(((Buffer *)self)->data);
    tp->tp_free(self);
    Py_DECREF(tp); /* heap type */
}

static PyType_Slot buffer_slots[] = {
    {Py_bf_getbuffer, (void *)buffer_getbuffer},
    {Py_tp_dealloc, (void *)buffer_dealloc},
    {Py_tp_doc, (void *)"Read-only memory written by the scanner (exposed through the buffer protocol)."},
    {0, NULL},
};

static PyType_Spec buffer_spec = {
    .name = "kmsguard.trail._fastdecode.Buffer",
    .basicsize = sizeof(Buffer),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = buffer_slots,
};

/* Takes ownership of *data (sets it to NULL), also when it fails. */
static PyObject *own_buffer(PyTypeObject *type, void **data, size_t len)
{
    Buffer *b = PyObject_New(Buffer, type);
    if (b == NULL) {
        free(*data);
        *data = NULL;
        return NULL;
    }
    b->data = *data;
    b->len = (Py_ssize_t)len;
    *data = NULL;
    return (PyObject *)b;
}

/* (validity | None, offsets, data, null_count) of one column; the column's memory moves into the buffers. */
static PyObject *column_tuple(PyTypeObject *type, Column *c, Py_ssize_t rows)
{
    PyObject *valid = NULL, *offsets = NULL, *data = NULL, *nulls = NULL, *t = NULL;
    if (c->offsets == NULL) { /* no rows: one offset, 0 */
        c->offsets = calloc(1, sizeof(int32_t));
        if (c->offsets == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    if (c->cap - c->len > 65536 && c->len > 0) {
        /* Give back what doubling over-reserved: tables stay in memory until a batch is written. Shrinking realloc
           does not copy in practice (in place, or mremap). */
        uint8_t *shrunk = realloc(c->data, c->len);
        if (shrunk != NULL) {
            c->data = shrunk;
            c->cap = c->len;
        }
    }
    valid = c->nulls ? own_buffer(type, (void **)&c->valid, (size_t)(rows + 7) / 8) : Py_NewRef(Py_None);
    offsets = own_buffer(type, (void **)&c->offsets, sizeof(int32_t) * (size_t)(rows + 1));
    data = own_buffer(type, (void **)&c->data, c->len);
    nulls = PyLong_FromSsize_t(c->nulls);
    if (valid != NULL && offsets != NULL && data != NULL && nulls != NULL)
        t = PyTuple_Pack(4, valid, offsets, data, nulls);
    Py_XDECREF(valid);
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    Py_XDECREF(nulls);
    return t;
}

static PyObject *build_result(PyTypeObject *type, Scanner *s, PyObject *per_file)
{
    PyObject *cols = PyTuple_New(N_OUT), *crypto = NULL;
    if (cols == NULL)
        return NULL;
    for (int i = 0; i < N_OUT; i++) {
        PyObject *col = column_tuple(type, &s->col[i], s->rows);
        if (col == NULL)
            goto fail;
        PyTuple_SET_ITEM(cols, i, col);
    }
    if (s->is_crypto == NULL) { /* no rows */
        s->is_crypto = calloc(1, 1);
        if (s->is_crypto == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    crypto = own_buffer(type, (void **)&s->is_crypto, (size_t)(s->rows + 7) / 8);
    if (crypto == NULL)
        goto fail;
    return Py_BuildValue("(OnNN)", per_file, s->rows, cols, crypto);
fail:
    Py_DECREF(cols);
    return NULL;
}

/* Where the output stood before a file, to take back what a file that bails out half-way appended. */
typedef struct {
    Py_ssize_t rows;
    size_t len[N_OUT];
    Py_ssize_t nulls[N_OUT];
} Mark;

static void mark(const Scanner *s, Mark *m)
{
    m->rows = s->rows;
    for (int i = 0; i < N_OUT; i++) {
        m->len[i] = s->col[i].len;
        m->nulls[i] = s->col[i].nulls;
    }
}

static void clear_bits(uint8_t *bits, Py_ssize_t from, Py_ssize_t to)
{
    if (bits == NULL || from >= to)
        return;
    bits[from >> 3] &= (uint8_t)((1u << (from & 7)) - 1); /* keep the bits below `from` in its byte */
    size_t first = (size_t)(from >> 3) + 1, last = (size_t)(to + 7) / 8;
    if (last > first)
        memset(bits + first, 0, last - first);
}

static void rollback(Scanner *s, const Mark *m)
{
    for (int i = 0; i < N_OUT; i++) {
        s->col[i].len = m->len[i];
        s->col[i].nulls = m->nulls[i];
        clear_bits(s->col[i].valid, m->rows, s->rows);
    }
    clear_bits(s->is_crypto, m->rows, s->rows);
    s->rows = m->rows;
}

PyDoc_STRVAR(scan_doc,
             "scan(data: tuple[bytes, ...], files: tuple[bytes, ...], vocabulary: tuple) -> tuple\n\n"
             "Scan decompressed CloudTrail files (names in `files`, UTF-8) into one set of columns. `vocabulary`\n"
             "holds, in VOCABULARY's order, the names the scanner matches: bytes each, crypto_actions a tuple of at\n"
             "most 64 bytes. Returns\n"
             "(per_file, rows, columns, is_crypto). per_file holds, for each file, None when it is not the plain\n"
             "shape this scanner reads exactly (it added no row; the caller uses the msgspec path for it), else\n"
             "(records, not_records, incomplete, rows, first_skip). columns has one (validity | None, int32\n"
             "offsets, data, null_count) per COLUMNS entry and is_crypto is a bit-packed boolean buffer, over the\n"
             "kept rows (KMS records with eventName and eventTime) of the files read, in order. Buffers support the\n"
             "buffer protocol (pyarrow.py_buffer).");

static int bytes_tuple(PyObject *t, Py_ssize_t max)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) > max)
        return -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(t, i)))
            return -1;
    return 0;
}

static Span bytes_span(PyObject *b)
{
    Span v = {(const uint8_t *)PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b)};
    return v;
}

/* The vocabulary tuple is well-formed: N_VOCABULARY items, each bytes but crypto_actions, a tuple of bytes. */
static int vocabulary_ok(PyObject *v)
{
    if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != N_VOCABULARY)
        return 0;
    for (int i = 0; i < N_VOCABULARY; i++) {
        PyObject *item = PyTuple_GET_ITEM(v, i);
        if (i == V_CRYPTO_ACTIONS ? bytes_tuple(item, MAX_CRYPTO) < 0 : !PyBytes_Check(item))
            return 0;
    }
    return 1;
}

static PyObject *scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    ModuleState *state = PyModule_GetState(module);
    if (state == NULL)
        return NULL;
    if (nargs != 3 || bytes_tuple(args[0], PY_SSIZE_T_MAX) < 0 || bytes_tuple(args[1], PY_SSIZE_T_MAX) < 0 ||
        PyTuple_GET_SIZE(args[0]) != PyTuple_GET_SIZE(args[1]) || !vocabulary_ok(args[2])) {
        PyErr_SetString(PyExc_TypeError, "scan() takes (tuple of bytes, tuple of as many bytes, the vocabulary tuple)");
        return NULL;
    }
    Py_ssize_t n_files = PyTuple_GET_SIZE(args[0]);
    /* ok[i] and the counts of file i, written without the GIL and turned into Python objects afterwards. */
    Py_ssize_t(*counts)[6] = PyMem_Calloc((size_t)(n_files ? n_files : 1), sizeof *counts);
    Scanner *s = calloc(1, sizeof *s);
    if (counts == NULL || s == NULL) {
        PyMem_Free(counts);
        free(s);
        return PyErr_NoMemory();
    }
    /* The tuples and their bytes are immutable and referenced by the caller for the whole call. */
    PyObject *vocabulary = args[2];
    s->kms_source = bytes_span(PyTuple_GET_ITEM(vocabulary, V_KMS_SOURCE));
    s->service_caller = bytes_span(PyTuple_GET_ITEM(vocabulary, V_SERVICE_CALLER));
    s->assumed_role_caller = bytes_span(PyTuple_GET_ITEM(vocabulary, V_ASSUMED_ROLE));
    s->service_prefix = bytes_span(PyTuple_GET_ITEM(vocabulary, V_SERVICE_PREFIX));
    s->unknown_service = bytes_span(PyTuple_GET_ITEM(vocabulary, V_UNKNOWN_SERVICE));
    s->account_prefix = bytes_span(PyTuple_GET_ITEM(vocabulary, V_ACCOUNT_PREFIX));
    PyObject *crypto = PyTuple_GET_ITEM(vocabulary, V_CRYPTO_ACTIONS);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(crypto); i++)
        s->crypto[i] = bytes_span(PyTuple_GET_ITEM(crypto, i));
    s->n_crypto = (int)PyTuple_GET_SIZE(crypto);

    /* The scan touches no Python object (only those immutable buffers): other threads may run meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_files; i++) {
        PyObject *data = PyTuple_GET_ITEM(args[0], i), *name = PyTuple_GET_ITEM(args[1], i);
        Mark m;
        mark(s, &m);
        s->p = s->blk = (const uint8_t *)PyBytes_AS_STRING(data);
        s->end = s->p + PyBytes_GET_SIZE(data);
        s->blk_mask = special_mask(s->blk, s->end);
        s->file.p = (const uint8_t *)PyBytes_AS_STRING(name);
        s->file.n = (size_t)PyBytes_GET_SIZE(name);
        s->records = s->not_records = s->incomplete = 0;
        s->first_skip = 0;
        if (parse_document(s) < 0) {
            rollback(s, &m); /* nothing of this file is kept */
            continue;
        }
        counts[i][0] = 1;
        counts[i][1] = s->records;
        counts[i][2] = s->not_records;
        counts[i][3] = s->incomplete;
        counts[i][4] = s->rows - m.rows;
        counts[i][5] = s->first_skip;
    }
    Py_END_ALLOW_THREADS

    PyObject *result = NULL, *per_file = PyTuple_New(n_files);
    if (per_file != NULL) {
        Py_ssize_t i = 0;
        for (; i < n_files; i++) {
            PyObject *item = counts[i][0] ? Py_BuildValue("(nnnnn)", counts[i][1], counts[i][2], counts[i][3],
                                                          counts[i][4], counts[i][5])
                                          : Py_NewRef(Py_None);
            if (item == NULL)
                break;
            PyTuple_SET_ITEM(per_file, i, item);
        }
        if (i == n_files)
            result = build_result(state->buffer_type, s, per_file);
        Py_DECREF(per_file);
    }
    PyMem_Free(counts);
    free_scanner(s);
    free(s);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *names_tuple(const char *const *names, int n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *u = PyUnicode_FromString(names[i]);
        if (u == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, u);
    }
    return t;
}

static int exec_module(PyObject *m)
{
    ModuleState *state = PyModule_GetState(m);
    state->buffer_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &buffer_spec, NULL);
    if (state->buffer_type == NULL)
        return -1;
    if (PyModule_AddType(m, state->buffer_type) < 0)
        return -1;
    PyObject *columns = names_tuple(OUT_NAMES, N_OUT);
    int rc = columns == NULL ? -1 : PyModule_AddObjectRef(m, "COLUMNS", columns);
    Py_XDECREF(columns);
    if (rc < 0)
        return -1;
    PyObject *vocabulary = names_tuple(VOCABULARY_NAMES, N_VOCABULARY);
    rc = vocabulary == NULL ? -1 : PyModule_AddObjectRef(m, "VOCABULARY", vocabulary);
    Py_XDECREF(vocabulary);
    if (rc < 0)
        return -1;
    if (PyModule_AddIntConstant(m, "ABI_VERSION", ABI_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0 ||
        PyModule_AddStringConstant(m, "PARTITION_PATTERN", PARTITION_PATTERN) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    ModuleState *state = PyModule_GetState(m);
    if (state != NULL)
        Py_VISIT(state->buffer_type);
    return 0;
}

static int module_clear(PyObject *m)
{
    ModuleState *state = PyModule_GetState(m);
    if (state != NULL)
        Py_CLEAR(state->buffer_type);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, (void *)exec_module},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "kmsguard.trail._fastdecode",
    .m_doc = "Strict CloudTrail trail-file scanner writing Arrow string buffers (see kmsguard.trail.fastpath).",
    .m_size = sizeof(ModuleState),
    .m_methods = methods,
    .m_slots = slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__fastdecode(void)
{
    return PyModuleDef_Init(&module_def);
}
