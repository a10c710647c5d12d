"""Checks: pure judgements over a Snapshot. See registry.py for how a check is declared."""
