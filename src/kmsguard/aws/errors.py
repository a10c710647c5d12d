"""Errors that stop a whole run (exit code 3). Per-object failures are CollectionErrors instead.

``error_code`` gives the AWS error code and message of any botocore failure, so collectors can record
what went wrong on the object it concerns without each one knowing botocore's exception zoo.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

# Everything a single AWS call can fail with that is about AWS, not about kmsguard: an error answer,
# a transport failure, or an answer that is not the protocol (a proxy's HTML error page).
AWS_CALL_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, ResponseParserError)

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE (or pass --profile), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run `aws configure` / `aws sso login`"
)


class AwsUnavailable(Exception):
    """AWS could not be reached or no usable credentials were found: nothing could be scanned."""


class DeadlinePassed(BotoCoreError):
    """The run's ``--deadline`` passed, so this call was not made. A BotoCoreError, so that every collector
    records it like any other failed call: what was not read is an ERROR finding saying why."""

    fmt = "the run's --deadline of {deadline} passed before this call was made"


def error_code(exc: Exception) -> tuple[str, str]:
    """(code, message) for a failed AWS call: the AWS error code, or the botocore exception's name."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Unknown")
        return code, str(err.get("Message") or exc)
    text = str(exc)
    # Transport errors can carry a whole HTML error page; the first line or so says enough.
    return type(exc).__name__, text if len(text) <= 300 else text[:300] + "..."


# The codes AWS services throttle request rates with (not LimitExceededException: in KMS that is a resource quota).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "SlowDown",
    }
)

# Answers that say AWS is busy or broken right now, not that the caller is wrong: throttling and server errors.
_BUSY_CODES = THROTTLING_CODES | frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def throttling(status: int, parsed: dict[str, object]) -> bool:
    """Whether one attempt's answer (HTTP status, botocore's parsed body) is AWS throttling the caller."""
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    code = error.get("Code") if isinstance(error, dict) else None
    return status == 429 or code in THROTTLING_CODES


def aws_busy(exc: ClientError) -> bool:
    """True when AWS answered with throttling or a server error (5xx, 429): try later, the credentials may be fine."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status == 429 or error_code(exc)[0] in _BUSY_CODES
