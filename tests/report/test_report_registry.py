"""The format registry (report/registry.py): the one list render, write, STREAMED and --format derive from."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from kmsguard.model.result import ScanResult
from kmsguard.report import CHOICES, FORMATS, STREAMED, render, write
from kmsguard.report.registry import REGISTRY, get


def test_the_lists_derive_from_the_registry() -> None:
    assert CHOICES == ["table", "json", "sarif", "csv", "junit", "markdown", "ocsf", "asff"]
    assert CHOICES[1:] == FORMATS  # the table is shown, never a report file
    assert {"json", "sarif", "csv"} == STREAMED
    assert set(REGISTRY) == set(CHOICES)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_format_renders_through_its_entry(name: str, result: ScanResult) -> None:
    text = render(result, name)
    assert text and text == get(name).render(result)


@pytest.mark.parametrize("name", sorted(STREAMED))
def test_a_streamed_format_writes_what_it_renders(name: str, result: ScanResult) -> None:
    out = io.StringIO(newline="")
    write(result, name, out)
    assert out.getvalue() == render(result, name)


def test_unknown_and_unstreamed_formats_are_named(result: ScanResult) -> None:
    with pytest.raises(ValueError, match=r"unknown format 'yaml' \(one of table, json, sarif"):
        render(result, "yaml")
    with pytest.raises(ValueError, match=r"format 'junit' is not written as a stream \(one of csv, json, sarif\)"):
        write(result, "junit", io.StringIO())


def test_choosing_a_format_imports_only_its_module() -> None:
    code = (
        "import sys; from kmsguard.report import registry; registry.get('json'); "
        "print(sorted(m for m in sys.modules if m.startswith('kmsguard.report.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['kmsguard.report.registry']"
