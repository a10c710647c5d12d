"""A corpus of infrastructure-as-code templates for the `kmsguard iac` benchmark (issue 15, "Tests and figures").

Writes N templates into a directory: CloudFormation YAML (short-form tags mostly, long form in some),
CloudFormation JSON (a few as ``*.template``), CDK output (``cdk.out/`` with ``manifest.json``, ``tree.json``,
``*.assets.json`` and one or two ``*.template.json`` stacks), Terraform modules (a directory of ``*.tf`` files,
sometimes a ``terraform.tfvars``) and a few ``terraform show -json`` plans. Each template declares 1-6 KMS keys
and 0-8 data stores (S3, SQS, SNS, DynamoDB, CloudWatch Logs, Secrets Manager, EBS, RDS), some IAM policies,
Terraform grants, and now and then a trail with its metric filter and alarm.

Values are written the way people write them: ``Ref``/``Sub``/``GetAtt``/``Join``/``ImportValue``, ``Fn::If``
on ``Conditions`` over parameters (with and without defaults); Terraform variables (with and without
defaults), locals, ``jsonencode``, ``aws_iam_policy_document``, heredoc JSON, ``aws_kms_key_policy``, ternaries
on variables, references between resources.

Misconfigurations of every class the checks judge are injected at realistic rates, and the generator records
the truth -- which classes each declared object has, by AWS semantics rather than by any tool's answer -- in
``<DIR>.truth.json`` beside the directory (outside it, so no scanner reads it). ``bench/bench_iac.py`` scores
kmsguard and Checkov against it. Classes a tool must *not* report are traps: a ``Principal: "*"`` bounded by
``kms:CallerAccount`` or ``aws:PrincipalOrgID`` is not public; an HMAC or asymmetric key has no rotation to turn
on; a store under a customer managed key is encrypted as it should be.

Deterministic: unit ``i`` is drawn from ``Random(f"{seed}:{i}")``, so the first 100 units of a 1,000-unit
corpus are the 100 units of a 100-unit one.

Usage:
    .venv/bin/python bench/iac_corpus.py DIR [--templates 1000] [--seed 2026]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kmsguard.monitoring_setup.setup import DECRYPT_FAILURES_PATTERN, POLICY_CHANGES_PATTERN
from kmsguard.policy.generate import ADMIN_ACTIONS
from kmsguard.policy.tighten import DENY_INSECURE_TRANSPORT

ACCOUNT = "123456789012"
EXTERNAL_ACCOUNT = "210987654321"
ORG_ID = "o-a1b2c3d4e5"  # pass as --trusted-org-id: statements bounded by it are neither public nor external
REGION = "us-east-1"
ENVIRONMENTS = ("production", "staging", "development")
CLASSIFICATIONS = (("CUI", 3), ("Confidential", 3), ("Internal", 3), ("Public", 1))
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
SERVICES = ("s3", "sqs", "sns", "dynamodb", "logs", "secretsmanager", "ebs", "rds")

# What each encryption choice means for each service, when no key is named (the mapping rules of issue 15).
DEFAULT_CLASS = {
    "s3": "aws_owned",  # SSE-S3 is applied by default since 2023
    "sqs": "aws_owned",  # SQS managed SSE is on by default
    "sns": "unencrypted",
    "dynamodb": "aws_owned",
    "logs": "aws_owned",
    "secretsmanager": "aws_managed",  # alias/aws/secretsmanager
    "ebs": "unencrypted",
    "rds": "unencrypted",
}
# A store whose customer managed key sits under a condition: what the other branch leaves. The same as the
# default but for DynamoDB, whose SSESpecification stays enabled (the AWS managed key) without the key.
FALLBACK_CLASS = DEFAULT_CLASS | {"dynamodb": "aws_managed"}
ENCRYPTIONS = {  # per service: the choices a template can make, with weights
    "s3": [("cmk", 60), ("aws_managed", 12), ("aws_owned", 14), ("cmk_if", 6), ("cmk_import", 4), ("cross", 4)],
    "sqs": [("cmk", 60), ("aws_managed", 10), ("aws_owned", 14), ("unencrypted", 6), ("cmk_if", 6), ("cmk_import", 4)],
    "sns": [("cmk", 62), ("aws_managed", 14), ("unencrypted", 14), ("cmk_if", 6), ("cmk_import", 4)],
    "dynamodb": [("cmk", 60), ("aws_managed", 14), ("aws_owned", 16), ("cmk_if", 6), ("cross", 4)],
    "logs": [("cmk", 70), ("aws_owned", 24), ("cmk_if", 6)],
    "secretsmanager": [("cmk", 66), ("aws_managed", 24), ("cmk_if", 6), ("cmk_import", 4)],
    "ebs": [("cmk", 66), ("aws_managed", 12), ("unencrypted", 16), ("cmk_if", 6)],
    "rds": [("cmk", 66), ("aws_managed", 14), ("unencrypted", 14), ("cmk_if", 6)],
}
KINDS = (("cfn_yaml", 38), ("cfn_json", 18), ("cdk", 12), ("terraform", 29), ("plan", 3))

# Per key, each injected policy problem (independently), and its rate.
STAR_EXTRAS = ("public", "public_cond", "star_bounded", "unknown_principal")  # statements naming "*" (or maybe)
POLICY_EXTRAS = (
    ("public", 0.03),  # Principal "*", no condition
    ("public_cond", 0.03),  # Principal "*" with a condition anyone can meet (aws:SecureTransport, encryption context)
    ("star_bounded", 0.12),  # Principal "*" bounded by kms:CallerAccount (+ kms:ViaService) or aws:PrincipalOrgID
    ("unknown_principal", 0.03),  # a principal from a parameter/variable without a default
    ("external", 0.06),
    ("external_if", 0.04),  # an external principal in one branch of a condition
    ("wildcard", 0.07),  # kms:* to a role
    ("admin_can_use", 0.07),
)


# --- intrinsic functions (CloudFormation) and expressions (Terraform) ------------------------------------------


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class GetAtt:
    resource: str
    attr: str


@dataclass(frozen=True)
class Sub:
    text: str


@dataclass(frozen=True)
class Join:
    sep: str
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class If:
    cond: str
    then: Any
    other: Any


@dataclass(frozen=True)
class Equals:
    left: Any
    right: Any


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class ImportValue:
    name: str


@dataclass(frozen=True)
class Expr:
    """A Terraform expression written as is (``aws_kms_key.main.arn``, ``var.x ? a : b``)."""

    text: str


@dataclass(frozen=True)
class Interp:
    """A Terraform string with ``${...}`` interpolations, written in quotes as is."""

    text: str


NO_VALUE = Ref("AWS::NoValue")


def long_form(v: Any) -> Any:
    """CloudFormation's JSON (long) form of a value holding intrinsics."""
    if isinstance(v, dict):
        return {k: long_form(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [long_form(x) for x in v]
    if isinstance(v, Ref):
        return {"Ref": v.name}
    if isinstance(v, GetAtt):
        return {"Fn::GetAtt": [v.resource, v.attr]}
    if isinstance(v, Sub):
        return {"Fn::Sub": v.text}
    if isinstance(v, Join):
        return {"Fn::Join": [v.sep, long_form(v.parts)]}
    if isinstance(v, If):
        return {"Fn::If": [v.cond, long_form(v.then), long_form(v.other)]}
    if isinstance(v, Equals):
        return {"Fn::Equals": [long_form(v.left), long_form(v.right)]}
    if isinstance(v, Or):
        return {"Fn::Or": long_form(v.parts)}
    if isinstance(v, ImportValue):
        return {"Fn::ImportValue": v.name}
    return v


class _ShortDumper(yaml.SafeDumper):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, !If ...)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_ShortDumper.add_representer(Ref, lambda d, v: d.represent_scalar("!Ref", v.name))
_ShortDumper.add_representer(GetAtt, lambda d, v: d.represent_scalar("!GetAtt", f"{v.resource}.{v.attr}"))
_ShortDumper.add_representer(Sub, lambda d, v: d.represent_scalar("!Sub", v.text))
_ShortDumper.add_representer(ImportValue, lambda d, v: d.represent_scalar("!ImportValue", v.name))
_ShortDumper.add_representer(Join, lambda d, v: d.represent_sequence("!Join", [v.sep, list(v.parts)]))
_ShortDumper.add_representer(If, lambda d, v: d.represent_sequence("!If", [v.cond, v.then, v.other]))
_ShortDumper.add_representer(Equals, lambda d, v: d.represent_sequence("!Equals", [v.left, v.right]))
_ShortDumper.add_representer(Or, lambda d, v: d.represent_sequence("!Or", list(v.parts)))


def dump_yaml(doc: dict[str, Any], short: bool) -> str:
    data = doc if short else long_form(doc)
    return yaml.dump(data, Dumper=_ShortDumper, sort_keys=False, default_flow_style=False, width=120)


# --- the plan of one unit ----------------------------------------------------------------------------------------


@dataclass
class KeyPlan:
    name: str  # a CloudFormation logical id, or a Terraform resource name
    env: str
    spec: str = "SYMMETRIC_DEFAULT"
    usage: str = "ENCRYPT_DECRYPT"
    multi_region: bool = False
    enabled: bool = True
    rotation: str = "on"  # on | off | absent | cond (on only when the environment is production) | unknown
    period: int | None = None
    alias: bool = True
    tags: str = "full"  # full | partial | none
    policy: str = "guide"  # guide | iam_only | absent
    extras: list[str] = field(default_factory=list)
    deny_tls: bool = False
    grants: list[str] = field(default_factory=list)  # Terraform: "scoped" | "external" | "unconstrained"


@dataclass
class ResPlan:
    service: str
    name: str
    enc: str  # cmk | aws_managed | aws_owned | unencrypted | cmk_if | cmk_import | cross
    key: int  # which of the unit's keys (cmk, cmk_if)
    ref: str  # how the key is named: id | arn | alias | alias_arn
    env: str
    classification: str


@dataclass
class IamPlan:
    name: str
    kind: str  # managed | inline
    decrypt_all: bool
    key: int


@dataclass
class UnitPlan:
    index: int
    kind: str
    env: str
    keys: list[KeyPlan]
    resources: list[ResPlan]
    iam: list[IamPlan]
    trail: dict[str, bool] | None  # {"validation": ..., "kms": ...}
    use_cmk_cond: bool  # resources' keys under a UseCmk condition
    owner_unknown: bool  # the Owner tag comes from a parameter/variable without a default
    admin_name_unknown: bool  # admin role names come from a parameter/variable without a default


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...] | list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def plan_unit(seed: int, index: int, kind: str | None = None) -> UnitPlan:
    rng = random.Random(f"{seed}:{index}")
    kind = kind or _weighted(rng, KINDS)
    env = rng.choice(ENVIRONMENTS)
    keys = [_plan_key(rng, i, env, kind) for i in range(rng.choices(range(1, 7), [22, 26, 20, 14, 10, 8])[0])]
    resources = [
        _plan_resource(rng, i, env, len(keys))
        for i in range(rng.choices(range(9), [8, 12, 14, 14, 14, 12, 10, 8, 8])[0])
    ]
    if resources and rng.random() < 0.05:  # one key serving two environments
        other = rng.choice([e for e in ENVIRONMENTS if e != env])
        shared = [r for r in resources if r.enc == "cmk"][:2]
        if len(shared) == 2:
            shared[1].key = shared[0].key
            shared[1].env = other
    iam = [
        IamPlan(f"app_policy_{i}", rng.choice(["managed", "inline"]), rng.random() < 0.3, rng.randrange(len(keys)))
        for i in range(rng.choices(range(3), [45, 40, 15])[0])
    ]
    trail = {"validation": rng.random() < 0.6, "kms": rng.random() < 0.6} if rng.random() < 0.06 else None
    return UnitPlan(
        index=index,
        kind=kind,
        env=env,
        keys=keys,
        resources=resources,
        iam=iam,
        trail=trail,
        use_cmk_cond=any(r.enc == "cmk_if" for r in resources),
        owner_unknown=rng.random() < 0.15,
        admin_name_unknown=rng.random() < 0.15,
    )


def _plan_key(rng: random.Random, i: int, env: str, kind: str) -> KeyPlan:
    k = KeyPlan(name=f"Key{i}" if kind != "terraform" and kind != "plan" else f"key_{i}", env=env)
    shape = rng.random()
    if shape < 0.05:
        k.spec, k.usage = "RSA_2048", "SIGN_VERIFY"
    elif shape < 0.08:
        k.spec, k.usage = "HMAC_256", "GENERATE_VERIFY_MAC"
    k.multi_region = rng.random() < 0.05
    k.enabled = rng.random() >= 0.04
    if k.spec == "SYMMETRIC_DEFAULT":
        k.rotation = _weighted(rng, [("on", 72), ("off", 8), ("absent", 8), ("cond", 8), ("unknown", 4)])
        if kind in ("terraform", "plan") and k.rotation == "unknown":
            k.rotation = "off"
        if kind == "plan" and k.rotation == "cond":
            k.rotation = "on"  # a plan holds values, not conditions
        if k.rotation in ("on", "cond") and rng.random() < 0.5:
            k.period = rng.choices([90, 180, 365, 730], [2, 3, 4, 2])[0]
    else:
        k.rotation = "absent"
    k.alias = rng.random() >= 0.15
    k.tags = _weighted(rng, [("full", 72), ("partial", 18), ("none", 10)])
    k.policy = _weighted(rng, [("guide", 70), ("iam_only", 18), ("absent", 12)])
    if k.policy != "absent":
        k.extras = [name for name, rate in POLICY_EXTRAS if rng.random() < rate]
        if kind == "plan":
            k.extras = [e for e in k.extras if e not in ("external_if", "unknown_principal")]
    k.deny_tls = k.policy == "guide" and rng.random() < 0.5
    if kind == "terraform" and rng.random() < 0.15:
        k.grants = [_weighted(rng, [("scoped", 60), ("external", 20), ("unconstrained", 20)])]
    return k


def _plan_resource(rng: random.Random, i: int, env: str, n_keys: int) -> ResPlan:
    service = SERVICES[rng.randrange(len(SERVICES))]
    enc = _weighted(rng, ENCRYPTIONS[service])
    ref = _weighted(rng, [("arn", 45), ("id", 25), ("alias", 20), ("alias_arn", 10)])
    if service in ("ebs", "rds", "dynamodb", "logs"):
        ref = "arn"  # these take (or are usually written with) the key's ARN
    classification = _weighted(rng, CLASSIFICATIONS)
    return ResPlan(service, f"{service}_{i}", enc, rng.randrange(n_keys), ref, env, classification)


# --- the truth --------------------------------------------------------------------------------------------------


def key_classes(k: KeyPlan) -> list[str]:
    """The classes a key has by AWS semantics (in at least one world)."""
    out: set[str] = set()
    for extra in k.extras:
        out.add({"external_if": "external"}.get(extra, extra))
    # Named administrators (the guide's, or a role given kms:*) also use the key when a statement lets
    # everyone -- or everyone in the account or organisation -- use it: they are among "everyone".
    admins = k.policy == "guide" or "admin_can_use" in k.extras or "wildcard" in k.extras
    if "wildcard" in k.extras or (admins and any(e in STAR_EXTRAS for e in k.extras)):
        out.add("admin_can_use")
    if not k.deny_tls:
        out.add("no_tls_deny")
    if k.policy == "absent":
        out |= {"policy_absent", "iam_only"}
    elif k.policy == "iam_only" and set(k.extras) <= {"external_if"}:
        out.add("iam_only")  # in the world without the partner, only the account root is named
    out |= _rotation_classes(k)
    if not k.alias:
        out.add("no_alias")
    if k.tags != "full":
        out.add("missing_tags")
    if not k.enabled:
        out.add("disabled")
    if any(g in ("external", "unconstrained") for g in k.grants):
        out.add("grant_broad")
    return sorted(out)


def _rotation_classes(k: KeyPlan) -> set[str]:
    # A disabled key cannot have rotation turned on: rotation is neither right nor wrong for it.
    if not k.enabled:
        return set()
    if k.spec != "SYMMETRIC_DEFAULT":
        return {"no_rotation_support"}
    out = {"rotation_off"} if k.rotation in ("off", "absent", "cond", "unknown") else set()
    if k.rotation in ("on", "cond") and (k.period or 365) > 365:
        out.add("rotation_period_long")
    return out


def resource_classes(r: ResPlan, keys: list[KeyPlan]) -> list[str]:
    if r.enc == "cmk_if":
        out = {FALLBACK_CLASS[r.service]}  # the world without the customer managed key
        return sorted(out | ({"under_disabled_key"} if not keys[r.key].enabled else set()))
    if r.enc == "cmk":
        return ["cmk", "under_disabled_key"] if not keys[r.key].enabled else ["cmk"]
    if r.enc == "cross":
        return ["cmk"]  # another account's key: AWS managed keys cannot be used across accounts
    if r.enc == "cmk_import":
        return ["cmk_unknown"]
    return [r.enc]


def shared_keys(plan: UnitPlan) -> set[int]:
    envs: dict[int, set[str]] = {}
    for r in plan.resources:
        if r.enc in ("cmk", "cmk_if"):
            envs.setdefault(r.key, set()).add(r.env)
    return {k for k, e in envs.items() if len(e) > 1}


# --- key policies, written in any dialect ---------------------------------------------------------------------


class Dialect:
    """How a template writes the values a key policy needs."""

    def root(self) -> Any:
        raise NotImplementedError

    def role(self, name: str) -> Any:
        raise NotImplementedError

    def admin_role(self, name: str) -> Any:
        return self.role(name)

    def account(self) -> Any:
        raise NotImplementedError

    def external_root(self) -> Any:
        return f"arn:aws:iam::{EXTERNAL_ACCOUNT}:root"

    def unknown_principal(self) -> Any:
        raise NotImplementedError

    def external_if(self, statement: dict[str, Any]) -> Any:
        raise NotImplementedError

    def region(self) -> Any:
        return REGION


def key_statements(k: KeyPlan, d: Dialect, rng: random.Random) -> list[Any]:
    root = {
        "Sid": "EnableIAMUserPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": d.root()},
        "Action": "kms:*",
        "Resource": "*",
    }
    out: list[Any] = [root]
    if k.policy == "guide":
        admin_actions = list(ADMIN_ACTIONS) + (["kms:Decrypt", "kms:Encrypt"] if "admin_can_use" in k.extras else [])
        out.append(
            {
                "Sid": "KeyAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": [d.admin_role("KMSAdministrator"), d.admin_role("SecurityTeamLead")]},
                "Action": admin_actions,
                "Resource": "*",
            }
        )
        out.append(
            {
                "Sid": "KeyUsageForEncryption",
                "Effect": "Allow",
                "Principal": {"AWS": [d.role(f"{k.env}-app"), d.role(f"{k.env}-batch")]},
                "Action": USE_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:Environment": k.env}},
            }
        )
    elif "admin_can_use" in k.extras:
        out.append(
            {
                "Sid": "AdminAndUse",
                "Effect": "Allow",
                "Principal": {"AWS": d.admin_role("KMSAdministrator")},
                "Action": [*ADMIN_ACTIONS, "kms:Decrypt", "kms:Encrypt"],
                "Resource": "*",
            }
        )
    out += [s for extra in k.extras for s in _extra_statements(extra, k, d, rng)]
    if k.deny_tls:
        out.append(dict(DENY_INSECURE_TRANSPORT))
    return out


def _extra_statements(extra: str, k: KeyPlan, d: Dialect, rng: random.Random) -> list[Any]:
    decrypt = ["kms:Decrypt", "kms:DescribeKey"]
    if extra == "public":
        principal: Any = "*" if rng.random() < 0.5 else {"AWS": "*"}
        return [{"Sid": "AllowEveryone", "Effect": "Allow", "Principal": principal, "Action": decrypt, "Resource": "*"}]
    if extra == "public_cond":
        # Conditions on what the caller itself chooses bound nothing: anyone can send TLS and any context.
        cond = (
            {"Bool": {"aws:SecureTransport": "true"}}
            if rng.random() < 0.5
            else {"StringEquals": {"kms:EncryptionContext:Application": "billing"}}
        )
        return [
            {
                "Sid": "AllowOverTls",
                "Effect": "Allow",
                "Principal": "*",
                "Action": decrypt,
                "Resource": "*",
                "Condition": cond,
            }
        ]
    if extra == "star_bounded":
        if rng.random() < 0.6:  # the shape of AWS's own service keys
            cond = {"StringEquals": {"kms:CallerAccount": d.account(), "kms:ViaService": service_endpoint(d, "ec2")}}
            actions = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
            return [
                {
                    "Sid": "AllowViaEC2ForAccount",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": actions,
                    "Resource": "*",
                    "Condition": cond,
                }
            ]
        return [
            {
                "Sid": "AllowOrganization",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": decrypt,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
            }
        ]
    if extra == "unknown_principal":
        return [
            {
                "Sid": "AllowConsumer",
                "Effect": "Allow",
                "Principal": {"AWS": d.unknown_principal()},
                "Action": decrypt,
                "Resource": "*",
            }
        ]
    if extra == "external":
        return [
            {
                "Sid": "AllowPartner",
                "Effect": "Allow",
                "Principal": {"AWS": d.external_root()},
                "Action": decrypt,
                "Resource": "*",
            }
        ]
    if extra == "external_if":
        return [
            d.external_if(
                {
                    "Sid": "AllowPartnerWhenShared",
                    "Effect": "Allow",
                    "Principal": {"AWS": d.external_root()},
                    "Action": decrypt,
                    "Resource": "*",
                }
            )
        ]
    if extra == "wildcard":
        return [
            {
                "Sid": "AppFullAccess",
                "Effect": "Allow",
                "Principal": {"AWS": d.role(f"{k.env}-ops")},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    return []  # admin_can_use is written into the administrators' statement


def service_endpoint(d: Dialect, service: str) -> Any:
    """``<service>.<region>.amazonaws.com`` in the dialect's way of naming the Region."""
    region = d.region()
    if isinstance(region, str):
        return f"{service}.{region}.amazonaws.com"
    if isinstance(region, Expr):
        return Interp(f"{service}.${{{region.text}}}.amazonaws.com")
    return Sub(f"{service}.${{AWS::Region}}.amazonaws.com")


# --- CloudFormation -------------------------------------------------------------------------------------------


class CfnDialect(Dialect):
    def __init__(self, plan: UnitPlan, rng: random.Random, cdk: bool) -> None:
        self.plan, self.rng, self.cdk = plan, rng, cdk
        self.params: dict[str, dict[str, Any]] = {}
        self.conditions: dict[str, Any] = {}
        if any(k.rotation == "cond" for k in plan.keys):
            self.is_prod()  # before any tag is written: tags then name the Environment parameter throughout

    def root(self) -> Any:
        if self.cdk:
            return Join("", ("arn:", Ref("AWS::Partition"), ":iam::", Ref("AWS::AccountId"), ":root"))
        return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")

    def role(self, name: str) -> Any:
        return Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{name}")

    def admin_role(self, name: str) -> Any:
        if not self.plan.admin_name_unknown:
            return self.role(name)
        param = f"{name}RoleName"
        self.params[param] = {"Type": "String", "Description": f"Name of the {name} role"}
        return Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{param}}}")

    def account(self) -> Any:
        return Ref("AWS::AccountId")

    def external_root(self) -> Any:
        self.params["PartnerAccountId"] = {"Type": "String", "Default": EXTERNAL_ACCOUNT, "AllowedPattern": "[0-9]{12}"}
        return Sub("arn:${AWS::Partition}:iam::${PartnerAccountId}:root")

    def unknown_principal(self) -> Any:
        self.params["ConsumerPrincipalArn"] = {"Type": "String", "Description": "Who may decrypt the exports"}
        return Ref("ConsumerPrincipalArn")

    def external_if(self, statement: dict[str, Any]) -> Any:
        self.params["SharePartner"] = {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"]}
        self.conditions["ShareWithPartner"] = Equals(Ref("SharePartner"), "true")
        return If("ShareWithPartner", statement, NO_VALUE)

    def region(self) -> Any:
        return Ref("AWS::Region")

    def is_prod(self) -> str:
        self.params["Environment"] = {"Type": "String", "Default": self.plan.env, "AllowedValues": list(ENVIRONMENTS)}
        self.conditions["IsProduction"] = Equals(Ref("Environment"), "production")
        return "IsProduction"

    def use_cmk(self) -> str:
        self.params["UseCustomerKey"] = {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"]}
        self.conditions["UseCmk"] = Equals(Ref("UseCustomerKey"), "true")
        return "UseCmk"


def _cdk_id(rng: random.Random, base: str) -> str:
    return f"{base}{rng.getrandbits(32):08X}"


def cfn_template(plan: UnitPlan, rng: random.Random, cdk: bool) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The template and its truth (logical id -> {kind, classes})."""
    d = CfnDialect(plan, rng, cdk)
    ids = {i: (_cdk_id(rng, k.name) if cdk else k.name) for i, k in enumerate(plan.keys)}
    resources: dict[str, Any] = {}
    truth: dict[str, dict[str, Any]] = {}
    shared = shared_keys(plan)
    for i, k in enumerate(plan.keys):
        resources[ids[i]] = _cfn_key(k, d, rng, cdk)
        classes = key_classes(k) + (["shared_envs"] if i in shared else [])
        truth[ids[i]] = {"kind": "key", "classes": sorted(classes)}
        if k.alias:
            resources[f"{ids[i]}Alias"] = {
                "Type": "AWS::KMS::Alias",
                "Properties": {
                    "AliasName": f"alias/{plan.env}-u{plan.index}-{k.name.lower()}",
                    "TargetKeyId": Ref(ids[i]),
                },
            }
    for r in plan.resources:
        rid = _cdk_id(rng, _camel(r.name)) if cdk else _camel(r.name)
        resources[rid] = _cfn_resource(r, plan, d, ids)
        truth[rid] = {"kind": "resource", "classes": resource_classes(r, plan.keys)}
    for p in plan.iam:
        pid, body = _cfn_iam(p, plan, ids)
        resources[pid] = body
        truth[pid] = {"kind": "iam", "classes": ["iam_decrypt_all" if p.decrypt_all else "iam_scoped"]}
    if plan.trail is not None:
        _cfn_trail(plan, resources, truth, ids)
    doc: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Data platform stack {plan.index} ({plan.env})",
    }
    if cdk:
        d.params["BootstrapVersion"] = {
            "Type": "AWS::SSM::Parameter::Value<String>",
            "Default": "/cdk-bootstrap/hnb659fds/version",
            "Description": "Version of the CDK Bootstrap resources in this environment",
        }
        d.conditions["CDKMetadataAvailable"] = Or(
            tuple(Equals(Ref("AWS::Region"), r) for r in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1"))
        )
        resources["CDKMetadata"] = {
            "Type": "AWS::CDK::Metadata",
            "Properties": {"Analytics": "v2:deflate64:H4sI"},
            "Metadata": {"aws:cdk:path": "AppStack/CDKMetadata/Default"},
            "Condition": "CDKMetadataAvailable",
        }
        for rid, body in resources.items():
            body.setdefault("Metadata", {"aws:cdk:path": f"AppStack/{rid}/Resource"})
    if d.params:
        doc["Parameters"] = d.params
    if d.conditions:
        doc["Conditions"] = d.conditions
    doc["Resources"] = resources
    doc["Outputs"] = {
        f"{ids[0]}Arn": {"Value": GetAtt(ids[0], "Arn"), "Export": {"Name": Sub(f"${{AWS::StackName}}-{ids[0]}-arn")}}
    }
    if cdk:
        doc["Rules"] = {
            "CheckBootstrapVersion": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]
                        },
                        "AssertDescription": "CDK bootstrap stack version 6 required.",
                    }
                ]
            }
        }
    return doc, truth


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in re.split(r"[_\-]", name))


def _cfn_tags(plan: UnitPlan, env: str, level: str, d: CfnDialect, classification: str = "CUI") -> list[Any]:
    env_value: Any = Ref("Environment") if "Environment" in d.params and env == plan.env else env
    tags: list[Any] = [
        {"Key": "Environment", "Value": env_value},
        {"Key": "DataClassification", "Value": classification},
    ]
    if plan.owner_unknown:
        d.params["OwnerEmail"] = {"Type": "String", "Description": "Team mailbox that owns the data"}
        tags.append({"Key": "Owner", "Value": Ref("OwnerEmail")})
    else:
        tags.append({"Key": "Owner", "Value": f"data-team-{plan.index % 7}@example.com"})
    return {"full": tags, "partial": tags[:2], "none": []}[level]


def _cfn_key(k: KeyPlan, d: CfnDialect, rng: random.Random, cdk: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"Description": f"{k.env} data key {k.name}"}
    if k.spec != "SYMMETRIC_DEFAULT" or rng.random() < 0.5:
        props["KeySpec"], props["KeyUsage"] = k.spec, k.usage
    if k.multi_region:
        props["MultiRegion"] = True
    if not k.enabled:
        props["Enabled"] = False
    if k.rotation == "on":
        props["EnableKeyRotation"] = True
    elif k.rotation == "off":
        props["EnableKeyRotation"] = False
    elif k.rotation == "cond":
        props["EnableKeyRotation"] = If(d.is_prod(), True, False)
    elif k.rotation == "unknown":
        d.params["RotateKeys"] = {"Type": "String", "AllowedValues": ["true", "false"]}
        props["EnableKeyRotation"] = Ref("RotateKeys")
    if k.period is not None:
        props["RotationPeriodInDays"] = k.period
    if k.policy != "absent":
        props["KeyPolicy"] = {
            "Version": "2012-10-17",
            "Id": f"key-policy-{k.name.lower()}",
            "Statement": key_statements(k, d, rng),
        }
    tags = _cfn_tags(d.plan, k.env, k.tags, d)
    if tags:
        props["Tags"] = tags
    body: dict[str, Any] = {"Type": "AWS::KMS::Key", "Properties": props}
    if cdk or rng.random() < 0.4:
        body["UpdateReplacePolicy"] = body["DeletionPolicy"] = "Retain"
    return body


def _cfn_key_ref(r: ResPlan, plan: UnitPlan, ids: dict[int, str]) -> Any:
    kid = ids[r.key]
    key = plan.keys[r.key]
    if r.ref in ("alias", "alias_arn") and key.alias:
        alias = f"alias/{plan.env}-u{plan.index}-{key.name.lower()}"
        if r.ref == "alias":
            return Ref(f"{kid}Alias")
        return Sub(f"arn:${{AWS::Partition}}:kms:${{AWS::Region}}:${{AWS::AccountId}}:{alias}")
    return Ref(kid) if r.ref == "id" else GetAtt(kid, "Arn")


_AWS_ALIAS = {"s3": "alias/aws/s3", "sqs": "alias/aws/sqs", "sns": "alias/aws/sns", "ebs": "alias/aws/ebs"}


def _cfn_resource(r: ResPlan, plan: UnitPlan, d: CfnDialect, ids: dict[int, str]) -> dict[str, Any]:
    """One data store; its key named as ``r`` says (``None``: the service's default encryption)."""
    key: Any = None
    if r.enc == "cmk":
        key = _cfn_key_ref(r, plan, ids)
    elif r.enc == "cmk_if":
        key = If(d.use_cmk(), _cfn_key_ref(r, plan, ids), NO_VALUE)
    elif r.enc == "cmk_import":
        key = ImportValue("SharedDataKeyArn")
    elif r.enc == "cross":
        key = f"arn:aws:kms:{REGION}:{EXTERNAL_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    tags = _cfn_tags(plan, r.env, "full", d, r.classification)
    name = f"{plan.env}-u{plan.index}-{r.name.replace('_', '-')}"
    rtype, props = _CFN_BUILDERS[r.service](r, key, name)
    props["Tags"] = tags
    return {"Type": rtype, "Properties": props}


def _cfn_s3(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {"BucketName": name}
    if key is not None:
        # Under a condition the other branch is SSE-S3, as in the Terraform modules.
        algo: Any = If(key.cond, "aws:kms", "AES256") if isinstance(key, If) else "aws:kms"
        rule = {
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": algo, "KMSMasterKeyID": key},
            "BucketKeyEnabled": True,
        }
        props["BucketEncryption"] = {"ServerSideEncryptionConfiguration": [rule]}
    elif r.enc == "aws_managed":
        rule = {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
        props["BucketEncryption"] = {"ServerSideEncryptionConfiguration": [rule]}
    elif r.enc == "aws_owned" and len(name) % 2:
        rule = {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        props["BucketEncryption"] = {"ServerSideEncryptionConfiguration": [rule]}
    props["PublicAccessBlockConfiguration"] = {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    return "AWS::S3::Bucket", props


def _cfn_sqs(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {"QueueName": name, "MessageRetentionPeriod": 345600}
    if key is not None:
        props["KmsMasterKeyId"] = key
        props["KmsDataKeyReusePeriodSeconds"] = 300
    elif r.enc == "aws_managed":
        props["KmsMasterKeyId"] = "alias/aws/sqs"
    elif r.enc == "unencrypted":
        props["SqsManagedSseEnabled"] = False
    return "AWS::SQS::Queue", props


def _cfn_sns(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {"TopicName": name}
    if key is not None:
        props["KmsMasterKeyId"] = key
    elif r.enc == "aws_managed":
        props["KmsMasterKeyId"] = "alias/aws/sns"
    return "AWS::SNS::Topic", props


def _cfn_dynamodb(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    }
    if key is not None:
        props["SSESpecification"] = {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
    elif r.enc == "aws_managed":
        props["SSESpecification"] = {"SSEEnabled": True}
    return "AWS::DynamoDB::Table", props


def _cfn_logs(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {"LogGroupName": f"/app/{name}", "RetentionInDays": 365}
    if key is not None:
        props["KmsKeyId"] = key
    return "AWS::Logs::LogGroup", props


def _cfn_secret(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {
        "Name": f"{name}/db-credentials",
        "GenerateSecretString": {
            "SecretStringTemplate": '{"username": "app"}',
            "GenerateStringKey": "password",
            "PasswordLength": 32,
        },
    }
    if key is not None:
        props["KmsKeyId"] = key
    return "AWS::SecretsManager::Secret", props


def _cfn_ebs(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {"AvailabilityZone": Sub("${AWS::Region}a"), "Size": 100, "VolumeType": "gp3"}
    if key is not None:
        props["Encrypted"] = True if not isinstance(key, If) else If(key.cond, True, False)
        props["KmsKeyId"] = key
    elif r.enc == "aws_managed":
        props["Encrypted"], props["KmsKeyId"] = True, "alias/aws/ebs"
    elif len(name) % 2:
        props["Encrypted"] = False
    return "AWS::EC2::Volume", props


def _cfn_rds(r: ResPlan, key: Any, name: str) -> tuple[str, dict[str, Any]]:
    props: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "Engine": "postgres",
        "DBInstanceClass": "db.t4g.medium",
        "AllocatedStorage": "50",
        "MasterUsername": "app",
        "ManageMasterUserPassword": True,
    }
    if key is not None:
        props["StorageEncrypted"] = True if not isinstance(key, If) else If(key.cond, True, False)
        props["KmsKeyId"] = key
    elif r.enc == "aws_managed":
        props["StorageEncrypted"] = True
    return "AWS::RDS::DBInstance", props


_CFN_BUILDERS: dict[str, Callable[[ResPlan, Any, str], tuple[str, dict[str, Any]]]] = {
    "s3": _cfn_s3,
    "sqs": _cfn_sqs,
    "sns": _cfn_sns,
    "dynamodb": _cfn_dynamodb,
    "logs": _cfn_logs,
    "secretsmanager": _cfn_secret,
    "ebs": _cfn_ebs,
    "rds": _cfn_rds,
}


def _iam_document(p: IamPlan, key_arn: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseDataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*" if p.decrypt_all else key_arn,
            }
        ],
    }


def _cfn_iam(p: IamPlan, plan: UnitPlan, ids: dict[int, str]) -> tuple[str, dict[str, Any]]:
    doc = _iam_document(p, GetAtt(ids[p.key], "Arn"))
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    if p.kind == "managed":
        return _camel(p.name), {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"ManagedPolicyName": f"{plan.env}-u{plan.index}-{p.name}", "PolicyDocument": doc},
        }
    return _camel(p.name) + "Role", {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": f"{plan.env}-u{plan.index}-{p.name}",
            "AssumeRolePolicyDocument": trust,
            "Policies": [{"PolicyName": "use-data-key", "PolicyDocument": doc}],
        },
    }


def _cfn_trail(
    plan: UnitPlan, resources: dict[str, Any], truth: dict[str, dict[str, Any]], ids: dict[int, str]
) -> None:
    assert plan.trail is not None
    bucket = f"audit-trail-u{plan.index}"
    resources["TrailBucket"] = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}
    truth["TrailBucket"] = {"kind": "resource", "classes": ["aws_owned"]}
    resources["TrailLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": f"/audit/trail-u{plan.index}",
            "RetentionInDays": 365,
            "KmsKeyId": GetAtt(ids[0], "Arn"),
        },
    }
    truth["TrailLogGroup"] = {
        "kind": "resource",
        "classes": resource_classes(ResPlan("logs", "trail", "cmk", 0, "arn", plan.env, "CUI"), plan.keys),
    }
    resources["TrailLogsRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "deliver",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                "Resource": GetAtt("TrailLogGroup", "Arn"),
                            }
                        ],
                    },
                }
            ],
        },
    }
    props: dict[str, Any] = {
        "TrailName": f"audit-u{plan.index}",
        "S3BucketName": Ref("TrailBucket"),
        "IsLogging": True,
        "IsMultiRegionTrail": True,
        "IncludeGlobalServiceEvents": True,
        "EnableLogFileValidation": plan.trail["validation"],
        "CloudWatchLogsLogGroupArn": GetAtt("TrailLogGroup", "Arn"),
        "CloudWatchLogsRoleArn": GetAtt("TrailLogsRole", "Arn"),
    }
    if plan.trail["kms"]:
        props["KMSKeyId"] = GetAtt(ids[0], "Arn")
    resources["AuditTrail"] = {"Type": "AWS::CloudTrail::Trail", "Properties": props}
    truth["AuditTrail"] = {"kind": "trail", "classes": _trail_classes(plan.trail)}
    resources["KeyPolicyChangesFilter"] = {
        "Type": "AWS::Logs::MetricFilter",
        "Properties": {
            "LogGroupName": Ref("TrailLogGroup"),
            "FilterPattern": POLICY_CHANGES_PATTERN,
            "MetricTransformations": [
                {"MetricName": "KMSPolicyChanges", "MetricNamespace": "Security/KMS", "MetricValue": "1"}
            ],
        },
    }
    resources["KeyPolicyChangesAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": f"KMS-Key-Policy-Changes-u{plan.index}",
            "Namespace": "Security/KMS",
            "MetricName": "KMSPolicyChanges",
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [Sub("arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:security-alerts")],
        },
    }


def _trail_classes(trail: dict[str, bool]) -> list[str]:
    return sorted(
        (["trail_no_validation"] if not trail["validation"] else []) + (["trail_no_kms"] if not trail["kms"] else [])
    )


# --- Terraform -------------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def hcl(v: Any, indent: int = 0) -> str:
    """A Python value (with Expr/Interp) as an HCL expression."""
    pad = "  " * indent
    if isinstance(v, Expr):
        return v.text
    if isinstance(v, Interp):
        return f'"{v.text}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v).replace("${", "$${")
    if isinstance(v, list | tuple):
        items = [hcl(x, indent + 1) for x in v]
        if sum(len(i) for i in items) < 80 and all("\n" not in i for i in items):
            return "[" + ", ".join(items) + "]"
        return "[\n" + "".join(f"{pad}  {i},\n" for i in items) + f"{pad}]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        width = max(len(_hcl_key(k)) for k in v)
        lines = [f"{pad}  {_hcl_key(k).ljust(width)} = {hcl(x, indent + 1)}\n" for k, x in v.items()]
        return "{\n" + "".join(lines) + f"{pad}}}"
    raise TypeError(f"no HCL for {type(v).__name__}")


def _hcl_key(k: str) -> str:
    return k if _IDENT.fullmatch(k) else json.dumps(k)


def block(head: str, body: dict[str, Any] | list[tuple[str, Any]], indent: int = 0) -> str:
    """``head { ... }``: attributes (name, value) and nested blocks (name, Block)."""
    pad = "  " * indent
    items = list(body.items()) if isinstance(body, dict) else body
    attrs = [(k, v) for k, v in items if not isinstance(v, Block)]
    width = max((len(k) for k, _ in attrs), default=0)
    out = f"{pad}{head} {{\n"
    for k, v in items:
        if isinstance(v, Block):
            out += block(k, v.body, indent + 1)
        else:
            out += f"{pad}  {k.ljust(width)} = {hcl(v, indent + 1)}\n"
    return out + f"{pad}}}\n"


@dataclass
class Block:
    body: dict[str, Any] | list[tuple[str, Any]]


class TfDialect(Dialect):
    def __init__(self, plan: UnitPlan, rng: random.Random) -> None:
        self.plan, self.rng = plan, rng
        self.variables: dict[str, dict[str, Any]] = {}

    def root(self) -> Any:
        if self.rng.random() < 0.5:
            return Interp("arn:aws:iam::${data.aws_caller_identity.current.account_id}:root")
        return Interp("arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root")

    def role(self, name: str) -> Any:
        return Interp(f"arn:aws:iam::${{local.account_id}}:role/{name}")

    def admin_role(self, name: str) -> Any:
        if not self.plan.admin_name_unknown:
            return self.role(name)
        self.variables["admin_role_name"] = {
            "type": Expr("string"),
            "description": "Name of the key administrator role",
        }
        return Interp("arn:aws:iam::${local.account_id}:role/${var.admin_role_name}")

    def account(self) -> Any:
        return Expr("local.account_id")

    def external_root(self) -> Any:
        self.variables["partner_account_id"] = {"type": Expr("string"), "default": EXTERNAL_ACCOUNT}
        return Interp("arn:aws:iam::${var.partner_account_id}:root")

    def unknown_principal(self) -> Any:
        self.variables["consumer_principal_arn"] = {"type": Expr("string"), "description": "Who may decrypt"}
        return Expr("var.consumer_principal_arn")

    def external_if(self, statement: dict[str, Any]) -> Any:
        self.variables["share_with_partner"] = {"type": Expr("bool"), "default": False}
        self.variables["partner_account_id"] = {"type": Expr("string"), "default": EXTERNAL_ACCOUNT}
        st = dict(statement)
        st["Principal"] = {
            "AWS": Expr(
                'var.share_with_partner ? "arn:aws:iam::${var.partner_account_id}:root" : '
                '"arn:aws:iam::${local.account_id}:root"'
            )
        }
        return st

    def region(self) -> Any:
        return Expr("data.aws_region.current.name")

    def environment(self) -> None:
        self.variables["environment"] = {"type": Expr("string"), "default": self.plan.env}

    def use_cmk(self) -> None:
        self.variables["use_cmk"] = {"type": Expr("bool"), "default": True}


def tf_module(plan: UnitPlan, rng: random.Random) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The module's files (name -> text) and its truth (address -> {kind, classes})."""
    d = TfDialect(plan, rng)
    d.environment()
    truth: dict[str, dict[str, Any]] = {}
    keys_tf, data_tf = "", ""
    shared = shared_keys(plan)
    for i, k in enumerate(plan.keys):
        text, data = _tf_key(k, d, rng)
        keys_tf += text
        data_tf += data
        truth[f"aws_kms_key.{k.name}"] = {
            "kind": "key",
            "classes": sorted(key_classes(k) + (["shared_envs"] if i in shared else [])),
        }
    storage = ""
    for r in plan.resources:
        text, address = _tf_resource(r, plan, d)
        storage += text
        truth[address] = {"kind": "resource", "classes": resource_classes(r, plan.keys)}
    iam = ""
    for p in plan.iam:
        text, address = _tf_iam(p, plan)
        iam += text
        truth[address] = {"kind": "iam", "classes": ["iam_decrypt_all" if p.decrypt_all else "iam_scoped"]}
    if plan.trail is not None:
        storage += _tf_trail(plan, truth)
    locals_tf = block(
        "locals",
        {
            "account_id": Expr("data.aws_caller_identity.current.account_id"),
            "name_prefix": Interp(f"${{var.environment}}-u{plan.index}"),
            "common_tags": {
                "Environment": Expr("var.environment"),
                "DataClassification": "CUI",
                "Owner": Expr("var.owner") if plan.owner_unknown else f"data-team-{plan.index % 7}@example.com",
                "ManagedBy": "terraform",
            },
        },
    )
    if plan.owner_unknown:
        d.variables["owner"] = {"type": Expr("string"), "description": "Team mailbox that owns the data"}
    variables = "".join(block(f'variable "{name}"', body) + "\n" for name, body in sorted(d.variables.items()))
    files = {
        "versions.tf": block(
            "terraform",
            [
                ("required_version", ">= 1.5"),
                ("required_providers", Block({"aws": {"source": "hashicorp/aws", "version": "~> 5.60"}})),
            ],
        )
        + "\n"
        + block('provider "aws"', {"region": REGION}),
        "variables.tf": variables,
        "main.tf": 'data "aws_caller_identity" "current" {}\ndata "aws_partition" "current" {}\n'
        'data "aws_region" "current" {}\n\n' + locals_tf + "\n" + data_tf + keys_tf,
        "storage.tf": storage,
        "outputs.tf": block(
            f'output "{plan.keys[0].name}_arn"', {"value": Expr(f"aws_kms_key.{plan.keys[0].name}.arn")}
        ),
    }
    if iam:
        files["iam.tf"] = iam
    if rng.random() < 0.3:
        files["terraform.tfvars"] = f'environment = "{plan.env}"\n'
    return files, truth


def _tf_tags(level: str, classification: str = "CUI", name: str | None = None, env: str | None = None) -> Any:
    if level == "none":
        return None
    if level == "partial":
        return {"Environment": Expr("var.environment"), "DataClassification": classification}
    extra: dict[str, Any] = {"DataClassification": classification}
    if env:
        extra["Environment"] = env
    if name:
        extra["Name"] = name
    return Expr(f"merge(local.common_tags, {_inline_map(extra)})")


def _inline_map(m: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{_hcl_key(k)} = {hcl(v)}" for k, v in m.items()) + " }"


def _tf_key(k: KeyPlan, d: TfDialect, rng: random.Random) -> tuple[str, str]:
    """(the key's resources, the data sources its policy needs)."""
    style = rng.choices(["jsonencode", "document", "heredoc", "key_policy"], [45, 30, 12, 13])[0]
    body: list[tuple[str, Any]] = [("description", f"{k.env} data key {k.name}")]
    if k.spec != "SYMMETRIC_DEFAULT" or rng.random() < 0.5:
        body += [("customer_master_key_spec", k.spec), ("key_usage", k.usage)]
    body.append(("deletion_window_in_days", 30))
    if k.multi_region:
        body.append(("multi_region", True))
    if not k.enabled:
        body.append(("is_enabled", False))
    if k.rotation == "on":
        body.append(("enable_key_rotation", True))
    elif k.rotation == "off":
        body.append(("enable_key_rotation", False))
    elif k.rotation == "cond":
        body.append(("enable_key_rotation", Expr('var.environment == "production" ? true : false')))
    if k.period is not None:
        body.append(("rotation_period_in_days", k.period))
    data, extra = "", ""
    if k.policy != "absent":
        statements = key_statements(k, d, rng)
        doc = {"Version": "2012-10-17", "Statement": statements}
        if style == "document":
            data = _tf_policy_document(f"{k.name}_policy", statements)
            policy: Any = Expr(f"data.aws_iam_policy_document.{k.name}_policy.json")
        else:
            policy = _heredoc(doc) if style == "heredoc" else None
            policy = policy or Expr("jsonencode(" + hcl(doc, 1) + ")")
        if style == "key_policy":
            extra = (
                block(
                    f'resource "aws_kms_key_policy" "{k.name}"',
                    {"key_id": Expr(f"aws_kms_key.{k.name}.id"), "policy": policy},
                )
                + "\n"
            )
        else:
            body.append(("policy", policy))
    tags = _tf_tags(k.tags)
    if tags is not None:
        body.append(("tags", tags))
    out = block(f'resource "aws_kms_key" "{k.name}"', body) + "\n" + extra
    if k.alias:
        alias = f"alias/{d.plan.env}-u{d.plan.index}-{k.name.replace('_', '-')}"
        out += (
            block(
                f'resource "aws_kms_alias" "{k.name}"',
                {"name": alias, "target_key_id": Expr(f"aws_kms_key.{k.name}.key_id")},
            )
            + "\n"
        )
    for g, grant in enumerate(k.grants):
        out += _tf_grant(k, g, grant)
    return out, data


def _heredoc(doc: dict[str, Any]) -> Expr | None:
    """The policy as heredoc JSON, as people paste it; None when a value is not literal (a variable)."""
    try:
        return Expr("<<-POLICY\n" + json.dumps(_literal(doc), indent=2) + "\n  POLICY")
    except ValueError:
        return None


def _literal(v: Any) -> Any:
    """A policy with every value spelled out (what a heredoc holds)."""
    if isinstance(v, dict):
        return {k: _literal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_literal(x) for x in v]
    if isinstance(v, Interp):
        text = v.text.replace("${data.aws_caller_identity.current.account_id}", ACCOUNT)
        text = text.replace("${local.account_id}", ACCOUNT).replace("${data.aws_partition.current.partition}", "aws")
        text = text.replace("${var.partner_account_id}", EXTERNAL_ACCOUNT)
        text = text.replace("${data.aws_region.current.name}", REGION)
        if "${" in text:
            raise ValueError(f"not literal: {v.text}")
        return text
    if isinstance(v, Expr):
        if v.text == "local.account_id":
            return ACCOUNT
        if v.text == "data.aws_region.current.name":
            return REGION
        raise ValueError(f"not literal: {v.text}")
    return v


def _tf_policy_document(name: str, statements: list[dict[str, Any]]) -> str:
    blocks: list[tuple[str, Any]] = []
    for st in statements:
        body: list[tuple[str, Any]] = [("sid", st["Sid"]), ("effect", st["Effect"])]
        actions = st["Action"]
        body.append(("actions", actions if isinstance(actions, list) else [actions]))
        body.append(("resources", ["*"]))
        principal = st["Principal"]
        if principal == "*":
            body.append(("principals", Block({"type": "*", "identifiers": ["*"]})))
        else:
            ids = principal["AWS"]
            body.append(("principals", Block({"type": "AWS", "identifiers": ids if isinstance(ids, list) else [ids]})))
        for test, pairs in (st.get("Condition") or {}).items():
            for variable, value in pairs.items():
                body.append(("condition", Block({"test": test, "variable": variable, "values": [value]})))
        blocks.append(("statement", Block(body)))
    return block(f'data "aws_iam_policy_document" "{name}"', blocks) + "\n"


def _tf_grant(k: KeyPlan, g: int, kind: str) -> str:
    grantee = (
        Interp(f"arn:aws:iam::{EXTERNAL_ACCOUNT}:role/partner-reader")
        if kind == "external"
        else Interp(f"arn:aws:iam::${{local.account_id}}:role/{k.env}-worker")
    )
    body: list[tuple[str, Any]] = [
        ("name", f"{k.name}-grant-{g}"),
        ("key_id", Expr(f"aws_kms_key.{k.name}.key_id")),
        ("grantee_principal", grantee),
        ("operations", ["Encrypt", "Decrypt", "GenerateDataKey"]),
    ]
    if kind != "unconstrained":
        body.append(("constraints", Block({"encryption_context_equals": {"Environment": k.env}})))
    return block(f'resource "aws_kms_grant" "{k.name}_{g}"', body) + "\n"


def _tf_key_ref(r: ResPlan, plan: UnitPlan) -> Any:
    key = plan.keys[r.key]
    if r.ref == "alias" and key.alias:
        return Expr(f"aws_kms_alias.{key.name}.name")
    if r.ref == "alias_arn" and key.alias:
        return Expr(f"aws_kms_alias.{key.name}.arn")
    return Expr(f"aws_kms_key.{key.name}.{'key_id' if r.ref == 'id' else 'arn'}")


def _tf_resource(r: ResPlan, plan: UnitPlan, d: TfDialect) -> tuple[str, str]:
    key: Any = None
    if r.enc in ("cmk", "cmk_if"):
        key = _tf_key_ref(r, plan)
    elif r.enc == "cmk_import":
        d.variables["shared_data_key_arn"] = {"type": Expr("string"), "description": "Key shared by the platform team"}
        key = Expr("var.shared_data_key_arn")
    elif r.enc == "cross":
        key = f"arn:aws:kms:{REGION}:{EXTERNAL_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    if r.enc == "cmk_if":
        d.use_cmk()
    name = f"{plan.env}-u{plan.index}-{r.name.replace('_', '-')}"
    tags = _tf_tags("full", r.classification, name, r.env if r.env != plan.env else None)
    return _TF_BUILDERS[r.service](r, key, name, tags)


def _cond(r: ResPlan, key: Any, fallback: Any) -> Any:
    """The key reference, or under ``var.use_cmk`` the fallback (None: leave the attribute out)."""
    if r.enc != "cmk_if":
        return key
    return Expr(f"var.use_cmk ? {key.text} : {hcl(fallback) if fallback is not None else 'null'}")


def _tf_s3(r: ResPlan, key: Any, name: str, tags: Any) -> tuple[str, str]:
    out = block(f'resource "aws_s3_bucket" "{r.name}"', {"bucket": name, "tags": tags}) + "\n"
    algo: Any = None
    if key is not None:
        algo = Expr('var.use_cmk ? "aws:kms" : "AES256"') if r.enc == "cmk_if" else "aws:kms"
        default = {"sse_algorithm": algo, "kms_master_key_id": _cond(r, key, None)}
    elif r.enc == "aws_managed":
        default = {"sse_algorithm": "aws:kms"}
    elif r.enc == "aws_owned" and len(name) % 2:
        default = {"sse_algorithm": "AES256"}
    else:
        return out, f"aws_s3_bucket.{r.name}"
    rule = Block([("apply_server_side_encryption_by_default", Block(default)), ("bucket_key_enabled", True)])
    out += (
        block(
            f'resource "aws_s3_bucket_server_side_encryption_configuration" "{r.name}"',
            [("bucket", Expr(f"aws_s3_bucket.{r.name}.id")), ("rule", rule)],
        )
        + "\n"
    )
    return out, f"aws_s3_bucket.{r.name}"


def _tf_simple(rtype: str, attr: str, aws_alias: str | None) -> Callable[[ResPlan, Any, str, Any], tuple[str, str]]:
    def build(r: ResPlan, key: Any, name: str, tags: Any) -> tuple[str, str]:
        body: list[tuple[str, Any]] = [("name", name if rtype != "aws_cloudwatch_log_group" else f"/app/{name}")]
        if key is not None:
            body.append((attr, _cond(r, key, None)))
        elif r.enc == "aws_managed" and aws_alias:
            body.append((attr, aws_alias))
        elif r.enc == "unencrypted" and rtype == "aws_sqs_queue":
            body.append(("sqs_managed_sse_enabled", False))
        if rtype == "aws_cloudwatch_log_group":
            body.append(("retention_in_days", 365))
        body.append(("tags", tags))
        return block(f'resource "{rtype}" "{r.name}"', body) + "\n", f"{rtype}.{r.name}"

    return build


def _tf_dynamodb(r: ResPlan, key: Any, name: str, tags: Any) -> tuple[str, str]:
    body: list[tuple[str, Any]] = [
        ("name", name),
        ("billing_mode", "PAY_PER_REQUEST"),
        ("hash_key", "pk"),
        ("attribute", Block({"name": "pk", "type": "S"})),
    ]
    if key is not None:
        body.append(("server_side_encryption", Block({"enabled": True, "kms_key_arn": _cond(r, key, None)})))
    elif r.enc == "aws_managed":
        body.append(("server_side_encryption", Block({"enabled": True})))
    body.append(("tags", tags))
    return block(f'resource "aws_dynamodb_table" "{r.name}"', body) + "\n", f"aws_dynamodb_table.{r.name}"


def _tf_ebs(r: ResPlan, key: Any, name: str, tags: Any) -> tuple[str, str]:
    body: list[tuple[str, Any]] = [
        ("availability_zone", Interp("${data.aws_region.current.name}a")),
        ("size", 100),
        ("type", "gp3"),
    ]
    if key is not None:
        body += [("encrypted", Expr("var.use_cmk") if r.enc == "cmk_if" else True), ("kms_key_id", _cond(r, key, None))]
    elif r.enc == "aws_managed":
        body += [
            ("encrypted", True),
            ("kms_key_id", Interp(f"arn:aws:kms:{REGION}:${{local.account_id}}:alias/aws/ebs")),
        ]
    elif len(name) % 2:
        body.append(("encrypted", False))
    body.append(("tags", tags))
    return block(f'resource "aws_ebs_volume" "{r.name}"', body) + "\n", f"aws_ebs_volume.{r.name}"


def _tf_rds(r: ResPlan, key: Any, name: str, tags: Any) -> tuple[str, str]:
    body: list[tuple[str, Any]] = [
        ("identifier", name),
        ("engine", "postgres"),
        ("engine_version", "16"),
        ("instance_class", "db.t4g.medium"),
        ("allocated_storage", 50),
        ("username", "app"),
        ("manage_master_user_password", True),
        ("skip_final_snapshot", False),
    ]
    if key is not None:
        body += [
            ("storage_encrypted", Expr("var.use_cmk") if r.enc == "cmk_if" else True),
            ("kms_key_id", _cond(r, key, None)),
        ]
    elif r.enc == "aws_managed":
        body.append(("storage_encrypted", True))
    body.append(("tags", tags))
    return block(f'resource "aws_db_instance" "{r.name}"', body) + "\n", f"aws_db_instance.{r.name}"


_TF_BUILDERS: dict[str, Callable[[ResPlan, Any, str, Any], tuple[str, str]]] = {
    "s3": _tf_s3,
    "sqs": _tf_simple("aws_sqs_queue", "kms_master_key_id", "alias/aws/sqs"),
    "sns": _tf_simple("aws_sns_topic", "kms_master_key_id", "alias/aws/sns"),
    "dynamodb": _tf_dynamodb,
    "logs": _tf_simple("aws_cloudwatch_log_group", "kms_key_id", None),
    "secretsmanager": _tf_simple("aws_secretsmanager_secret", "kms_key_id", None),
    "ebs": _tf_ebs,
    "rds": _tf_rds,
}


def _tf_iam(p: IamPlan, plan: UnitPlan) -> tuple[str, str]:
    key = plan.keys[p.key]
    doc = _iam_document(p, Expr(f"aws_kms_key.{key.name}.arn"))
    policy = Expr("jsonencode(" + hcl(doc, 1) + ")")
    if p.kind == "managed":
        out = block(
            f'resource "aws_iam_policy" "{p.name}"',
            {"name": Interp(f"${{local.name_prefix}}-{p.name}"), "policy": policy},
        )
        out += (
            "\n"
            + block(
                f'resource "aws_iam_role_policy_attachment" "{p.name}"',
                {"role": f"{plan.env}-app", "policy_arn": Expr(f"aws_iam_policy.{p.name}.arn")},
            )
            + "\n"
        )
        return out, f"aws_iam_policy.{p.name}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    out = block(
        f'resource "aws_iam_role" "{p.name}"',
        {
            "name": Interp(f"${{local.name_prefix}}-{p.name}"),
            "assume_role_policy": Expr("jsonencode(" + hcl(trust, 1) + ")"),
        },
    )
    out += (
        "\n"
        + block(
            f'resource "aws_iam_role_policy" "{p.name}"',
            {"name": "use-data-key", "role": Expr(f"aws_iam_role.{p.name}.id"), "policy": policy},
        )
        + "\n"
    )
    return out, f"aws_iam_role_policy.{p.name}"


def _tf_trail(plan: UnitPlan, truth: dict[str, dict[str, Any]]) -> str:
    assert plan.trail is not None
    key = plan.keys[0]
    out = block('resource "aws_s3_bucket" "trail"', {"bucket": f"audit-trail-u{plan.index}"}) + "\n"
    truth["aws_s3_bucket.trail"] = {"kind": "resource", "classes": ["aws_owned"]}
    out += (
        block(
            'resource "aws_cloudwatch_log_group" "trail"',
            {
                "name": f"/audit/trail-u{plan.index}",
                "retention_in_days": 365,
                "kms_key_id": Expr(f"aws_kms_key.{key.name}.arn"),
            },
        )
        + "\n"
    )
    truth["aws_cloudwatch_log_group.trail"] = {
        "kind": "resource",
        "classes": resource_classes(ResPlan("logs", "trail", "cmk", 0, "arn", plan.env, "CUI"), plan.keys),
    }
    body: list[tuple[str, Any]] = [
        ("name", f"audit-u{plan.index}"),
        ("s3_bucket_name", Expr("aws_s3_bucket.trail.id")),
        ("is_multi_region_trail", True),
        ("include_global_service_events", True),
        ("enable_log_file_validation", plan.trail["validation"]),
        ("cloud_watch_logs_group_arn", Interp("${aws_cloudwatch_log_group.trail.arn}:*")),
        ("cloud_watch_logs_role_arn", Interp("arn:aws:iam::${local.account_id}:role/cloudtrail-to-logs")),
    ]
    if plan.trail["kms"]:
        body.append(("kms_key_id", Expr(f"aws_kms_key.{key.name}.arn")))
    out += block('resource "aws_cloudtrail" "audit"', body) + "\n"
    truth["aws_cloudtrail.audit"] = {"kind": "trail", "classes": _trail_classes(plan.trail)}
    out += (
        block(
            'resource "aws_cloudwatch_log_metric_filter" "key_policy_changes"',
            [
                ("name", "KMSKeyPolicyChanges"),
                ("log_group_name", Expr("aws_cloudwatch_log_group.trail.name")),
                ("pattern", POLICY_CHANGES_PATTERN),
                (
                    "metric_transformation",
                    Block({"name": "KMSPolicyChanges", "namespace": "Security/KMS", "value": "1"}),
                ),
            ],
        )
        + "\n"
    )
    out += (
        block(
            'resource "aws_cloudwatch_log_metric_filter" "decrypt_failures"',
            [
                ("name", "KMSDecryptFailures"),
                ("log_group_name", Expr("aws_cloudwatch_log_group.trail.name")),
                ("pattern", DECRYPT_FAILURES_PATTERN),
                (
                    "metric_transformation",
                    Block({"name": "KMSDecryptFailures", "namespace": "Security/KMS", "value": "1"}),
                ),
            ],
        )
        + "\n"
    )
    out += (
        block(
            'resource "aws_cloudwatch_metric_alarm" "key_policy_changes"',
            {
                "alarm_name": f"KMS-Key-Policy-Changes-u{plan.index}",
                "namespace": "Security/KMS",
                "metric_name": "KMSPolicyChanges",
                "statistic": "Sum",
                "period": 300,
                "evaluation_periods": 1,
                "threshold": 1,
                "comparison_operator": "GreaterThanOrEqualToThreshold",
                "alarm_actions": [Interp(f"arn:aws:sns:{REGION}:${{local.account_id}}:security-alerts")],
            },
        )
        + "\n"
    )
    return out


# --- Terraform plan JSON -----------------------------------------------------------------------------------------


class PlanDialect(Dialect):
    """Plans hold values: every principal spelled out."""

    def root(self) -> Any:
        return f"arn:aws:iam::{ACCOUNT}:root"

    def role(self, name: str) -> Any:
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"

    def account(self) -> Any:
        return ACCOUNT


def tf_plan(plan: UnitPlan, rng: random.Random) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A ``terraform show -json`` plan creating the unit's keys, aliases and queues/topics/secrets/log groups."""
    d = PlanDialect()
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    truth: dict[str, dict[str, Any]] = {}

    def add(rtype: str, name: str, values: dict[str, Any], unknown: list[str], exprs: dict[str, Any]) -> None:
        address = f"{rtype}.{name}"
        planned.append(
            {
                "address": address,
                "mode": "managed",
                "type": rtype,
                "name": name,
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "schema_version": 0,
                "values": values,
                "sensitive_values": {},
            }
        )
        changes.append(
            {
                "address": address,
                "mode": "managed",
                "type": rtype,
                "name": name,
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": dict.fromkeys(unknown, True),
                    "before_sensitive": False,
                    "after_sensitive": {},
                },
            }
        )
        config.append(
            {
                "address": address,
                "mode": "managed",
                "type": rtype,
                "name": name,
                "provider_config_key": "aws",
                "expressions": exprs,
                "schema_version": 0,
            }
        )

    for k in plan.keys:
        tags = _plan_tags(plan, k.tags)
        values: dict[str, Any] = {
            "bypass_policy_lockout_safety_check": False,
            "custom_key_store_id": None,
            "customer_master_key_spec": k.spec,
            "deletion_window_in_days": 30,
            "description": f"{k.env} data key {k.name}",
            "enable_key_rotation": k.rotation == "on",
            "is_enabled": k.enabled,
            "key_usage": k.usage,
            "multi_region": k.multi_region,
            "rotation_period_in_days": k.period if k.period is not None else (365 if k.rotation == "on" else None),
            "tags": tags,
            "tags_all": tags,
            "timeouts": None,
            "xks_key_id": None,
        }
        unknown = ["arn", "id", "key_id"]
        if k.policy != "absent":
            values["policy"] = json.dumps({"Version": "2012-10-17", "Statement": key_statements(k, d, rng)})
        else:
            unknown.append("policy")  # AWS fills in the default policy at apply
        add("aws_kms_key", k.name, values, unknown, {"description": {"constant_value": values["description"]}})
        truth[f"aws_kms_key.{k.name}"] = {"kind": "key", "classes": key_classes(k)}
        if k.alias:
            alias = f"alias/{plan.env}-u{plan.index}-{k.name.replace('_', '-')}"
            add(
                "aws_kms_alias",
                k.name,
                {"name": alias, "name_prefix": None},
                ["arn", "id", "target_key_arn", "target_key_id"],
                {
                    "name": {"constant_value": alias},
                    "target_key_id": {"references": [f"aws_kms_key.{k.name}.key_id", f"aws_kms_key.{k.name}"]},
                },
            )
    for r in plan.resources:
        spec = _PLAN_TYPES.get(r.service)
        if spec is None:
            continue
        rtype, attr, aws_alias = spec
        name = f"{plan.env}-u{plan.index}-{r.name.replace('_', '-')}"
        tags = {"Environment": r.env, "DataClassification": r.classification}
        values = {"name": name, "tags": tags, "tags_all": tags}
        exprs: dict[str, Any] = {"name": {"constant_value": name}}
        unknown = ["arn", "id"]
        enc = r.enc if r.enc in ("cmk", "aws_managed", "unencrypted", "aws_owned", "cross") else "cmk"
        if enc == "cmk":
            key = plan.keys[r.key]
            unknown.append(attr)
            exprs[attr] = {"references": [f"aws_kms_key.{key.name}.arn", f"aws_kms_key.{key.name}"]}
        elif enc == "cross":
            values[attr] = f"arn:aws:kms:{REGION}:{EXTERNAL_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        elif enc == "aws_managed" and aws_alias:
            values[attr] = aws_alias
        elif enc == "unencrypted" and rtype == "aws_sqs_queue":
            values["sqs_managed_sse_enabled"] = False
        add(rtype, r.name, values, unknown, exprs)
        fixed = ResPlan(r.service, r.name, enc, r.key, "arn", r.env, r.classification)
        truth[f"{rtype}.{r.name}"] = {"kind": "resource", "classes": resource_classes(fixed, plan.keys)}
    doc = {
        "format_version": "1.2",
        "terraform_version": "1.9.5",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                "aws": {
                    "name": "aws",
                    "full_name": "registry.terraform.io/hashicorp/aws",
                    "expressions": {"region": {"constant_value": REGION}},
                }
            },
            "root_module": {"resources": config},
        },
        "timestamp": "2026-11-30T12:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }
    return doc, truth


# Plans carry the stores whose key is one top-level attribute (nested blocks' references are the loader's
# business, not this benchmark's).
_PLAN_TYPES = {
    "sqs": ("aws_sqs_queue", "kms_master_key_id", "alias/aws/sqs"),
    "sns": ("aws_sns_topic", "kms_master_key_id", "alias/aws/sns"),
    "logs": ("aws_cloudwatch_log_group", "kms_key_id", None),
    "secretsmanager": ("aws_secretsmanager_secret", "kms_key_id", None),
}


def _plan_tags(plan: UnitPlan, level: str) -> dict[str, str]:
    tags = {"Environment": plan.env, "DataClassification": "CUI", "Owner": f"data-team-{plan.index % 7}@example.com"}
    return {"full": tags, "partial": dict(list(tags.items())[:2]), "none": {}}[level]


# --- writing the corpus ------------------------------------------------------------------------------------------


@dataclass
class TruthUnit:
    unit: str  # the template file (CloudFormation, plan) or the module directory (Terraform), relative to DIR
    kind: str
    objects: dict[str, dict[str, Any]]


@dataclass
class Corpus:
    root: Path
    templates: int
    seed: int
    units: list[TruthUnit] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "templates": self.templates,
            "seed": self.seed,
            "by_kind": self.by_kind,
            "files": self.files,
            "bytes": self.bytes,
            "units": [{"unit": u.unit, "kind": u.kind, "objects": u.objects} for u in self.units],
        }


def truth_path(root: Path) -> Path:
    return root.with_name(root.name + ".truth.json")


def _write(corpus: Corpus, rel: str, text: str) -> None:
    path = corpus.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    corpus.files += 1
    corpus.bytes += len(text.encode())


def generate(root: Path, templates: int = 1000, seed: int = 2026) -> Corpus:
    """Write ``templates`` templates under ``root`` (emptied first) and their truth beside it."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    corpus = Corpus(root=root, templates=templates, seed=seed)
    index = 0
    while sum(corpus.by_kind.values()) < templates:
        plan = plan_unit(seed, index)
        left = templates - sum(corpus.by_kind.values())
        _emit(corpus, plan, random.Random(f"{seed}:{index}:write"), left)
        index += 1
    truth_path(root).write_text(json.dumps(corpus.to_dict(), indent=1) + "\n", encoding="utf-8")
    return corpus


def _emit(corpus: Corpus, plan: UnitPlan, rng: random.Random, left: int) -> None:
    n = plan.index
    if plan.kind == "cfn_yaml":
        doc, truth = cfn_template(plan, rng, cdk=False)
        rel = f"cloudformation/yaml/stack-{n:04d}.yaml"
        _write(corpus, rel, dump_yaml(doc, short=rng.random() < 0.75))
        corpus.units.append(TruthUnit(rel, "cloudformation", truth))
    elif plan.kind == "cfn_json":
        doc, truth = cfn_template(plan, rng, cdk=False)
        rel = f"cloudformation/json/stack-{n:04d}.{'template' if n % 5 == 0 else 'json'}"
        _write(corpus, rel, json.dumps(long_form(doc), indent=2) + "\n")
        corpus.units.append(TruthUnit(rel, "cloudformation", truth))
    elif plan.kind == "cdk":
        _emit_cdk(corpus, plan, rng, left)
    elif plan.kind == "terraform":
        files, truth = tf_module(plan, rng)
        rel = f"terraform/module-{n:04d}"
        for name, text in files.items():
            _write(corpus, f"{rel}/{name}", text)
        corpus.units.append(TruthUnit(rel, "terraform", truth))
    else:
        doc, truth = tf_plan(plan, rng)
        rel = f"terraform-plans/plan-{n:04d}.json"
        _write(corpus, rel, json.dumps(doc, indent=2) + "\n")
        corpus.units.append(TruthUnit(rel, "terraform-plan", truth))
    kind = {
        "cfn_yaml": "cloudformation-yaml",
        "cfn_json": "cloudformation-json",
        "cdk": "cdk",
        "terraform": "terraform",
        "plan": "terraform-plan",
    }[plan.kind]
    corpus.by_kind[kind] = corpus.by_kind.get(kind, 0) + (plan_stacks(plan, left) if plan.kind == "cdk" else 1)


def plan_stacks(plan: UnitPlan, left: int) -> int:
    """How many stacks a CDK app of this plan holds (two in a third of them, never more than asked for)."""
    return min(left, 2 if plan.index % 3 == 0 else 1)


def _emit_cdk(corpus: Corpus, plan: UnitPlan, rng: random.Random, left: int) -> None:
    base = f"cdk/app-{plan.index:04d}/cdk.out"
    artifacts: dict[str, Any] = {}
    tree_children: dict[str, Any] = {}
    for s in range(plan_stacks(plan, left)):
        stack = f"DataStack{s}" if s else "DataStack"
        part = plan if s == 0 else plan_unit(corpus.seed, plan.index + 100_000, kind="cdk")
        doc, truth = cfn_template(part, rng, cdk=True)
        rel = f"{base}/{stack}.template.json"
        _write(corpus, rel, json.dumps(long_form(doc), indent=1) + "\n")
        corpus.units.append(TruthUnit(rel, "cloudformation", truth))
        _write(
            corpus,
            f"{base}/{stack}.assets.json",
            json.dumps(
                {
                    "version": "36.0.0",
                    "files": {
                        "a1b2c3": {
                            "source": {"path": f"{stack}.template.json", "packaging": "file"},
                            "destinations": {
                                "current_account-current_region": {
                                    "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                                    "objectKey": "a1b2c3.json",
                                }
                            },
                        }
                    },
                    "dockerImages": {},
                },
                indent=1,
            ),
        )
        artifacts[stack] = {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/unknown-region",
            "properties": {
                "templateFile": f"{stack}.template.json",
                "validateOnSynth": False,
                "requiresBootstrapStackVersion": 6,
                "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version",
            },
            "dependencies": [f"{stack}.assets"],
            "displayName": stack,
        }
        tree_children[stack] = {
            "id": stack,
            "path": stack,
            "constructInfo": {"fqn": "aws-cdk-lib.Stack", "version": "2.160.0"},
        }
    artifacts["Tree"] = {"type": "cdk:tree", "properties": {"file": "tree.json"}}
    _write(corpus, f"{base}/manifest.json", json.dumps({"version": "36.0.0", "artifacts": artifacts}, indent=1))
    _write(
        corpus,
        f"{base}/tree.json",
        json.dumps({"version": "tree-0.1", "tree": {"id": "App", "path": "", "children": tree_children}}, indent=1),
    )
    _write(corpus, f"{base}/cdk.out", json.dumps({"version": "36.0.0"}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="where to write the corpus (emptied first)")
    ap.add_argument("--templates", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    corpus = generate(args.dir, args.templates, args.seed)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(corpus.by_kind.items()))
    print(
        f"{corpus.templates} templates ({kinds}) in {corpus.files} files, {corpus.bytes / 1e6:.1f} MB, "
        f"truth in {truth_path(args.dir)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
