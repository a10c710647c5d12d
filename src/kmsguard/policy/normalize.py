"""Raw policy documents and requests -> the normalised model (model.py); principal ARNs -> their parts.

The rules are the ones in model.py's docstring. Normalising must never change a decision: the property
tests evaluate raw variants (single values as lists, account ids as root ARNs, "*" as {"AWS": "*"})
and require the same answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from kmsguard.arn import DEFAULT_PARTITION, mentioned_partition, root_arn
from kmsguard.policy import actions as cat
from kmsguard.policy.errors import PolicyNormalizeError
from kmsguard.policy.model import Condition, Policy, Principal, PrincipalKind, Request, Statement
from kmsguard.policy.parse import PolicyKind, RawPolicy, parse_policy

_ACCOUNT = re.compile(r"\d{12}")
_PRINCIPAL_TYPES: tuple[PrincipalKind, ...] = ("AWS", "Service", "Federated", "CanonicalUser")

ContextValue = str | bool | int | float | Iterable[str | bool | int | float]


def normalize(
    raw_or_dict: RawPolicy | Mapping[str, Any], kind: PolicyKind | None = None, partition: str | None = None
) -> Policy:
    """A validated ``RawPolicy`` (or an already-decoded document) -> ``Policy``.

    A plain mapping is not validated first; a shape the model cannot hold raises PolicyNormalizeError.
    ``kind`` defaults to the RawPolicy's kind, else "key". ``partition`` is where the account-id shorthand
    in a Principal points (AWS reads it as that account's root user in the resource's partition); when not
    given, the partition of the ARNs the policy quotes, else ``aws``.
    """
    if isinstance(raw_or_dict, RawPolicy):
        data: Mapping[str, Any] = raw_or_dict.data
        kind = kind or raw_or_dict.kind
    elif isinstance(raw_or_dict, Mapping):
        data = raw_or_dict
    else:
        raise PolicyNormalizeError(f"expected a policy document (object), got {type(raw_or_dict).__name__}")
    kind = kind or "key"
    stmts = data.get("Statement")
    if isinstance(stmts, Mapping):
        stmts = [stmts]
    if not isinstance(stmts, list):
        raise PolicyNormalizeError("Statement must be an object or a list of objects")
    version = data.get("Version")
    pid = data.get("Id")
    shorthand = partition or _quoted_partition(data)
    return Policy(
        kind=kind,
        version=version if isinstance(version, str) else None,
        statements=tuple(_statement(i, st, kind, shorthand) for i, st in enumerate(stmts)),
        id=pid if isinstance(pid, str) else None,
    )


def parse_and_normalize(
    text: str, *, source: str = "<policy>", kind: PolicyKind = "key", strict: bool = True
) -> Policy:
    """Parse, validate (raising PolicyParseError on any error) and normalise a policy document.

    ``strict=False`` is for analysing policies AWS already accepted: a KMS action the catalogue does not
    know (it then matches only itself, and wildcards as usual), duplicate Sids and a missing Version are
    accepted (see ``parse_policy``); without a Version the policy is read as "2008-10-17", so policy
    variables are not substituted. Anything else (not JSON, no Statement, ...) still raises."""
    raw = parse_policy(text, source=source, kind=kind, strict=strict)
    pol = normalize(raw)
    if not strict and "Version" not in raw.data:
        pol = replace(pol, version="2008-10-17")
    return pol


def _statement(index: int, st: Any, kind: PolicyKind, partition: str = DEFAULT_PARTITION) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(st, Mapping):
        raise PolicyNormalizeError(f"{where} must be an object")
    effect = st.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyNormalizeError(f'{where}.Effect must be "Allow" or "Deny", not {effect!r}')
    for name in ("Principal", "Action", "Resource"):
        if name in st and f"Not{name}" in st:
            raise PolicyNormalizeError(f"{where} has both {name} and Not{name}")
    if "Action" not in st and "NotAction" not in st:
        raise PolicyNormalizeError(f"{where} has neither Action nor NotAction")
    sid = st.get("Sid")
    return Statement(
        index=index,
        sid=sid if isinstance(sid, str) else None,
        effect=effect,
        principals=_principals(st["Principal"], f"{where}.Principal", partition) if "Principal" in st else None,
        not_principals=(
            _principals(st["NotPrincipal"], f"{where}.NotPrincipal", partition) if "NotPrincipal" in st else None
        ),
        actions=_strings(st["Action"], f"{where}.Action", lower=True) if "Action" in st else None,
        not_actions=_strings(st["NotAction"], f"{where}.NotAction", lower=True) if "NotAction" in st else None,
        resources=_strings(st["Resource"], f"{where}.Resource") if "Resource" in st else None,
        not_resources=_strings(st["NotResource"], f"{where}.NotResource") if "NotResource" in st else None,
        conditions=_conditions(st.get("Condition"), f"{where}.Condition"),
    )


def _listify(value: Any, where: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if value is None or isinstance(value, Mapping):
        raise PolicyNormalizeError(f"{where} must be a value or a list of values")
    return [value]


def _strings(value: Any, where: str, lower: bool = False) -> tuple[str, ...]:
    out = []
    for item in _listify(value, where):
        if not isinstance(item, str):
            raise PolicyNormalizeError(f"{where} values must be strings, not {item!r}")
        out.append(item.lower() if lower else item)
    return tuple(out)


def _quoted_partition(data: Any) -> str:
    """The partition of the ARNs anywhere in the document (principals, resources, conditions)."""
    texts: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(data)
    return mentioned_partition(texts) or DEFAULT_PARTITION


def _principals(value: Any, where: str, partition: str = DEFAULT_PARTITION) -> tuple[Principal, ...]:
    if value == "*":
        return (Principal("AWS", "*"),)
    if not isinstance(value, Mapping):
        raise PolicyNormalizeError(f'{where} must be "*" or an object')
    out: list[Principal] = []
    for ptype, pvalues in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise PolicyNormalizeError(f"{where}: unknown principal type {ptype!r}")
        for item in _strings(pvalues, f"{where}.{ptype}"):
            if ptype == "AWS" and _ACCOUNT.fullmatch(item):
                item = root_arn(item, partition)  # the account-id shorthand means that account's root
            out.append(Principal(ptype, item))
    return tuple(out)


def _condition_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise PolicyNormalizeError(f"{where}: condition values must be strings, numbers or booleans, not {value!r}")


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyNormalizeError(f"{where} must be an object")
    out: list[Condition] = []
    for op_text, block in value.items():
        spec = cat.parse_operator(op_text)
        if spec is None:
            raise PolicyNormalizeError(f"{where}: unknown condition operator {op_text!r}")
        if not isinstance(block, Mapping):
            raise PolicyNormalizeError(f"{where}.{op_text} must be an object")
        for key, values in block.items():
            items = values if isinstance(values, list | tuple) else [values]
            texts = tuple(_condition_text(v, f"{where}.{op_text}.{key}") for v in items)
            out.append(Condition(spec.base, key.lower(), texts, spec.if_exists, spec.set_op))
    return tuple(out)


# ------------------------------------------------------------------------------------------- requests


def context_values(value: ContextValue) -> tuple[str, ...]:
    """One context entry -> the tuple of strings the model holds (booleans as "true"/"false")."""
    if isinstance(value, str | bool | int | float):
        return (_condition_text(value, "context"),)
    return tuple(_condition_text(v, "context") for v in value)


def normalize_context(context: Mapping[str, ContextValue] | None) -> dict[str, tuple[str, ...]]:
    """Lower-case the keys (merging keys that differ only in case) and make every value a tuple."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in (context or {}).items():
        k = key.lower()
        out[k] = out.get(k, ()) + context_values(value)
    return out


def request(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
    principal_account: str | None = None,
) -> Request:
    """Build a normalised Request. The context is exactly what the caller gives: nothing is added, not even
    keys KMS always computes (kms:CallerAccount, aws:PrincipalArn, ...); see ``with_implicit_context``.
    A 12-digit account id as the principal means that account's root user."""
    if _ACCOUNT.fullmatch(principal):
        principal = f"arn:aws:iam::{principal}:root"
    return Request(
        principal=principal,
        action=action,
        resource=resource,
        principal_account=principal_account,
        context=normalize_context(context),
    )


# --------------------------------------------------------------------------------------- the principal

RequestPrincipalKind = Literal[
    "root", "user", "role", "session", "federated-user", "service", "federated", "canonical", "anonymous", "unknown"
]


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    """What the evaluator needs to know about the caller, parsed once per principal string.

    ``direct_tokens``: the forms a key-policy Principal entry can take to name this caller specifically
    (its own ARN; ``role:ACCT/NAME`` for a role and every session of it; ``svc:NAME`` for a service).
    ``levels``: the identities AWS checks one after another for NotPrincipal (account, then role or user,
    then session); the caller is excluded by a NotPrincipal list only if every level is listed. A session
    is identified by its own session ARN: listing its role (and account) does not exclude it (IAM guide,
    "AWS JSON policy elements: NotPrincipal", whose example lists the session, the role and the account).
    """

    raw: str
    kind: RequestPrincipalKind
    account: str | None
    partition: str
    name: str | None
    arn: str | None  # the IAM ARN aws:PrincipalArn would carry (a session's role ARN, without path)
    direct_tokens: frozenset[str]
    levels: tuple[frozenset[str], ...]

    @property
    def is_root(self) -> bool:
        return self.kind == "root"

    @property
    def account_token(self) -> str | None:
        return f"acct:{self.account}" if self.account else None


_ARN = re.compile(r"arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)", re.DOTALL)


@lru_cache(maxsize=4096)
def principal_info(principal: str, principal_account: str | None = None) -> PrincipalInfo:
    """Parse a request principal: an IAM/STS ARN, ``service:NAME``, ``federated:NAME``, ``canonical:ID``,
    ``*``/``anonymous``, or a 12-digit account id (its root user)."""
    p = principal.strip()
    if _ACCOUNT.fullmatch(p):
        p = f"arn:aws:iam::{p}:root"
    lowered = p.lower()
    if lowered.startswith("service:"):
        svc = p.split(":", 1)[1].lower()
        tok = frozenset({f"svc:{svc}"})
        return PrincipalInfo(p, "service", None, "aws", svc, None, tok, (tok,))
    if lowered.startswith("federated:"):
        name = p.split(":", 1)[1]
        tok = frozenset({f"fed:{name}"})
        return PrincipalInfo(p, "federated", principal_account, "aws", name, None, tok, (tok,))
    if lowered.startswith("canonical:"):
        name = p.split(":", 1)[1]
        tok = frozenset({f"canon:{name}"})
        return PrincipalInfo(p, "canonical", principal_account, "aws", name, None, tok, (tok,))
    if p in ("*", "anonymous", ""):
        return PrincipalInfo(p, "anonymous", None, "aws", None, None, frozenset(), (frozenset({"anonymous"}),))
    m = _ARN.fullmatch(p)
    if m is None:
        tok = frozenset({p})
        return PrincipalInfo(p, "unknown", principal_account, "aws", None, None, tok, (tok,))
    partition, service, account, resource = m.groups()
    account = principal_account or account
    acct = frozenset({f"acct:{account}"})
    parts = resource.split("/")
    if service == "iam" and resource == "root":
        return PrincipalInfo(p, "root", account, partition, None, p, acct, (acct,))
    if service == "iam" and parts[0] == "user" and len(parts) >= 2:
        me = frozenset({p})
        return PrincipalInfo(p, "user", account, partition, parts[-1], p, me, (acct, me))
    if service == "iam" and parts[0] == "role" and len(parts) >= 2:
        me = frozenset({p, f"role:{account}/{parts[-1]}"})
        return PrincipalInfo(p, "role", account, partition, parts[-1], p, me, (acct, me))
    if service == "sts" and parts[0] == "assumed-role" and len(parts) >= 3:
        role = parts[1]
        role_arn = f"arn:{partition}:iam::{account}:role/{role}"
        role_level = frozenset({f"role:{account}/{role}"})
        me = role_level | {p, f"arn:{partition}:sts::{account}:assumed-role/{role}"}
        return PrincipalInfo(p, "session", account, partition, role, role_arn, me, (acct, role_level, frozenset({p})))
    if service == "sts" and parts[0] == "federated-user" and len(parts) >= 2:
        me = frozenset({p})
        return PrincipalInfo(p, "federated-user", account, partition, parts[1], p, me, (acct, me))
    me = frozenset({p})
    return PrincipalInfo(p, "unknown", account, partition, None, p, me, (acct, me))


_PRINCIPAL_TYPE = {
    "root": "Account",
    "user": "User",
    "role": "AssumedRole",
    "session": "AssumedRole",
    "federated-user": "FederatedUser",
    "anonymous": "Anonymous",
}


def implicit_context(req: Request, org_id: str | None = None) -> dict[str, tuple[str, ...]]:
    """The keys AWS puts in every real KMS request context that ``req`` does not give: aws:PrincipalArn,
    aws:PrincipalAccount, kms:CallerAccount, aws:PrincipalType, aws:username (IAM users),
    aws:PrincipalIsAWSService and aws:PrincipalServiceName (service principals), and aws:PrincipalOrgID
    when the caller's organisation ``org_id`` is known (absent otherwise: a principal outside any
    organisation has none). Keys that depend on how the call is made (aws:SecureTransport,
    aws:SourceIp, kms:ViaService, ...) are never assumed."""
    info = principal_info(req.principal, req.principal_account)
    extra: dict[str, tuple[str, ...]] = {}
    if info.kind == "service":
        extra["aws:principalisawsservice"] = ("true",)
        extra["aws:principalservicename"] = (info.name or "",)
    elif info.kind != "anonymous":
        extra["aws:principalisawsservice"] = ("false",)
        if info.arn:
            extra["aws:principalarn"] = (info.arn,)
        if info.account:
            extra["aws:principalaccount"] = (info.account,)
            extra["kms:calleraccount"] = (info.account,)
        if info.kind in _PRINCIPAL_TYPE:
            extra["aws:principaltype"] = (_PRINCIPAL_TYPE[info.kind],)
        if info.kind == "user" and info.name:
            extra["aws:username"] = (info.name,)
        if org_id:
            extra["aws:principalorgid"] = (org_id,)
    return {k: v for k, v in extra.items() if k not in req.context}  # what the caller gave always wins


def with_implicit_context(req: Request, org_id: str | None = None) -> Request:
    """The request with ``implicit_context`` added.

    ``request()`` never does this, because its contract is that the context is exactly what the caller
    gave; call this when you want an AWS-realistic request."""
    return replace(req, context={**implicit_context(req, org_id), **req.context})
