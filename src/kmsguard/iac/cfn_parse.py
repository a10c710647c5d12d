"""Reading a CloudFormation template: bytes to a checked ``Template`` (or None when the file is not one).

JSON templates (CDK's ``cdk.out/*.template.json`` among them) go through ``fileio.loads_json``; YAML through a
loader that turns the short-form tags (``!Ref``, ``!Sub``, ``!GetAtt``, ...) into their long form and keeps
dates such as ``2012-10-17`` as the strings CloudFormation reads them as. Each resource's line is the line
of its logical id under ``Resources``: from the YAML nodes, or for JSON from a scan of the text's tokens.

Hostile input stays bounded: files over ``MAX_BYTES``, bytes that are not UTF-8, nesting deeper than
``fileio.MAX_DEPTH`` (also through YAML aliases) and aliases that expand to more than ``MAX_NODES`` values
are ``IacError``s naming the file and line. A file that does not parse is an error only when its text looks
like a template; otherwise it is some other YAML or JSON file and the answer is None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from kmsguard import fileio
from kmsguard.fileio import MAX_DEPTH, LoadError
from kmsguard.iac.declared import IacError

MAX_BYTES = 20 * 1024 * 1024
# What aliases may expand a YAML document to. CloudFormation takes templates of 1 MB at most, far fewer
# values than this; a "billion laughs" document passes it within a few levels.
MAX_NODES = 1_000_000
# PyYAML reads 100,000 to 300,000 values a second (without or with libyaml; JSON's C parser far more): a YAML
# file with more lines and list items than this is refused before parsing, so that no file takes more than a
# few seconds. A template CloudFormation accepts (1 MB at most) has a few tens of thousands.
MAX_YAML_ITEMS = 200_000
_SNIFF_BYTES = 1024 * 1024
# The sections whose keys get a line (resources for locations; the others for error messages).
_SECTIONS = ("Parameters", "Mappings", "Conditions", "Resources")
# libyaml when PyYAML was built with it: ten times faster. It refuses escaped surrogates and nesting beyond
# 1,000 levels itself (without recursing in Python); the pure-Python parser needs fileio's check first.
_LIBYAML = hasattr(yaml, "CSafeLoader")


@dataclass
class Template:
    """A template's sections as plain data, with the line of every section and of every key inside one."""

    rel: str
    parameters: dict[str, Any]
    mappings: dict[str, Any]
    conditions: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    lines: dict[str, dict[str, int]] = field(default_factory=dict)  # section -> key -> 1-based line
    section_lines: dict[str, int] = field(default_factory=dict)

    def line(self, name: str, section: str = "Resources") -> int | None:
        return self.lines.get(section, {}).get(name) or self.section_lines.get(section)


def read_template(path: Path, rel: str) -> Template | None:
    """The template in ``path``; None when the file is not a CloudFormation template. IacError: a template
    (or something that looks like one) that cannot be read."""
    raw = _read_bytes(path, rel)
    if raw is None:
        return None
    try:
        text = fileio.decode_utf8(raw)
    except LoadError as e:
        if _looks_like_template(raw.decode("utf-8", "replace")):
            raise _error(rel, e) from None
        return None
    text = text.removeprefix("\ufeff")
    as_json = path.suffix.lower() == ".json" or text.lstrip().startswith("{")
    try:
        data, lines, section_lines = _parse_json(text) if as_json else _parse_yaml(text, rel)
    except LoadError as e:
        if _looks_like_template(text):
            raise _error(rel, e) from None
        return None
    if not is_template(data):
        return None
    return _checked(data, rel, lines, section_lines)


def is_template(data: Any) -> bool:
    """A mapping with ``AWSTemplateFormatVersion``, or with ``Resources`` holding something with a Type string."""
    if not isinstance(data, dict):
        return False
    if "AWSTemplateFormatVersion" in data:
        return True
    resources = data.get("Resources")
    return isinstance(resources, dict) and any(
        isinstance(r, dict) and isinstance(r.get("Type"), str) for r in resources.values()
    )


def _looks_like_template(text: str) -> bool:
    return "AWSTemplateFormatVersion" in text or ("Resources" in text and "Type" in text)


def _error(rel: str, e: LoadError) -> IacError:
    return IacError(rel, e.line, e.within_line() if e.line is not None else str(e))


def _read_bytes(path: Path, rel: str) -> bytes | None:
    """The file's bytes, read up to one byte past the limit (a huge file is never read whole)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as e:
        raise IacError(rel, None, f"cannot read: {e.strerror or e}") from None
    if len(raw) <= MAX_BYTES:
        return raw
    # Only a file that looks like a template is an error: a big data file next to templates is not ours.
    if _looks_like_template(raw[:_SNIFF_BYTES].decode("utf-8", "replace")):
        raise IacError(rel, None, f"larger than {MAX_BYTES // (1024 * 1024)} MB: not read")
    return None


def _checked(
    data: dict[Any, Any], rel: str, lines: dict[str, dict[str, int]], section_lines: dict[str, int]
) -> Template:
    """The template's sections, each the shape CloudFormation requires (IacError naming the line otherwise)."""
    sections: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        value = data.get(name, {})
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise IacError(rel, section_lines.get(name), f"{name} must be a mapping, not {_kind(value)}")
        sections[name] = {str(k): v for k, v in value.items()}
    if "Resources" not in data:
        raise IacError(rel, 1, "the template has no Resources section")
    resources: dict[str, dict[str, Any]] = {}
    for name, body in sections["Resources"].items():
        if name.startswith("Fn::ForEach::"):
            continue  # AWS::LanguageExtensions loops: their resources exist only once the transform expands them
        line = lines.get("Resources", {}).get(name)
        if not isinstance(body, dict) or not isinstance(body.get("Type"), str):
            raise IacError(rel, line, f"resource {name} has no Type")
        props = body.get("Properties")
        if props is not None and not isinstance(props, dict):
            raise IacError(rel, line, f"resource {name}: Properties must be a mapping, not {_kind(props)}")
        resources[name] = body
    return Template(
        rel=rel,
        parameters=sections["Parameters"],
        mappings=sections["Mappings"],
        conditions=sections["Conditions"],
        resources=resources,
        lines=lines,
        section_lines=section_lines,
    )


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


# --- JSON ---------------------------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', re.DOTALL)


def _parse_json(text: str) -> tuple[Any, dict[str, dict[str, int]], dict[str, int]]:
    data = fileio.loads_json(text)
    return data, *_json_lines(text)


def _json_lines(text: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The line of each top-level key and of each key one level inside a top-level section. The text has
    parsed as JSON already, so a token scan suffices: strings (whole, so brackets inside them do not count),
    brackets and colons; a string followed by a colon is a key."""
    lines: dict[str, dict[str, int]] = {}
    section_lines: dict[str, int] = {}
    depth, line, pos = 0, 1, 0
    section: str | None = None  # the top-level key whose value is being read
    pending: tuple[str, int] | None = None  # the last string seen, and its line
    for m in _JSON_TOKEN.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        tok = m.group()
        if tok == ":":
            if pending is not None:
                key, key_line = pending
                if depth == 1:
                    section = key
                    section_lines[key] = key_line
                elif depth == 2 and section in _SECTIONS:
                    lines.setdefault(section, {})[key] = key_line
            pending = None
        elif tok in "{[":
            depth += 1
            pending = None
        elif tok in "}]":
            depth -= 1
            pending = None
        else:
            pending = (_json_string(tok), line)
    return lines, section_lines


def _json_string(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    decoded = fileio.loads_json(token)
    return decoded if isinstance(decoded, str) else token[1:-1]


# --- YAML ---------------------------------------------------------------------------------------------------


def _short_form(loader: Any, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # "Res.Attr.Sub": the resource is everything up to the first dot
    return {f"Fn::{suffix}": value}


def _as_string(loader: Any, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))


def _unsupported(loader: Any, node: yaml.Node) -> None:
    raise ConstructorError(
        None, None, f"the tag {node.tag} is not supported in CloudFormation templates", node.start_mark
    )


def loader_class(base: type[Any]) -> type[Any]:
    """``base`` (libyaml's or PyYAML's SafeLoader) plus CloudFormation's short-form tags; dates stay strings,
    as CloudFormation reads them; the tags CloudFormation does not support are errors."""
    cls: Any = type("CfnLoader", (base,), {})
    cls.add_multi_constructor("!", _short_form)
    cls.add_constructor("tag:yaml.org,2002:timestamp", _as_string)
    for tag in ("binary", "omap", "pairs", "set"):
        cls.add_constructor(f"tag:yaml.org,2002:{tag}", _unsupported)
    return cls


_CfnLoader = loader_class(yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader)


def _parse_yaml(text: str, rel: str) -> tuple[Any, dict[str, dict[str, int]], dict[str, int]]:
    """(data, lines, section lines). LoadError: not YAML (or too deep, or a lone surrogate); IacError: aliases
    that expand beyond the limits."""
    items = text.count("\n") + text.count(",")
    if items > MAX_YAML_ITEMS:
        raise LoadError(f"{items:,} lines and list items, more than any template has ({MAX_YAML_ITEMS:,} at most)")
    try:
        if not _LIBYAML:
            fileio.check_yaml_events(text)  # depth and surrogates first: this composer recurses per level
        loader = _CfnLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, {}, {}
            _check_expansion(root, rel, text)
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except (IacError, LoadError):
        raise
    except yaml.YAMLError as e:
        raise _yaml_error(e) from None
    except (ValueError, OverflowError) as e:  # a scalar Python cannot hold (an integer of 5,000 digits)
        raise LoadError("a value that cannot be read", detail=str(e).splitlines()[0]) from None
    return data, *_yaml_lines(root)


def _yaml_error(e: yaml.YAMLError) -> LoadError:
    """The line where the parser gave up, and what it was reading (``while scanning a quoted scalar``) with
    the line that started it: an unterminated string fails at the end of the file, but starts here."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    detail = str(getattr(e, "problem", None) or e)
    context, context_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        detail += f" ({context} that starts at line {context_mark.line + 1})"
    return LoadError("not valid YAML", mark.line + 1 if mark is not None else None, detail=detail)


def _check_expansion(root: yaml.Node, rel: str, text: str) -> None:
    """Before anything recurses over the document: LoadError when it nests deeper than MAX_DEPTH (fileio's
    message, naming the line and column); IacError when aliases make it deeper, larger than MAX_NODES values,
    or contain themselves. Each node is measured once (aliases share nodes): linear in the text."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values inside, collection levels)
    open_nodes: set[int] = set()

    def too_deep(node: yaml.Node) -> IacError:
        fileio.check_yaml_events(text)  # raises when the text itself nests too deep
        return IacError(rel, _line(node), f"nested deeper than {MAX_DEPTH} levels (through YAML aliases)")

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        key = id(node)
        done = measured.get(key)
        if done is None:
            if key in open_nodes:
                raise IacError(rel, _line(node), "a YAML alias that contains itself")
            if level > MAX_DEPTH:
                raise too_deep(node)
            open_nodes.add(key)
            size, height = 1, 0
            children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
            for child in children:
                s, h = measure(child, level + 1)
                size, height = size + s, max(height, h)
                if size > MAX_NODES:
                    raise IacError(rel, _line(node), f"YAML aliases expand to more than {MAX_NODES:,} values")
            open_nodes.discard(key)
            done = measured[key] = (size, height + 1)
        if level - 1 + done[1] > MAX_DEPTH:
            raise too_deep(node)
        return done

    measure(root, 1)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_lines(root: yaml.Node) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    lines: dict[str, dict[str, int]] = {}
    section_lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines, section_lines
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        section_lines[key.value] = _line(key)
        if key.value in _SECTIONS and isinstance(value, yaml.MappingNode):
            found = lines.setdefault(key.value, {})
            for k, _ in value.value:
                if isinstance(k, yaml.ScalarNode):
                    found[k.value] = _line(k)  # a repeated key: the last one wins, as in the data
    return lines, section_lines
