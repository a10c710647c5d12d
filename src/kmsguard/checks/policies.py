"""Key-policy checks: public, external, wildcard, admin-can-use, secure transport, IAM-only.

Every judgement comes from the policy engine (``kmsguard.policy.questions``); this module only decides
which keys to judge, what counts as trusted, and how each answer reads as a finding. Customer managed
keys only: an AWS managed key's policy cannot be changed, so a finding on it could not be acted on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from kmsguard.checks.registry import Result, check, key_result
from kmsguard.config import ScanConfig
from kmsguard.model.finding import Severity, Status
from kmsguard.policy.errors import PolicyError
from kmsguard.policy.trust import trusted

if TYPE_CHECKING:  # annotations only: `kmsguard checks` loads the registry without the Snapshot models
    from kmsguard.model.snapshot import Key, Snapshot


if TYPE_CHECKING:  # the engine (z3 and all) loads when a check runs, not when the registry is listed
    from kmsguard.policy.questions import KeyPolicyAnalysis

    Judge = Callable[[Key, KeyPolicyAnalysis], Result]


def _judged_keys(snapshot: Snapshot) -> Iterator[Key]:
    for key in snapshot.all_keys():
        if not key.is_aws_managed:  # unknown manager (DescribeKey failed) is judged: never hide a key
            yield key


def _each_key(snapshot: Snapshot, config: ScanConfig, judge: Judge) -> Iterator[Result]:
    from kmsguard.policy.questions import analyze_key_policy_cached

    trust = trusted(snapshot, config)
    for key in _judged_keys(snapshot):
        if key.policy is None:
            yield key_result(key, Status.ERROR, "the key policy could not be read, so it could not be judged")
            continue
        try:
            analysis = analyze_key_policy_cached(
                key.policy, key.account, trust.accounts, trust.org_ids, key.key_spec, key.key_usage
            )
        except (PolicyError, ValueError) as e:
            yield key_result(key, Status.ERROR, f"the key policy is not valid: {e}", {"error": str(e)})
            continue
        yield judge(key, analysis)


def _statements(key: Key, indexes: list[int]) -> list[dict[str, Any]]:
    """Evidence: the statements (index, Sid, the JSON as written) a finding is about."""
    try:
        doc = json.loads(key.policy or "{}")
    except ValueError:
        return [{"index": i} for i in indexes]
    raw = doc.get("Statement", [])
    raw = raw if isinstance(raw, list) else [raw]
    out = []
    for i in indexes:
        st = raw[i] if 0 <= i < len(raw) else {}
        out.append({"index": i, "sid": st.get("Sid") if isinstance(st, dict) else None, "statement": st})
    return out


# --- the checks ---------------------------------------------------------------------------------------


@check(
    "key_policy_public",
    title="Key policy lets anyone use the key",
    severity=Severity.CRITICAL,
    family="policy",
    rationale="A principal of any AWS account can call KMS on this key with a request it can make: whoever "
    "holds ciphertext under it can decrypt it, or anyone can change it.",
    remediation='Replace Principal "*" with named principals, or bound it with aws:PrincipalOrgID, '
    "aws:PrincipalAccount or kms:CallerAccount. Check with `kmsguard policy analyze`.",
    topics=["key_policy_no_public_access", "key_policy_least_privilege"],
    fixer="key_policy",
)
def key_policy_public(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if not a.public:
            return key_result(key, Status.PASS, "the key policy does not let unrelated accounts use the key")
        evidence: dict[str, Any] = {"statements": _statements(key, a.public_statements), "principals": ["*"]}
        if a.uncertain:
            evidence["uncertain"] = a.uncertain
        return key_result(key, Status.FAIL, "the key policy lets principals of any AWS account use the key", evidence)

    return _each_key(snapshot, config, judge)


@check(
    "key_policy_external_access",
    title="Key policy grants access outside the trusted accounts",
    severity=Severity.HIGH,
    family="policy",
    rationale="Principals outside the scanned accounts, the configured trusted accounts and the trusted "
    "organisations can use or manage the key.",
    remediation="Remove the external principals, or add their accounts/organisation to trusted_accounts / "
    "trusted_org_ids when the sharing is intended.",
    topics=["key_policy_no_external_access", "key_policy_least_privilege"],
    fixer="key_policy",
)
def key_policy_external_access(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if not a.external_principals:
            return key_result(key, Status.PASS, "only trusted accounts and organisations can use the key")
        indexes = sorted({i for ids in a.external_statements.values() for i in ids} | set(a.public_statements))
        evidence = {"principals": a.external_principals, "statements": _statements(key, indexes)}
        names = ", ".join(a.external_principals)
        return key_result(key, Status.FAIL, f"principals outside the trusted accounts can use the key: {names}",
                          evidence)  # fmt: skip

    return _each_key(snapshot, config, judge)


@check(
    "key_policy_wildcard_actions",
    title="Key policy grants every action to a principal other than the account root",
    severity=Severity.MEDIUM,
    family="policy",
    rationale="kms:*, * or NotAction hands out administration and cryptographic use at once; only the "
    "account-root statement that delegates to IAM should carry it.",
    remediation="List the actions each principal needs (the guide's KeyAdministration and "
    "KeyUsageForEncryption statements); `kmsguard policy generate` writes such a policy.",
    topics=["key_policy_least_privilege"],
    fixer="key_policy",
)
def key_policy_wildcard_actions(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if not a.wildcard_statements:
            return key_result(key, Status.PASS, "no statement grants all actions to anyone but the account root")
        stmts = _statements(key, a.wildcard_statements)
        principals = sorted({json.dumps(s["statement"].get("Principal"), sort_keys=True) for s in stmts
                             if isinstance(s.get("statement"), dict)})  # fmt: skip
        evidence = {"statements": stmts, "principals": [json.loads(p) for p in principals]}
        which = ", ".join(str(s["sid"] or f"#{s['index']}") for s in stmts)
        return key_result(key, Status.FAIL, f"statement(s) {which} grant every KMS action", evidence)

    return _each_key(snapshot, config, judge)


@check(
    "key_policy_admin_can_use",
    title="Key administrators can also use the key",
    severity=Severity.MEDIUM,
    family="policy",
    rationale="Separation of duties: a principal that can change the key policy should not also decrypt "
    "the data protected by the key.",
    remediation="Give administrators only the administrative actions (the guide's KeyAdministration "
    "statement) and grant cryptographic use to separate roles.",
    topics=["separation_of_duties", "key_policy_least_privilege"],
    fixer="key_policy",
)
def key_policy_admin_can_use(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if not a.admin_crypto:
            msg = "no named administrator has cryptographic use" if a.admins else "the policy names no administrator"
            return key_result(key, Status.PASS, msg, {"admins": a.admins})
        names = ", ".join(sorted(a.admin_crypto))
        evidence = {"admins": a.admins, "cryptographic_use": a.admin_crypto}
        return key_result(key, Status.FAIL, f"administrator(s) {names} can also use the key", evidence)

    return _each_key(snapshot, config, judge)


@check(
    "key_policy_no_secure_transport",
    title="Key policy does not deny requests without TLS",
    severity=Severity.MEDIUM,
    family="policy",
    rationale="Without a Deny on aws:SecureTransport false, nothing in the key policy stops cryptographic "
    "requests made over plain HTTP.",
    remediation='Add the guide\'s DenyInsecureTransport statement: Deny, Principal "*", Action "kms:*", '
    'Condition {"Bool": {"aws:SecureTransport": "false"}}.',
    topics=["secure_transport"],
    fixer="key_policy",
)
def key_policy_no_secure_transport(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if a.denies_insecure_transport:
            return key_result(key, Status.PASS, "requests without TLS are denied for every principal")
        return key_result(key, Status.FAIL, "no statement denies cryptographic requests made without TLS")

    return _each_key(snapshot, config, judge)


@check(
    "key_policy_iam_only",
    title="Key policy only delegates to IAM",
    severity=Severity.LOW,
    family="policy",
    rationale="A policy whose only principal is the account root leaves who administers and who uses the "
    "key to IAM policies; the guide names this as a common mistake.",
    remediation="Name the key administrators and users in the key policy (the guide's KeyAdministration "
    "and KeyUsageForEncryption statements).",
    topics=["key_policy_least_privilege", "separation_of_duties"],
    fixer="key_policy_by_hand",
)
def key_policy_iam_only(snapshot: Snapshot, config: ScanConfig) -> Iterator[Result]:
    def judge(key: Key, a: KeyPolicyAnalysis) -> Result:
        if a.iam_only:
            return key_result(key, Status.FAIL, "the key policy names no administrator or user: IAM decides alone")
        users = sorted({w.principal for ws in a.who_can.values() for w in ws})
        return key_result(key, Status.PASS, "the key policy names its principals", {"principals": users})

    return _each_key(snapshot, config, judge)
