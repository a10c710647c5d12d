"""Judge templates with the registered checks: every world of every unit, merged into one set of findings.

- **Which checks.** Every registered check but those flagged ``live_only`` (key state such as pending
  deletion, CloudTrail usage, the whole account's IAM: no template holds them). Naming a live-only check in
  ``--checks`` is an error, not a silent no-op. The audit family (trails, metric filters, alarms, Config rules)
  judges an account's whole set-up, so it runs only on a unit that declares some of it: a template holding a
  key and a bucket is not "an account without a trail".
- **Worlds.** Each world of a unit (one combination of its conditions) is judged on its own. For each check and
  object the worst world wins (FAIL, then ERROR, then PASS; then severity); when the worlds disagree, the
  finding says in which world it holds (message suffix and ``evidence.iac_condition``).
- **Keys declared elsewhere.** A resource under a key the templates name but do not declare (an import, a
  parameter, a literal ARN) is judged as under a customer managed, enabled key, and says which key
  (``evidence.key_outside_templates``); the stand-in key itself gets no findings.
- **Where.** A finding on a declared object carries its ``location`` and is reported on
  ``iac://<file>#<resource>``; account/Region findings (the audit family) on the unit's first trail, or its
  file. A finding on an object whose judgement assumed unknown values says which (``evidence.unknown_values``).
- **Mutes** apply last, so a kmsguard.yaml mute can name ``iac://...`` resources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from kmsguard import __version__
from kmsguard.checks.registry import CheckSpec, select_checks
from kmsguard.config import ScanConfig
from kmsguard.iac.build import Built, build_snapshot
from kmsguard.iac.declared import Declared, IacContext, Location, Unit
from kmsguard.model.finding import Finding, FindingLocation, Status
from kmsguard.model.result import ScanResult
from kmsguard.pipeline import mute, run_selected, warn_stderr

_STATUS_RANK = {Status.FAIL: 3, Status.ERROR: 2, Status.MUTED: 1, Status.PASS: 0}
IAC_SCHEME = "iac://"


def iac_checks(only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[CheckSpec]:
    """The checks ``kmsguard iac`` runs; ValueError for an unknown id or a live-only one named in ``only``."""
    specs = select_checks(only, skip)
    named_live = sorted(s.id for s in specs if s.live_only and only)
    if named_live:
        raise ValueError(
            f"check(s) {', '.join(named_live)} judge live state (key state, CloudTrail usage, the account's IAM) "
            "and cannot run on templates: use `kmsguard scan` for them"
        )
    return [s for s in specs if not s.live_only]


def judge_units(
    units: Sequence[Unit],
    ctx: IacContext,
    config: ScanConfig | None = None,
    specs: Sequence[CheckSpec] | None = None,
    *,
    today: date | None = None,
    warn: Callable[[str], None] = warn_stderr,
) -> ScanResult:
    config = config or ScanConfig()
    specs = list(specs) if specs is not None else iac_checks()
    at = datetime.now(UTC)
    findings = [f for unit in units for f in judge_unit(unit, ctx, config, specs, at)]
    return iac_result(findings, ctx, config, at, today=today, warn=warn)


def iac_result(
    findings: list[Finding],
    ctx: IacContext,
    config: ScanConfig,
    at: datetime,
    *,
    today: date | None = None,
    warn: Callable[[str], None] = warn_stderr,
) -> ScanResult:
    """The judged templates as a ScanResult, mutes applied last (so they can name iac:// resources)."""
    return ScanResult(
        kmsguard_version=__version__,
        scanned_at=at,
        accounts=[ctx.account],
        regions=[ctx.region],
        findings=mute(findings, config, today, warn),
    )


def declares_audit(world: Declared) -> bool:
    return bool(world.trails or world.metric_filters or world.alarms or world.config_rules)


@dataclass
class _Judged:
    world: Declared
    built: Built
    findings: list[Finding]


def judge_unit(
    unit: Unit, ctx: IacContext, config: ScanConfig, specs: Sequence[CheckSpec], at: datetime | None = None
) -> list[Finding]:
    judged = []
    for world in unit.worlds:
        built = build_snapshot(world, ctx, at)
        use = specs if declares_audit(world) else [s for s in specs if s.family != "audit"]
        judged.append(_Judged(world, built, run_selected(built.snapshot, config, use)))
    locations = {arn: loc for j in judged for arn, loc in j.world.locations.items()}
    notes = _Notes(
        {arn: why for j in judged for arn, why in j.built.unknowns.items()},
        {arn: ref for j in judged for arn, ref in j.built.outside.items()},
    )
    stand_ins = {arn for j in judged for arn in j.built.stand_ins}
    anchor = _anchor(unit, judged)
    merged = [(f, label) for f, label in _merge(judged) if f.resource_arn not in stand_ins]
    return [_place(f, label, locations, notes, anchor) for f, label in merged]


@dataclass(frozen=True)
class _Notes:
    unknowns: dict[str, list[str]]  # object ARN -> the unknown values its judgement assumed at their worst
    outside: dict[str, str]  # resource ARN -> the key it names that the templates do not declare


def _merge(judged: list[_Judged]) -> list[tuple[Finding, str]]:
    """Per check and object, the findings of the worst world, with that world's label when worlds differ."""
    groups: dict[tuple[str, str], list[tuple[_Judged, list[Finding]]]] = {}
    for j in judged:
        per_world: dict[tuple[str, str], list[Finding]] = {}
        for f in j.findings:
            per_world.setdefault((f.check_id, f.resource_arn), []).append(f)
        for key, fs in per_world.items():
            groups.setdefault(key, []).append((j, fs))
    out: list[tuple[Finding, str]] = []
    for entries in groups.values():
        worst_j, worst = max(entries, key=lambda e: max(_rank(f) for f in e[1]))
        outcomes = {frozenset((f.status, f.message) for f in fs) for _, fs in entries}
        label = worst_j.world.label if len(outcomes) > 1 or len(entries) < len(judged) else ""
        out += [(f, label) for f in worst]
    return out


def _rank(f: Finding) -> tuple[int, int]:
    return _STATUS_RANK[f.status], f.severity.rank


def _anchor(unit: Unit, judged: list[_Judged]) -> Location:
    """Where account/Region findings of the unit point: its first trail, else its first declared object."""
    trails = [j.world.locations[t.arn] for j in judged for t in j.world.trails if t.arn in j.world.locations]
    if trails:
        return min(trails, key=lambda loc: (loc.file, loc.line))
    files = sorted(loc.file for j in judged for loc in j.world.locations.values())
    return Location(files[0] if files else unit.file, 1, "(account set-up)")


def _place(f: Finding, label: str, locations: dict[str, Location], notes: _Notes, anchor: Location) -> Finding:
    loc = locations.get(f.resource_arn) or anchor
    message, evidence = f.message, dict(f.evidence)
    reasons = notes.unknowns.get(f.resource_arn, [])
    if reasons:
        evidence["unknown_values"] = reasons
        message += f" (judged with any value for: {'; '.join(reasons)})"
    outside = notes.outside.get(f.resource_arn)
    if outside:
        evidence["key_outside_templates"] = outside
        message += f" (its key is not declared in these templates: {outside}; `kmsguard scan` judges it once deployed)"
    if label:
        evidence["iac_condition"] = label
        message += f" (when {label})"
    return f.model_copy(
        update={
            "resource_arn": f"{IAC_SCHEME}{loc.file}#{loc.resource}",
            "message": message,
            "evidence": evidence,
            "location": FindingLocation(file=loc.file, line=loc.line, resource=loc.resource),
        }
    )
