"""``terraform show -json`` plan output -> one Declared world, through the same mapping as ``.tf`` files.

"after" reads ``planned_values`` (the root module and its child modules, recursively); a value listed in the
resource's ``change.after_unknown`` is an unknown ``<address>.<attribute> (known after apply)`` -- except a
reference (``kms_key_id = aws_kms_key.main.arn``, ``bucket = aws_s3_bucket.logs.id``), which the plan's
``configuration`` shows by its ``references`` and which resolves to the synthetic ARN, id or name of what it
names, as in a ``.tf`` file. "before"
reads ``resource_changes[].change.before`` (null for a resource being created: absent).

Keys that already exist carry their real ARN and id in the plan; every value equal to one of them is replaced by
the key's synthetic ARN or id, so that a bucket's ``kms_master_key_id`` still names the key declared next to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.declared import IacContext, IacError, Unit
from kmsguard.iac.tf_funcs import unknown_value
from kmsguard.iac.tf_hcl import read_source
from kmsguard.iac.tf_map import KEY_TYPES, NOT_COMPUTED, ResView, build_world, computed_attr

# Arguments that hold a reference to another resource (a key; a bucket, principal or policy that an encryption
# configuration, grant or attachment applies to): where an unknown value is resolved through the configuration's
# references. Elsewhere (a policy built with jsonencode) one reference among others says nothing of the value.
_REF_ATTRS = frozenset(
    {"kms_key_id", "kms_master_key_id", "kms_key_arn", "target_key_id", "key_id", "key_arn", "primary_key_arn"}
    | {"bucket", "role", "user", "group", "policy_arn", "grantee_principal", "retiring_principal"}
)
_REF = re.compile(r"^((?:data\.)?[A-Za-z0-9_]+\.[A-Za-z0-9_-]+)(\[[^\]]*\])?\.([A-Za-z0-9_]+)")
_ADDRESS = re.compile(r'"address"\s*:\s*"((?:[^"\\]|\\.)*)"')
_MODULE_CALL = re.compile(r"module\.([^.\[]+)(?:\[[^\]]*\])?\.")


def is_terraform_plan(data: object) -> bool:
    """Whether parsed JSON is ``terraform show -json`` output of a plan."""
    return (
        isinstance(data, dict)
        and ("planned_values" in data or "resource_changes" in data)
        and ("terraform_version" in data or "format_version" in data)
    )


@dataclass
class _Res:
    address: str
    type: str
    name: str
    values: dict[str, Any]


def load_terraform_plan(path: Path, rel: str, ctx: IacContext, side: Literal["after", "before"] = "after") -> Unit:
    src = read_source(path, rel)
    try:
        data = loads_json(src.text)
    except LoadError as e:
        raise IacError(rel, e.line, e.within_line()) from None
    if not is_terraform_plan(data):
        raise IacError(rel, None, "not a Terraform plan (the output of terraform show -json)")
    plan = _Plan(data, rel, ctx)
    resources = plan.after() if side == "after" else plan.before()
    _to_synthetic(resources, ctx)
    lines = _address_lines(src.text)
    views = [
        ResView(
            address=r.address,
            type=r.type,
            file=rel,
            line=lines.get(r.address, 1),
            attrs=r.values,
            default_tags=partial(_tags_all, r.values),
        )
        for r in resources
    ]
    return Unit(file=rel, kind="terraform-plan", worlds=[build_world(ctx, "", views)])


class _Plan:
    def __init__(self, data: dict[str, Any], rel: str, ctx: IacContext) -> None:
        self.data, self.rel, self.ctx = data, rel, ctx

    def _bad(self, where: str, expected: str) -> IacError:
        return IacError(self.rel, None, f"{where}: expected {expected}")

    def _dict(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._bad(where, "an object")
        return value

    def _list(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(where, "a list")
        return value

    def _res(self, raw: Any, values: Any, where: str) -> _Res:
        entry = self._dict(raw, where)
        address, rtype, name = (entry.get(k) for k in ("address", "type", "name"))
        if not (isinstance(address, str) and isinstance(rtype, str) and isinstance(name, str)):
            raise self._bad(where, "address, type and name strings")
        return _Res(address, rtype, name, dict(self._dict(values, f"{where}.values")))

    def _changes(self) -> list[dict[str, Any]]:
        changes = self._list(self.data.get("resource_changes"), "resource_changes")
        return [self._dict(c, f"resource_changes[{i}]") for i, c in enumerate(changes)]

    def before(self) -> list[_Res]:
        out = []
        for i, rc in enumerate(self._changes()):
            before = self._dict(rc.get("change"), f"resource_changes[{i}].change").get("before")
            if rc.get("mode", "managed") == "managed" and before is not None:
                out.append(self._res(rc, before, f"resource_changes[{i}]"))
        return out

    def after(self) -> list[_Res]:
        unknown_by_address = {
            rc["address"]: self._dict(rc.get("change"), f"resource_changes[{i}].change").get("after_unknown")
            for i, rc in enumerate(self._changes())
            if isinstance(rc.get("address"), str)
        }
        root = self._dict(self._dict(self.data.get("planned_values"), "planned_values").get("root_module"), "root")
        out = []
        for where, raw in self._walk(root, "planned_values.root_module"):
            if not isinstance(raw, dict):
                raise self._bad(where, "an object")
            if raw.get("mode", "managed") == "managed":
                out.append(self._res(raw, raw.get("values"), where))
        for res in out:
            unknown = unknown_by_address.get(res.address)
            if unknown:
                res.values = _overlay(res.values, unknown, [], lambda path, r=res: self._unknown(r, path, out))
        return out

    def _walk(self, module: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
        stack = [(module, where)]
        while stack:
            mod, at = stack.pop()
            for i, raw in enumerate(self._list(mod.get("resources"), f"{at}.resources")):
                yield f"{at}.resources[{i}]", raw
            children = self._list(mod.get("child_modules"), f"{at}.child_modules")
            for i, child in reversed(list(enumerate(children))):
                stack.append((self._dict(child, f"{at}.child_modules[{i}]"), f"{at}.child_modules[{i}]"))

    def _unknown(self, res: _Res, path: list[str | int], planned: list[_Res]) -> Any:
        """An after_unknown value: a key reference the configuration names, or an unknown naming it."""
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        fallback = unknown_value(f"{res.address}{dotted} (known after apply)")
        if path == ["policy"] and res.type in KEY_TYPES and self._unset_in_configuration(res, "policy"):
            # No policy written for the key: AWS gives it the default key policy, which the plan shows as
            # "known after apply". Read as unset (the default policy), not as any policy.
            return None
        if not path or path[-1] not in _REF_ATTRS:
            return fallback
        node: Any = self._expressions(res)
        for p in path:
            if isinstance(node, list) and node:
                node = node[min(p, len(node) - 1)] if isinstance(p, int) else node[0]
            if isinstance(p, str):
                node = node.get(p) if isinstance(node, dict) else None
        refs = node.get("references") if isinstance(node, dict) else None
        target = self._referenced(res, refs if isinstance(refs, list) else [], planned)
        return fallback if target is None else target

    def _unset_in_configuration(self, res: _Res, attr: str) -> bool:
        """True when the plan carries the resource's configuration and it does not set ``attr``."""
        found = self._configured(res)
        return found is not None and attr not in found

    def _expressions(self, res: _Res) -> dict[str, Any]:
        """The configuration's expressions of ``res`` (its module's block for ``type.name``)."""
        return self._configured(res) or {}

    def _configured(self, res: _Res) -> dict[str, Any] | None:
        """``res``'s expressions in the plan's configuration; None when the configuration does not have it."""
        config = self._dict(self.data.get("configuration"), "configuration")
        module = config.get("root_module")
        for call in _MODULE_CALL.findall(_module_prefix(res.address)):
            calls = module.get("module_calls") if isinstance(module, dict) else None
            called = calls.get(call) if isinstance(calls, dict) else None
            module = called.get("module") if isinstance(called, dict) else None
        resources = module.get("resources") if isinstance(module, dict) else None
        for r in resources if isinstance(resources, list) else []:
            if isinstance(r, dict) and r.get("address") == f"{res.type}.{res.name}":
                found = r.get("expressions")
                return found if isinstance(found, dict) else {}
        return None

    def _referenced(self, res: _Res, refs: list[Any], planned: list[_Res]) -> Any:
        """The synthetic value of the one resource attribute ``refs`` name (a key's ARN, a bucket's name), or
        None when they name more than one or one kmsguard cannot know."""
        named = {m.groups() for m in (_REF.match(r) for r in refs if isinstance(r, str)) if m is not None}
        if len(named) != 1:
            return None
        base, index, attr = next(iter(named))
        prefix = _module_prefix(res.address)
        exact = f"{prefix}{base}{index or ''}"
        instances = [r for r in planned if r.address == prefix + base or r.address.startswith(f"{prefix}{base}[")]
        candidates = [r for r in planned if r.address == exact] or ([] if index else instances)
        if len(candidates) != 1:
            return None
        target = candidates[0]
        value = computed_attr(target.type, target.address, attr, target.values.get, self.ctx)
        return None if value is NOT_COMPUTED else value


def _tags_all(values: dict[str, Any]) -> Any:
    """tags_all holds the provider's default_tags too, when the plan knows it."""
    found = values.get("tags_all")
    return found if isinstance(found, dict) else None


def _module_prefix(address: str) -> str:
    """``module.a[0].module.b.`` of ``module.a[0].module.b.aws_kms_key.k`` ("" at the root)."""
    m = re.match(r"^(?:module\.[^.\[]+(?:\[[^\]]*\])?\.)*", address)
    return m.group() if m else ""


def _overlay(values: Any, unknown: Any, path: list[str | int], resolve: Any) -> Any:
    """``values`` with every position ``after_unknown`` marks true replaced by ``resolve(path)``."""
    if unknown is True:
        return resolve(path)
    if isinstance(unknown, dict):
        out = dict(values) if isinstance(values, dict) else {}
        for k, u in unknown.items():
            if u is not False and u != {} and u != []:
                out[k] = _overlay(out.get(k), u, [*path, k], resolve)
        return out
    if isinstance(unknown, list):
        items = list(values) if isinstance(values, list) else []
        for i, u in enumerate(unknown):
            if u is False or u == {} or u == []:
                continue
            items.extend([None] * (i + 1 - len(items)))
            items[i] = _overlay(items[i], u, [*path, i], resolve)
        return items
    return values


def _to_synthetic(resources: list[_Res], ctx: IacContext) -> None:
    """Replace the real ARN and id of every key in the plan by its synthetic ones, wherever they appear."""
    real: dict[str, str] = {}
    for r in resources:
        if r.type in KEY_TYPES:
            for attr, synthetic in (("arn", ctx.key_arn(r.address)), ("key_id", r.address), ("id", r.address)):
                value = r.values.get(attr)
                if isinstance(value, str) and value:
                    real[value] = synthetic
    if not real:
        return
    for r in resources:
        r.values = _replace(r.values, real)


def _replace(value: Any, real: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return real.get(value, value)
    if isinstance(value, list):
        return [_replace(v, real) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, real) for k, v in value.items()}
    return value


def _address_lines(text: str) -> dict[str, int]:
    """The line of the first ``"address": "..."`` of every address in the plan's text."""
    lines: dict[str, int] = {}
    line, pos = 1, 0
    for m in _ADDRESS.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        try:
            address = loads_json(f'"{m.group(1)}"')
        except LoadError:
            continue
        if isinstance(address, str):
            lines.setdefault(address, line)
    return lines
