"""Checks of the key family: rotation, lifecycle state, tags, aliases and environment isolation.

Every check here judges customer managed keys only: AWS managed keys (aws/s3, aws/ebs, ...) cannot be
rotated on another schedule, tagged, aliased or disabled by their owner, so a finding on one would be
noise nobody can fix (sensitive data under them is resource_uses_aws_managed_key's business).

A key whose metadata could not be read (DescribeKey failed: no key manager or state) cannot be judged;
each check says so with an ERROR rather than guessing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from kmsguard.checks.registry import Result, check, key_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Resource, Snapshot


# States in which a key is on its way out: rotating, tagging or aliasing it is pointless.
_LEAVING = frozenset({"PendingDeletion", "PendingReplicaDeletion"})


# --- shared helpers --------------------------------------------------------------------------------------


def _metadata_unreadable(key: Key) -> bool:
    return key.key_manager is None or key.key_state is None


def _unreadable_result(key: Key, what: str) -> Result:
    return key_result(
        key,
        Status.ERROR,
        f"{key.display_name}: {what} could not be judged: the key's metadata (DescribeKey) could not be read",
        {"errors": [f"{e.operation}: {e.code}" for e in key.errors]},
    )


def _customer_keys(snapshot: Snapshot, what: str) -> Iterator[Key | Result]:
    """Customer managed keys, or an ERROR result for each key whose manager could not be read."""
    for key in snapshot.all_keys():
        if _metadata_unreadable(key):
            yield _unreadable_result(key, what)
        elif key.is_customer_managed:
            yield key


def _rotation_ineligibility(key: Key) -> str | None:
    """Why automatic rotation does not apply to this key, or None when it does.

    AWS rotates only symmetric encryption keys with key material it generated, outside custom key
    stores; asymmetric, HMAC, imported (EXTERNAL) and CloudHSM/XKS keys must be rotated by hand, and
    a disabled or pending-deletion key cannot have rotation turned on at all.
    """
    if key.key_state != "Enabled":
        return f"key state is {key.key_state}"
    if key.key_spec != "SYMMETRIC_DEFAULT" or key.key_usage != "ENCRYPT_DECRYPT":
        return f"{key.key_spec}/{key.key_usage} keys do not support automatic rotation"
    if key.origin != "AWS_KMS":
        return f"origin {key.origin} keys do not support automatic rotation"
    if key.custom_key_store_id:
        return "keys in a custom key store do not support automatic rotation"
    return None


def _rotation_unreadable(key: Key) -> Result:
    errors = [f"{e.operation}: {e.code}" for e in key.errors]
    reason = f" ({', '.join(errors)})" if errors else ""
    return key_result(
        key, Status.ERROR, f"{key.display_name}: rotation status could not be read{reason}", {"errors": errors}
    )


# --- rotation ------------------------------------------------------------------------------------------------


@check(
    "key_rotation_disabled",
    title="Automatic rotation is off on a key that supports it",
    severity=Severity.MEDIUM,
    family="key",
    rationale="NIST SP 800-171 expects regular rotation of keys protecting CUI; manual rotation is error-prone. "
    "Only enabled symmetric customer managed keys with AWS_KMS key material outside custom key stores can be "
    "rotated automatically; asymmetric, HMAC, imported and custom key store keys are not judged.",
    remediation="aws kms enable-key-rotation --key-id <key-id> --rotation-period-in-days 365",
    topics=["rotation_enabled"],
    fixer="rotation",
)
def key_rotation_disabled(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for item in _customer_keys(snapshot, "rotation"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        if _rotation_ineligibility(key) is not None:
            continue
        if key.rotation_enabled is None:
            yield _rotation_unreadable(key)
        elif key.rotation_enabled:
            yield key_result(key, Status.PASS, f"{key.display_name}: automatic rotation is on")
        else:
            yield key_result(
                key,
                Status.FAIL,
                f"{key.display_name}: automatic rotation is off on an enabled symmetric customer managed key",
                {"rotation_enabled": False, "key_spec": key.key_spec, "origin": key.origin},
            )


@check(
    "key_rotation_period_too_long",
    title="Rotation period is longer than allowed",
    severity=Severity.LOW,
    family="key",
    rationale="A long cryptoperiod leaves more data under one key version; the guide allows 90-2560 days and "
    "defaults to 365, stricter programmes use 180. The maximum is configurable (max_rotation_days).",
    remediation="aws kms enable-key-rotation --key-id <key-id> --rotation-period-in-days <days within the limit>",
    topics=["rotation_period"],
    fixer="rotation",
)
def key_rotation_period_too_long(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    limit = config.max_rotation_days
    for item in _customer_keys(snapshot, "rotation period"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        # Keys with rotation off are key_rotation_disabled's finding; unreadable status is reported there too.
        if _rotation_ineligibility(key) is not None or not key.rotation_enabled:
            continue
        days = key.rotation_period_days
        evidence = {"rotation_period_days": days, "max_rotation_days": limit}
        if days is None:
            yield key_result(key, Status.ERROR, f"{key.display_name}: rotation is on but its period was not reported")
        elif days > limit:
            msg = f"{key.display_name}: rotates every {days} days, more than the allowed {limit}"
            yield key_result(key, Status.FAIL, msg, evidence)
        else:
            yield key_result(key, Status.PASS, f"{key.display_name}: rotates every {days} days", evidence)


# --- lifecycle state -------------------------------------------------------------------------------------------


def _days_until(when: datetime | None, now: datetime) -> int | None:
    if when is None:
        return None
    if (when.tzinfo is None) != (now.tzinfo is None):
        return None  # naive vs aware: cannot compare honestly
    return (when - now).days


@check(
    "key_pending_deletion",
    title="Customer managed key is scheduled for deletion",
    severity=Severity.HIGH,
    family="key",
    rationale="Once the waiting period ends the key material is gone and everything encrypted under it is "
    "unreadable for good. Deleting a key should be rare, deliberate and cancelled if anything still uses it.",
    remediation="aws kms cancel-key-deletion --key-id <key-id> && aws kms enable-key --key-id <key-id>",
    topics=["key_not_pending_deletion"],
    live_only=True,  # a template cannot schedule a deletion: that is live state
    fixer="cancel_deletion",
)
def key_pending_deletion(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for item in _customer_keys(snapshot, "deletion state"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        if key.key_state in _LEAVING:
            when = key.deletion_date.isoformat() if key.deletion_date else None
            evidence = {
                "key_state": key.key_state,
                "deletion_date": when,
                "days_left": _days_until(key.deletion_date, snapshot.collected_at),
            }
            on = f" on {when}" if when else ""
            yield key_result(key, Status.FAIL, f"{key.display_name}: scheduled for deletion{on}", evidence)
        else:
            yield key_result(key, Status.PASS, f"{key.display_name}: not scheduled for deletion")


@check(
    "key_disabled",
    title="Customer managed key is disabled",
    severity=Severity.LOW,
    family="key",
    rationale="A disabled key cannot decrypt: data under it is unreadable until it is re-enabled, and a "
    "disabled key left in place is often a deletion nobody finished. Data actually under a disabled key is "
    "reported as critical by resource_key_pending_deletion.",
    remediation="aws kms enable-key --key-id <key-id> (or, if it is truly retired: "
    "aws kms schedule-key-deletion --key-id <key-id> --pending-window-in-days 30)",
    topics=["key_enabled"],
)
def key_disabled(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for item in _customer_keys(snapshot, "key state"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        if key.key_state == "Disabled":
            yield key_result(key, Status.FAIL, f"{key.display_name}: the key is disabled", {"key_state": "Disabled"})
        elif key.key_state not in _LEAVING:  # pending deletion is key_pending_deletion's finding
            yield key_result(key, Status.PASS, f"{key.display_name}: the key is {key.key_state}")


# --- tags and aliases ---------------------------------------------------------------------------------------------


def _failed_operation(key: Key, operation: str) -> bool:
    return any(e.operation == operation for e in key.errors)


def _tagged_keys(snapshot: Snapshot) -> Iterator[Key | Result]:
    """The customer managed keys whose tags the tag checks judge (not those on their way out), or an ERROR result
    for a key whose metadata or tags could not be read."""
    for item in _customer_keys(snapshot, "tags"):
        if isinstance(item, Result):
            yield item
        elif item.key_state in _LEAVING:
            continue
        elif _failed_operation(item, "ListResourceTags"):
            yield key_result(item, Status.ERROR, f"{item.display_name}: the key's tags could not be read")
        else:
            yield item


@check(
    "key_missing_tags",
    title="Customer managed key lacks required tags",
    severity=Severity.LOW,
    family="key",
    rationale="Tags say who owns a key, which environment it serves, how sensitive its data is and who pays for "
    "it; without them nobody can answer an assessor's 'whose key is this?'. Required tags are configurable "
    "(required_tags; default the guide's four: Environment, DataClassification, Owner, CostCenter); an empty "
    "value counts as missing.",
    remediation="aws kms tag-resource --key-id <key-id> --tags TagKey=Environment,TagValue=<env> "
    "TagKey=DataClassification,TagValue=<class> TagKey=Owner,TagValue=<team> TagKey=CostCenter,TagValue=<cc>",
    topics=["key_tags_and_ownership"],
)
def key_missing_tags(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for item in _tagged_keys(snapshot):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        missing = [t for t in config.required_tags if not key.tags.get(t, "").strip()]
        if not missing:
            yield key_result(key, Status.PASS, f"{key.display_name}: has every required tag")
            continue
        evidence: dict[str, object] = {"missing_tags": missing}
        # A tag written with another case ("environment") is still missing (tag keys are case-sensitive),
        # but saying so turns a puzzling finding into a one-line fix.
        lower = {k.lower(): k for k in key.tags}
        near = {t: lower[t.lower()] for t in missing if t.lower() in lower}
        if near:
            evidence["present_with_other_case"] = near
        msg = f"{key.display_name}: missing required tag(s) {', '.join(missing)}"
        yield key_result(key, Status.FAIL, msg, evidence)


@check(
    "key_tag_value_not_allowed",
    title="Customer managed key has a tag value outside the tagging standard",
    severity=Severity.LOW,
    family="key",
    rationale="A tagging standard is only as useful as its values: 'prod', 'Prod' and 'production' split one "
    "environment three ways, and environment isolation, sensitivity rules and cost reports all key on the "
    "value. kmsguard.yaml's tag_values lists the values each tag may hold (e.g. Environment: Production, "
    "Staging, Development); tag values are case-sensitive, as AWS compares them.",
    remediation="aws kms tag-resource --key-id <key-id> --tags TagKey=<tag>,TagValue=<an allowed value>",
    topics=["key_tags_and_ownership"],
)
def key_tag_value_not_allowed(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    if not config.tag_values:
        return  # no standard of values configured: nothing to judge
    for item in _tagged_keys(snapshot):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        # A missing tag is key_missing_tags' finding; this check judges the values that are there.
        wrong = [
            {"tag": tag, "value": key.tags[tag], "allowed": allowed} | _case_hint(key.tags[tag], allowed)
            for tag, allowed in sorted(config.tag_values.items())
            if key.tags.get(tag, "").strip() and key.tags[tag] not in allowed
        ]
        if not wrong:
            yield key_result(key, Status.PASS, f"{key.display_name}: every standard tag holds an allowed value")
            continue
        said = ", ".join(f"{w['tag']}={w['value']!r}" for w in wrong)
        yield key_result(
            key, Status.FAIL, f"{key.display_name}: tag value(s) outside the standard: {said}", {"tags": wrong}
        )


def _case_hint(value: str, allowed: list[str]) -> dict[str, str]:
    """``{"did_you_mean": ...}`` when the value is an allowed one written with other case (a one-line fix)."""
    same = [a for a in allowed if a.lower() == value.strip().lower()]
    return {"did_you_mean": same[0]} if same else {}


@check(
    "key_data_locality",
    title="Key of locality-bound data is multi-Region or outside its allowed Regions",
    severity=Severity.MEDIUM,
    family="key",
    rationale="The guide creates keys single-Region for data locality: a multi-Region key's material lives in "
    "every Region it is replicated to, and data encrypted under it can be decrypted there. kmsguard.yaml's "
    "data_locality says, per DataClassification value (sensitivity_tag), whether such keys must stay in one "
    "Region and which Regions are allowed. Every multi-Region key is reported with its primary and replica "
    "Regions, rule or not.",
    remediation="Create a single-Region key in an allowed Region (kmsguard provision key, single-Region by "
    "default), re-encrypt the data under it, and schedule the replica (or the multi-Region key) for deletion.",
    # Where key material may live is key management (SP 800-53 SC-12, 800-171 3.13.10) and the keys' inventory
    # (CM-8): the control table's topic for both.
    topics=["key_tags_and_ownership"],
)
def key_data_locality(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    rules = {value.strip().lower(): rule for value, rule in config.data_locality.items()}
    # A replica shares its primary's key material and key id (mrk-...) but not its tags (ReplicateKey copies none):
    # an untagged replica is judged by its primary's classification.
    primaries = {(k.account, k.key_id): k for k in snapshot.all_keys() if k.multi_region_key_type == "PRIMARY"}
    for item in _customer_keys(snapshot, "multi-Region configuration"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        if key.key_state in _LEAVING:
            continue
        primary = primaries.get((key.account, key.key_id))
        value = key.tags.get(config.sensitivity_tag) or (primary.tags.get(config.sensitivity_tag) if primary else "")
        value = value or ""
        rule = rules.get(value.strip().lower())
        where = sorted({key.region, *([key.primary_region] if key.primary_region else []), *key.replica_regions})
        evidence: dict[str, object] = {"regions": where}
        if key.multi_region:
            evidence |= {
                "multi_region_key_type": key.multi_region_key_type,
                "primary_region": key.primary_region,
                "replica_regions": key.replica_regions,
            }
        if rule is None:
            if key.multi_region:  # reported with its Regions, so a locality review sees every one
                msg = f"{key.display_name}: multi-Region key in {', '.join(where)} (no data_locality rule for it)"
                yield key_result(key, Status.PASS, msg, evidence)
            continue
        evidence |= {"rule": {config.sensitivity_tag: value, **rule.model_dump()}}
        problems = []
        if rule.single_region and key.multi_region:
            problems.append(
                f"multi-Region key ({', '.join(where)}) where {config.sensitivity_tag}={value} must stay in one Region"
            )
        outside = [r for r in where if rule.regions and r not in rule.regions]
        if outside:
            problems.append(f"key material in {', '.join(outside)}, outside {', '.join(rule.regions)}")
        if problems:
            yield key_result(key, Status.FAIL, f"{key.display_name}: " + "; ".join(problems), evidence)
        else:
            yield key_result(
                key,
                Status.PASS,
                f"{key.display_name}: within {config.sensitivity_tag}={value}'s locality rule",
                evidence,
            )


def _regions_with_alias_errors(snapshot: Snapshot) -> set[tuple[str, str]]:
    return {
        (a.account_id, r.region)
        for a in snapshot.accounts
        for r in a.regions
        if any(e.operation == "ListAliases" for e in r.errors)
    }


@check(
    "key_no_alias",
    title="Customer managed key has no alias",
    severity=Severity.LOW,
    family="key",
    rationale="An alias (e.g. alias/production-encryption-2026) tells people and reports what a key is for; "
    "a bare key id invites using or deleting the wrong key.",
    remediation="aws kms create-alias --alias-name alias/<purpose> --target-key-id <key-id>",
    topics=["key_tags_and_ownership"],
)
def key_no_alias(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    unreadable = _regions_with_alias_errors(snapshot)
    for item in _customer_keys(snapshot, "aliases"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        if key.key_state in _LEAVING:
            continue
        if key.aliases:
            yield key_result(key, Status.PASS, f"{key.key_id}: aliased as {', '.join(key.aliases)}")
        elif (key.account, key.region) in unreadable or _failed_operation(key, "ListAliases"):
            yield key_result(key, Status.ERROR, f"{key.key_id}: the region's aliases could not be read")
        else:
            yield key_result(key, Status.FAIL, f"{key.key_id}: the key has no alias")


# --- environment isolation ---------------------------------------------------------------------------------------


def _resources_by_key(snapshot: Snapshot) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = defaultdict(list)
    for acct in snapshot.accounts:
        for reg in acct.regions:
            for res in reg.resources:
                if res.key_arn:
                    out[res.key_arn].append(res)
    return out


def _environment(tags: dict[str, str], tag: str) -> str | None:
    # "Production" and "production" are the same environment; an empty value says nothing.
    value = tags.get(tag, "").strip()
    return value.lower() if value else None


def _environments(key: Key, users: Iterable[Resource], tag: str) -> tuple[dict[str, list[str]], list[str]]:
    """Environment -> ARNs (the key's own tag listed under its ARN), and the users with no environment tag."""
    envs: dict[str, list[str]] = defaultdict(list)
    untagged: list[str] = []
    own = _environment(key.tags, tag)
    if own:
        envs[own].append(key.arn)
    for res in users:
        env = _environment(res.tags, tag)
        if env:
            envs[env].append(res.arn)
        else:
            untagged.append(res.arn)
    return dict(envs), untagged


@check(
    "key_shared_across_environments",
    title="One key serves several environments",
    severity=Severity.MEDIUM,
    family="key",
    rationale="A key shared by production, staging and development lets anyone who may use it in the weakest "
    "environment decrypt the strongest one's data, and makes its key policy impossible to keep least-privilege. "
    "Judged from the environment tag (environment_tag, default Environment, compared case-insensitively) of "
    "the resources using the key and of the key itself; untagged resources are listed but not counted.",
    remediation="Create one key per environment (aws kms create-key --tags TagKey=Environment,TagValue=<env>) "
    "and re-encrypt each environment's resources under its own key.",
    topics=["environment_isolation"],
)
def key_shared_across_environments(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    users_by_key = _resources_by_key(snapshot)
    for item in _customer_keys(snapshot, "environment isolation"):
        if isinstance(item, Result):
            yield item
            continue
        key = item
        users = users_by_key.get(key.arn, [])
        envs, untagged = _environments(key, users, config.environment_tag)
        evidence: dict[str, object] = {"environments": envs, "resources": len(users)}
        if untagged:
            evidence["untagged_resources"] = untagged
        if len(envs) > 1:
            msg = f"{key.display_name}: used across environments {', '.join(sorted(envs))}"
            yield key_result(key, Status.FAIL, msg, evidence)
        else:
            where = f"environment {next(iter(envs))}" if envs else "no tagged environment"
            msg = f"{key.display_name}: used by {len(users)} scanned resource(s), {where}"
            yield key_result(key, Status.PASS, msg, evidence)
