"""The Terraform loader: a directory of ``.tf`` files (one module) or a plan's JSON -> a ``Unit`` of worlds.

A directory is read as Terraform reads a module: every ``*.tf`` file in it (not its sub-directories: each is a
module of its own, and discovery scans it as its own unit), then ``terraform.tfvars``, ``terraform.tfvars.json``
and ``*.auto.tfvars[.json]`` in that order over the variables' defaults (other ``*.tfvars`` files are only read
with ``-var-file``, so they are not applied here). Override files (``override.tf``, ``*_override.tf``) are read
after the others and merged into the blocks they override, as Terraform does. ``module`` blocks are not
followed: their outputs are unknowns, and the module's directory, when local, is scanned as its own unit.

Worlds: the conditions of ternaries, and the counts and for_each, that depend on deploy-time input (``tf_eval``)
are enumerated, up to MAX_CONDITIONS of them, each world evaluated from scratch; conditions beyond take their
value under the defaults and the label says how many did. Plans (``tf_plan``) have one world.
"""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.declared import Declared, IacContext, IacError, Unit
from kmsguard.iac.tf_eval import Evaluator, Module
from kmsguard.iac.tf_hcl import Block, parse_file, read_source
from kmsguard.iac.tf_map import HANDLERS, ResView, build_world
from kmsguard.iac.tf_plan import is_terraform_plan, load_terraform_plan

__all__ = ["MAX_CONDITIONS", "is_terraform_plan", "load_terraform_dir", "load_terraform_plan"]

MAX_CONDITIONS = 5  # 2^5 = 32 worlds at most


def load_terraform_dir(directory: Path, rel: str, ctx: IacContext) -> Unit:
    """Every ``*.tf`` file of ``directory`` (``rel``: the directory relative to the scanned root, "." for it)."""
    module = load_module(directory, rel)
    return Unit(file=rel, kind="terraform", worlds=_worlds(module, ctx))


def _file(rel: str, name: str) -> str:
    return str(PurePosixPath(rel) / name)


def load_module(directory: Path, rel: str) -> Module:
    module = Module(dir=rel)
    paths = sorted(p for p in directory.glob("*.tf") if p.is_file())
    # Terraform reads the override files last (in name order), whatever their names sort as.
    for path in [*(p for p in paths if not _is_override(p)), *(p for p in paths if _is_override(p))]:
        attrs, blocks = parse_file(read_source(path, _file(rel, path.name)))
        if attrs:
            first = min(attrs.values(), key=lambda e: e.line or 0)
            raise IacError(first.src.file, first.line, "an argument outside any block")
        for block in blocks:
            if _is_override(path):
                _override(module, block)
            else:
                _declare(module, block)
    for path in _tfvars_files(directory):
        module.var_values.update(_tfvars(path, _file(rel, path.name)))
    return module


def _declare(module: Module, block: Block) -> None:
    kind, labels = block.kind, block.labels
    if kind == "locals":
        for name, expr in block.attrs.items():
            _add(module.locals, name, expr, block, f"local.{name}")
        return
    expected = {"variable": 1, "resource": 2, "data": 2, "provider": 1}.get(kind)
    if expected is None:
        return  # terraform, output, module (see the module docstring), moved, import, check, ...
    if len(labels) != expected:
        raise IacError(block.src.file, block.line, f"a {kind} block with {len(labels)} labels (expected {expected})")
    if kind == "variable":
        _add(module.variables, labels[0], block, block, f"variable {labels[0]}")
    elif kind == "provider":
        alias = block.attrs.get("alias")
        key = f"{labels[0]}.{alias.text.strip(chr(34))}" if alias is not None else labels[0]
        _add(module.providers, key, block, block, f"provider {key}")
    else:
        address = ".".join(labels) if kind == "resource" else f"data.{'.'.join(labels)}"
        _add(module.resources if kind == "resource" else module.data, address, block, block, address)


def _add(table: dict[str, Any], name: str, value: Any, block: Block, what: str) -> None:
    if name in table:
        raise IacError(block.src.file, block.line, f"{what} is declared twice")
    table[name] = value


# --- override files (https://developer.hashicorp.com/terraform/language/files/override) ---------------------


def _is_override(path: Path) -> bool:
    return path.name == "override.tf" or path.name.endswith("_override.tf")


def _override(module: Module, block: Block) -> None:
    """Merge an override file's block into the block it overrides (Terraform refuses one that overrides
    nothing). Blocks the loader does not read (terraform, output, module, ...) are not merged either."""
    if block.kind == "locals":
        for name, expr in block.attrs.items():
            _check_overrides(module.locals, name, block, f"local.{name}")
            module.locals[name] = expr
        return
    # A declaration's checks and table, on a scratch module, tell which table and name the block has.
    scratch = Module(dir=module.dir)
    _declare(scratch, block)
    for table, mine in (
        (module.variables, scratch.variables),
        (module.resources, scratch.resources),
        (module.data, scratch.data),
        (module.providers, scratch.providers),
    ):
        for name in mine:
            _check_overrides(table, name, block, name if block.kind in ("resource", "data") else f"{block.kind} {name}")
            table[name] = _merged(table[name], block)


def _check_overrides(table: dict[str, Any], name: str, block: Block, what: str) -> None:
    if name not in table:
        raise IacError(block.src.file, block.line, f"{what} is overridden but declared in no other file")


def _merged(original: Block, override: Block) -> Block:
    """Each argument of ``override`` replaces the original's; its nested blocks of a type replace all the
    original's blocks of that type (static or dynamic), except ``lifecycle``, merged argument by argument."""
    kinds = {_nested_kind(b) for b in override.blocks}
    blocks = [b for b in original.blocks if _nested_kind(b) not in kinds]
    for b in override.blocks:
        old = next((o for o in original.blocks if o.kind == b.kind == "lifecycle"), None)
        blocks.append(_merged(old, b) if old is not None else b)
    return Block(
        kind=original.kind,
        labels=original.labels,
        attrs={**original.attrs, **override.attrs},
        src=original.src,
        line=original.line,
        blocks=blocks,
    )


def _nested_kind(block: Block) -> str:
    return block.labels[0] if block.kind == "dynamic" and block.labels else block.kind


def _tfvars_files(directory: Path) -> list[Path]:
    names = ["terraform.tfvars", "terraform.tfvars.json"]
    auto = sorted(
        p.name for p in directory.iterdir() if p.name.endswith((".auto.tfvars", ".auto.tfvars.json")) and p.is_file()
    )
    return [directory / n for n in [*names, *auto] if (directory / n).is_file()]


def _tfvars(path: Path, file: str) -> dict[str, Any]:
    """A variables file: name -> Expr (HCL) or value (JSON)."""
    src = read_source(path, file)
    if not file.endswith(".json"):
        attrs, blocks = parse_file(src)
        if blocks:
            raise IacError(file, blocks[0].line, "a block in a variables file")
        return dict(attrs)
    try:
        data = loads_json(src.text)
    except LoadError as e:
        raise IacError(file, e.line, e.within_line()) from None
    if not isinstance(data, dict):
        raise IacError(file, None, "a variables file must hold one JSON object")
    return data


# --- worlds -------------------------------------------------------------------------------------------------


def _worlds(module: Module, ctx: IacContext) -> list[Declared]:
    atoms: dict[str, bool] = {}  # condition text -> value under the defaults, in the order first met
    while True:
        chosen = list(atoms)[:MAX_CONDITIONS]
        worlds: list[tuple[dict[str, bool], Declared]] = []
        restart = False
        for values in itertools.product((True, False), repeat=len(chosen)):
            assignment = dict(zip(chosen, values, strict=True))
            ev = Evaluator(module, ctx, assignment)
            declared = _world(ev, module, ctx)
            for text, default in ev.atoms_seen.items():
                if text not in atoms:
                    atoms[text] = default
                    restart = restart or len(chosen) < MAX_CONDITIONS
            if restart:
                break  # a condition met only now: enumerate again with it
            worlds.append((assignment, declared))
        if not restart:
            break
    extra = len(atoms) - len(chosen)
    for assignment, declared in worlds:
        declared.label = _label(assignment, extra)
    return [declared for _, declared in worlds]


def _label(assignment: dict[str, bool], extra: int) -> str:
    label = ", ".join(f"{text}={'true' if value else 'false'}" for text, value in assignment.items())
    if extra:
        label += f" (+{extra} conditions at their defaults)"
    return label


def _world(ev: Evaluator, module: Module, ctx: IacContext) -> Declared:
    try:
        return build_world(ctx, "", _views(ev, module))
    except RecursionError:  # a backstop: tf_eval bounds depth well before Python's limit
        raise IacError(module.dir, None, "expressions nested too deeply to evaluate") from None


def _views(ev: Evaluator, module: Module) -> list[ResView]:
    return [
        ResView(
            address=address,
            type=block.labels[0],
            file=block.src.file,
            line=block.line,
            attrs=ev.body(address),
            default_tags=partial(ev.default_tags, address),
        )
        for address, block in module.resources.items()
        # Unmapped types are not evaluated at all: their conditions do not make worlds.
        if block.labels[0] in HANDLERS and ev.present(address)
    ]
