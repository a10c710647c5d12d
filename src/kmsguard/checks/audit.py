"""Checks of the audit family (to be written)."""
