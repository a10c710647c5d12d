"""What a template declares, in the Snapshot's own model objects, with where each came from.

Each IaC loader (``cfn`` for CloudFormation and CDK output, ``terraform`` for ``.tf`` files and plan JSON)
turns one *unit* -- a CloudFormation template (one stack), a Terraform directory (one module) or a plan
file -- into a ``Unit``: one or more ``Declared`` *worlds*. A template with ``Fn::If`` or resource
``Condition``s is judged in every combination of its conditions (each a world), so both branches of every
``Fn::If`` are judged; a template without conditions has one world.

The loaders fill the same model objects ``collect/`` fills from AWS (``Key``, ``Resource``, ``Trail``, ...):
the registered checks then judge a template exactly as they judge an account. Identity comes from
``IacContext``: keys get ARN-shaped identifiers in the context's partition, account and Region
(``arn:aws:kms:us-east-1:123456789012:key/<LogicalId or address>``), so the policy engine can tell the key's
own account from another one; ``iac.judge`` reports findings on ``iac://<file>#<resource>``.

A value the loader cannot resolve (a parameter without a default, ``Fn::ImportValue``, a Terraform variable
without a default, an attribute only known after apply) is kept as an *unknown*: the string returned by
``unknown(reason)``. Wherever it lands (a key policy, a key reference, a name) it stays recognisable, and
``iac.symbolic`` judges it as "any value", naming ``reason`` in the finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kmsguard import arn as arns
from kmsguard.model.snapshot import Alarm, ConfigRule, IamPolicy, Key, MetricFilter, Resource, Trail

# A marker no real value contains: "${" starts CloudFormation/Terraform interpolation, so a template cannot
# produce it after resolution, and it survives JSON encoding unchanged.
UNKNOWN_PREFIX = "${kmsguard-unknown:"
UNKNOWN_RE = re.compile(r"\$\{kmsguard-unknown:([^}]*)\}")


def unknown(reason: str) -> str:
    """The stand-in for a value that cannot be resolved; ``reason`` says which value, e.g.
    ``parameter AdminRoleArn (no default)`` or ``Fn::ImportValue SharedKeyArn``."""
    return UNKNOWN_PREFIX + reason.replace("}", ")") + "}"


def unknowns_in(text: str | None) -> list[str]:
    """The reasons of every unknown inside ``text`` (in order, without repeats)."""
    if not text or UNKNOWN_PREFIX not in text:
        return []
    return list(dict.fromkeys(UNKNOWN_RE.findall(text)))


def is_unknown(value: object) -> bool:
    return isinstance(value, str) and UNKNOWN_PREFIX in value


class IacError(ValueError):
    """A file that cannot be read as a template: the CLI prints ``file:line: message`` and exits 2."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Location:
    """Where a declared object is written: the file relative to the scanned root (POSIX separators), the
    1-based line its declaration starts on, and its CloudFormation logical id or Terraform address."""

    file: str
    line: int
    resource: str

    def to_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line, "resource": self.resource}


@dataclass(frozen=True)
class IacContext:
    """Who the templates would be deployed as: ``--account``, ``--region`` (and the partition of that Region).
    ``${AWS::AccountId}``, ``data.aws_caller_identity`` and the like resolve to these."""

    account: str = "123456789012"
    region: str = "us-east-1"

    @property
    def partition(self) -> str:
        return arns.partition_of(self.region)

    def key_arn(self, name: str) -> str:
        """The ARN-shaped identifier of a key the templates declare (``name``: logical id or address)."""
        return arns.build("kms", self.region, self.account, f"key/{name}", partition=self.partition)

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        return arns.build(
            service,
            self.region if regional else "",
            self.account if account else "",
            resource,
            partition=self.partition,
        )


@dataclass
class Declared:
    """One world of one unit: everything it declares, as Snapshot objects, and where each is written.

    ``locations`` maps what a finding names -- a key's or resource's ``arn``, a trail's ``arn``, an IAM
    policy's ``arn`` -- to its Location. Every object appended here has an entry. ``label`` names the
    world ("" when the unit has one; otherwise e.g. "IsProd=true, UseCmk=false").
    """

    label: str = ""
    keys: list[Key] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    trails: list[Trail] = field(default_factory=list)
    metric_filters: list[MetricFilter] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    config_rules: list[ConfigRule] = field(default_factory=list)
    iam_policies: list[IamPolicy] = field(default_factory=list)
    # AWS::EC2 has no CloudFormation resource for EBS default encryption; Terraform has
    # aws_ebs_encryption_by_default / aws_ebs_default_kms_key. None: not declared.
    ebs_encryption_by_default: bool | None = None
    ebs_default_key_ref: str | None = None
    locations: dict[str, Location] = field(default_factory=dict)
    # Object ARN -> the reasons of unknown values the loader itself read at their worst (a switch such as
    # EnableKeyRotation or Encrypted left to deploy time): every finding on the object names them.
    assumed: dict[str, list[str]] = field(default_factory=dict)

    def assume(self, arn: str, reason: str) -> None:
        """Record that ``arn``'s judgement reads the unknown ``reason`` at its worst."""
        reasons = self.assumed.setdefault(arn, [])
        if reason not in reasons:
            reasons.append(reason)


@dataclass
class Unit:
    """One template, Terraform directory or plan file: its worlds (at least one)."""

    file: str  # relative to the scanned root; for a Terraform directory, the directory
    kind: str  # "cloudformation", "terraform", "terraform-plan"
    worlds: list[Declared]
