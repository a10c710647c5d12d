"""Resolve a key reference as a service reports it (key id, alias name, alias ARN, key ARN) to a key ARN.

Resolution uses only what the KMS collector already read for the region (its key list and alias
map): no extra calls. ``alias/aws/<service>`` resolves to the AWS managed key when that key exists;
a reference that cannot be resolved (an alias that points nowhere, another account's alias) gives
None: that is not a collection failure, the data simply does not name a key.
"""

from __future__ import annotations

from collections.abc import Iterable

from kmsguard.model.snapshot import Key


class KeyResolver:
    def __init__(self, partition: str, account: str, region: str, keys: Iterable[Key], aliases: dict[str, str]) -> None:
        self._prefix = f"arn:{partition}:kms:{region}:{account}:"
        self._arn_by_id = {k.key_id: k.arn for k in keys}
        self._aliases = aliases

    def _key_arn(self, key_id: str) -> str:
        # A key id is only meaningful in its own account and region, so its ARN is implied even when the
        # key was not listed (deleted since, or the listing failed).
        return self._arn_by_id.get(key_id) or f"{self._prefix}key/{key_id}"

    def resolve(self, ref: str | None) -> str | None:
        if not ref:
            return None
        if ref.startswith("arn:"):
            resource = ref.split(":", 5)[-1]
            if resource.startswith("key/"):
                return ref  # already a key ARN (possibly another account's key: kept as is)
            if resource.startswith("alias/") and ref.startswith(self._prefix):
                return self.resolve(resource)
            return None  # another account's or region's alias: its target is not ours to read
        if ref.startswith("alias/"):
            target = self._aliases.get(ref)
            return self._key_arn(target) if target else None
        return self._key_arn(ref)
