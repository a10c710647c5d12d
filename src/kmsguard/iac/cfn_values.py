"""Values in a CloudFormation template: intrinsic functions, parameters, conditions and the worlds they make.

A ``Resolver`` turns a template value into plain data for one *world* (one assignment of the conditions):
``Ref`` to parameters (their default; none: unknown), pseudo parameters (from the ``IacContext``), resources
(their physical name or ARN as CloudFormation would return it, built from the declared name or the logical
id), ``Fn::Sub``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::If``
(the branch of this world) and the rest. What cannot be known before deploy becomes ``unknown(reason)``.

``Conditions`` finds the template's *atomic* conditions: each ``Fn::Equals`` in ``Conditions`` whose arguments
depend on deploy-time input (a parameter, or a value that stays unknown). An ``Fn::Equals`` of constants is
simply evaluated. ``worlds()`` enumerates the atoms that matter (at most ``MAX_ATOMS``; the rest keep the
value they have with the parameters' defaults), leaving out assignments no deployment can have: one
parameter equal to two different values, or to none of its AllowedValues.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kmsguard.iac.cfn_parse import Template
from kmsguard.iac.declared import (
    UNKNOWN_PREFIX,
    UNKNOWN_RE,
    IacContext,
    IacError,
    is_unknown,
    unknown,
    unknowns_in,
)

MAX_ATOMS = 5  # 2**5 = 32 worlds at most
# Values resolved per world before giving up: real templates need a few thousand; this catches what slipped
# past the parser's limits (self-feeding references, huge mappings copied into every property).
MAX_VISITS = 1_000_000
# How many resources a name may go through (a bucket named after a role named after a topic ...).
MAX_CHAIN = 32


class _NoValue:
    """``AWS::NoValue``: the property (or list item) it stands in is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
KEY_TYPES = frozenset({"AWS::KMS::Key", "AWS::KMS::ReplicaKey"})
ALIAS_TYPE = "AWS::KMS::Alias"


@dataclass(frozen=True)
class _Identity:
    """How CloudFormation names a resource type: the property holding the name (None: the logical id is used),
    its ARN, what ``Ref`` returns and which ``Fn::GetAtt`` attributes are known before deploy."""

    name_prop: str | None
    arn: Callable[[IacContext, str, str], str] | None  # (ctx, name, path) -> ARN
    ref: str = "name"  # "name", "arn" or "url"
    attrs: dict[str, str] = field(default_factory=dict)  # attribute -> "arn", "name", "url" or "arn:*"
    lower: bool = False  # the service lower-cases names (S3 buckets, RDS identifiers)
    path_prop: str | None = None  # IAM: the path between the type and the name in the ARN


def _iam(kind: str) -> Callable[[IacContext, str, str], str]:
    return lambda ctx, name, path: ctx.arn("iam", f"{kind}{path}{name}", regional=False)


def _regional(service: str, prefix: str) -> Callable[[IacContext, str, str], str]:
    return lambda ctx, name, _path: ctx.arn(service, f"{prefix}{name}")


IDENTITIES: dict[str, _Identity] = {
    "AWS::S3::Bucket": _Identity(
        "BucketName",
        lambda ctx, name, _p: ctx.arn("s3", name, regional=False, account=False),
        lower=True,
        attrs={"Arn": "arn"},
    ),
    "AWS::IAM::Role": _Identity("RoleName", _iam("role"), attrs={"Arn": "arn"}, path_prop="Path"),
    "AWS::IAM::User": _Identity("UserName", _iam("user"), attrs={"Arn": "arn"}, path_prop="Path"),
    "AWS::IAM::Group": _Identity("GroupName", _iam("group"), attrs={"Arn": "arn"}, path_prop="Path"),
    "AWS::IAM::ManagedPolicy": _Identity(
        "ManagedPolicyName", _iam("policy"), ref="arn", attrs={"PolicyArn": "arn"}, path_prop="Path"
    ),
    "AWS::SNS::Topic": _Identity(
        "TopicName", _regional("sns", ""), ref="arn", attrs={"TopicArn": "arn", "TopicName": "name"}
    ),
    "AWS::SQS::Queue": _Identity(
        "QueueName", _regional("sqs", ""), ref="url", attrs={"Arn": "arn", "QueueName": "name", "QueueUrl": "url"}
    ),
    "AWS::Logs::LogGroup": _Identity("LogGroupName", _regional("logs", "log-group:"), attrs={"Arn": "arn:*"}),
    "AWS::SecretsManager::Secret": _Identity(
        "Name", _regional("secretsmanager", "secret:"), ref="arn", attrs={"Id": "arn"}
    ),
    "AWS::DynamoDB::Table": _Identity("TableName", _regional("dynamodb", "table/"), attrs={"Arn": "arn"}),
    "AWS::DynamoDB::GlobalTable": _Identity("TableName", _regional("dynamodb", "table/"), attrs={"Arn": "arn"}),
    "AWS::EC2::Volume": _Identity(None, _regional("ec2", "volume/"), attrs={"VolumeId": "name"}),
    "AWS::RDS::DBInstance": _Identity(
        "DBInstanceIdentifier", _regional("rds", "db:"), attrs={"DBInstanceArn": "arn"}, lower=True
    ),
    "AWS::RDS::DBCluster": _Identity(
        "DBClusterIdentifier", _regional("rds", "cluster:"), attrs={"DBClusterArn": "arn"}, lower=True
    ),
    "AWS::CloudTrail::Trail": _Identity("TrailName", _regional("cloudtrail", "trail/"), attrs={"Arn": "arn"}),
    "AWS::CloudWatch::Alarm": _Identity("AlarmName", _regional("cloudwatch", "alarm:"), attrs={"Arn": "arn"}),
    "AWS::Config::ConfigRule": _Identity("ConfigRuleName", None),
    "AWS::Logs::MetricFilter": _Identity("FilterName", None),
    "AWS::Lambda::Function": _Identity("FunctionName", _regional("lambda", "function:"), attrs={"Arn": "arn"}),
    ALIAS_TYPE: _Identity("AliasName", None),
}

_PSEUDO = {
    "AWS::AccountId",
    "AWS::Region",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::NotificationARNs",
}
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


@dataclass
class World:
    """One assignment of the atomic conditions, and the conditions' values under it (filled as needed)."""

    label: str
    assignment: dict[str, bool]
    values: dict[str, bool] = field(default_factory=dict)
    # Parameters whose value the assignment decides (Env is "prod" where Env==prod is true).
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Atom:
    key: str  # the Fn::Equals' arguments, canonical
    label: str  # the condition it is, or "Param==value"
    default: bool  # its value with every parameter at its default (False when that is unknown)
    param: tuple[str, str] | None  # (parameter, constant) for Fn::Equals [Ref P, constant]


# --- plain-data helpers -------------------------------------------------------------------------------------


def norm(value: Any) -> Any:
    """A value as CloudFormation compares it: scalars as strings ("true", "3")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {str(k): norm(v) for k, v in value.items()}
    return value


def has_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return UNKNOWN_PREFIX in value
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    return False


def reasons_text(text: str) -> str:
    """``text`` with each unknown shown as its reason in angle brackets (to name it inside another reason)."""
    return UNKNOWN_RE.sub(lambda m: f"<{m.group(1)}>", text)


def lookup(mapping: Any, key: str) -> Any:
    """``mapping[key]`` comparing keys as strings (YAML reads an account id key as a number); KeyError."""
    if isinstance(mapping, dict):
        for k, v in mapping.items():
            if norm(k) == key:
                return v
    raise KeyError(key)


def split_keeping_unknowns(text: str, delimiter: str) -> list[str]:
    """``text.split(delimiter)`` that never cuts an unknown in two (its marker may hold the delimiter)."""
    pieces, current, pos = [], "", 0
    for m in [*UNKNOWN_RE.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        parts = text[pos:end].split(delimiter)
        current += parts[0]
        for part in parts[1:]:
            pieces.append(current)
            current = part
        if m is not None:
            current += m.group(0)
            pos = m.end()
    pieces.append(current)
    return pieces


# --- the resolver -------------------------------------------------------------------------------------------


class Resolver:
    """Resolves a template's values in one world (``world`` None: while reading the Conditions section)."""

    def __init__(self, tpl: Template, ctx: IacContext, conditions: Conditions | None, world: World | None) -> None:
        self.tpl, self.ctx, self.conditions, self.world = tpl, ctx, conditions, world
        self.where: tuple[str, str] | None = None  # (section, key) being read, for the line of an error
        self.touched: set[str] = set()  # parameters read (how Conditions tells deploy-time input)
        self._visits = 0
        self._names: dict[str, tuple[str, str]] = {}  # logical id -> (physical name, IAM path)
        self._naming: list[str] = []

    # errors

    def error(self, message: str) -> IacError:
        line = self.tpl.line(self.where[1], self.where[0]) if self.where else None
        return IacError(self.tpl.rel, line, message)

    # the walk

    def resolve(self, value: Any) -> Any:
        self._visits += 1
        if self._visits > MAX_VISITS:
            raise self.error(f"more than {MAX_VISITS:,} values to resolve: self-feeding or exploding references")
        if isinstance(value, dict):
            if len(value) == 1:
                key, arg = next(iter(value.items()))
                if key == "Ref":
                    return self.ref(arg)
                if isinstance(key, str) and key.startswith("Fn::"):
                    fn = _FUNCTIONS.get(key)
                    return fn(self, arg) if fn is not None else unknown(f"{key} (not evaluated)")
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for v in value if (r := self.resolve(v)) is not NO_VALUE]
        return value

    def text(self, value: Any, what: str) -> str:
        """A resolved scalar as a string (CloudFormation passes every scalar as one)."""
        if isinstance(value, str):
            return value
        if value is None or value is NO_VALUE:
            return ""
        if isinstance(value, bool | int | float):
            return str(norm(value))
        raise self.error(f"{what} must be a string, not a {'list' if isinstance(value, list) else 'mapping'}")

    def present(self, rid: str) -> bool:
        """Whether the resource exists in this world (its Condition, if any, is true)."""
        cond = self.tpl.resources[rid].get("Condition")
        if cond is None:
            return True
        if not isinstance(cond, str):
            raise self.error(f"resource {rid}: Condition must be a condition name")
        return self.condition(cond)

    def condition(self, name: str) -> bool:
        if self.world is None or self.conditions is None:
            raise self.error("Fn::If and resource conditions cannot be used inside Conditions")
        return self.conditions.value(name, self.world, self)

    # Ref

    def ref(self, arg: Any) -> Any:
        name = arg if isinstance(arg, str) else self.text(self.resolve(arg), "Ref")
        if name in _PSEUDO:
            return self._pseudo(name)
        if name in self.tpl.parameters:
            return self._parameter(name)
        if name in self.tpl.resources:
            return self._resource_ref(name)
        return unknown(f"Ref {name} (not declared)")

    def _pseudo(self, name: str) -> Any:
        ctx = self.ctx
        if name == "AWS::NoValue":
            return NO_VALUE
        known = {
            "AWS::AccountId": ctx.account,
            "AWS::Region": ctx.region,
            "AWS::Partition": ctx.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if ctx.partition == "aws-cn" else "amazonaws.com",
        }
        return known.get(name) or unknown(name)  # the stack's name, id and notification ARNs: set at deploy

    def _parameter(self, name: str) -> Any:
        self.touched.add(name)
        if self.world is not None and name in self.world.params:
            return self.world.params[name]
        decl = self.tpl.parameters[name]
        if not isinstance(decl, dict):
            raise IacError(self.tpl.rel, self.tpl.line(name, "Parameters"), f"parameter {name} must be a mapping")
        default = decl.get("Default")
        if default is None:
            return unknown(f"parameter {name} (no default)")
        ptype = str(decl.get("Type", "String"))
        if ptype.startswith("AWS::SSM::Parameter::Value"):
            return unknown(f"parameter {name} (SSM parameter {norm(default)})")
        if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
            # AWS trims the spaces around each member ("a, b" is ["a", "b"]).
            items = default if isinstance(default, list) else str(norm(default)).split(",")
            return [str(norm(i)).strip(" ") for i in items]
        return norm(default)

    # resources

    def _resource_ref(self, rid: str) -> Any:
        rtype = self.tpl.resources[rid]["Type"]
        if rtype in KEY_TYPES:
            return rid  # a key's Ref is its key id
        ident = IDENTITIES.get(rtype)
        if ident is None:
            return unknown(f"Ref {rid} (known after deploy)")
        return self._identity_value(rid, ident, "name" if rtype == ALIAS_TYPE else ident.ref)

    def getatt(self, rid: str, attr: str) -> Any:
        body = self.tpl.resources.get(rid)
        if body is None:
            return unknown(f"Fn::GetAtt {rid}.{attr} (not declared)")
        if body["Type"] in KEY_TYPES and attr in ("Arn", "KeyId"):
            return self.ctx.key_arn(rid) if attr == "Arn" else rid
        ident = IDENTITIES.get(body["Type"])
        kind = ident.attrs.get(attr) if ident is not None else None
        if ident is None or kind is None:
            return unknown(f"Fn::GetAtt {rid}.{attr} (known after deploy)")
        return self._identity_value(rid, ident, kind)

    def _identity_value(self, rid: str, ident: _Identity, kind: str) -> str:
        name, path = self.physical_name(rid)
        if kind == "name":
            return name
        if kind == "url":
            suffix = self._pseudo("AWS::URLSuffix")
            return f"https://sqs.{self.ctx.region}.{suffix}/{self.ctx.account}/{name}"
        if ident.arn is None:
            return unknown(f"{rid} ARN (known after deploy)")
        arn = ident.arn(self.ctx, name, path)
        return arn + ":*" if kind == "arn:*" else arn

    def physical_name(self, rid: str) -> tuple[str, str]:
        """(name, IAM path) of a declared resource: the declared name, else the logical id (lower-cased where
        the service lower-cases names). IacError for a name that depends on itself."""
        hit = self._names.get(rid)
        if hit is not None:
            return hit
        if rid in self._naming:
            chain = " -> ".join([*self._naming[self._naming.index(rid) :], rid])
            raise IacError(self.tpl.rel, self.tpl.line(rid), f"circular reference: {chain}")  # where it starts
        if len(self._naming) >= MAX_CHAIN:
            raise self.error(f"resource names refer to other resources more than {MAX_CHAIN} deep")
        body = self.tpl.resources[rid]
        ident = IDENTITIES.get(body["Type"])
        props = body.get("Properties") or {}
        saved, self.where = self.where, ("Resources", rid)
        self._naming.append(rid)
        try:
            name = self._declared(props, ident.name_prop if ident else None, f"{rid} name")
            path = self._declared(props, ident.path_prop if ident else None, f"{rid} Path") or "/"
        finally:
            self._naming.pop()
            self.where = saved
        if name is None:
            name = rid.lower() if ident is not None and ident.lower else rid
        self._names[rid] = (name, path)
        return name, path

    def _declared(self, props: dict[str, Any], prop: str | None, what: str) -> str | None:
        if prop is None or props.get(prop) is None:
            return None
        value = self.resolve(props[prop])
        return None if value is NO_VALUE else self.text(value, what)

    def arn_of(self, rid: str) -> str:
        """The ARN of a declared resource of a type in IDENTITIES with an ARN (keys: ``ctx.key_arn``)."""
        rtype = self.tpl.resources[rid]["Type"]
        if rtype in KEY_TYPES:
            return self.ctx.key_arn(rid)
        ident = IDENTITIES[rtype]
        return self._identity_value(rid, ident, "arn")


# --- intrinsic functions ------------------------------------------------------------------------------------


def _args(r: Resolver, fn: str, arg: Any, count: tuple[int, ...]) -> list[Any]:
    if not isinstance(arg, list) or len(arg) not in count:
        n = " or ".join(str(c) for c in count)
        raise r.error(f"{fn} takes a list of {n} values")
    return arg


def _sub(r: Resolver, arg: Any) -> str:
    variables: dict[str, Any] = {}
    if isinstance(arg, list):
        template, raw_vars = _args(r, "Fn::Sub", arg, (2,))
        if not isinstance(raw_vars, dict):
            raise r.error("Fn::Sub: the second value must be a mapping of variables")
        variables = {str(k): v for k, v in raw_vars.items()}
    else:
        template = arg
    if not isinstance(template, str):
        raise r.error("Fn::Sub needs a string")
    resolved: dict[str, Any] = {}

    def replace(m: re.Match[str]) -> str:
        inner = m.group(1)
        if inner.startswith("!"):
            return "${" + inner[1:] + "}"  # "${!Literal}" is the literal "${Literal}"
        name = inner.strip()
        if name in variables:
            if name not in resolved:
                resolved[name] = r.resolve(variables[name])
            value = resolved[name]
        elif "." in name and not name.startswith("AWS::"):
            rid, attr = name.split(".", 1)
            value = r.getatt(rid, attr)
        else:
            value = r.ref(name)
        return r.text(value, f"${{{name}}} in Fn::Sub")

    return _SUB_VAR.sub(replace, template)


def _getatt(r: Resolver, arg: Any) -> Any:
    parts = arg.split(".", 1) if isinstance(arg, str) else arg
    rid, attr = _args(r, "Fn::GetAtt", parts, (2,))
    if not isinstance(rid, str):
        raise r.error("Fn::GetAtt: the resource must be a logical id")
    return r.getatt(rid, r.text(r.resolve(attr), "Fn::GetAtt attribute"))


def _join(r: Resolver, arg: Any) -> str:
    delimiter, items = _args(r, "Fn::Join", arg, (2,))
    sep = r.text(r.resolve(delimiter), "Fn::Join delimiter")
    values = r.resolve(items)
    if is_unknown(values):
        return str(values)  # a list known only at deploy (a List parameter without default, Fn::GetAZs)
    if not isinstance(values, list):
        raise r.error("Fn::Join needs a list of values")
    return sep.join(r.text(v, "a Fn::Join value") for v in values)


def _select(r: Resolver, arg: Any) -> Any:
    index, items = _args(r, "Fn::Select", arg, (2,))
    idx, values = r.resolve(index), r.resolve(items)
    if is_unknown(idx):
        return unknown(f"Fn::Select of index {reasons_text(str(idx))}")
    try:
        i = int(idx)
    except (TypeError, ValueError, OverflowError):  # OverflowError: .inf
        raise r.error(f"Fn::Select: the index must be a number, not {idx!r}") from None
    if is_unknown(values):
        return values  # one item of a list known only at deploy: as unknown as the list
    if not isinstance(values, list):
        raise r.error("Fn::Select needs a list of values")
    if isinstance(values, SplitPieces) and 0 <= i < len(values):
        # An unknown in an earlier piece may hold the delimiter too, shifting what index i is.
        before = [reason for piece in values[:i] for reason in unknowns_in(piece)]
        if before:
            return "".join(unknown(reason) for reason in dict.fromkeys([*before, *unknowns_in(values[i])]))
    if 0 <= i < len(values):
        return values[i]
    if has_unknown(values):  # an unknown piece may hold more items once known
        return unknown(f"Fn::Select {i} of {reasons_text(json.dumps(values))}")
    raise r.error(f"Fn::Select: index {i} is outside the list of {len(values)}")


class SplitPieces(list[str]):
    """What ``Fn::Split`` returns: the pieces of a text, which ``Fn::Select`` counts with care when one holds
    an unknown (the unknown may hold the delimiter, so the pieces after it may sit at other indexes)."""


def _split(r: Resolver, arg: Any) -> list[str]:
    delimiter, source = _args(r, "Fn::Split", arg, (2,))
    sep = r.text(r.resolve(delimiter), "Fn::Split delimiter")
    if not sep:
        raise r.error("Fn::Split: the delimiter is empty")
    return SplitPieces(split_keeping_unknowns(r.text(r.resolve(source), "Fn::Split source"), sep))


def _find_in_map(r: Resolver, arg: Any) -> Any:
    values = _args(r, "Fn::FindInMap", arg, (3, 4))
    names = [r.text(r.resolve(v), "Fn::FindInMap key") for v in values[:3]]
    path = "/".join(names)
    if any(is_unknown(n) for n in names):
        return unknown(f"Fn::FindInMap {reasons_text(path)}")
    try:
        return r.resolve(lookup(lookup(lookup(r.tpl.mappings, names[0]), names[1]), names[2]))
    except KeyError:
        default = values[3] if len(values) == 4 else None
        if isinstance(default, dict) and "DefaultValue" in default:
            return r.resolve(default["DefaultValue"])
        raise r.error(f"Fn::FindInMap: the Mappings have no {path}") from None


def _if(r: Resolver, arg: Any) -> Any:
    cond, then, otherwise = _args(r, "Fn::If", arg, (3,))
    if not isinstance(cond, str):
        raise r.error("Fn::If: the first value must be a condition name")
    return r.resolve(then if r.condition(cond) else otherwise)


def _condition_function(fn: str) -> Callable[[Resolver, Any], bool]:
    """Fn::Equals, Fn::And, Fn::Or, Fn::Not met outside Conditions: evaluated in the resolver's world."""

    def evaluate(r: Resolver, arg: Any) -> bool:
        if r.conditions is None or r.world is None:
            raise r.error(f"{fn} cannot be used here")
        return r.conditions.evaluate({fn: arg}, r.world, r, fn)

    return evaluate


def _import_value(r: Resolver, arg: Any) -> str:
    return unknown(f"Fn::ImportValue {reasons_text(r.text(r.resolve(arg), 'Fn::ImportValue name'))}")


def _base64(r: Resolver, arg: Any) -> str:
    text = r.text(r.resolve(arg), "Fn::Base64 value")
    if is_unknown(text):
        return unknown(f"Fn::Base64 of {reasons_text(text)}")
    return base64.b64encode(text.encode()).decode()


def _transform(r: Resolver, arg: Any) -> str:
    name = arg.get("Name") if isinstance(arg, dict) else None
    return unknown(f"Fn::Transform {name if isinstance(name, str) else '(unnamed)'}")


def _length(r: Resolver, arg: Any) -> Any:
    values = r.resolve(arg)
    return len(values) if isinstance(values, list) and not has_unknown(values) else unknown("Fn::Length")


def _to_json_string(r: Resolver, arg: Any) -> Any:
    value = r.resolve(arg)
    if value is NO_VALUE:
        return NO_VALUE  # the JSON of nothing: the property it stands in is removed, as AWS::NoValue itself
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise r.error(f"Fn::ToJsonString: the value cannot be written as JSON ({e})") from None


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Fn::Sub": _sub,
    "Fn::GetAtt": _getatt,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::ImportValue": _import_value,
    "Fn::Base64": _base64,
    "Fn::GetAZs": lambda r, arg: unknown("Fn::GetAZs"),
    "Fn::Cidr": lambda r, arg: unknown("Fn::Cidr"),
    "Fn::Transform": _transform,
    "Fn::Length": _length,
    "Fn::ToJsonString": _to_json_string,
    **{fn: _condition_function(fn) for fn in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not")},
}


# --- conditions and worlds ----------------------------------------------------------------------------------


class Conditions:
    """The Conditions section: its atoms, each condition's value in a world, and the worlds to judge."""

    def __init__(self, tpl: Template, ctx: IacContext) -> None:
        self.tpl = tpl
        self.atoms: dict[str, Atom] = {}
        self._atom_of: dict[int, str] = {}  # id(Fn::Equals mapping) -> atom key
        self._constant: dict[int, bool] = {}  # id(Fn::Equals mapping) -> value, for Equals of constants
        self._probe = Resolver(tpl, ctx, None, None)
        for name, expr in tpl.conditions.items():
            self._probe.where = ("Conditions", name)
            self._scan(name, expr, named=True)

    def _error(self, name: str, message: str) -> IacError:
        return IacError(self.tpl.rel, self.tpl.line(name, "Conditions"), message)

    def _scan(self, name: str, expr: Any, named: bool = False) -> None:
        fn, arg = _single(expr)
        if fn == "Fn::Equals":
            self._equals(name, expr, arg, named)
        elif fn in ("Fn::And", "Fn::Or", "Fn::Not"):
            if not isinstance(arg, list) or not arg:
                raise self._error(name, f"condition {name}: {fn} takes a list of conditions")
            for sub in arg:
                self._scan(name, sub)
        elif fn != "Condition" and not isinstance(expr, bool):
            raise self._error(name, f"condition {name} is not a condition function (Fn::Equals, Fn::And, ...)")

    def _equals(self, name: str, expr: dict[str, Any], arg: Any, named: bool) -> None:
        probe = self._probe
        left, right = _args(probe, f"condition {name}: Fn::Equals", arg, (2,))
        resolved, inputs = [], []
        for side in (left, right):
            probe.touched = set()
            resolved.append(probe.resolve(side))
            inputs.append(bool(probe.touched) or has_unknown(resolved[-1]))
        if not any(inputs):
            self._constant[id(expr)] = norm(resolved[0]) == norm(resolved[1])
            return
        key = json.dumps(sorted(json.dumps(norm(side), sort_keys=True, default=str) for side in (left, right)))
        self._atom_of[id(expr)] = key
        label = name if named else f"{_render(left)}=={_render(right)}"
        known = self.atoms.get(key)
        if known is not None:
            if named and known.label != label and "==" in known.label:
                self.atoms[key] = Atom(key, label, known.default, known.param)
            return
        default = not has_unknown(resolved) and norm(resolved[0]) == norm(resolved[1])
        param = None
        for side, other, other_input in ((left, resolved[1], inputs[1]), (right, resolved[0], inputs[0])):
            ref = side.get("Ref") if isinstance(side, dict) and len(side) == 1 else None
            if ref in self.tpl.parameters and not other_input and not isinstance(other, list | dict):
                param = (str(ref), str(norm(other)))
        self.atoms[key] = Atom(key, label, default, param)

    def value(self, name: str, world: World, r: Resolver, stack: tuple[str, ...] = ()) -> bool:
        """The value of condition ``name`` in ``world``."""
        hit = world.values.get(name)
        if hit is not None:
            return hit
        if name not in self.tpl.conditions:
            raise r.error(f"condition {name} is not declared")
        if name in stack:
            raise self._error(name, f"conditions refer to each other in a circle: {' -> '.join([*stack, name])}")
        result = self.evaluate(self.tpl.conditions[name], world, r, name, (*stack, name))
        world.values[name] = result
        return result

    def evaluate(self, expr: Any, world: World, r: Resolver, name: str, stack: tuple[str, ...] = ()) -> bool:
        fn, arg = _single(expr)
        if isinstance(expr, bool):
            return expr
        if fn == "Fn::Equals":
            key = self._atom_of.get(id(expr))
            if key is not None:
                return world.assignment.get(key, self.atoms[key].default)
            if id(expr) in self._constant:
                return self._constant[id(expr)]
            left, right = _args(r, "Fn::Equals", arg, (2,))  # one outside Conditions: this world's values
            return bool(norm(r.resolve(left)) == norm(r.resolve(right)))
        if fn == "Condition" and isinstance(arg, str):
            return self.value(arg, world, r, stack)
        if fn in ("Fn::And", "Fn::Or", "Fn::Not") and isinstance(arg, list) and arg:
            values = [self.evaluate(sub, world, r, name, stack) for sub in arg]
            return all(values) if fn == "Fn::And" else any(values) if fn == "Fn::Or" else not values[0]
        raise r.error(f"condition {name or fn} is not a condition function (Fn::Equals, Fn::And, ...)")

    def atoms_of(self, names: set[str]) -> set[str]:
        """The atoms the named conditions depend on (through other conditions too)."""
        found: set[str] = set()
        seen: set[str] = set()
        todo = [n for n in names if n in self.tpl.conditions]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for expr in _walk(self.tpl.conditions[name]):
                fn, arg = _single(expr)
                if fn == "Fn::Equals" and id(expr) in self._atom_of:
                    found.add(self._atom_of[id(expr)])
                elif fn == "Condition" and isinstance(arg, str) and arg in self.tpl.conditions:
                    todo.append(arg)
        return found

    def worlds(self, used: set[str]) -> list[World]:
        """Every consistent assignment of the atoms ``used`` conditions depend on (the first MAX_ATOMS of them,
        in template order; the rest at their defaults)."""
        relevant = self.atoms_of(used)
        ordered = [k for k in self.atoms if k in relevant]
        chosen, rest = ordered[:MAX_ATOMS], len(ordered) - MAX_ATOMS
        defaults = {k: a.default for k, a in self.atoms.items()}
        worlds: list[World] = []
        for bits in itertools.product((True, False), repeat=len(chosen)):
            label = ", ".join(f"{self.atoms[k].label}={str(v).lower()}" for k, v in zip(chosen, bits, strict=True))
            if rest > 0:
                label += f" (+{rest} conditions at their defaults)"
            worlds.append(World(label, {**defaults, **dict(zip(chosen, bits, strict=True))}))
        # The atoms at their defaults are consistent, but with the rest fixed a chosen few may not be: then
        # judge the first world rather than none.
        kept = [w for w in worlds if self._consistent(w.assignment)] or worlds[:1]
        for w in kept:
            w.params = self._params(w.assignment)
        return kept

    def _by_param(self, assignment: dict[str, bool]) -> dict[str, list[tuple[str, bool]]]:
        """Parameter -> (constant it is compared with, whether equal in ``assignment``) for each atom."""
        by_param: dict[str, list[tuple[str, bool]]] = {}
        for key, atom in self.atoms.items():
            if atom.param is not None:
                by_param.setdefault(atom.param[0], []).append((atom.param[1], assignment[key]))
        return by_param

    def _params(self, assignment: dict[str, bool]) -> dict[str, Any]:
        """The parameter values an assignment implies: the constant a parameter equals; where it equals none and
        that rules its default out, the first AllowedValue left, else an unknown saying what it is not."""
        out: dict[str, Any] = {}
        for param, items in self._by_param(assignment).items():
            equal = [c for c, v in items if v]
            if equal:
                out[param] = equal[0]
                continue
            excluded = {c for c, _ in items}
            decl = self.tpl.parameters.get(param)
            default = decl.get("Default") if isinstance(decl, dict) else None
            plain = isinstance(decl, dict) and not str(decl.get("Type", "String")).startswith(("AWS::SSM", "List<"))
            if not plain or default is None or str(norm(default)) not in excluded:
                continue  # Ref gives what it gives in every world: the default, or an unknown
            left = sorted((self._allowed(param) or set()) - excluded)
            ruled_out = ", ".join(json.dumps(c) for c in sorted(excluded))
            out[param] = left[0] if left else unknown(f"parameter {param} (not {ruled_out})")
        return out

    def _consistent(self, assignment: dict[str, bool]) -> bool:
        """Whether some parameter values give this assignment: a parameter equals one value at most, and one
        of its AllowedValues when it has them."""
        for param, items in self._by_param(assignment).items():
            equal = {c for c, v in items if v}
            if len(equal) > 1 or any(c in equal for c, v in items if not v):
                return False
            allowed = self._allowed(param)
            if allowed is not None and (not equal <= allowed or (not equal and allowed <= {c for c, _ in items})):
                return False
        return True

    def _allowed(self, param: str) -> set[str] | None:
        decl = self.tpl.parameters.get(param)
        values = decl.get("AllowedValues") if isinstance(decl, dict) else None
        return {str(norm(v)) for v in values} if isinstance(values, list) and values else None


def _single(expr: Any) -> tuple[str | None, Any]:
    if isinstance(expr, dict) and len(expr) == 1:
        key, arg = next(iter(expr.items()))
        return (key if isinstance(key, str) else None), arg
    return None, None


def _walk(value: Any) -> Iterator[Any]:
    """Every mapping and list inside ``value`` (iteratively; the parser bounded the size)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            yield item
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def _render(side: Any) -> str:
    fn, arg = _single(side)
    if fn == "Ref":
        return str(arg)
    if fn is not None:
        return f"{fn}(...)"
    if isinstance(side, list | dict) or side == "":
        return json.dumps(side, default=str)  # "" shown as "", not as nothing
    return str(norm(side))


def used_conditions(tpl: Template, types: frozenset[str]) -> set[str]:
    """The conditions that decide anything about the resources of ``types``: their own Condition, and
    every Fn::If (or Condition reference) in their properties."""
    used: set[str] = set()
    for body in tpl.resources.values():
        if body["Type"] not in types:
            continue
        if isinstance(body.get("Condition"), str):
            used.add(body["Condition"])
        for item in _walk(body.get("Properties")):
            fn, arg = _single(item)
            if fn == "Fn::If" and isinstance(arg, list) and arg and isinstance(arg[0], str):
                used.add(arg[0])
            elif fn == "Condition" and isinstance(arg, str):
                used.add(arg)
    return used
