"""The web dashboard over the store (``kmsguard serve``)."""
