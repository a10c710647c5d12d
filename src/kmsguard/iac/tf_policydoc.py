"""``data "aws_iam_policy_document"`` rendered to the JSON the AWS provider produces for its ``json`` attribute.

The provider's rules, as far as they change what a policy means: ``effect`` defaults to Allow; a list of one is
written as a string; ``principals`` blocks of one type are merged, and ``type = "*"`` with ``identifiers =
["*"]`` becomes ``"Principal": "*"``; ``condition`` blocks with one test are merged by variable; statements of
``source_policy_documents`` come first and a statement of this document with the same ``sid`` replaces them;
statements of ``override_policy_documents`` replace the statement with their ``sid`` or are appended.
Unknown values stay unknowns inside the document (a whole unknown list becomes one unknown string).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kmsguard.fileio import LoadError, loads_json
from kmsguard.iac.tf_funcs import EvalError, first_unknown, is_whole_unknown, to_str, type_name, unknown_value

Body = Mapping[str, Any]


class DocError(ValueError):
    """A document Terraform refuses to plan (``statement = 5``: an argument where blocks belong); ``where`` is
    the (file, line) of the argument when the body can tell it."""

    def __init__(self, message: str, where: tuple[str, int] | None) -> None:
        super().__init__(message)
        self.where = where


def render(body: Body, address: str) -> str:
    """The ``json`` of the data source ``address`` whose (evaluated) arguments are ``body``. DocError: a
    ``statement``, ``principals`` or ``condition`` that is not blocks."""
    try:
        sources = _documents(body.get("source_policy_documents"))
        overrides = _documents(body.get("override_policy_documents"))
    except ValueError as e:
        return unknown_value(f"{address}.json ({e})")
    statements = _merge_by_sid(sources, [_statement(s) for s in _nested(body, "statement")])
    statements = _merge_by_sid(statements, overrides)
    doc: dict[str, Any] = {"Version": _text(body.get("version")) or "2012-10-17"}
    if body.get("policy_id") is not None:
        doc["Id"] = _text(body.get("policy_id"))
    doc["Statement"] = statements
    return json.dumps(doc, indent=2)


def _documents(value: Any) -> list[dict[str, Any]]:
    """The statements of a list of policy documents (JSON texts). ValueError: one cannot be known or read."""
    if value is None:
        return []
    if is_whole_unknown(value):
        raise ValueError(f"policy documents {first_unknown(value)}")
    out: list[dict[str, Any]] = []
    for text in value if isinstance(value, list) else [value]:
        reason = first_unknown(text) if isinstance(text, str) else None
        try:
            doc = loads_json(text) if isinstance(text, str) else None
        except LoadError:
            doc = None
        if not isinstance(doc, dict):
            raise ValueError(f"a policy document that is not JSON{f': {reason}' if reason else ''}")
        found = doc.get("Statement", [])
        out.extend(s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict))
    return out


def _merge_by_sid(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(base)
    for st in extra:
        sid = st.get("Sid")
        at = next((i for i, s in enumerate(out) if sid and s.get("Sid") == sid), None)
        if at is None:
            out.append(st)
        else:
            out[at] = st
    return out


def _statement(b: Body) -> dict[str, Any]:
    st: dict[str, Any] = {}
    if _text(b.get("sid")):
        st["Sid"] = _text(b.get("sid"))
    st["Effect"] = _text(b.get("effect")) or "Allow"
    for key, attr in (("Action", "actions"), ("NotAction", "not_actions")):
        if b.get(attr) is not None:
            st[key] = _one_or_list(b.get(attr))
    for key, attr in (("Principal", "principals"), ("NotPrincipal", "not_principals")):
        if principals := _nested(b, attr):
            st[key] = _principals(principals)
    for key, attr in (("Resource", "resources"), ("NotResource", "not_resources")):
        if b.get(attr) is not None:
            st[key] = _one_or_list(b.get(attr))
    if conditions := _nested(b, "condition"):
        st["Condition"] = _conditions(conditions)
    return st


def _nested(body: Body, kind: str) -> list[Body]:
    """The nested blocks ``kind`` of ``body``. DocError: anything else written under that name."""
    value = body.get(kind)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return value
    # `where` is LazyBody's (tf_eval): the file and line the argument is written on.
    where = getattr(body, "where", None)
    raise DocError(f"{kind} must be {kind} blocks, not {_kind_of(value)}", where(kind) if callable(where) else None)


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list holding a " + next(type_name(v) for v in value if not isinstance(v, Mapping))
    return "an unknown value" if is_whole_unknown(value) else f"a {type_name(value)}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return to_str(value)
    except EvalError:
        return unknown_value(f"a {type(value).__name__} where a string is needed")


def _items(value: Any) -> list[Any]:
    """A list argument's strings; a whole unknown stays one item."""
    if value is None:
        return []
    return [_text(v) for v in (value if isinstance(value, list) else [value]) if v is not None]


def _one_or_list(value: Any) -> Any:
    items = list(dict.fromkeys(_items(value)))
    return items[0] if len(items) == 1 else items


def _principals(blocks: list[Body]) -> Any:
    by_type: dict[str, list[Any]] = {}
    for p in blocks:
        kind = _text(p.get("type")) or ""
        by_type.setdefault(kind, []).extend(_items(p.get("identifiers")))
    if list(by_type) == ["*"] and set(by_type["*"]) == {"*"}:
        return "*"
    return {kind: _one_or_list(ids) for kind, ids in by_type.items()}


def _conditions(blocks: list[Body]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, list[Any]]] = {}
    for c in blocks:
        test, variable = _text(c.get("test")) or "", _text(c.get("variable")) or ""
        out.setdefault(test, {}).setdefault(variable, []).extend(_items(c.get("values")))
    return {test: {var: _one_or_list(vals) for var, vals in by_var.items()} for test, by_var in out.items()}
