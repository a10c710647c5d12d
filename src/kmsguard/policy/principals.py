"""Principal ARNs: which account a principal belongs to, and the identity a request carries.

Small pure helpers shared by the analysis, the solver and the checks, so that "which account is this
principal in" has one answer everywhere.
"""

from __future__ import annotations

import re

from kmsguard import arn as _arn
from kmsguard.policy.model import Policy, Principal

_ACCOUNT_RE = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# Organizations API reference, Organization.Id: ^o-[a-z0-9]{10,32}$ ("o-" and 10 to 32 lower-case letters or digits).
_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")

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
    """Every id AWS accepts, and only those (``fullmatch``: "$" would let a trailing newline through)."""
    return bool(_ORG_ID.fullmatch(value))


def account_of(arn: str) -> str | None:
    """The 12-digit account of an IAM/STS ARN, or None (service principals, "*", malformed)."""
    m = _ACCOUNT_RE.match(arn)
    return m.group(1) if m else None


def policy_partition(policy: Policy) -> str:
    """The partition the policy's principals and keys live in: that of the ARNs it quotes (principals,
    resources, condition values); ``aws`` when it quotes none (then the partition cannot change an answer)."""
    texts = [p.value for st in policy.statements for p in (*(st.principals or ()), *(st.not_principals or ()))]
    texts += [r for st in policy.statements for r in (*(st.resources or ()), *(st.not_resources or ()))]
    texts += [v for st in policy.statements for c in st.conditions for v in c.values]
    return _arn.mentioned_partition(texts) or _arn.DEFAULT_PARTITION


def is_root(arn: str) -> bool:
    return account_of(arn) is not None and arn.endswith(":root")


def is_key_account_root(p: Principal, account: str) -> bool:
    return p.kind == "AWS" and is_root(p.value) and account_of(p.value) == account


def direct_forms(arn: str) -> tuple[str, ...]:
    """The request principals an element names directly: a role ARN names the role whatever its path
    (requests carry the role ARN without one)."""
    a = _arn.parse(arn)
    if a is not None and a.service == "iam" and a.resource_type == "role":
        bare = str(_arn.Arn(a.partition, a.service, a.region, a.account, f"role/{a.resource_id}"))
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


def not_principal_excludes(elements: tuple[Principal, ...], principal: str, account: str | None = None) -> bool:
    """Does a NotPrincipal list leave the request ``principal`` out, as the direct evaluator judges it?

    Only when every identity level AWS checks is listed: the account, then the user or role, then the
    session (a session ARN; listing the role does not exclude its sessions)."""
    from kmsguard.policy.evaluate import principal_token
    from kmsguard.policy.normalize import principal_info

    tokens = [principal_token(e) for e in elements]
    if any(t is None for t in tokens):
        return True
    listed = frozenset(t for t in tokens if t is not None)
    return all(not listed.isdisjoint(level) for level in principal_info(principal, account).levels)


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
    """The exact AWS principal ARNs (not "*") that Principal elements name, and the role sessions that
    NotPrincipal lists name: such a session is exempt from a Deny that the other sessions of its role are
    not, so a class of callers leaves it out and it is asked about by name, like a named principal."""
    out = {p.value for s in policy.statements for p in (s.principals or ()) if p.kind == "AWS" and not p.is_wildcard}
    out |= {p.value for s in policy.statements for p in (s.not_principals or ()) if session_parts(p.value)}
    return out


def session_parts(text: str) -> tuple[str, str, str, str] | None:
    """(partition, account, role name, session name) of an assumed-role session ARN, else None."""
    a = _arn.parse(text)
    if a is None or a.service != "sts" or not _ACCOUNT_ID.match(a.account):
        return None
    kind, _, rest = a.resource.partition("/")
    role, _, session = rest.partition("/")
    return (a.partition, a.account, role, session) if kind == "assumed-role" and role and session else None


def session_of(role_arn: str, session: str = "example") -> str | None:
    """The ARN of a session of an IAM role (a session's ARN carries the role's name, not its path);
    ``None`` when ``role_arn`` is not a role ARN."""
    a = _arn.parse(role_arn)
    if a is None or a.service != "iam" or a.resource_type != "role" or not _ACCOUNT_ID.match(a.account):
        return None
    return f"arn:{a.partition}:sts::{a.account}:assumed-role/{a.resource_id}/{session}"
