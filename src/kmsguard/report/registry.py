"""The report formats, by name: the one list ``render``, ``write``, ``STREAMED`` and the CLI's ``--format``
choices derive from.

A format is a module of this package with ``render(result) -> str`` under its ``render`` name and, when it can
be written as its findings are read, ``write(result, out)`` under its ``write`` name. The registry names the
module and functions rather than holding them, so choosing a format imports only its module: `kmsguard scan -f
json` should not pay for rich tables or the check registry, and `kmsguard checks` / `--version` for none.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

if TYPE_CHECKING:
    from kmsguard.model.result import Judged, ScanResult


@dataclass(frozen=True)
class Format:
    name: str
    module: str  # under kmsguard.report
    extension: str  # of a file holding the report, without the dot
    render_name: str  # ``(ScanResult) -> str``
    write_name: str | None = None  # ``(Judged, TextIO) -> None``, byte for byte what render gives
    to_file: bool = True  # False: the terminal's table, which is not a file format

    @property
    def streamed(self) -> bool:
        return self.write_name is not None

    def render(self, result: ScanResult) -> str:
        return cast("Callable[[ScanResult], str]", self._function(self.render_name))(result)

    def write(self, result: Judged, out: TextIO) -> None:
        if self.write_name is None:
            raise not_streamed(self.name)
        cast("Callable[[Judged, TextIO], None]", self._function(self.write_name))(result, out)

    def _function(self, name: str) -> object:
        return getattr(importlib.import_module(f"kmsguard.report.{self.module}"), name)


# In the order the CLI lists them.
_ALL = (
    Format("table", "table", "txt", "render_table", to_file=False),
    Format("json", "json_out", "json", "render_json", "write_json"),
    Format("sarif", "sarif", "sarif", "render_sarif", "write_sarif"),
    Format("csv", "csv_out", "csv", "render_csv", "write_csv"),
    Format("junit", "junit", "xml", "render_junit"),
    Format("markdown", "markdown", "md", "render_markdown"),
    Format("ocsf", "ocsf", "json", "render_ocsf"),
    Format("asff", "asff", "json", "render_asff"),
)
REGISTRY: dict[str, Format] = {f.name: f for f in _ALL}

FORMATS = [f.name for f in _ALL if f.to_file]  # what a report file can be
CHOICES = [f.name for f in _ALL]  # what --format accepts where the table is shown too
STREAMED = frozenset(f.name for f in _ALL if f.streamed)


def get(name: str) -> Format:
    """The format called ``name``; a ValueError names an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r} (one of {', '.join(CHOICES)})") from None


def not_streamed(name: str) -> ValueError:
    return ValueError(f"format {name!r} is not written as a stream (one of {', '.join(sorted(STREAMED))})")
