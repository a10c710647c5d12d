"""IAM-side checks: identity policies that open every key, and grants that reach too far.

The judgements live in the policy engine (``analyze.identity_policy_all_keys``, ``grants.assess_grant``);
this module walks the snapshot and words the findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kmsguard.checks.registry import Result, check, key_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.grants import assess_grant
from kmsguard.policy.trust import trusted

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import IamPolicy, Snapshot


READ_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom")


@check(
    "iam_policy_allows_decrypt_all_keys",
    title="IAM policy allows decrypting with every KMS key",
    severity=Severity.HIGH,
    family="iam",
    rationale='An identity policy with kms:Decrypt or kms:ReEncryptFrom on Resource "*" (or every key of '
    "an account) lets its holders read data under any key whose policy delegates to IAM.",
    remediation="Name the key ARNs the principal needs in Resource, or bound the statement with "
    "kms:ViaService / kms:EncryptionContext conditions.",
    topics=["key_policy_least_privilege"],
)
def iam_policy_allows_decrypt_all_keys(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    for acct in snapshot.accounts:
        for pol in acct.iam_policies:
            yield _judge_identity_policy(acct.account_id, pol)


def _judge_identity_policy(account: str, pol: IamPolicy) -> Result:
    def result(status: Status, message: str, evidence: dict[str, Any] | None = None) -> Result:
        return Result(status, account, "global", "AWS::IAM::Policy", pol.arn, message, evidence or {})

    # Imported here, not at the top: the engine (z3) loads when a check runs, not when the registry is listed.
    from kmsguard.policy.questions import identity_policy_all_keys

    try:
        grant = identity_policy_all_keys(pol.document, READ_ACTIONS)
    except (PolicyError, ValueError) as e:
        return result(Status.ERROR, f"the IAM policy {pol.name} is not valid: {e}", {"error": str(e)})
    if grant is None:
        return result(Status.PASS, f"{pol.name} does not allow decrypting with every key")
    evidence = {
        "actions": list(grant.actions),
        "resource": grant.resource,
        "statements": list(grant.statements),
        "attached_to": pol.attached_to,
    }
    return result(
        Status.FAIL, f"{pol.name} allows {', '.join(grant.actions)} on every key ({grant.resource})", evidence
    )


@check(
    "key_grant_external_or_broad",
    title="Key grant reaches outside the account or is unconstrained",
    severity=Severity.HIGH,
    family="iam",
    rationale="A grant bypasses the key policy: one to a principal of an untrusted account shares the key, "
    "one that lets the grantee decrypt or create grants without an encryption-context constraint opens "
    "every ciphertext under the key.",
    remediation="Retire or revoke the grant (kms:RevokeGrant) and re-create it with an "
    "EncryptionContextSubset/Equals constraint and a grantee in a trusted account.",
    topics=["key_policy_no_external_access", "key_policy_least_privilege"],
)
def key_grant_external_or_broad(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    trusted_accounts = trusted(snapshot, config).accounts
    for key in snapshot.all_keys():
        if key.is_aws_managed:
            continue
        problems = []
        for g in key.grants:
            a = assess_grant(g.grantee_principal, g.operations, g.constraints, (*trusted_accounts, key.account))
            if a.risky:
                problems.append(
                    {
                        "grant_id": g.grant_id,
                        "grantee": g.grantee_principal,
                        "operations": g.operations,
                        "constraints": g.constraints,
                        "external_account": a.external_account,
                        "unconstrained": list(a.broad_operations),
                    }
                )
        if not problems:
            yield key_result(key, Status.PASS, f"{len(key.grants)} grant(s), none external or unconstrained")
            continue
        who = ", ".join(sorted({str(p["grantee"]) for p in problems}))
        yield key_result(key, Status.FAIL, f"risky grant(s) to {who}", {"grants": problems})
