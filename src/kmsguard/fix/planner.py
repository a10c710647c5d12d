"""Findings -> a Plan of idempotent actions. Pure: reads the Snapshot and the judged findings, calls no AWS.

Which findings fix acts on is declared beside each check: ``@check(fixer="rotation")`` names a fixer of
``FIXERS`` (the table of the planner's fixers by stable name), so renaming a check keeps its fix and a check
without a fixer is left to its remediation text (``fixable_checks``; tests/fix/test_fixers.py holds the two sides
to each other).

Each action is derived from failing findings only, so once it is applied the finding passes and a second plan
has nothing to do (idempotent by construction). Every policy rewrite is built by ``tighten`` (the engine's
judgement) and judged by ``simulate.change_impact``, the one answer to who loses what; a rewrite after which
nobody could administer the key is refused unless ``force``.

"Who loses what" (``impact.lost`` / ``impact.gained``) is effective access (``simulate.access_changes``): the
key with its current and its planned policy, over the snapshot's IAM, Organization, grants and role chains, so
a principal that keeps decrypting through its identity policies is not listed as losing it, and one that only
ever had access through IAM delegation is. Each entry names the path (``via``, ``path``). Where the snapshot
cannot judge effective access (a live scan without the account's IAM inventory) the key-policy diff is shown
instead and ``impact.effective_access`` says why; the key-policy diff is always in ``impact.key_policy``, asked
about the requests a caller that follows the new policy makes (over TLS, with the required encryption context).
``impact.unintended_loss`` lists its losses no intended removal explains. The lock-out guard refuses a rewrite
when either view says nobody could change the key policy afterwards.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsguard.checks.registry import CheckSpec, load_builtin_checks
from kmsguard.fix.plan import Action, Manual, Plan, Refusal
from kmsguard.fix.simulate import AccessImpact, change_impact, effective_change, legitimate_context
from kmsguard.model.finding import Finding, Status
from kmsguard.model.snapshot import Key, Resource, Snapshot
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.estate import build_estate
from kmsguard.policy.tighten import TightenOptions, tighten_policy, to_text
from kmsguard.policy.trust import trusted


@dataclass
class FixOptions:
    rotation_days: int = 365
    cancel_deletion: bool = False
    force: bool = False
    target_key: str | None = None  # ARN or alias of the CMK resources move to
    require_context: dict[str, str] = field(default_factory=dict)
    admins: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    trusted_accounts: frozenset[str] = frozenset()
    trusted_org_ids: frozenset[str] = frozenset()
    checks: frozenset[str] | None = None  # only these check ids
    keys: tuple[str, ...] = ()  # only these keys (id, ARN or alias)
    regions: frozenset[str] | None = None
    accounts: frozenset[str] | None = None


def build_plan(snapshot: Snapshot, findings: Iterable[Finding], options: FixOptions) -> Plan:
    return _Planner(snapshot, options).plan(findings)


def _key_matches(key: Key, refs: tuple[str, ...]) -> bool:
    return any(r in (key.arn, key.key_id) or r in key.aliases or f"alias/{r}" in key.aliases for r in refs)


class _Planner:
    def __init__(self, snapshot: Snapshot, options: FixOptions) -> None:
        self.snapshot = snapshot
        self.opts = options
        self.keys = {k.arn: k for k in snapshot.all_keys()}
        self.resources: dict[str, Resource] = {
            r.arn: r for a in snapshot.accounts for reg in a.regions for r in reg.resources
        }
        # Trusted as the scan's policy checks judge it, so a rewrite removes exactly what they flag as external.
        self.trusted = trusted(snapshot, options)
        self.fixer_of = fixable_checks()
        self.out = Plan()
        self._evaluator: AccessEvaluator | None = None

    def evaluator(self) -> AccessEvaluator:
        """The effective-access evaluator over the snapshot's estate, built on the first policy rewrite."""
        if self._evaluator is None:
            self._evaluator = AccessEvaluator(build_estate(self.snapshot))
        return self._evaluator

    def _wanted(self, f: Finding) -> bool:
        o = self.opts
        if f.status is not Status.FAIL or f.check_id not in self.fixer_of:
            return False
        if o.checks is not None and f.check_id not in o.checks:
            return False
        if o.regions is not None and f.region not in o.regions:
            return False
        if o.accounts is not None and f.account not in o.accounts:
            return False
        if o.keys:
            key = self.keys.get(f.resource_arn)
            return key is not None and _key_matches(key, o.keys)
        return True

    def plan(self, findings: Iterable[Finding]) -> Plan:
        by_resource: dict[str, list[Finding]] = defaultdict(list)
        for f in findings:
            if self._wanted(f):
                by_resource[f.resource_arn].append(f)
        for arn in sorted(by_resource):
            group = sorted(by_resource[arn], key=lambda f: f.check_id)
            key = self.keys.get(arn)
            if key is not None:
                self._key(key, group)
            else:
                self._resources(group)
        return self.out

    def _refuse(self, f: Finding | Key, check_ids: tuple[str, ...], reason: str) -> None:
        arn = f.resource_arn if isinstance(f, Finding) else f.arn
        self.out.refused.append(Refusal(check_ids, f.account, f.region, arn, reason))

    # -- keys ----------------------------------------------------------------------------------------

    def _key(self, key: Key, findings: list[Finding]) -> None:
        """The key's findings, each fixer once with the ids of its checks, in the table's order."""
        by_fixer: dict[str, list[str]] = defaultdict(list)
        for f in findings:
            by_fixer[self.fixer_of[f.check_id]].append(f.check_id)
        for name, fixer in FIXERS.items():
            ids = by_fixer.get(name)
            if ids and fixer.on_key is not None and not (fixer.unless and fixer.unless in by_fixer):
                fixer.on_key(self, key, tuple(sorted(set(ids))))

    def _resources(self, findings: list[Finding]) -> None:
        """One resource's findings (not a key's): each by its fixer, if that fixer acts on resources."""
        for f in findings:
            fixer = FIXERS[self.fixer_of[f.check_id]]
            if fixer.on_resource is not None:
                fixer.on_resource(self, f)

    def _policy_by_hand(self, key: Key, check_ids: tuple[str, ...]) -> None:
        self._refuse(
            key,
            check_ids,
            "kmsguard cannot guess who administers and uses the key: write the policy with "
            "`kmsguard policy generate --admin ARN --user ARN` and put it with aws kms put-key-policy",
        )

    def _rotation(self, key: Key, check_ids: tuple[str, ...]) -> None:
        days = self.opts.rotation_days
        self.out.actions.append(
            Action(
                action="enable_rotation",
                check_ids=check_ids,
                account=key.account,
                region=key.region,
                resource_arn=key.arn,
                before={"rotation_enabled": key.rotation_enabled, "rotation_period_days": key.rotation_period_days},
                after={"rotation_enabled": True, "rotation_period_days": days},
                impact={
                    "summary": f"{key.display_name}: automatic rotation every {days} days; existing data stays "
                    "readable, new data uses new key material"
                },
                detail={"key_id": key.key_id},
            )
        )

    def _policy(self, key: Key, check_ids: tuple[str, ...]) -> None:
        if key.policy is None:
            self._refuse(key, check_ids, "the key policy could not be read")
            return
        topts = TightenOptions(
            trusted_accounts=frozenset(self.trusted.accounts),
            trusted_org_ids=frozenset(self.trusted.org_ids),
            admins=self.opts.admins,
            users=self.opts.users,
            require_context=self.opts.require_context,
        )
        try:
            result = tighten_policy(key.policy, key.account, topts)
        except (PolicyError, ValueError) as e:
            self._refuse(key, check_ids, f"the key policy is not valid: {e}")
            return
        if not result.changed:
            self._refuse(
                key, check_ids, "the engine found nothing it can rewrite safely; see the finding's remediation"
            )
            return
        new_text = to_text(result.document)
        access = effective_change(self.snapshot, self.evaluator, key, new_text, result.removals)
        context = legitimate_context(self.opts.require_context)
        change = change_impact(key.policy, new_text, key.arn, key.account, access, result.removals, context)
        key_policy = change.key_policy.to_dict()
        impact: dict[str, Any] = {
            "changes": result.changes,
            "policy_diff": policy_diff(key.policy, new_text),
            "gained": [c.to_dict() for c in change.gained],
            "lost": [c.to_dict() for c in change.lost],
            "admin_lockout": change.lockout,
            "intended_removals": [r.to_dict() for r in result.removals],
            "unintended_loss": change.unintended(),
            "key_policy": {"gained": key_policy["gained"], "lost": key_policy["lost"]},
            "effective_access": change.effective_access(),
        }
        # What verify expects effective access to be once the policy is on the key.
        detail_access = access.expected_after if isinstance(access, AccessImpact) else {}
        if change.lockout and not self.opts.force:
            after = "" if change.key_policy.admin_lockout else " (effective access: nobody could call it afterwards)"
            self._refuse(
                key,
                check_ids,
                f"{key.display_name}: the rewritten policy would leave no principal able to administer the key "
                f"(kms:PutKeyPolicy){after}; name an administrator with --admin ARN, or pass --force to apply anyway",
            )
            return
        self.out.actions.append(
            Action(
                action="tighten_key_policy",
                check_ids=check_ids,
                account=key.account,
                region=key.region,
                resource_arn=key.arn,
                before={"policy": key.policy},
                after={"policy": new_text},
                impact=impact,
                detail={
                    "key_id": key.key_id,
                    "removals": [r.to_dict() for r in result.removals],
                    "require_context": dict(self.opts.require_context),
                    "access_after": detail_access,
                },
            )
        )

    def _deletion(self, key: Key, check_ids: tuple[str, ...]) -> None:
        if not self.opts.cancel_deletion:
            self._refuse(key, check_ids, "cancelling a scheduled deletion needs --cancel-deletion")
            return
        self.out.actions.append(
            Action(
                action="cancel_key_deletion",
                check_ids=check_ids,
                account=key.account,
                region=key.region,
                resource_arn=key.arn,
                before={
                    "key_state": key.key_state,
                    "deletion_date": key.deletion_date.isoformat() if key.deletion_date else None,
                },
                after={"key_state": "Enabled"},
                impact={"summary": f"{key.display_name}: deletion cancelled and the key enabled again"},
                detail={"key_id": key.key_id},
            )
        )

    # -- resources -----------------------------------------------------------------------------------

    def _rekey(self, f: Finding) -> None:
        if f.resource_type == "AWS::Account::Region":
            self._move(f, "set_ebs_default_key", None)
            return
        res = self.resources.get(f.resource_arn)
        if res is None:
            self._refuse(f, (f.check_id,), "the resource is not in the snapshot")
            return
        if res.service == "s3":
            self._move(f, "set_s3_default_encryption", res)
        elif res.service == "secretsmanager":
            self._move(f, "set_secret_kms_key", res)
        elif res.service in ("ebs", "rds"):
            self.out.manual.append(
                Manual((f.check_id,), f.account, f.region, f.resource_arn, migration_steps(res, self._target_text(f)))
            )
        else:
            self._refuse(
                f, (f.check_id,), f"fix does not re-key {res.service} resources; see the finding's remediation"
            )

    def _target_text(self, f: Finding) -> str:
        target = self._target(f)
        return target.arn if target is not None else (self.opts.target_key or "<cmk-arn>")

    def _target(self, f: Finding) -> Key | None:
        ref = self.opts.target_key
        if ref is None:
            return None
        for key in self.keys.values():
            if key.account != f.account or key.region != f.region:
                continue
            if ref in (key.arn, key.key_id) or ref in key.aliases:
                return key
        return None

    def _move(self, f: Finding, kind: str, res: Resource | None) -> None:
        if self.opts.target_key is None:
            self._refuse(f, (f.check_id,), "moving to a customer managed key needs --target-key ARN|alias")
            return
        target = self._target(f)
        if target is None:
            self._refuse(
                f, (f.check_id,), f"--target-key {self.opts.target_key} is not a key of {f.account} in {f.region}"
            )
            return
        if not target.is_customer_managed or target.key_state != "Enabled":
            self._refuse(
                f, (f.check_id,), f"--target-key {self.opts.target_key} is not an enabled customer managed key"
            )
            return
        before_ref = res.key_ref if res is not None else f.evidence.get("ebs_default_key_ref")
        what = res.name if res is not None else f"EBS default key in {f.region}"
        self.out.actions.append(
            Action(
                action=kind,  # type: ignore[arg-type]
                check_ids=(f.check_id,),
                account=f.account,
                region=f.region,
                resource_arn=f.resource_arn,
                before={"kms_key_id": before_ref},
                after={"kms_key_id": target.arn},
                impact={"summary": f"{what}: new data is encrypted under {target.display_name}"},
                detail={"name": res.name if res is not None else None},
            )
        )


KeyFixer = Callable[[_Planner, Key, tuple[str, ...]], None]  # a key and the ids of its checks that name the fixer
ResourceFixer = Callable[[_Planner, Finding], None]  # one finding on a resource that is not a key


@dataclass(frozen=True)
class Fixer:
    """How ``kmsguard fix`` acts on the failing findings of the checks that name it (``CheckSpec.fixer``)."""

    on_key: KeyFixer | None = None
    on_resource: ResourceFixer | None = None
    # Not on a key another fixer (named here) plans anyway: a hand-written policy is only asked for when the
    # engine has no rewrite to offer.
    unless: str | None = None


# Every fixer, by the stable name checks declare; on one key they run in this order (the plan's order).
FIXERS: dict[str, Fixer] = {
    "rotation": Fixer(on_key=_Planner._rotation),
    "key_policy": Fixer(on_key=_Planner._policy),
    "key_policy_by_hand": Fixer(on_key=_Planner._policy_by_hand, unless="key_policy"),
    "cancel_deletion": Fixer(on_key=_Planner._deletion),
    "rekey_resource": Fixer(on_resource=_Planner._rekey),
}


def fixable_checks(registry: Mapping[str, CheckSpec] | None = None) -> dict[str, str]:
    """Check id -> fixer name, for every check that declares a fixer (the others are left to their remediation
    text). ValueError for a check naming a fixer fix does not have: its findings would silently go unfixed."""
    specs = load_builtin_checks() if registry is None else registry
    out = {cid: s.fixer for cid, s in specs.items() if s.fixer is not None}
    unknown = sorted(f"{cid} -> {name}" for cid, name in out.items() if name not in FIXERS)
    if unknown:
        raise ValueError(f"checks name fixers that do not exist: {', '.join(unknown)}")
    return out


def migration_steps(res: Resource, target: str) -> list[str]:
    """The exact commands that move a resource that cannot be re-keyed in place to ``target``."""
    r = res.region
    if res.service == "ebs":
        vol = res.name
        return [
            f"aws ec2 create-snapshot --region {r} --volume-id {vol} --description 'kmsguard re-key {vol}'",
            f"aws ec2 wait snapshot-completed --region {r} --snapshot-ids <snapshot-id>",
            f"aws ec2 copy-snapshot --region {r} --source-region {r} --source-snapshot-id <snapshot-id> "
            f"--encrypted --kms-key-id {target}",
            f"aws ec2 create-volume --region {r} --snapshot-id <copied-snapshot-id> "
            "--availability-zone <the volume's AZ> --volume-type <the volume's type>",
            f"stop the instance, detach {vol}, attach the new volume at the same device, start the instance, "
            f"then delete {vol} once the data is verified",
        ]
    name = res.name
    if res.resource_type == "AWS::RDS::DBCluster":
        return [
            f"aws rds create-db-cluster-snapshot --region {r} --db-cluster-identifier {name} "
            f"--db-cluster-snapshot-identifier {name}-rekey",
            f"aws rds copy-db-cluster-snapshot --region {r} --source-db-cluster-snapshot-identifier {name}-rekey "
            f"--target-db-cluster-snapshot-identifier {name}-rekey-cmk --kms-key-id {target}",
            f"aws rds restore-db-cluster-from-snapshot --region {r} --db-cluster-identifier {name}-cmk "
            f"--snapshot-identifier {name}-rekey-cmk --engine <engine>",
            f"point the application at {name}-cmk, then delete {name} once verified",
        ]
    return [
        f"aws rds create-db-snapshot --region {r} --db-instance-identifier {name} "
        f"--db-snapshot-identifier {name}-rekey",
        f"aws rds wait db-snapshot-available --region {r} --db-snapshot-identifier {name}-rekey",
        f"aws rds copy-db-snapshot --region {r} --source-db-snapshot-identifier {name}-rekey "
        f"--target-db-snapshot-identifier {name}-rekey-cmk --kms-key-id {target}",
        f"aws rds restore-db-instance-from-db-snapshot --region {r} --db-instance-identifier {name}-cmk "
        f"--db-snapshot-identifier {name}-rekey-cmk",
        f"point the application at {name}-cmk, then delete {name} once verified",
    ]


def policy_diff(old: str, new: str) -> list[str]:
    """A unified diff of the two policies, both pretty-printed so that the diff shows statements, not bytes."""

    def pretty(text: str) -> list[str]:
        try:
            return json.dumps(json.loads(text), indent=2).splitlines()
        except ValueError:
            return text.splitlines()

    return list(difflib.unified_diff(pretty(old), pretty(new), "before", "after", lineterm="", n=2))
