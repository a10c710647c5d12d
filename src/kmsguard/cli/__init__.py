"""The `kmsguard` command: one module per command group."""
