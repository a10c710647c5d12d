"""Errors that stop a whole run (exit code 3). Per-object failures are CollectionErrors instead."""


class AwsUnavailable(Exception):
    """AWS could not be reached or no usable credentials were found: nothing could be scanned."""
