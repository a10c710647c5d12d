"""Collectors: one module per AWS service, each filling its part of the Snapshot. No judgement here."""
