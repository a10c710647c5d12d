"""One world of a template as a Snapshot, ready for the registered checks.

A unit (a stack, a Terraform module) becomes one account and one Region -- ``IacContext``'s -- holding what it
declares. Key policies and identity policies go through ``symbolic.worst_case_policy`` (unknown values at
their worst); resource key references are resolved to key ARNs with the live scan's own resolver
(``model.keyrefs``), so a bucket naming its key by id, alias or ARN is matched as in an account; a key named but
declared elsewhere gets a stand-in (``_stand_ins``). What each object's judgement assumed is returned beside the
Snapshot: object ARN -> the unknown values' reasons, and resource ARN -> the outside key it names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kmsguard import __version__
from kmsguard import arn as arns
from kmsguard.iac.declared import Declared, IacContext, is_unknown, unknowns_in
from kmsguard.iac.symbolic import worst_case_policy
from kmsguard.model.keyrefs import KeyResolver
from kmsguard.model.snapshot import AccountSnapshot, IamPolicy, Key, RegionSnapshot, Resource, Snapshot


@dataclass
class Built:
    snapshot: Snapshot
    unknowns: dict[str, list[str]] = field(default_factory=dict)  # object ARN -> reasons
    # Resource ARN -> the key it names that the templates do not declare (an import, a parameter, a literal ARN).
    outside: dict[str, str] = field(default_factory=dict)
    # ARNs of the stand-in keys made for those (see ``_stand_ins``): no finding is reported on them.
    stand_ins: set[str] = field(default_factory=set)

    def note(self, arn: str, reasons: list[str]) -> None:
        if reasons:
            self.unknowns[arn] = list(dict.fromkeys(self.unknowns.get(arn, []) + reasons))


def build_snapshot(world: Declared, ctx: IacContext, at: datetime | None = None) -> Built:
    built = Built(Snapshot(kmsguard_version=__version__, collected_at=at or datetime.now(UTC), source="iac"))
    keys = [_key(k, built) for k in world.keys]
    aliases = {a: k.key_id for k in keys for a in k.aliases if not is_unknown(a)}
    resolver = KeyResolver(ctx.partition, ctx.account, ctx.region, keys, aliases)
    resources = [_resource(r, resolver, built) for r in world.resources]
    keys += _stand_ins(resources, {k.arn for k in keys}, ctx, built)
    ebs_ref = world.ebs_default_key_ref
    region = RegionSnapshot(
        region=ctx.region,
        keys=keys,
        trails=list(world.trails),
        metric_filters=list(world.metric_filters),
        alarms=list(world.alarms),
        config_rules=list(world.config_rules),
        resources=resources,
        ebs_encryption_by_default=world.ebs_encryption_by_default,
        ebs_default_key_ref=ebs_ref,
        ebs_default_key_arn=None if ebs_ref is None or is_unknown(ebs_ref) else resolver.resolve(ebs_ref),
    )
    account = AccountSnapshot(
        account_id=ctx.account,
        partition=ctx.partition,
        regions=[region],
        iam_policies=[_iam_policy(p, built) for p in world.iam_policies],
    )
    built.snapshot.accounts.append(account)
    for arn, reasons in world.assumed.items():
        built.note(arn, reasons)
    for trail in world.trails:
        built.note(trail.arn, unknowns_in(trail.model_dump_json()))
    return built


def _key(key: Key, built: Built) -> Key:
    worst = worst_case_policy(key.policy)
    reasons = (worst.unknowns if worst else []) + unknowns_in(
        key.model_dump_json(include={"tags", "aliases", "grants", "description"})
    )
    built.note(key.arn, reasons)
    return key.model_copy(update={"policy": worst.text}) if worst and worst.unknowns else key


def _resource(res: Resource, resolver: KeyResolver, built: Built) -> Resource:
    built.note(res.arn, unknowns_in(res.model_dump_json(include={"name", "tags"})))
    if res.key_arn is not None or res.key_ref is None or is_unknown(res.key_ref):
        return res
    return res.model_copy(update={"key_arn": resolver.resolve(res.key_ref)})


def _stand_ins(resources: list[Resource], declared: set[str], ctx: IacContext, built: Built) -> list[Key]:
    """A customer managed, enabled stand-in for each key a resource names but the templates do not declare.

    Templates often use a key another stack or module owns (``Fn::ImportValue``, a parameter, a literal ARN).
    Whether that key is rotated, disabled or well governed is judged where it is declared, or by `kmsguard scan`
    once deployed; here the resource is judged as using a customer managed key, and each of its findings says
    which outside key it names (``Built.outside``). A reference to ``alias/aws/...`` is an AWS managed key by
    its name and is judged as written (no stand-in)."""
    made: dict[str, Key] = {}
    for i, res in enumerate(resources):
        ref = res.key_ref
        if res.encryption != "kms" or not ref or res.key_arn in declared or _aws_managed_ref(ref):
            continue
        reasons = unknowns_in(ref)
        arn = res.key_arn or (ref if ref.startswith("arn:") and not reasons else ctx.key_arn(f"outside-{_digest(ref)}"))
        parsed = arns.parse(arn) if not reasons else None
        made.setdefault(
            arn,
            Key(
                arn=arn,
                key_id=arn.rsplit("/", 1)[-1],
                account=(parsed.account if parsed and parsed.account else ctx.account),
                region=(parsed.region if parsed and parsed.region else ctx.region),
                key_manager="CUSTOMER",
                key_state="Enabled",
                description="a key the templates name but do not declare",
            ),
        )
        resources[i] = res.model_copy(update={"key_arn": arn})
        built.outside[res.arn] = "; ".join(reasons) if reasons else ref
    built.stand_ins |= set(made)
    return list(made.values())


def _aws_managed_ref(ref: str) -> bool:
    name = ref.split(":", 5)[-1] if ref.startswith("arn:") else ref
    return name.startswith("alias/aws/")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _iam_policy(policy: IamPolicy, built: Built) -> IamPolicy:
    worst = worst_case_policy(policy.document, "identity")
    if worst is None or not worst.unknowns:
        return policy
    built.note(policy.arn, worst.unknowns)
    return policy.model_copy(update={"document": worst.text})
