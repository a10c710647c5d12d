"""Effective access against the hand-checked corpus (tests/access/corpus/*.yaml, written from AWS's
documentation; each expectation names the page and rule it rests on).

Each case becomes a Snapshot exactly as the collector would build it (IAM inventory, Organization, key
with policy and grants) and is judged by ``AccessEvaluator.who_can``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from kmsguard.model.snapshot import (
    AccountSnapshot,
    Grant,
    IamGroup,
    IamInventory,
    IamPrincipal,
    Key,
    ManagedPolicy,
    Organization,
    OrgPolicy,
    OrgUnit,
    RegionSnapshot,
    Snapshot,
)
from kmsguard.policy.access import AccessEvaluator
from kmsguard.policy.estate import build_estate

CORPUS = Path(__file__).parent / "corpus"


@cache
def cases() -> list[dict[str, Any]]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["file"] = path.name
        out.append(doc)
    return out


def snapshot_of(case: dict[str, Any]) -> tuple[Snapshot, Key]:
    k = case["key"]
    arn = k["arn"]
    _, partition, _, region, key_account, resource = arn.split(":", 5)
    key = Key(
        arn=arn,
        key_id=resource.split("/", 1)[1],
        account=key_account,
        region=region,
        key_manager=k.get("key_manager", "CUSTOMER"),
        key_state="Enabled",
        tags=k.get("tags") or {},
        policy=json.dumps(k["policy"]) if k.get("policy") is not None else None,
        grants=[
            Grant(
                grant_id=f"grant-{i:04d}-{'0' * 56}",
                grantee_principal=g["grantee"],
                operations=list(g["operations"]),
                constraints=g.get("constraints"),
            )
            for i, g in enumerate(k.get("grants") or [])
        ],
    )
    accounts = []
    for acct_id, acct in (case.get("accounts") or {}).items():
        acct_id = str(acct_id)
        policies = [
            ManagedPolicy(
                arn=parn,
                name=parn.rsplit("/", 1)[-1],
                document=json.dumps(doc),
                aws_managed=":iam::aws:policy/" in parn,
            )
            for parn, doc in (acct.get("policies") or {}).items()
        ]
        groups = [
            IamGroup(
                arn=f"arn:{partition}:iam::{acct_id}:group/{g['name']}",
                name=g["name"],
                inline_policies={f"inline{i}": json.dumps(d) for i, d in enumerate(g.get("inline") or [])},
                managed_policies=list(g.get("managed") or []),
            )
            for g in acct.get("groups") or []
        ]
        principals = []
        for kind in ("user", "role"):
            for p in acct.get(f"{kind}s") or []:
                path = p.get("path") or "/"
                principals.append(
                    IamPrincipal(
                        arn=f"arn:{partition}:iam::{acct_id}:{kind}{path}{p['name']}",
                        name=p["name"],
                        kind=kind,
                        path=path,
                        inline_policies={f"inline{i}": json.dumps(d) for i, d in enumerate(p.get("inline") or [])},
                        managed_policies=list(p.get("managed") or []),
                        groups=list(p.get("groups") or []),
                        permissions_boundary=p.get("boundary"),
                        trust_policy=json.dumps(p["trust"]) if p.get("trust") is not None else None,
                        tags=p.get("tags") or {},
                    )
                )
        regions = [RegionSnapshot(region=region, keys=[key])] if acct_id == key_account else []
        accounts.append(
            AccountSnapshot(
                account_id=acct_id,
                partition=partition,
                regions=regions,
                iam=IamInventory(principals=principals, groups=groups, policies=policies),
            )
        )
    if key_account not in {a.account_id for a in accounts}:  # the key's account, its IAM not scanned
        accounts.append(AccountSnapshot(account_id=key_account, regions=[RegionSnapshot(region=region, keys=[key])]))
    return Snapshot(
        kmsguard_version="test",
        collected_at=datetime.now(UTC),
        source="test",
        accounts=accounts,
        organization=organization_of(case.get("organization")),
    ), key


def organization_of(org: dict[str, Any] | None) -> Organization | None:
    if not org:
        return None
    units = [OrgUnit(id=org["root"])] + [OrgUnit(id=ou, parent=parent) for ou, parent in (org.get("ous") or {}).items()]
    policies = [
        OrgPolicy(
            id=f"p-{kind.lower()}{i}",
            name=p["name"],
            kind=kind,
            document=json.dumps(p["document"]),
            targets=[str(t) for t in p["targets"]],
        )
        for kind in ("SCP", "RCP")
        for i, p in enumerate(org.get(f"{kind.lower()}s") or [])
    ]
    return Organization(
        id=org["id"],
        management_account=str(org.get("management_account")) if org.get("management_account") else None,
        units=units,
        account_parents={str(a): p for a, p in (org.get("accounts") or {}).items()},
        scps_enabled=bool(org.get("scps")),
        rcps_enabled=bool(org.get("rcps")),
        policies=policies,
    )


def expectations() -> list[tuple[str, int]]:
    return [(c["file"], i) for c in cases() for i in range(len(c["expect"]))]


@cache
def judged(file: str) -> dict[str, Any]:
    case = next(c for c in cases() if c["file"] == file)
    snapshot, key = snapshot_of(case)
    actions = sorted({e["action"] for e in case["expect"]})
    return AccessEvaluator(build_estate(snapshot)).who_can(key, actions).to_dict()


def test_corpus_shape() -> None:
    assert len(cases()) >= 40
    names = [c["name"] for c in cases()]
    assert len(set(names)) == len(names)
    for c in cases():
        assert c["refs"], c["file"]
        for e in c["expect"]:
            assert e["decision"] in ("allowed", "conditional", "denied"), (c["file"], e)
            assert e["because"].strip(), (c["file"], e)


@pytest.mark.parametrize(("file", "index"), expectations(), ids=lambda v: str(v))
def test_corpus_expectation(file: str, index: int) -> None:
    case = next(c for c in cases() if c["file"] == file)
    e = case["expect"][index]
    doc = judged(file)
    [result] = [r for r in doc["results"] if r["action"].lower() == e["action"].lower()]
    found = {p["principal"]: p for p in result["principals"]}
    got = found.get(e["principal"])
    decision = got["decision"] if got else "denied"
    assert decision == e["decision"], f"{e['because']}\n{json.dumps(got, indent=1)}"
    if got and e.get("via"):
        assert e["via"] in {p["via"] for p in got["paths"]}, f"{e['because']}\n{json.dumps(got, indent=1)}"
    if got and e.get("chain"):
        assert next(p["chain"] for p in got["paths"] if p["via"] == "assume_role") == e["chain"]
