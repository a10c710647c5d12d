"""Find the templates under the paths given to `kmsguard iac`, and load each into a Unit.

- A directory holding ``*.tf`` files is one Terraform unit (a module); sub-directories are units of their own.
- A ``.json`` file that is a Terraform plan (``terraform show -json``) is a plan unit.
- Every other ``.yaml``, ``.yml``, ``.json`` and ``.template`` file is a CloudFormation candidate: the loader
  decides whether it is a template (CDK's ``cdk.out/*.template.json`` are; its ``manifest.json`` is not).
- Skipped while walking: hidden directories (``.git``, ``.terraform``...), ``node_modules``, ``__pycache__``;
  symbolic links to directories are not followed (a loop must not hang the scan).

File names in locations are relative to ``root`` (the current directory by default, so that code scanning
annotates the right file of the repository), or to the path given when a file lies outside ``root``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kmsguard.iac.declared import IacContext, IacError, Unit

CFN_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".template"})
_SKIP_DIRS = frozenset({"node_modules", "__pycache__"})
_PLAN_SNIFF = 64 * 1024


@dataclass(frozen=True)
class Source:
    """One thing to load: a CloudFormation candidate, a Terraform directory or a plan file."""

    kind: Literal["cloudformation", "terraform", "terraform-plan"]
    path: Path
    rel: str


def relative(path: Path, root: Path, given: Path) -> str:
    """``path`` relative to ``root`` (POSIX), or to the given path's directory when outside ``root``."""
    resolved = path.resolve()
    for base in (root.resolve(), (given if given.is_dir() else given.parent).resolve()):
        try:
            rel = resolved.relative_to(base).as_posix()
        except ValueError:
            continue
        return rel or "."
    return path.as_posix()


def sources(paths: Iterable[Path], root: Path) -> list[Source]:
    """Every unit under ``paths``, in a stable order; FileNotFoundError names a path that does not exist."""
    found: dict[tuple[str, Path], Source] = {}
    for given in paths:
        if not given.exists():
            raise FileNotFoundError(f"{given}: no such file or directory")
        for src in _walk(given, root):
            found.setdefault((src.kind, src.path.resolve()), src)
    return sorted(found.values(), key=lambda s: (s.rel, s.kind))


def _walk(given: Path, root: Path) -> Iterator[Source]:
    if given.is_file():
        if given.suffix == ".tf":
            yield Source("terraform", given.parent, relative(given.parent, root, given.parent))
        else:
            yield _file_source(given, relative(given, root, given))
        return
    for dirpath, dirnames, filenames in os.walk(given):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        here = Path(dirpath)
        if any(name.endswith(".tf") for name in filenames):
            yield Source("terraform", here, relative(here, root, given))
        for name in sorted(filenames):
            path = here / name
            if path.suffix in CFN_SUFFIXES and not path.is_symlink():
                yield _file_source(path, relative(path, root, given))


def _file_source(path: Path, rel: str) -> Source:
    if path.suffix == ".json" and _looks_like_plan(path):
        return Source("terraform-plan", path, rel)
    return Source("cloudformation", path, rel)


def _looks_like_plan(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(_PLAN_SNIFF)
    except OSError:
        return False
    return b'"terraform_version"' in head and (b'"planned_values"' in head or b'"resource_changes"' in head)


def load(src: Source, ctx: IacContext, side: Literal["after", "before"] = "after") -> Unit | None:
    """The unit at ``src`` (None: a YAML/JSON file that is not a CloudFormation template). IacError for a
    template that cannot be read; an OSError, or an error no loader expected, is turned into one too, naming the
    file."""
    try:
        if src.kind == "terraform":
            from kmsguard.iac.terraform import load_terraform_dir

            return load_terraform_dir(src.path, src.rel, ctx)
        if src.kind == "terraform-plan":
            from kmsguard.iac.terraform import load_terraform_plan

            return load_terraform_plan(src.path, src.rel, ctx, side)
        from kmsguard.iac.cfn import load_cloudformation

        return load_cloudformation(src.path, src.rel, ctx)
    except IacError:
        raise
    except OSError as e:
        raise IacError(src.rel, None, f"cannot read: {e.strerror or e}") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError, RecursionError) as e:
        # The loaders turn every problem they know of into an IacError naming the line; anything else is a shape
        # they did not expect. The run must still stop with exit 2 naming the file, never a traceback.
        what = f"{type(e).__name__}: {e}"[:300]
        raise IacError(src.rel, None, f"cannot be read as a template ({what}); please report it") from None
