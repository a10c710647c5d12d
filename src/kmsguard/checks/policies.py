"""Checks of the policies family (to be written)."""
