"""collect_snapshot: the entry point of collection (to be written)."""

from __future__ import annotations

from kmsguard.aws.options import AwsOptions
from kmsguard.collect.progress import Progress
from kmsguard.model.snapshot import Snapshot


def collect_snapshot(options: AwsOptions, progress: Progress | None = None) -> Snapshot:
    raise NotImplementedError
