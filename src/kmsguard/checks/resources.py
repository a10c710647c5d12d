"""Checks of the resources family (to be written)."""
