"""Broken and hostile CloudFormation files: an IacError naming the file and the line, never a traceback, and
never a long wait. The files are under data/cloudformation/broken (the 21 MB one is written by the test)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from iac.test_cfn_loader import CTX, DATA, line_of
from kmsguard.iac import cfn_parse
from kmsguard.iac.cfn import load_cloudformation
from kmsguard.iac.cfn_parse import MAX_BYTES, MAX_YAML_ITEMS, _CfnLoader
from kmsguard.iac.declared import IacError

BROKEN = DATA / "broken"


def _error(rel: str, root: Path = DATA) -> IacError:
    with pytest.raises(IacError) as info:
        load_cloudformation(root / rel, rel, CTX)
    err = info.value
    assert err.file == rel
    assert str(err).startswith(f"{rel}:{err.line}: " if err.line else f"{rel}: ")
    assert "\n" not in str(err)
    return err


def _line(rel: str, needle: str) -> int:
    return line_of(DATA / rel, needle)


@pytest.mark.parametrize(
    ("name", "needle", "message"),
    [
        ("no_type.yaml", "Broken:", "resource Broken has no Type"),
        ("circular_sub.yaml", "Logs:", "circular reference: Logs -> Bucket -> Logs"),
        ("self_ref.yaml", "Topic:", "circular reference: Topic -> Topic"),
        ("circular_conditions.yaml", "A:", "conditions refer to each other in a circle"),
        ("undeclared_condition.yaml", "Queue:", "condition Missing is not declared"),
        ("bad_intrinsic.yaml", "Bucket:", "Fn::Select: index 5 is outside the list of 2"),
        ("self_alias.yaml", "KeyPolicy:", "a YAML alias that contains itself"),
        ("deep.yaml", "KeyPolicy:", "nested deeper than 64 levels"),
        ("deep.json", '"KeyPolicy":', "nested deeper than 64 levels"),
        ("invalid_utf8.yaml", "Description:", "not UTF-8 text"),
        ("alias_bomb.yaml", "f: &f", "YAML aliases expand to more than 1,000,000 values"),
    ],
)
def test_broken_templates_name_file_and_line(name: str, needle: str, message: str) -> None:
    rel = f"broken/{name}"
    start = time.perf_counter()
    err = _error(rel)
    assert time.perf_counter() - start < 5
    assert message in err.message
    if name == "invalid_utf8.yaml":  # not UTF-8, so line_of cannot read it: the bad byte is on line 6
        assert (
            err.line
            == (BROKEN / name)
            .read_bytes()
            .split(b"\n")
            .index(next(x for x in (BROKEN / name).read_bytes().split(b"\n") if b"\xe9" in x))
            + 1
        )
    else:
        assert err.line == _line(rel, needle)


def test_bad_yaml_names_where_the_parser_stopped_and_where_the_string_began() -> None:
    err = _error("broken/bad_yaml.yaml")
    assert err.message.startswith("not valid YAML")
    assert err.line == len((BROKEN / "bad_yaml.yaml").read_text().splitlines()) + 1  # the end of the file
    assert f"that starts at line {_line('broken/bad_yaml.yaml', 'Description:')}" in err.message


def test_a_json_template_cut_off_names_the_line() -> None:
    err = _error("broken/cut_off.json")
    assert err.message.startswith("not JSON")
    assert err.line == len((BROKEN / "cut_off.json").read_text().splitlines())  # the last (cut) line


def test_a_file_over_20_mb_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write('AWSTemplateFormatVersion: "2010-09-09"\nDescription: "')
        fh.write("x" * (21 * 1024 * 1024))
        fh.write('"\nResources: {}\n')
    assert big.stat().st_size > MAX_BYTES
    start = time.perf_counter()
    err = _error("big.yaml", tmp_path)
    assert "larger than 20 MB" in err.message and err.line is None
    assert time.perf_counter() - start < 5
    # A big data file that does not look like a template is not one: no error
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"values": ["y" * 1024] * (21 * 1024)}))
    assert data.stat().st_size > MAX_BYTES
    assert load_cloudformation(data, "data.json", CTX) is None


def test_a_yaml_with_more_items_than_any_template_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    items = ",".join(["1"] * (MAX_YAML_ITEMS + 1))
    head = 'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n'
    path.write_text(f"{head}    Metadata: [{items}]\n")
    start = time.perf_counter()
    err = _error("wide.yaml", tmp_path)
    assert "lines and list items" in err.message
    assert time.perf_counter() - start < 2


_KEY = 'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  K:\n    Type: AWS::KMS::Key\n'
_JSON_KEY = '{"AWSTemplateFormatVersion": "x", "Resources": {"K": {"Type": "AWS::KMS::Key", "Metadata": '


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_KEY + "    Metadata: " + "9" * 5000 + "\n", "cannot be read"),  # more digits than Python reads
        (_JSON_KEY + "9" * 5000 + "}}}", "digits"),
        (_KEY + "    Metadata: !!binary aGk=\n", "not supported"),
        (
            'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  K:\n    Type: !!python/object:os.system ls\n',
            "not valid YAML",
        ),
        ('AWSTemplateFormatVersion: "2010-09-09"\nResources: [a, b]\n', "Resources must be a mapping"),
        (_KEY + "    Properties: [1]\n", "Properties must be a mapping"),
    ],
)
def test_values_python_or_cloudformation_cannot_hold(tmp_path: Path, text: str, message: str) -> None:
    name = "t.json" if text.startswith("{") else "t.yaml"
    (tmp_path / name).write_text(text)
    assert message in _error(name, tmp_path).message


def test_an_escaped_lone_surrogate_is_refused_at_its_line(tmp_path: Path) -> None:
    """Half a UTF-16 pair is no character: libyaml refuses the escape, fileio's check the decoded value."""
    (tmp_path / "t.yaml").write_text(_KEY + '    Metadata: "\\ud800"\n')
    err = _error("t.yaml", tmp_path)
    assert err.line == 5
    assert "invalid Unicode character escape" in err.message or "lone surrogate" in err.message


def _without_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read YAML as a PyYAML built without libyaml does: the pure-Python parser, after fileio's check."""
    monkeypatch.setattr(cfn_parse, "_LIBYAML", False)
    monkeypatch.setattr(cfn_parse, "_CfnLoader", cfn_parse.loader_class(yaml.SafeLoader))


@pytest.mark.parametrize("rel", ["intrinsics.yaml", "worlds.yaml", "short_forms.yaml", "resources.yaml"])
def test_without_libyaml_templates_read_the_same(monkeypatch: pytest.MonkeyPatch, rel: str) -> None:
    with_libyaml = load_cloudformation(DATA / rel, rel, CTX)
    _without_libyaml(monkeypatch)
    assert load_cloudformation(DATA / rel, rel, CTX) == with_libyaml


@pytest.mark.parametrize(
    ("name", "needle", "message"),
    [
        ("deep.yaml", "KeyPolicy:", "nested deeper than 64 levels"),
        ("alias_bomb.yaml", "f: &f", "YAML aliases expand to more than 1,000,000 values"),
        ("self_alias.yaml", "KeyPolicy:", "a YAML alias that contains itself"),
        ("bad_yaml.yaml", "Description:", "not valid YAML"),
    ],
)
def test_without_libyaml_hostile_yaml_is_refused_the_same(
    monkeypatch: pytest.MonkeyPatch, name: str, needle: str, message: str
) -> None:
    _without_libyaml(monkeypatch)
    err = _error(f"broken/{name}")
    assert message in err.message
    if name == "bad_yaml.yaml":
        assert f"that starts at line {_line(f'broken/{name}', needle)}" in err.message
    else:
        assert err.line == _line(f"broken/{name}", needle)


def test_without_libyaml_an_escaped_lone_surrogate_is_fileios_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_libyaml(monkeypatch)
    (tmp_path / "t.yaml").write_text(_KEY + '    Metadata: "\\ud800"\n')
    err = _error("t.yaml", tmp_path)
    assert (err.line, "lone surrogate" in err.message) == (5, True)


def test_a_directory_or_unreadable_path_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "cannot read" in _error("dir.yaml", tmp_path).message


def test_references_chained_too_deep_are_refused(tmp_path: Path) -> None:
    """Each topic named after the next: a chain longer than any real template, refused before Python's stack."""
    resources = {
        f"T{i}": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": f"t-${{T{i + 1}.TopicName}}"}}}
        for i in range(2000)
    }
    resources["T2000"] = {"Type": "AWS::SNS::Topic"}
    (tmp_path / "chain.json").write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
    assert "more than 32 deep" in _error("chain.json", tmp_path).message


# --- no traceback, whatever the shape ------------------------------------------------------------------------

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_ODD_VALUES: list[Any] = [None, 7, "text", [1, [2]], {"x": {"y": 1}}, {"Ref": "Nowhere"}, {"Fn::If": [1, 2]}]


def _replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``doc`` with the value at ``path`` replaced (copying only the mappings and lists on the way)."""
    if not path:
        return value  # type: ignore[no-any-return]
    head, rest = path[0], path[1:]
    copied: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copied[head] = _replaced(doc[head], rest, value)
    return copied  # type: ignore[no-any-return]


def _mutations(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The template with one property of one resource (or one item one level inside it), or one parameter,
    mapping or condition, replaced by an odd value, for each of them and every odd value (a few one level in)."""
    for section in ("Parameters", "Mappings", "Conditions"):
        for name in doc.get(section) or {}:
            for odd in [*_ODD_VALUES, {1: "int key", "a": "str key"}, {"Fn::Equals": [{"b": 1, 2: "c"}, 1]}]:
                yield _replaced(doc, (section, name), odd)
    for rid, body in doc["Resources"].items():
        for prop, value in (body.get("Properties") or {}).items():
            where = ("Resources", rid, "Properties", prop)
            for odd in _ODD_VALUES:
                yield _replaced(doc, where, odd)
            if isinstance(value, dict | list) and value:
                inner = next(iter(value)) if isinstance(value, dict) else 0
                for odd in _ODD_VALUES[::3]:
                    yield _replaced(doc, (*where, inner), odd)


@pytest.mark.slow
@pytest.mark.parametrize("rel", ["resources.yaml", "intrinsics.yaml", "worlds.yaml", "short_forms.yaml"])
def test_every_property_of_an_odd_shape_is_an_error_or_a_value_never_a_crash(tmp_path: Path, rel: str) -> None:
    doc = yaml.load((DATA / rel).read_text(), Loader=_CfnLoader)  # the loader's own reading of the template
    outcomes = {"unit": 0, "error": 0}
    path = tmp_path / "mutant.yaml"
    for mutant in _mutations(doc):
        path.write_text(yaml.dump(mutant, Dumper=_DUMPER))  # YAML: keys that are not strings survive
        try:
            load_cloudformation(path, "mutant.yaml", CTX)
            outcomes["unit"] += 1
        except IacError as e:
            assert e.file == "mutant.yaml" and e.line is not None, str(e)
            outcomes["error"] += 1
    assert outcomes["unit"] > 0 and outcomes["error"] > 0, outcomes


def test_truncated_templates_are_an_error_or_a_template_never_a_crash(tmp_path: Path) -> None:
    for rel in ("resources.yaml", "long_form.json", "worlds.yaml"):
        text = (DATA / rel).read_text()
        path = tmp_path / Path(rel).name
        for cut in range(0, len(text), max(1, len(text) // 150)):
            path.write_text(text[:cut])
            try:
                load_cloudformation(path, path.name, CTX)
            except IacError as e:
                assert e.file == path.name
