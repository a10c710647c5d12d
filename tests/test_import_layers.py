"""The import layers ARCHITECTURE.md draws, held true: a module imports only from its own package and from packages
in layers below its own, with the few sideways imports listed here, each with its reason.

Every import counts: module level, inside functions (lazy imports are still dependencies) and under
``TYPE_CHECKING``. Read with ``ast``: nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kmsguard"

# Bottom to top. A unit is a package (a directory under kmsguard/) or a top-level module; ``compliance.mapping``
# is its own unit because the check registry reads the control table while ``compliance.assess`` reads checks.
LAYERS: list[set[str]] = [
    {"kmsguard", "arn", "fileio", "gunzip", "timings"},  # ARNs and partitions, reading files, bounded gunzip
    {"model"},  # the Snapshot, findings, trail facts, usage: plain typed data
    {"mutes", "config", "compliance.mapping", "aws"},  # settings, the control table, boto3 sessions
    {"policy"},  # the policy engine and the KMS vocabulary
    {"checks", "collect", "config_file"},  # judging a Snapshot; reading AWS into one
    {"pipeline", "spool", "snapshot_io"},  # the one pipeline and its files
    {"trail", "report", "iac", "fix", "provision", "monitoring_setup", "store", "compliance"},  # capabilities
    {"monitor", "web", "demo"},  # long-running services and the demo
    {"cli"},
]

# Imports between units of one layer, allowed one way only.
SIDEWAYS: dict[tuple[str, str], str] = {
    ("config", "mutes"): "the configuration holds the mutes",
    ("config_file", "checks"): "kmsguard.yaml is validated against the registry's check ids",
    ("report", "compliance"): "framework reports render compliance.assess's control assessments",
    ("web", "store"): "the dashboard reads the store",
    ("monitor", "store"): "the monitor writes the store",
    ("web", "report"): "the dashboard serves the framework reports",
    ("monitor", "trail"): "monitor --trail",
    ("demo", "monitoring_setup"): "the demo estate seeds the guide's alarms",
}

# Imports the layers would allow but the design forbids.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("trail", "checks"): "trail produces facts (Snapshot.trail); the trail family of checks judges them",
}


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[:2] == ["kmsguard", "compliance"] and len(parts) > 2 and parts[2] == "mapping":
        return "compliance.mapping"
    return parts[1] if len(parts) > 1 else "kmsguard"


def _layer(unit: str) -> int:
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS (and to ARCHITECTURE.md)")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every kmsguard import in ``path``."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kmsguard":
            if node.module == "kmsguard":  # from kmsguard import X: X is a unit (or __version__)
                out += [
                    (node.lineno, f"kmsguard.{a.name}" if a.name != "__version__" else "kmsguard") for a in node.names
                ]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "kmsguard"]
    return out


def _module_of(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _violations(root: Path = SRC) -> list[str]:
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        here = _unit(_module_of(path, root))
        for line, target in _imports(path):
            there = _unit(target)
            if there == here or (here == "compliance" and there == "compliance.mapping"):
                continue
            where = f"{path.relative_to(root.parent)}:{line} imports {target}"
            if (here, there) in FORBIDDEN:
                bad.append(f"{where}: forbidden ({FORBIDDEN[here, there]})")
            elif _layer(there) > _layer(here):
                bad.append(f"{where}: {there} is in a layer above {here}")
            elif _layer(there) == _layer(here) and (here, there) not in SIDEWAYS:
                bad.append(f"{where}: {here} and {there} are in one layer; list the import in SIDEWAYS with a reason")
    return bad


def test_every_import_goes_down_the_layers() -> None:
    assert _violations() == []


def test_the_rules_are_live() -> None:
    # Every sideways allowance is still used: a stale one would let a future import through unexplained.
    used = {
        (_unit(_module_of(p)), _unit(t)) for p in SRC.rglob("*.py") for _, t in _imports(p) if _unit(t) != "kmsguard"
    }
    assert set(SIDEWAYS) <= used, sorted(set(SIDEWAYS) - used)
    # Every unit on disk is in a layer.
    on_disk = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    on_disk |= {p.stem for p in SRC.glob("*.py") if p.stem not in {"__init__", "__main__", "py"}}
    for unit in on_disk:
        _layer(unit)


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("from kmsguard.cli.main import app\n", False),  # model -> cli: up the layers
        ("from kmsguard.arn import parse\n", True),  # model -> arn: down
        ("def f():\n    import kmsguard.trail.decode\n", False),  # a lazy import counts
    ],
)
def test_the_checker_catches_an_upward_import(tmp_path: Path, source: str, ok: bool) -> None:
    # The probe lives in a copy of the layout under tmp_path: the source tree is never written to.
    root = tmp_path / "kmsguard"
    (root / "model").mkdir(parents=True)
    (root / "model" / "probe.py").write_text(source, encoding="utf-8")
    found = _violations(root)
    assert (found == []) is ok, found
