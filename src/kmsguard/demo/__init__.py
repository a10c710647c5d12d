"""The embedded AWS emulator (moto plus a small documented layer) and the sample estate for `kmsguard demo`.

Nothing under kmsguard.demo is imported by scanning code: kmsguard talks to the emulator over HTTP
exactly as it talks to AWS.
"""
