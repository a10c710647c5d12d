"""The check registry: every check is a pure function ``(Snapshot, ScanConfig) -> Iterable[Result]``.

A check module declares its checks with ``@check(...)``; ``run_checks`` calls them and turns each
``Result`` into a ``Finding`` by filling in what the registry knows (remediation, compliance ids,
default severity). No check calls AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kmsguard.compliance.mapping import for_topics, known_topics
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Finding, Severity, Status, region_arn

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Resource, Snapshot


@dataclass(frozen=True)
class Result:
    """What a check says about one subject; the registry completes it into a Finding."""

    status: Status
    account: str
    region: str
    resource_type: str
    resource_arn: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # None: the check's default severity


CheckFunc = Callable[["Snapshot", ScanConfig], Iterable[Result]]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: Severity
    family: str  # key, policy, resource, audit, iam, scan
    rationale: str
    remediation: str
    topics: tuple[str, ...]
    func: CheckFunc
    # True for a check that judges what only a live account has (key state such as pending deletion, CloudTrail
    # usage, the whole account's IAM): `kmsguard iac` does not run it on templates.
    live_only: bool = False
    # The fixer ``kmsguard fix`` plans this check's failing findings with, by its stable name (the table of
    # fixers is ``fix.planner.FIXERS``; fix sits above checks, so the name, not the function). None: no fixer,
    # the finding's remediation text is the fix.
    fixer: str | None = None

    @property
    def compliance(self) -> dict[str, list[str]]:
        return for_topics(self.topics)


REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    *,
    title: str,
    severity: Severity,
    family: str,
    rationale: str,
    remediation: str,
    topics: Iterable[str] = (),
    live_only: bool = False,
    fixer: str | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    topics = tuple(topics)
    unknown = set(topics) - known_topics()
    if unknown:
        raise ValueError(f"check {id}: unknown compliance topics {sorted(unknown)}")

    def register(func: CheckFunc) -> CheckFunc:
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice")
        REGISTRY[id] = CheckSpec(id, title, severity, family, rationale, remediation, topics, func, live_only, fixer)
        return func

    return register


# --- helpers that build Results for the common subjects ---------------------------------------------


def key_result(
    key: Key,
    status: Status,
    message: str,
    evidence: dict[str, Any] | None = None,
    severity: Severity | None = None,
) -> Result:
    return Result(status, key.account, key.region, "AWS::KMS::Key", key.arn, message, evidence or {}, severity)


def resource_result(
    res: Resource,
    status: Status,
    message: str,
    evidence: dict[str, Any] | None = None,
    severity: Severity | None = None,
) -> Result:
    return Result(status, res.account, res.region, res.resource_type, res.arn, message, evidence or {}, severity)


def region_result(
    partition: str,
    account: str,
    region: str,
    status: Status,
    message: str,
    evidence: dict[str, Any] | None = None,
    severity: Severity | None = None,
) -> Result:
    return Result(
        status,
        account,
        region,
        "AWS::Account::Region",
        region_arn(partition, account, region),
        message,
        evidence or {},
        severity,
    )


# --- running -----------------------------------------------------------------------------------------


def load_builtin_checks() -> dict[str, CheckSpec]:
    """Import every built-in check module so that their @check decorators run."""
    from kmsguard.checks import builtin  # noqa: F401  (import registers)

    return REGISTRY


def select_checks(only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[CheckSpec]:
    """The checks to run; unknown ids are a ValueError naming them."""
    registry = load_builtin_checks()
    only_set, skip_set = set(only or ()), set(skip or ())
    unknown = (only_set | skip_set) - set(registry)
    if unknown:
        raise ValueError(f"unknown check id(s): {', '.join(sorted(unknown))} (see `kmsguard checks`)")
    return [s for cid, s in sorted(registry.items()) if (not only_set or cid in only_set) and cid not in skip_set]


def run_checks(
    snapshot: Snapshot,
    config: ScanConfig | None = None,
    specs: Iterable[CheckSpec] | None = None,
) -> list[Finding]:
    return list(iter_checks(snapshot, config, specs))


def iter_checks(
    snapshot: Snapshot,
    config: ScanConfig | None = None,
    specs: Iterable[CheckSpec] | None = None,
) -> Iterator[Finding]:
    """``run_checks`` one finding at a time, as each check yields it."""
    config = config or ScanConfig()
    for spec in list(specs) if specs is not None else select_checks():
        yield from _complete(spec, spec.func(snapshot, config), config)


def _complete(spec: CheckSpec, results: Iterable[Result], config: ScanConfig) -> Iterator[Finding]:
    default = config.severity_overrides.get(spec.id, spec.severity)
    compliance = spec.compliance
    for r in results:
        # model_construct skips re-validating what the registry built from typed parts: validating
        # every Finding costs more than all the checks together on a 20,000-key estate.
        yield Finding.model_construct(
            check_id=spec.id,
            status=r.status,
            severity=r.severity or default,
            account=r.account,
            region=r.region,
            resource_type=r.resource_type,
            resource_arn=r.resource_arn,
            message=r.message,
            evidence=r.evidence,
            remediation=spec.remediation if r.status is not Status.PASS else "",
            compliance=compliance,
            mute_reason=None,
        )
