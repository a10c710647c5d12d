"""Key references -> key ARNs: the one home of resolving a key id, alias name, alias ARN or key ARN.

Services name keys every way KMS accepts: S3 and EBS report an ARN, others an id or an alias; CloudTrail logs a
key id, an alias or an ARN of another partition; a user types any of them. Two scopes, one set of rules:

- ``KeyResolver``: within one account and region, as a collector (or a template) sees it, with that region's
  alias map. A bare key id is only meaningful there, so its ARN is implied even for a key not listed.
- ``KeyIndex``: across a whole Snapshot, as trail usage and the CLI need it. A bare id or alias is unique only
  in its account and region: it resolves only when exactly one known key has it, never by a guess.

Resolution reads only what was collected: no AWS calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kmsguard.arn import parse as parse_arn

if TYPE_CHECKING:
    from kmsguard.model.snapshot import Key, Snapshot


class KeyResolver:
    """One account and region's references (what its KMS collector read: its keys and alias map).

    ``alias/aws/<service>`` resolves to the AWS managed key when that key exists; a reference that names no key
    (an alias that points nowhere, another account's alias) gives None: that is not a collection failure, the
    data simply does not name a key.
    """

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


@dataclass(frozen=True)
class KeyRef:
    """What identifies one known key: its ARN, place, id and aliases."""

    arn: str
    account: str
    region: str
    key_id: str
    aliases: tuple[str, ...]

    @classmethod
    def of_arn(cls, arn: str, key_id: str = "", aliases: Iterable[str] = ()) -> KeyRef:
        parsed = parse_arn(arn)
        account, region = (parsed.account, parsed.region) if parsed is not None else ("", "")
        if not key_id and parsed is not None and parsed.resource.startswith("key/"):
            key_id = parsed.resource[4:]
        return cls(arn, account, region, key_id, tuple(aliases))

    @classmethod
    def of_key(cls, key: Key) -> KeyRef:
        return cls(key.arn, key.account, key.region, key.key_id, tuple(key.aliases))


class KeyIndex:
    """References across a snapshot -> the ARN of a known key, or None.

    A key id or alias is unique only in its account and region: a bare one resolves only when exactly one
    known key has it (an alias such as ``alias/app`` in two regions stays unresolved rather than guessed).
    """

    def __init__(self, keys: Iterable[KeyRef]) -> None:
        self._arns: set[str] = set()
        self._placed: dict[tuple[str, str, str], str] = {}  # (account, region, key/ID or alias/NAME) -> ARN
        self._bare: dict[str, set[str]] = {}  # key id or alias -> every ARN that has it
        for k in keys:
            self._arns.add(k.arn)
            for name in (f"key/{k.key_id}" if k.key_id else "", *k.aliases):
                if name:
                    self._placed[(k.account, k.region, name)] = k.arn
                    self._bare.setdefault(name[4:] if name.startswith("key/") else name, set()).add(k.arn)

    @classmethod
    def of_snapshot(cls, snapshot: Snapshot) -> KeyIndex:
        return cls(KeyRef.of_key(k) for k in snapshot.all_keys())

    def candidates(self, ref: str) -> list[str]:
        """Every known key ARN the reference may mean (several when a bare id or alias is in several places)."""
        if ref in self._arns:
            return [ref]
        parsed = parse_arn(ref)
        if parsed is not None:
            # By place and name, whatever partition the reference was written in.
            placed = self._placed.get((parsed.account, parsed.region, parsed.resource))
            return [placed] if placed else []
        return sorted(self._bare.get(ref, ()))

    def resolve(self, ref: str) -> str | None:
        """The one key the reference means; None when it names no known key or is ambiguous."""
        found = self.candidates(ref)
        return found[0] if len(found) == 1 else None
