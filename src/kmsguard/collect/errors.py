"""guard(): record a failed AWS call as a CollectionError on the object it concerns, and carry on.

A collector never drops what it could not read: the failure is appended to the ``errors`` list of
the key, resource, region or account, and checks turn it into an ERROR finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kmsguard.aws.errors import AWS_CALL_ERRORS, error_code
from kmsguard.model.snapshot import CollectionError


def collection_error(service: str, operation: str, exc: Exception, resource: str | None = None) -> CollectionError:
    code, message = error_code(exc)
    # A ClientError knows which operation failed, which may be a later call than the one we guarded.
    op = getattr(exc, "operation_name", None) or operation
    return CollectionError(service=service, operation=op, code=code, message=message, resource=resource)


@contextmanager
def guard(errors: list[CollectionError], service: str, operation: str, resource: str | None = None) -> Iterator[None]:
    try:
        yield
    except AWS_CALL_ERRORS as e:
        errors.append(collection_error(service, operation, e, resource))
