"""Principal ARNs: which account a principal belongs to, and the identity a request carries.

Small pure helpers shared by the analysis, the solver and the checks, so that "which account is this
principal in" has one answer everywhere.
"""

from __future__ import annotations

import re

from kmsguard.policy.model import Policy, Principal

_ACCOUNT_RE = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")

# Condition keys whose value is fixed by *who* the caller is (not by what the caller puts in the request).
# An unrelated principal cannot make these equal to our account, organisation or role; every other key
# (aws:SecureTransport, kms:EncryptionContext:*, kms:ViaService, aws:PrincipalTag/* of the caller's own
# role, aws:SourceIp ...) is treated as something the caller can produce.
ACCOUNT_KEYS = frozenset({"aws:principalaccount", "kms:calleraccount"})
ORG_KEYS = frozenset({"aws:principalorgid"})
ORG_PATH_KEYS = frozenset({"aws:principalorgpaths"})
ARN_KEYS = frozenset({"aws:principalarn"})
# Set only when a service acts for a resource; an IAM principal's own request does not carry them.
SOURCE_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceowner", "aws:sourceorgid"})
# Always in the request: "true" for a service principal, "false" for an IAM principal.
SERVICE_FLAG_KEYS = frozenset({"aws:principalisawsservice"})
IDENTITY_KEYS = ACCOUNT_KEYS | ORG_KEYS | ORG_PATH_KEYS | ARN_KEYS | SOURCE_KEYS | SERVICE_FLAG_KEYS


def is_account_id(value: str) -> bool:
    return bool(_ACCOUNT_ID.match(value))


def is_org_id(value: str) -> bool:
    return bool(_ORG_ID.match(value))


def account_of(arn: str) -> str | None:
    """The 12-digit account of an IAM/STS ARN, or None (service principals, "*", malformed)."""
    m = _ACCOUNT_RE.match(arn)
    return m.group(1) if m else None


def root_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:root"


def is_root(arn: str) -> bool:
    return account_of(arn) is not None and arn.endswith(":root")


def is_key_account_root(p: Principal, account: str) -> bool:
    return p.kind == "AWS" and is_root(p.value) and account_of(p.value) == account


def direct_forms(arn: str) -> tuple[str, ...]:
    """The request principals an element names directly: a role ARN names the role whatever its path
    (requests carry the role ARN without one)."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith("role/"):
        bare = ":".join([*parts[:5], "role/" + parts[5].rsplit("/", 1)[-1]])
        return (arn, bare) if bare != arn else (arn,)
    return (arn,)


def names_directly(element: str, principal: str) -> bool:
    """Does an AWS Principal element (not "*", not an account root) name the request ``principal`` itself?

    As the direct evaluator judges it: a role ARN names that role whatever its path and every session of
    it (``arn:PARTITION:sts::ACCT:assumed-role/NAME/<any>``); any other ARN names exactly itself."""
    from kmsguard.policy.evaluate import principal_token
    from kmsguard.policy.normalize import principal_info

    token = principal_token(Principal("AWS", element))
    return token is not None and token in principal_info(principal).direct_tokens


def principal_label(p: Principal) -> str:
    """How a principal element is shown to users: the ARN, "*", or "service:NAME"."""
    if p.kind == "AWS":
        return p.value
    return f"{p.kind.lower()}:{p.value}"


def mentioned_accounts(policy: Policy) -> set[str]:
    """Every account id the policy names: in principals and in values of account-bounding conditions."""
    out: set[str] = set()
    for s in policy.statements:
        for group in (s.principals or (), s.not_principals or ()):
            for p in group:
                acct = account_of(p.value) if p.kind == "AWS" else None
                if acct:
                    out.add(acct)
        for c in s.conditions:
            for v in c.values:
                if c.key in ACCOUNT_KEYS | SOURCE_KEYS and is_account_id(v):
                    out.add(v)
                acct = account_of(v)
                if acct:
                    out.add(acct)
    return out


def mentioned_orgs(policy: Policy) -> set[str]:
    out: set[str] = set()
    for s in policy.statements:
        for c in s.conditions:
            for v in c.values:
                if c.key in ORG_KEYS and is_org_id(v):
                    out.add(v)
                elif c.key in ORG_PATH_KEYS and is_org_id(v.split("/", 1)[0]):
                    out.add(v.split("/", 1)[0])
    return out


def named_principals(policy: Policy) -> set[str]:
    """The exact AWS principal ARNs (not "*") that Principal elements name."""
    return {p.value for s in policy.statements for p in (s.principals or ()) if p.kind == "AWS" and not p.is_wildcard}
