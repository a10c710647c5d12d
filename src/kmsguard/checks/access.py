"""Effective-access checks: who can really decrypt or administer each customer managed key.

The judgement is the engine's (``policy.access``: key policy, identity policies, boundaries, SCPs,
RCPs, grants and role chains); these checks pick out the answers an assessor should see. One effective
access computation per snapshot is shared by the four checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from kmsguard.checks.registry import Result, check, key_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status
from kmsguard.policy.actions import DECRYPT, GIVES_ITSELF_USE
from kmsguard.policy.errors import PolicyError

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Snapshot


if TYPE_CHECKING:  # the engine (z3 and all) loads when a check runs, not when the registry is listed
    from kmsguard.policy.access import KeyAccess

# Decrypt, and the administrative actions that let a principal give itself use (policy.actions, the one home of
# the KMS vocabulary; the dashboard's and access drift's wider list adds ScheduleKeyDeletion, which no check asks).
ACTIONS = (DECRYPT, *GIVES_ITSELF_USE)


def effective_access(snapshot: Snapshot) -> dict[str, KeyAccess | str]:
    """Key ARN -> its effective access for ``ACTIONS``, or the reason it cannot be judged (customer managed
    keys only). Computed once per snapshot (kept with it): the four checks ask about the same one."""
    return snapshot.derived("effective_access", lambda: _effective_access(snapshot))


def _effective_access(snapshot: Snapshot) -> dict[str, KeyAccess | str]:
    from kmsguard.policy.access import AccessEvaluator
    from kmsguard.policy.estate import build_estate

    estate = build_estate(snapshot)
    ev = AccessEvaluator(estate)
    iam_missing = {a.account_id: a for a in snapshot.accounts if a.iam is None}
    out: dict[str, KeyAccess | str] = {}
    for key in snapshot.all_keys():
        if not key.is_customer_managed or key.key_state == "PendingDeletion":
            continue
        acct = iam_missing.get(key.account)
        if acct is not None and snapshot.source == "aws":
            why = "; ".join(f"{e.operation}: {e.code} {e.message}" for e in acct.errors if e.service == "iam")
            out[key.arn] = f"IAM of account {key.account} was not read ({why or 'snapshot from an older kmsguard'})"
            continue
        try:
            out[key.arn] = ev.who_can(key, ACTIONS)
        except PolicyError as e:  # a policy the engine cannot judge: an ERROR on that key, not a crashed scan
            out[key.arn] = f"the policy engine failed ({e})"
    return out


def _keys(snapshot: Snapshot) -> Iterator[tuple[Key, KeyAccess | None, Result | None]]:
    """Each judged key with its access, or with an ERROR result when it could not be judged."""
    access = effective_access(snapshot)
    for key in snapshot.all_keys():
        got = access.get(key.arn)
        if got is None:
            continue
        if isinstance(got, str):
            yield key, None, key_result(key, Status.ERROR, f"effective access not judged: {got}", {"error": got})
        else:
            yield key, got, None


def _named_users(access: KeyAccess) -> set[str]:
    """Principals the key policy (or a grant) names for decryption: those it meant to use the key."""
    return {
        p.principal for p in access.results.get(DECRYPT, []) if any(x.via in ("key_policy", "grant") for x in p.paths)
    }


def _is_root(arn: str) -> bool:
    return arn.endswith(":root")


@check(
    "key_decrypt_via_broad_iam",
    title="Identity policies let principals decrypt beyond the key's named users",
    severity=Severity.HIGH,
    family="access",
    rationale="When the key policy delegates to the account, any identity policy that allows kms:Decrypt on "
    '"*" or on the key (AWS managed AdministratorAccess and PowerUserAccess included) lets its holders read '
    "the data, though the key policy never names them: the guide's 'relying only on IAM' mistake.",
    remediation="Name the principals that need the key in its key policy, bound the account statement with "
    "kms:CallerAccount and a principal condition, and scope identity policies to named key ARNs.",
    topics=["key_policy_least_privilege", "separation_of_duties"],
    live_only=True,  # needs the whole account's IAM, which no template holds
)
def key_decrypt_via_broad_iam(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for key, access, error in _keys(snapshot):
        if error is not None or access is None:
            yield error  # type: ignore[misc]
            continue
        named = _named_users(access)
        via_iam = [
            p
            for p in access.results.get(DECRYPT, [])
            if p.principal not in named
            and not _is_root(p.principal)
            and any(x.via == "key_policy+iam" and any(s.startswith("iam: ") for s in x.statements) for x in p.paths)
        ]
        if not via_iam:
            yield key_result(key, Status.PASS, "only principals the key policy names can decrypt")
            continue
        who = ", ".join(p.principal.split(":", 5)[-1] for p in via_iam[:5]) + (" …" if len(via_iam) > 5 else "")
        yield key_result(
            key,
            Status.FAIL,
            f"{len(via_iam)} principal(s) can decrypt through IAM alone: {who}",
            {"principals": [p.to_dict() for p in via_iam]},
        )


@check(
    "key_decryptable_by_unintended",
    title="Principals outside the allowed set can decrypt data of this classification",
    severity=Severity.HIGH,
    family="access",
    rationale="kmsguard.yaml's decrypt_allowed says, per tag value (e.g. DataClassification=CUI), who may "
    "decrypt; anyone else who can, by any path, is a finding. This is the assessor's question for CUI.",
    remediation="Remove the path that gives the principal access (key policy statement, identity policy, "
    "grant or trust policy shown in the evidence), or add it to decrypt_allowed if it is intended.",
    topics=["key_policy_least_privilege", "key_policy_no_external_access"],
    live_only=True,  # needs the whole account's IAM, which no template holds
)
def key_decryptable_by_unintended(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    if not config.decrypt_allowed:
        return
    for key, access, error in _keys(snapshot):
        rules = [
            (tag, pats)
            for tag, pats in config.decrypt_allowed.items()
            if key.tags.get(tag.split("=", 1)[0]) == tag.split("=", 1)[1]
        ]
        if not rules:
            continue
        if error is not None or access is None:
            yield error  # type: ignore[misc]
            continue
        allowed = [p for _, pats in rules for p in pats]
        outside = [
            p for p in access.results.get(DECRYPT, []) if not any(fnmatchcase(p.principal, pat) for pat in allowed)
        ]
        rule = ", ".join(tag for tag, _ in rules)
        if not outside:
            yield key_result(key, Status.PASS, f"only principals allowed for {rule} can decrypt")
            continue
        who = ", ".join(p.principal for p in outside[:5]) + (" …" if len(outside) > 5 else "")
        yield key_result(
            key,
            Status.FAIL,
            f"{len(outside)} principal(s) outside {rule}'s allowed set can decrypt: {who}",
            {"rule": rule, "allowed": allowed, "principals": [p.to_dict() for p in outside]},
        )


@check(
    "key_admin_can_grant_itself_use",
    title="Key administrator can give itself decrypt access",
    severity=Severity.MEDIUM,
    family="access",
    rationale="A principal that may call kms:PutKeyPolicy or kms:CreateGrant but is not a user of the key can "
    "rewrite the policy or grant itself kms:Decrypt: separation of duties between key administrators and "
    "key users (the guide's admin/user split) does not hold.",
    remediation="Take kms:PutKeyPolicy and kms:CreateGrant from principals that should not use the key (keep "
    "them with named administrators, bounded by kms:GrantIsForAWSResource for grants), and alarm on "
    "PutKeyPolicy/CreateGrant.",
    topics=["separation_of_duties"],
    live_only=True,  # needs the whole account's IAM, which no template holds
)
def key_admin_can_grant_itself_use(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for key, access, error in _keys(snapshot):
        if error is not None or access is None:
            yield error  # type: ignore[misc]
            continue
        users = {p.principal for p in access.results.get(DECRYPT, [])}
        admins: dict[str, list[str]] = {}
        for action in GIVES_ITSELF_USE:
            for p in access.results.get(action, []):
                if p.principal not in users and not _is_root(p.principal) and not p.principal.startswith("service:"):
                    admins.setdefault(p.principal, []).append(action)
        if not admins:
            yield key_result(key, Status.PASS, "no principal can change the policy or grant without already using it")
            continue
        who = ", ".join(sorted(admins)[:5]) + (" …" if len(admins) > 5 else "")
        yield key_result(
            key,
            Status.FAIL,
            f"{len(admins)} principal(s) can grant themselves use: {who}",
            {"principals": [{"principal": a, "actions": acts} for a, acts in sorted(admins.items())]},
        )


@check(
    "role_chain_to_decrypt",
    title="Principals can decrypt only by assuming other roles",
    severity=Severity.MEDIUM,
    family="access",
    rationale="A principal that can assume a role (or a chain of roles) holding kms:Decrypt can read the data, "
    "though no policy on the key or the principal mentions it: the access reviews of key and principal "
    "both miss it.",
    remediation="Tighten the trust policy of the first role in the chain (name the intended principals, add "
    "conditions), or remove the role's decrypt access.",
    topics=["key_policy_least_privilege"],
    live_only=True,  # needs the whole account's IAM, which no template holds
)
def role_chain_to_decrypt(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for key, access, error in _keys(snapshot):
        if error is not None or access is None:
            yield error  # type: ignore[misc]
            continue
        # A service or identity provider assuming its own role is that role's normal use, not a chain.
        chained = [
            p
            for p in access.results.get(DECRYPT, [])
            if all(x.via == "assume_role" for x in p.paths) and not p.principal.startswith(("service:", "federated:"))
        ]
        if not chained:
            yield key_result(key, Status.PASS, "no principal reaches decrypt only through a role chain")
            continue
        who = "; ".join(f"{p.principal} → {' → '.join(p.paths[0].chain)}" for p in chained[:3])
        yield key_result(
            key,
            Status.FAIL,
            f"{len(chained)} principal(s) decrypt through role chains: {who}",
            {"principals": [p.to_dict() for p in chained]},
        )
