"""IAM identity policies that can grant KMS permissions: customer managed and inline.

One paginated call per account: GetAccountAuthorizationDetails (users, groups, roles with their
inline policies and attachments, and the customer managed policies with their versions). A policy
is kept when a statement's Action names a kms: action or a wildcard that covers one, or uses
NotAction (which grants everything not listed).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote

from kmsguard.aws.session import AccountSession
from kmsguard.model.snapshot import IamPolicy

SERVICE = "iam"
_FILTER = ["User", "Role", "Group", "LocalManagedPolicy"]
_PRINCIPAL_LISTS = (
    ("UserDetailList", "UserPolicyList"),
    ("GroupDetailList", "GroupPolicyList"),
    ("RoleDetailList", "RolePolicyList"),
)


def collect(session: AccountSession) -> list[IamPolicy]:
    iam = session.global_client(SERVICE)
    details: dict[str, list[Any]] = {}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=_FILTER):
        for k in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
            details.setdefault(k, []).extend(page.get(k, []))

    out: list[IamPolicy] = []
    attached: dict[str, list[str]] = {}
    for list_key, inline_key in _PRINCIPAL_LISTS:
        for p in details.get(list_key, []):
            for m in p.get("AttachedManagedPolicies", []):
                attached.setdefault(m["PolicyArn"], []).append(p["Arn"])
            for inline in p.get(inline_key, []):
                doc = document(inline.get("PolicyDocument"))
                if mentions_kms(doc):
                    out.append(
                        IamPolicy(
                            arn=f"{p['Arn']}/inline/{inline['PolicyName']}",
                            name=inline["PolicyName"],
                            kind="inline",
                            document=json.dumps(doc),
                            attached_to=[p["Arn"]],
                        )
                    )
    for pol in details.get("Policies", []):
        default = next((v for v in pol.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
        doc = document(default.get("Document")) if default else {}
        if mentions_kms(doc):
            out.append(
                IamPolicy(
                    arn=pol["Arn"],
                    name=pol.get("PolicyName") or pol["Arn"].rsplit("/", 1)[-1],
                    kind="managed",
                    document=json.dumps(doc),
                    attached_to=sorted(attached.get(pol["Arn"], [])),
                )
            )
    return sorted(out, key=lambda p: p.arn)


def document(raw: Any) -> dict[str, Any]:
    """A policy document as a dict: botocore usually decodes it, but the wire form is URL-encoded JSON."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(unquote(raw))
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


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
            # "kms:Decrypt", "kms:*", "*", "k*": anything that matches some kms: action.
            if a.startswith("kms:") or fnmatchcase("kms:decrypt", a):
                return True
    return False
