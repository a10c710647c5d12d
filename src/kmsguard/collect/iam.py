"""IAM, per account: every user, group and role with what decides its access, and the managed policies used.

One paginated call per account: GetAccountAuthorizationDetails for users, groups, roles (inline policies,
attachments, permission boundaries, trust policies, tags) and customer managed policies with their
versions. AWS managed policies are read with GetPolicy + GetPolicyVersion, only those something attaches
or uses as a boundary, once per scan: their documents are the same in every account of a partition, and
the AWSManagedPolicy filter would return all of them (1,582 in moto's copy, 3.7 s per account there).
Only the default version of each managed policy is kept.

Two views come out of it: the ``IamInventory`` that effective access (``policy.access``) reads, and the
``IamPolicy`` list of documents that can grant KMS permissions that the IAM checks read. A document
that does not parse is a ``CollectionError`` on the principal, group or policy it belongs to: never an
empty policy, which would silently read as "allows nothing".
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import unquote

from kmsguard.aws.errors import AWS_CALL_ERRORS
from kmsguard.aws.session import AccountSession
from kmsguard.collect.errors import collection_error
from kmsguard.model.snapshot import CollectionError, IamGroup, IamInventory, IamPolicy, IamPrincipal, ManagedPolicy
from kmsguard.policy.actions import expand_kms_actions

SERVICE = "iam"
OPERATION = "GetAccountAuthorizationDetails"
_FILTER = ["User", "Role", "Group", "LocalManagedPolicy"]
_LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


class DocumentError(ValueError):
    """A policy document that is not a JSON object."""


class AwsManagedCache:
    """AWS managed policy documents read so far in this scan, by ARN (thread-safe)."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, iam: Any, arn: str) -> dict[str, Any]:
        with self._lock:
            hit = self._docs.get(arn)
        if hit is None:
            meta = iam.get_policy(PolicyArn=arn)["Policy"]
            version = iam.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])["PolicyVersion"]
            hit = {
                "Arn": arn,
                "PolicyName": meta["PolicyName"],
                "PolicyVersionList": [{**version, "IsDefaultVersion": True}],
            }
            with self._lock:
                self._docs[arn] = hit
        return hit


def collect(session: AccountSession, aws_managed: AwsManagedCache | None = None) -> IamInventory:
    iam = session.global_client(SERVICE)
    details: dict[str, list[Any]] = {k: [] for k in _LISTS}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=_FILTER):
        for k in _LISTS:
            details[k].extend(page.get(k, []))
    cache = aws_managed or AwsManagedCache()
    unread: list[CollectionError] = []
    for arn in sorted(used_policies(details)):
        if ":iam::aws:policy/" in arn:
            try:
                details["Policies"].append(cache.get(iam, arn))
            except AWS_CALL_ERRORS as e:
                unread.append(collection_error(SERVICE, "GetPolicyVersion", e, arn))
    inv = inventory(details)
    for err in unread:  # kept as a policy that could not be read: its holders' access is then incomplete
        name = (err.resource or "").rsplit("/", 1)[-1]
        inv.policies.append(
            ManagedPolicy(arn=err.resource or "", name=name, document=None, aws_managed=True, errors=[err])
        )
    inv.policies.sort(key=lambda p: p.arn)
    return inv


def used_policies(details: dict[str, list[Any]]) -> set[str]:
    """Managed policy ARNs attached to a user, group or role, or set as a permissions boundary."""
    used: set[str] = set()
    for list_key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for p in details.get(list_key, []):
            used.update(m["PolicyArn"] for m in p.get("AttachedManagedPolicies", []))
            boundary = (p.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            if boundary:
                used.add(boundary)
    return used


def inventory(details: dict[str, list[Any]]) -> IamInventory:
    """The inventory from GetAccountAuthorizationDetails' lists (all pages joined)."""
    principals: list[IamPrincipal] = []
    used: set[str] = set()
    for kind, list_key, inline_key in (
        ("user", "UserDetailList", "UserPolicyList"),
        ("role", "RoleDetailList", "RolePolicyList"),
    ):
        for p in details.get(list_key, []):
            errors: list[CollectionError] = []
            principal = IamPrincipal(
                arn=p["Arn"],
                name=p.get("UserName") or p.get("RoleName") or p["Arn"].rsplit("/", 1)[-1],
                kind=kind,  # type: ignore[arg-type]
                path=p.get("Path", "/"),
                inline_policies=_inline(p.get(inline_key, []), p["Arn"], errors),
                managed_policies=sorted(m["PolicyArn"] for m in p.get("AttachedManagedPolicies", [])),
                groups=sorted(p.get("GroupList", [])),
                permissions_boundary=(p.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
                trust_policy=_text(p.get("AssumeRolePolicyDocument"), p["Arn"], "trust policy", errors)
                if kind == "role"
                else None,
                tags={t["Key"]: t.get("Value", "") for t in p.get("Tags", [])},
                errors=errors,
            )
            used.update(principal.managed_policies)
            if principal.permissions_boundary:
                used.add(principal.permissions_boundary)
            principals.append(principal)
    groups: list[IamGroup] = []
    for g in details.get("GroupDetailList", []):
        errors = []
        group = IamGroup(
            arn=g["Arn"],
            name=g["GroupName"],
            inline_policies=_inline(g.get("GroupPolicyList", []), g["Arn"], errors),
            managed_policies=sorted(m["PolicyArn"] for m in g.get("AttachedManagedPolicies", [])),
            errors=errors,
        )
        used.update(group.managed_policies)
        groups.append(group)
    policies: list[ManagedPolicy] = []
    for pol in details.get("Policies", []):
        aws_managed = ":iam::aws:policy/" in pol["Arn"]
        if aws_managed and pol["Arn"] not in used:
            continue
        errors = []
        default = next((v for v in pol.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
        if default is None:
            errors.append(_error(pol["Arn"], "the policy has no default version"))
        policies.append(
            ManagedPolicy(
                arn=pol["Arn"],
                name=pol.get("PolicyName") or pol["Arn"].rsplit("/", 1)[-1],
                document=_text(default.get("Document"), pol["Arn"], "default version", errors) if default else None,
                aws_managed=aws_managed,
                errors=errors,
            )
        )
    return IamInventory(
        principals=sorted(principals, key=lambda p: p.arn),
        groups=sorted(groups, key=lambda g: g.arn),
        policies=sorted(policies, key=lambda p: p.arn),
    )


def kms_policies(inv: IamInventory) -> list[IamPolicy]:
    """The identity policies that can grant KMS permissions, with the principals they are attached to (the
    IAM checks' view). AWS managed policies are included: AdministratorAccess grants kms:* like any other."""
    out: list[IamPolicy] = []
    attached: dict[str, list[str]] = {}
    holders: list[IamPrincipal | IamGroup] = [*inv.principals, *inv.groups]
    for h in holders:
        for arn in h.managed_policies:
            attached.setdefault(arn, []).append(h.arn)
        for name, doc in h.inline_policies.items():
            if mentions_kms(json.loads(doc)):
                out.append(
                    IamPolicy(arn=f"{h.arn}/inline/{name}", name=name, kind="inline", document=doc, attached_to=[h.arn])
                )
    for pol in inv.policies:
        if pol.document is not None and mentions_kms(json.loads(pol.document)):
            out.append(
                IamPolicy(
                    arn=pol.arn,
                    name=pol.name,
                    kind="managed",
                    document=pol.document,
                    attached_to=sorted(attached.get(pol.arn, [])),
                )
            )
    return sorted(out, key=lambda p: p.arn)


def _inline(entries: list[Any], owner: str, errors: list[CollectionError]) -> dict[str, str]:
    out: dict[str, str] = {}
    for inline in entries:
        text = _text(inline.get("PolicyDocument"), owner, f"inline policy {inline.get('PolicyName')!r}", errors)
        if text is not None:
            out[inline["PolicyName"]] = text
    return out


def _text(raw: Any, owner: str, what: str, errors: list[CollectionError]) -> str | None:
    try:
        return json.dumps(document(raw))
    except DocumentError as e:
        errors.append(_error(owner, f"{what}: {e}"))
        return None


def _error(resource: str, message: str) -> CollectionError:
    return CollectionError(
        service=SERVICE, operation=OPERATION, code="UnreadablePolicyDocument", message=message, resource=resource
    )


def document(raw: Any) -> dict[str, Any]:
    """A policy document as a dict: botocore usually decodes it, but the wire form is URL-encoded JSON.
    Raises DocumentError for anything that is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(unquote(raw))
        except ValueError as e:
            raise DocumentError(f"not JSON ({e})") from None
        if isinstance(parsed, dict):
            return parsed
        raise DocumentError(f"a JSON {type(parsed).__name__}, not an object")
    raise DocumentError("missing" if raw is None else f"a {type(raw).__name__}, not a document")


def mentions_kms(doc: dict[str, Any]) -> bool:
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict):
            continue
        if "NotAction" in st:
            return True
        actions = st.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            a = str(action).lower()
            # "kms:Decrypt", "kms:*", "*", "k*", "*:CreateGrant": anything that covers some KMS action, by the
            # policy engine's own wildcard rules (IAM's * and ?; a "[" is a character, not a class). Any kms:
            # action counts, catalogued or not: a newer action than the catalogue is still KMS.
            if a.startswith("kms:") or expand_kms_actions(a):
                return True
    return False
