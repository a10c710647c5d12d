"""What a template change does to its keys: for every key policy that differs between two versions, the access
gained and lost (``policy.diff``, the engine's own diff), whether it opens the key to the public or to new
outside accounts (``policy.questions``), and whether it locks administration out.

Keys are matched by unit and name: the template's path (relative to each side's root) and the key's logical
id or Terraform address. A key only in the new version is compared with a key nobody may use (all its access
is gained); a key only in the old version is reported as removed. Worlds (template conditions) are matched by
label; a world one side lacks is compared with the other side's first world. Both policies are judged with
unknown values at their worst (``iac.symbolic``), and the change says which values were unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kmsguard.iac.declared import Declared, IacContext, Location, Unit
from kmsguard.iac.symbolic import worst_case_policy
from kmsguard.model.snapshot import Key

# The "old policy" of a key that did not exist: nobody may do anything with it.
NOBODY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "NoKeyYet", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}],
    }
)
FAIL_ON_NEW_ACCESS = ("public", "external", "any")


@dataclass
class KeyChange:
    unit: str
    key: str
    status: Literal["changed", "added", "removed"]
    location: Location | None
    world: str = ""
    gained: list[dict[str, Any]] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    public_before: bool = False
    public_after: bool = False
    new_external: list[str] = field(default_factory=list)
    admin_lockout: bool = False
    administrable_after: bool = True
    unknown_values: list[str] = field(default_factory=list)
    # Why the change could not be judged (a policy the engine cannot read): the CLI exits 1 on it.
    error: str | None = None

    @property
    def opens_public(self) -> bool:
        return self.public_after and not self.public_before

    def new_access(self, level: str) -> bool:
        """Does this change give new access of ``level`` (public, external or any)?"""
        if level == "public":
            return self.opens_public
        if level == "external":
            return self.opens_public or bool(self.new_external)
        return bool(self.gained) or self.opens_public or bool(self.new_external)

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "key": self.key,
            "status": self.status,
            "location": self.location.to_dict() if self.location else None,
            "world": self.world,
            "public_before": self.public_before,
            "public_after": self.public_after,
            "new_external_principals": self.new_external,
            "admin_lockout": self.admin_lockout,
            "administrable_after": self.administrable_after,
            "gained": self.gained,
            "lost": self.lost,
            "uncertain": self.uncertain,
            "unknown_values": self.unknown_values,
            "error": self.error,
        }


@dataclass(frozen=True)
class _Side:
    key: Key
    world: Declared


def _keys(units: Iterable[Unit], paired: bool) -> dict[tuple[str, str], dict[str, _Side]]:
    """(unit, key name) -> world label -> the key in that world. ``paired``: the two sides are two single
    files given on the command line, matched to each other whatever their names."""
    out: dict[tuple[str, str], dict[str, _Side]] = {}
    for unit in units:
        for world in unit.worlds:
            for key in world.keys:
                out.setdefault(("" if paired else unit.file, key.key_id), {})[world.label] = _Side(key, world)
    return out


def diff_units(
    old: Sequence[Unit],
    new: Sequence[Unit],
    ctx: IacContext,
    *,
    paired: bool = False,
    trusted_accounts: Sequence[str] = (),
    trusted_org_ids: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[KeyChange]:
    """``progress(done, total)`` is told after each key (the engine's diff takes seconds on large policies)."""
    before, after = _keys(old, paired), _keys(new, paired)
    changes: list[KeyChange] = []
    idents = sorted(before.keys() | after.keys())
    for done, ident in enumerate(idents, 1):
        changes += _changes(ident, before.get(ident, {}), after.get(ident, {}), ctx, trusted_accounts, trusted_org_ids)
        if progress is not None:
            progress(done, len(idents))
    return changes


def _changes(
    ident: tuple[str, str],
    olds: dict[str, _Side],
    news: dict[str, _Side],
    ctx: IacContext,
    trusted_accounts: Sequence[str],
    trusted_org_ids: Sequence[str],
) -> list[KeyChange]:
    """One key's changes: removed, or one per world of its new version that differs."""
    if not news:
        side = next(iter(olds.values()))
        return [KeyChange(ident[0], ident[1], "removed", side.world.locations.get(side.key.arn))]
    changes: list[KeyChange] = []
    for label, side in news.items():
        prior = olds.get(label) or next(iter(olds.values()), None)
        change = _compare(ident, label, prior, side, ctx, trusted_accounts, trusted_org_ids)
        if change is not None:
            changes.append(change)
    return changes


def _compare(
    ident: tuple[str, str],
    label: str,
    prior: _Side | None,
    side: _Side,
    ctx: IacContext,
    trusted_accounts: Sequence[str],
    trusted_org_ids: Sequence[str],
) -> KeyChange | None:
    from kmsguard.policy.diff import diff_policies
    from kmsguard.policy.questions import analyze_key_policy

    new = worst_case_policy(side.key.policy or NOBODY)
    old = worst_case_policy(prior.key.policy or NOBODY) if prior else None
    assert new is not None
    if old is not None and _same(old.text, new.text):
        return None
    old_text = old.text if old else NOBODY
    account, key_arn = ctx.account, side.key.arn
    status: Literal["changed", "added"] = "changed" if prior else "added"
    where = side.world.locations.get(side.key.arn)
    try:
        d = diff_policies(old_text, new.text, account, key_arn=key_arn)
        a_old, a_new = (
            analyze_key_policy(t, account, trusted_accounts=trusted_accounts, trusted_org_ids=trusted_org_ids)
            for t in (old_text, new.text)
        )
    except ValueError as e:  # PolicyParseError and the engine's refusals: say so, never guess
        which = "new" if _unreadable(new.text) else "old"
        return KeyChange(ident[0], ident[1], status, where, label, error=f"the {which} key policy: {e}")
    return KeyChange(
        unit=ident[0],
        key=ident[1],
        status=status,
        location=where,
        world=label,
        gained=[c.to_dict() for c in d.gained],
        lost=[c.to_dict() for c in d.lost],
        uncertain=list(d.uncertain),
        public_before=bool(old and a_old.public),
        public_after=a_new.public,
        new_external=sorted(set(a_new.external_principals) - set(a_old.external_principals if old else ())),
        # A new key nobody can administer is as locked out as an old key that stops being administrable.
        admin_lockout=d.admin_lockout or (prior is None and not d.administrable_after),
        administrable_after=d.administrable_after,
        unknown_values=list(dict.fromkeys((old.unknowns if old else []) + new.unknowns)),
    )


def _unreadable(text: str) -> bool:
    from kmsguard.policy.questions import load

    try:
        load(text)
    except ValueError:
        return True
    return False


def _same(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a == b
