"""Mutes: accepted exceptions from kmsguard.yaml, applied to the findings after the checks ran.

A mute names what it covers -- check id, account, region, resource ARN, each a glob (``fnmatch``, ``*`` and
``?``; omitted means "any") -- and says why (``reason``, required: an assessor asks). ``expires`` is a date;
the mute holds through that day (UTC) and stops on the next.

Only FAIL findings are muted. PASS needs no exception, and ERROR means the check could not judge: muting a
blind spot would hide that nobody looked. A muted finding keeps its severity, message and evidence; only its
status (MUTED) and ``mute_reason`` change, so every format can still show what was accepted.

An expired mute mutes nothing: its findings come back as FAIL with an ``expired_mute`` note in their
evidence, and ``apply_mutes`` returns one warning per expired mute that matched something, for the CLI to
print -- an exception nobody renewed should be noticed, not silently forgotten.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kmsguard.model.finding import Finding, Status


class Mute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: str = "*"
    account: str = "*"
    region: str = "*"
    resource: str = "*"
    reason: str = Field(min_length=1)
    expires: date | None = None

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("reason must say why the finding is accepted")
        return v.strip()

    @field_validator("account")
    @classmethod
    def _account_shape(cls, v: str) -> str:
        # Quoting matters in YAML: an unquoted 012345678901 is an int and loses its leading zero; pydantic
        # rejects the int, and this catches a typo'd id that would otherwise silently match nothing.
        if not re.fullmatch(r"[0-9*?]+", v):
            raise ValueError(f"{v!r} is not an account id or a glob of one")
        return v

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in self._fields() if value != "*"]
        return ", ".join(parts) or "everything"

    def _fields(self) -> list[tuple[str, str]]:
        return [("check", self.check), ("account", self.account), ("region", self.region), ("resource", self.resource)]

    def matches(self, f: Finding) -> bool:
        # fnmatchcase: ARNs and check ids are case-sensitive; fnmatch would fold case on some platforms.
        return (
            fnmatch.fnmatchcase(f.check_id, self.check)
            and fnmatch.fnmatchcase(f.account, self.account)
            and fnmatch.fnmatchcase(f.region, self.region)
            and fnmatch.fnmatchcase(f.resource_arn, self.resource)
        )

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires


@dataclass
class MuteOutcome:
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)
    muted: int = 0


def apply_mutes(findings: Iterable[Finding], mutes: list[Mute], today: date) -> MuteOutcome:
    """The findings with every FAIL covered by an active mute turned MUTED (first matching mute wins)."""
    muter = Muter(mutes, today)
    out = MuteOutcome(findings=[muter.apply(f) for f in findings])
    out.warnings, out.muted = muter.warnings(), muter.muted
    return out


class Muter:
    """``apply_mutes`` one finding at a time, for a judge that streams its findings (``pipeline.judge_stream``);
    the warnings come once every finding has been seen."""

    def __init__(self, mutes: list[Mute], today: date) -> None:
        self._active = [m for m in mutes if not m.expired(today)]
        self._expired = [(i, m) for i, m in enumerate(mutes, 1) if m.expired(today)]
        self._expired_hits: dict[int, int] = {}
        self.muted = 0

    def apply(self, f: Finding) -> Finding:
        if f.status is not Status.FAIL or not (self._active or self._expired):
            return f
        hit = next((m for m in self._active if m.matches(f)), None)
        if hit is not None:
            self.muted += 1
            return f.model_copy(update={"status": Status.MUTED, "mute_reason": hit.reason})
        stale = next(((i, m) for i, m in self._expired if m.matches(f)), None)
        if stale is None:
            return f
        i, m = stale
        self._expired_hits[i] = self._expired_hits.get(i, 0) + 1
        note = {"reason": m.reason, "expired": m.expires.isoformat() if m.expires else None, "mute": i}
        return f.model_copy(update={"evidence": {**f.evidence, "expired_mute": note}})

    def warnings(self) -> list[str]:
        return [
            f"mute #{i} ({m.describe()}) expired on {m.expires}: its {self._expired_hits[i]} finding(s) are "
            f"reported as FAIL again (reason was: {m.reason})"
            for i, m in self._expired
            if i in self._expired_hits
        ]
