"""Compliance frameworks and the controls each check supports (from controls.yaml)."""
