"""`--config kmsguard.yaml` (settings and mutes) on hostile files: exit 2 naming the file, or a result."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from . import seeds
from .harness import Tally, budget, run
from .mutations import byte_mutants, tree_mutants, yaml_text

# YAML that is valid and still hostile: aliases that expand nine-fold per level, nesting past any recursion
# limit, Python object tags, a key repeated, a merge of a scalar.
YAML_BOMBS = [
    b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + b"".join(b"%c: &%c [" % (98 + i, 98 + i) + b",".join([b"*%c" % (97 + i)] * 9) + b"]\n" for i in range(8))
    + b"required_tags: *i\n",
    b"required_tags: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    b"mutes:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 2000)),
    b"trusted_accounts: !!python/object/apply:os.getcwd []\n",
    b"max_rotation_days: 90\nmax_rotation_days: 2560\n",
    b"<<: 1\n",
    b"max_rotation_days: " + b"9" * 5000 + b"\n",
    b"mutes:\n  - reason: r\n    expires: 9999-99-99\n",
    b"mutes:\n  - reason: r\n    expires: 0001-01-01\n",
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config")
    (path / "snapshot.json").write_bytes(seeds.snapshot_files()[1])
    return path


def with_config(tally: Tally, work: Path, data: bytes) -> None:
    """The config is read by every judging command; a scan of a saved snapshot is the quickest of them."""
    path = work / "kmsguard.yaml"
    path.write_bytes(data)
    args: list[str | Path] = [
        "scan",
        "--from-snapshot",
        work / "snapshot.json",
        "--config",
        path,
        "-f",
        "json",
        "-o",
        work / "out",
        "-q",
    ]
    run(tally, args, [path])


@budget(80)
@given(data=byte_mutants(seeds.config_files()))
def test_byte_mutated_configs(work: Path, tally: Tally, data: bytes) -> None:
    with_config(tally, work, data)


@budget(80)
@given(data=tree_mutants(seeds.configs(), yaml_text))
def test_configs_with_wrong_types_and_hostile_values(work: Path, tally: Tally, data: bytes) -> None:
    with_config(tally, work, data)


@pytest.mark.parametrize("data", YAML_BOMBS, ids=range(len(YAML_BOMBS)))
def test_valid_but_hostile_yaml(work: Path, tally: Tally, data: bytes) -> None:
    with_config(tally, work, data)
