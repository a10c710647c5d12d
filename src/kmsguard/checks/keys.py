"""Checks of the keys family (to be written)."""
