"""kmsguard: find, explain, fix and watch AWS KMS misconfigurations."""

__version__ = "0.1.0"
