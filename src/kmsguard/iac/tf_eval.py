"""Evaluating one Terraform module's expressions in one *world* (one value for each deploy-time condition).

Values come from variables (tfvars files over defaults; no default: an unknown), locals, data sources kmsguard
can answer without AWS (the caller's account, Region and partition; ``aws_iam_policy_document``), and references
between resources (synthetic identities from ``tf_map.computed_attr``). Everything else -- a module output, an
attribute only known after apply, a function not implemented -- is an unknown naming the expression.

Conditions. A ternary whose condition depends on a variable or an unknown is an *atom*: its text
(``var.use_cmk``) is what ``assignment`` gives a value in this world; an atom the assignment does not name takes
its value under the defaults (an unknown one: false), and is recorded in ``atoms_seen`` so that the caller can
enumerate it. A ``count`` or ``for_each`` that depends on such input is an atom too (``count(<address>)>0``,
see ``present``). Dependence is tracked by a counter (``_taint``) that every variable read and every unknown made
increases: a condition evaluated without the counter moving depends on neither. A decided atom does not move
it: what a ternary chooses between is known in each world (``count = var.create ? 1 : 0`` is a known count).

Bounds: expressions and references nested deeper than MAX_EVAL_DEPTH, a reference cycle (``local.a =
local.a``), and more than BUDGET units of work (nodes evaluated, and the size of every value read again -- which
is what stops ``a = [b, b], b = [c, c], ...`` from doubling 30 times) are IacErrors naming file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hcl2.utils import process_escape_sequences
from lark import Token, Tree

from kmsguard.iac import tf_funcs, tf_map, tf_policydoc
from kmsguard.iac.declared import UNKNOWN_PREFIX, IacContext, IacError
from kmsguard.iac.tf_funcs import (
    EvalError,
    UnknownResult,
    Unsupported,
    first_unknown,
    is_whole_unknown,
    to_bool,
    to_num,
    to_str,
    unknown_value,
)
from kmsguard.iac.tf_hcl import Block, Expr, Source, kids, line_of, parse_expression, text_of, token_text

BUDGET = 1_000_000
MAX_EVAL_DEPTH = 128
_META_ARGS = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle"})

Value = Any
Step = tuple[str, Any]  # ("attr", name) | ("index", Tree or int) | ("splat", [steps])


@dataclass
class Module:
    """One directory's declarations, every file merged (as Terraform merges them)."""

    dir: str
    variables: dict[str, Block] = field(default_factory=dict)
    # From terraform.tfvars and *.auto.tfvars: an expression, or a value from a .tfvars.json file.
    var_values: dict[str, Any] = field(default_factory=dict)
    locals: dict[str, Expr] = field(default_factory=dict)
    resources: dict[str, Block] = field(default_factory=dict)  # "aws_kms_key.main"
    data: dict[str, Block] = field(default_factory=dict)  # "data.aws_iam_policy_document.x"
    providers: dict[str, Block] = field(default_factory=dict)  # "aws", "aws.west"
    # Heredoc templates, parsed once per unit: (file, line offset, position) -> literal text / Expr / None
    # (None: a template directive).
    heredocs: dict[tuple[str, int, int], list[str | Expr | None]] = field(default_factory=dict)


class _Interp:
    """An interpolated value inside a string template (a lone one keeps its type)."""

    __slots__ = ("value",)

    def __init__(self, value: Value) -> None:
        self.value = value


class LazyBody(Mapping[str, Any]):
    """A block's arguments, evaluated when read (so only what the mapping asks for is evaluated, and only the
    conditions it depends on become worlds). Nested blocks read as lists of LazyBody; ``dynamic`` blocks are
    expanded. A top-level resource body (``address`` set) reads through the evaluator's memo."""

    def __init__(self, ev: Evaluator, block: Block, scope: dict[str, Value], address: str | None = None) -> None:
        self._ev, self._block, self._scope, self._address = ev, block, scope, address

    def __getitem__(self, key: str) -> Any:
        if key in self._block.attrs or _has_nested(self._block, key):
            if self._address is not None:
                return self._ev.declared(self._address, key)
            if key in self._block.attrs:
                return self._ev.eval_attr(self._block.attrs[key], self._scope, key)
            return self._ev.nested(self._block, key, self._scope)
        raise KeyError(key)

    def where(self, key: str) -> tuple[str, int]:
        """The file and line ``key`` is written on: its argument, its first block, or else this block."""
        expr = self._block.attrs.get(key)
        if expr is not None:
            return expr.src.file, expr.line or self._block.line
        found = next(
            (b for b in self._block.blocks if key in (b.kind, *(b.labels[:1] if b.kind == "dynamic" else ()))),
            self._block,
        )
        return found.src.file, found.line

    def __iter__(self) -> Iterator[str]:
        names = [n for n in self._block.attrs if n not in _META_ARGS]
        for b in self._block.blocks:
            name = b.labels[0] if b.kind == "dynamic" and b.labels else b.kind
            if name not in names and name not in _META_ARGS:
                names.append(name)
        return iter(names)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _has_nested(block: Block, kind: str) -> bool:
    return any(b.kind == kind or (b.kind == "dynamic" and b.labels[:1] == (kind,)) for b in block.blocks)


class Evaluator:
    """One world's evaluation of one module (memoised, so each value is computed once per world)."""

    def __init__(self, module: Module, ctx: IacContext, assignment: dict[str, bool]) -> None:
        self.module, self.ctx, self.assignment = module, ctx, assignment
        self.atoms_seen: dict[str, bool] = {}  # condition text -> its value under the defaults
        self._memo: dict[tuple[str, ...], tuple[Value, int]] = {}
        self._active: list[tuple[str, ...]] = []
        self._taint = 0
        self._work = 0
        self._depth = 0
        self._src = Source(module.dir, "")
        self._node: Tree[Token] | None = None
        self._scope: dict[str, Value] = {}

    # --- entry points -----------------------------------------------------------------------------------

    def present(self, address: str) -> bool:
        """Whether the resource or data source exists in this world (``count = 0``, an empty ``for_each``:
        not). A count or for_each that depends on deploy-time input (``count = var.n``, ``for_each = var.m``,
        ``count = length(var.l)``) is an atom, ``count(<address>)>0`` or ``for_each(<address>) non-empty``: the
        worlds judge the resource both created and not, whatever the defaults say (under the defaults an
        unknown one is created: the worst case keeps what could be). A ternary (``var.create ? 1 : 0``) is its
        own condition's atom already."""

        def compute() -> Value:
            meta, value, depends = self._count(address)
            size = _size(value)
            if not depends and size is not None:
                return size > 0
            if meta is None:
                return True
            text = f"count({address})>0" if meta == "count" else f"for_each({address}) non-empty"
            if text in self.assignment:
                return self.assignment[text]
            default = size is None or size > 0
            self.atoms_seen.setdefault(text, default)
            return default

        return bool(self._memoised(("present", address), compute))

    def _count(self, address: str) -> tuple[str | None, Value, bool]:
        """(``count`` or ``for_each`` or None, its value, whether that depends on deploy-time input) -- the
        input it depends on is an atom of its own (``present``), so none of it taints what reads the answer."""

        def compute() -> Value:
            block = self._block(address)
            meta = next((m for m in ("count", "for_each") if m in block.attrs), None)
            if meta is None:
                return (None, None, False)
            before = self._taint
            value = self.eval_attr(block.attrs[meta], {}, f"{address}.{meta}")
            depends = self._taint != before
            self._taint = before
            return (meta, value, depends)

        found: tuple[str | None, Value, bool] = self._memoised(("count", address), compute)
        return found

    def body(self, address: str) -> LazyBody:
        block = self._block(address)
        return LazyBody(self, block, self._scope_of(address), address)

    def default_tags(self, address: str) -> Value:
        """The default_tags of the provider configuration the resource uses (None: none)."""
        block = self._block(address)
        ref = block.attrs["provider"].text if "provider" in block.attrs else ""
        provider = self.module.providers.get(ref or address.split("_", 1)[0])
        if provider is None:
            return None
        tags = [b for b in provider.nested("default_tags") if "tags" in b.attrs]
        if not tags:
            return None
        return self._memoised(
            ("default_tags", ref or "default"), lambda: self.eval_attr(tags[0].attrs["tags"], {}, "default_tags")
        )

    def eval_attr(self, expr: Expr, scope: dict[str, Value], label: str) -> Value:
        """An argument's value; what Terraform would refuse becomes an unknown naming it."""
        saved = self._src, self._scope, self._node
        self._src, self._scope = expr.src, scope
        try:
            return self._eval(expr.tree)
        except EvalError as e:
            return self._unknown(f"{label} ({e})")
        finally:
            self._src, self._scope, self._node = saved

    def declared(self, address: str, attr: str) -> Value:
        """A declared argument (or nested blocks) of a resource or data source, memoised per world."""

        def compute() -> Value:
            block = self._block(address)
            scope = self._scope_of(address)
            if attr in block.attrs:
                return self.eval_attr(block.attrs[attr], scope, f"{address}.{attr}")
            return self.nested(block, attr, scope)

        return self._memoised(("arg", address, attr), compute)

    def nested(self, block: Block, kind: str, scope: dict[str, Value]) -> list[LazyBody]:
        out: list[LazyBody] = []
        for sub in block.blocks:
            if sub.kind == kind:
                out.append(LazyBody(self, sub, scope))
            elif sub.kind == "dynamic" and sub.labels[:1] == (kind,):
                out.extend(self._dynamic(sub, kind, scope))
        return out

    # --- references -------------------------------------------------------------------------------------

    def _block(self, address: str) -> Block:
        return self.module.data[address] if address.startswith("data.") else self.module.resources[address]

    def _scope_of(self, address: str) -> dict[str, Value]:
        """``count.index`` and ``each`` inside a resource: one instance is modelled, at the plain address, so
        it stands for every instance: a for_each element is unknown (which one is not known), and so is the
        index unless the count is exactly 1 (``var.readers[count.index]`` is then any reader, not the first)."""
        block = self._block(address)
        if "for_each" in block.attrs:
            return {
                "each": {
                    "key": unknown_value(f"each.key ({address} for_each)"),
                    "value": unknown_value(f"each.value ({address} for_each)"),
                }
            }
        if "count" not in block.attrs:
            return {}
        _, value, depends = self._count(address)
        one = not depends and _size(value) == 1
        return {"count": {"index": 0 if one else unknown_value(f"count.index ({address} count)")}}

    def _var(self, name: str) -> Value:
        def compute() -> Value:
            self._taint += 1  # a variable is deploy-time input, whatever its default
            if f"var.{name}" in self.assignment:
                # A variable some ternary tests (`var.use_cmk ? a : b`) has this world's value wherever it is read,
                # bare (`encrypted = var.use_cmk`) as well: one world, one value.
                return self.assignment[f"var.{name}"]
            if name in self.module.var_values:
                given = self.module.var_values[name]
                if isinstance(given, Expr):
                    return self.eval_attr(given, {}, f"var.{name}")
                self._charge_value(given)
                return given  # from a .tfvars.json file: already a value
            block = self.module.variables.get(name)
            if block is None:
                return self._unknown(f"var.{name} (not declared)")
            if "default" in block.attrs:
                return self.eval_attr(block.attrs["default"], {}, f"var.{name}")
            return self._unknown(f"var.{name} (no default)")

        return self._memoised(("var", name), compute)

    def _local(self, name: str) -> Value:
        expr = self.module.locals.get(name)
        if expr is None:
            return self._unknown(f"local.{name} (not declared)")
        return self._memoised(("local", name), lambda: self.eval_attr(expr, {}, f"local.{name}"))

    def _resource_attr(self, address: str, attr: str) -> Value:
        block = self._block(address)
        if attr in block.attrs or _has_nested(block, attr):
            return self._materialize(self.declared(address, attr))
        rtype = block.labels[0] if block.labels else ""
        if address.startswith("data."):
            if rtype == "aws_iam_policy_document" and attr in ("json", "minified_json"):
                return self._memoised(("doc", address), lambda: self._policy_document(address))
            value = tf_map.data_computed(rtype, attr, self._arg(address), self.ctx)
            reason = f"{address}.{attr} (read during plan)"
        else:
            value = tf_map.computed_attr(rtype, address, attr, self._arg(address), self.ctx)
            reason = f"{address}.{attr} (known after apply)"
        return self._unknown(reason) if value is tf_map.NOT_COMPUTED else value

    def _policy_document(self, address: str) -> Value:
        try:
            return tf_policydoc.render(self.body(address), address)
        except tf_policydoc.DocError as e:  # what Terraform refuses to plan: the module cannot be judged
            block = self._block(address)
            file, line = e.where or (block.src.file, block.line)
            raise IacError(file, line, f"{address}: {e}") from None

    def _arg(self, address: str) -> Callable[[str], Value]:
        block = self._block(address)
        return lambda a: self.declared(address, a) if a in block.attrs else None

    def _materialize(self, value: Value) -> Value:
        """A block's lazy view as plain data (a reference into nested blocks reads all of them)."""
        if isinstance(value, LazyBody):
            return {k: self._materialize(value[k]) for k in value}
        if isinstance(value, list):
            return [self._materialize(v) for v in value]
        return value

    def _dynamic(self, sub: Block, kind: str, scope: dict[str, Value]) -> list[LazyBody]:
        content = next((b for b in sub.blocks if b.kind == "content"), None)
        if content is None:
            return []
        iterator = text_of(sub.attrs["iterator"].tree, sub.src) if "iterator" in sub.attrs else kind
        coll = (
            self.eval_attr(sub.attrs["for_each"], scope, f"dynamic {kind} for_each") if "for_each" in sub.attrs else []
        )
        if isinstance(coll, str) and UNKNOWN_PREFIX in coll:
            # Not known which elements: one block whose iterator is unknown keeps the worst case in view.
            reason = f"{iterator} of dynamic {kind} ({first_unknown(coll)})"
            items: list[tuple[Value, Value]] = [(unknown_value(reason + " key"), unknown_value(reason))]
        elif isinstance(coll, list):
            items = list(enumerate(coll))
        elif isinstance(coll, Mapping):
            items = sorted(coll.items())
        else:
            items = []
        self._charge(len(items))
        return [LazyBody(self, content, {**scope, iterator: {"key": k, "value": v}}) for k, v in items]

    # --- memo, budget, errors ---------------------------------------------------------------------------

    def _memoised(self, key: tuple[str, ...], compute: Callable[[], Value]) -> Value:
        hit = self._memo.get(key)
        if hit is not None:
            self._taint += hit[1]
            self._charge_value(hit[0])
            return hit[0]
        if key in self._active:
            chain = [_key_name(k) for k in self._active]
            start = self._active.index(key)
            cycle = " -> ".join([*chain[start:], chain[start]])
            raise self._error(f"a reference cycle: {cycle}")
        self._active.append(key)
        before = self._taint
        try:
            value = compute()
        finally:
            self._active.pop()
        self._memo[key] = (value, self._taint - before)
        return value

    def _charge(self, units: int) -> None:
        self._work += units
        if self._work > BUDGET:
            raise self._error(
                f"evaluating this module takes more than {BUDGET:,} steps (exponential or self-referencing values?)"
            )

    def _charge_value(self, value: Value) -> None:
        """Charge the size of a value read again (strings by length), stopping as soon as the budget is out."""
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, str):
                self._charge(1 + len(v) // 16)
            elif isinstance(v, list):
                self._charge(1 + len(v))
                stack.extend(v)
            elif isinstance(v, dict):
                self._charge(1 + len(v))
                stack.extend(v.values())
            else:
                self._charge(1)

    def _error(self, message: str) -> IacError:
        line = line_of(self._node, self._src) if self._node is not None else None
        return IacError(self._src.file, line, message)

    def _unknown(self, reason: str) -> str:
        self._taint += 1  # an unknown is as good as deploy-time input to a condition
        return unknown_value(reason)

    def _unknown_of(self, tree: Tree[Token], *values: Value) -> str:
        inner = next((r for r in (first_unknown(v) for v in values) if r is not None), None)
        text = text_of(tree, self._src)
        return self._unknown(f"{text} ({inner})" if inner and inner not in text else text)

    # --- expressions ------------------------------------------------------------------------------------

    def _eval(self, tree: Tree[Token]) -> Value:
        while tree.data == "expr_term" and len(kids(tree)) == 1:
            tree = kids(tree)[0]
        self._node = tree
        self._depth += 1
        try:
            if self._depth > MAX_EVAL_DEPTH:
                raise self._error(f"expressions and references nested deeper than {MAX_EVAL_DEPTH} levels")
            self._charge(1)
            handler = _HANDLERS.get(str(tree.data))
            if handler is None:
                raise EvalError(f"{tree.data} expressions are not evaluated")
            return handler(self, tree)
        finally:
            self._depth -= 1

    def _literal(self, tree: Tree[Token]) -> Value:
        text = token_text(tree)
        if tree.data == "int_lit":
            return int(text)
        if tree.data == "float_lit":
            return float(text)
        return {"true": True, "false": False}.get(text)

    def _string(self, tree: Tree[Token]) -> Value:
        parts: list[str | _Interp] = []
        for part in kids(tree):
            for c in part.children:
                if isinstance(c, Token):
                    text = str(c)
                    parts.append(text[1:] if c.type.startswith("ESCAPED_") else process_escape_sequences(text))
                elif c.data == "interpolation":
                    parts.append(_Interp(self._eval(kids(c)[0])))
                else:
                    return self._unknown(f"template directive in {text_of(tree, self._src)}")
        return self._template(parts)

    def _template(self, parts: list[str | _Interp]) -> Value:
        if len(parts) == 1 and isinstance(parts[0], _Interp):
            return parts[0].value  # "${x}" is x itself, of any type
        out = "".join(p if isinstance(p, str) else to_str(p.value) for p in parts)
        self._charge(len(out) // 16)
        return out

    def _template_string(self, tree: Tree[Token]) -> Value:
        return process_escape_sequences(token_text(tree)[2:-2])

    def _heredoc(self, tree: Tree[Token]) -> Value:
        token = next(c for c in tree.children if isinstance(c, Token))
        key = (self._src.file, self._src.line_offset, token.start_pos or 0)
        parts = self.module.heredocs.get(key)
        if parts is None:
            parts = heredoc_parts(str(token), self._src, (token.line or 1) + self._src.line_offset)
            self.module.heredocs[key] = parts
        values: list[str | _Interp] = []
        for p in parts:
            if p is None:
                return self._unknown(f"template directive in the heredoc at line {token.line}")
            values.append(p if isinstance(p, str) else _Interp(self._eval_in(p)))
        return self._template(values)

    def _eval_in(self, expr: Expr) -> Value:
        saved = self._src, self._node
        self._src = expr.src
        try:
            return self._eval(expr.tree)
        finally:
            self._src, self._node = saved

    def _tuple(self, tree: Tree[Token]) -> Value:
        return [self._eval(k) for k in kids(tree)]

    def _object(self, tree: Tree[Token]) -> Value:
        out: dict[str, Value] = {}
        for elem in kids(tree):
            parts = kids(elem)
            out[self._object_key(parts[0])] = self._eval(parts[-1])
        return out

    def _object_key(self, key: Tree[Token]) -> str:
        inner = kids(key)
        if not inner:
            return token_text(key)  # a keyword used as a key: `in = ...`
        node = inner[0]
        parenthesised = any(isinstance(c, Token) and c.type == "LPAR" for c in node.children)
        while node.data == "expr_term" and len(kids(node)) == 1 and not parenthesised:
            node = kids(node)[0]
        if node.data == "identifier":
            return token_text(node)  # a bare name is the key itself, not a reference
        value = self._eval(node)
        return value if is_whole_unknown(value) else to_str(value)

    def _conditional(self, tree: Tree[Token]) -> Value:
        cond, yes, no = kids(tree)[:3]
        text = text_of(cond, self._src)
        before = self._taint
        if text in self.assignment:
            chosen = self.assignment[text]
        else:
            known = to_bool(self._eval(cond))
            if self._taint == before and known is not None:
                chosen = known
            else:
                chosen = bool(known)  # the value under the defaults; an unknown condition: false
                self.atoms_seen.setdefault(text, chosen)
        # The condition is an atom the worlds enumerate (or a constant): what it chooses between is not
        # deploy-time input, so `count = var.create ? 1 : 0` is a count known in each world.
        self._taint = before
        return self._eval(yes if chosen else no)

    def _unary(self, tree: Tree[Token]) -> Value:
        op = next(str(c) for c in tree.children if isinstance(c, Token))
        value = self._eval(kids(tree)[0])
        if first_unknown(value) is not None:
            return self._unknown_of(tree, value)
        if op == "!":
            return not to_bool(value)
        return -to_num(value)

    def _binary(self, tree: Tree[Token]) -> Value:
        left_node, term = kids(tree)[:2]
        op_node, right_node = kids(term)[:2]
        op = token_text(op_node).strip()
        left = self._eval(left_node)
        if op in ("&&", "||"):
            return self._logical(tree, op, left, right_node)
        right = self._eval(right_node)
        if first_unknown(left) is not None or first_unknown(right) is not None:
            return self._unknown_of(tree, left, right)
        if op in ("==", "!="):
            same = _same(left, right)
            return same if op == "==" else not same
        a, b = to_num(left), to_num(right)
        try:
            return _ARITHMETIC[op](a, b)
        except ZeroDivisionError:
            raise EvalError("division by zero") from None
        except KeyError:
            raise EvalError(f"operator {op} is not evaluated") from None

    def _logical(self, tree: Tree[Token], op: str, left: Value, right_node: Tree[Token]) -> Value:
        a = to_bool(left)
        if a is (op == "||"):  # false && x, true || x: decided by the left side
            return a
        b = to_bool(self._eval(right_node))
        if b is (op == "||"):
            return b
        if a is None or b is None:
            return self._unknown(text_of(tree, self._src))
        return a and b if op == "&&" else a or b

    def _call(self, tree: Tree[Token]) -> Value:
        parts = kids(tree)
        names = [token_text(p) for p in parts if p.data == "identifier"]
        args_node = next((p for p in parts if p.data == "arguments"), None)
        arg_nodes = kids(args_node) if args_node is not None else []
        name = "::".join(names)
        if name in ("try", "can"):
            return self._try(tree, name, arg_nodes)
        args = [self._eval(a) for a in arg_nodes]
        if args_node is not None and any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in args_node.children):
            last = args.pop() if args else []
            if is_whole_unknown(last) or not isinstance(last, list):
                return self._unknown_of(tree, last)
            args.extend(last)
        try:
            result = tf_funcs.call(name, args)
        except Unsupported:
            return self._unknown(f"{text_of(tree, self._src)} (function {name} is not evaluated)")
        except UnknownResult:
            return self._unknown_of(tree, *args)
        self._charge_value(result)
        return result

    def _try(self, tree: Tree[Token], name: str, arg_nodes: list[Tree[Token]]) -> Value:
        for node in arg_nodes:
            try:
                value = self._eval(node)
            except EvalError:
                if name == "can":
                    return False
                continue
            if name == "can":
                return True if first_unknown(value) is None else self._unknown_of(tree, value)
            return value
        raise EvalError("try: no argument could be evaluated")

    def _for(self, tree: Tree[Token]) -> Value:
        parts = kids(tree)
        intro = kids(parts[0])
        names = [token_text(n) for n in intro[:-1]]
        coll = self._eval(intro[-1])
        cond = next((p for p in parts if p.data == "for_cond"), None)
        body = [p for p in parts[1:] if p.data != "for_cond"]
        as_object = tree.data == "for_object_expr"
        grouping = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in tree.children)
        if first_unknown(coll) is not None and not isinstance(coll, list | Mapping):
            return self._unknown_of(tree, coll)
        if not isinstance(coll, list | Mapping):
            raise EvalError(f"for over a {tf_funcs.type_name(coll)} (only a list, set, map or object)")
        items = list(enumerate(coll)) if isinstance(coll, list) else sorted(coll.items())
        out_list: list[Value] = []
        out_map: dict[str, Value] = {}
        saved = self._scope
        try:
            for k, v in items:
                self._scope = {**saved, **(dict(zip(names, (k, v), strict=True)) if len(names) == 2 else {names[0]: v})}
                if cond is not None:
                    keep = to_bool(self._eval(kids(cond)[0]))
                    if keep is None:
                        return self._unknown(text_of(tree, self._src))
                    if not keep:
                        continue
                if not as_object:
                    out_list.append(self._eval(body[0]))
                    continue
                key, value = to_str(self._eval(body[0])), self._eval(body[1])
                if grouping:
                    out_map.setdefault(key, []).append(value)
                elif key in out_map:
                    raise EvalError(f"for: duplicate key {key!r}")
                else:
                    out_map[key] = value
        finally:
            self._scope = saved
        return out_map if as_object else out_list

    # --- traversals (var.x, local.y, aws_kms_key.main.arn, data.x.y.json, list[0], list[*].a) ----------

    def _traversal(self, tree: Tree[Token]) -> Value:
        root, steps = _flatten(tree)
        if root.data == "identifier":
            return self._reference(token_text(root), steps, tree)
        return self._apply(self._eval(root), steps, tree)

    def _identifier(self, tree: Tree[Token]) -> Value:
        return self._reference(token_text(tree), [], tree)

    def _reference(self, name: str, steps: list[Step], tree: Tree[Token]) -> Value:
        if name in self._scope:
            return self._apply(self._scope[name], steps, tree)
        attrs = [s[1] for s in steps[:2] if s[0] == "attr"]
        first = attrs[0] if attrs and steps[0][0] == "attr" else None
        if first is None:
            raise EvalError(f"{name} is not a value here")
        if name == "var":
            return self._apply(self._var(first), steps[1:], tree)
        if name == "local":
            return self._apply(self._local(first), steps[1:], tree)
        if name == "data" and len(attrs) == 2:
            return self._instance(f"data.{first}.{attrs[1]}", steps[2:], tree, self.module.data)
        if name == "module":
            # Module calls are not followed: each local module directory is scanned as its own unit.
            output = f".{attrs[1]}" if len(attrs) == 2 else ""
            return self._unknown(f"module.{first}{output} (module outputs are not followed)")
        if name == "path":
            return "."
        if name == "terraform" and first == "workspace":
            return self._unknown("terraform.workspace")
        if name in ("count", "each", "self", "data", "terraform"):
            raise EvalError(f"{name}.{first} is not a value here")
        return self._instance(f"{name}.{first}", steps[1:], tree, self.module.resources)

    def _instance(self, address: str, steps: list[Step], tree: Tree[Token], blocks: Mapping[str, Block]) -> Value:
        attr = steps[0][1] if steps and steps[0][0] == "attr" else None
        if address not in blocks:
            return self._unknown(f"{address}{'.' + attr if attr else ''} (not declared)")
        if not self.present(address):
            if steps and steps[0][0] == "splat":
                return []
            raise EvalError(f"{address} is not created in this world (count = 0)")
        if steps and steps[0][0] == "index":
            steps = steps[1:]  # the one instance modelled stands for every index and key
        if steps and steps[0][0] == "splat":
            return self._apply([self._instance(address, steps[0][1], tree, blocks)], steps[1:], tree)
        if not steps or steps[0][0] != "attr":
            return self._unknown(f"{address} (a whole resource)")
        return self._apply(self._resource_attr(address, steps[0][1]), steps[1:], tree)

    def _apply(self, value: Value, steps: list[Step], tree: Tree[Token]) -> Value:
        for kind, arg in steps:
            if is_whole_unknown(value):
                return value  # every part of an unknown is unknown, for the same reason
            if isinstance(value, LazyBody):
                value = self._materialize(value)
            if kind == "attr":
                if not isinstance(value, Mapping) or arg not in value:
                    raise EvalError(f"a {tf_funcs.type_name(value)} has no attribute {arg!r}")
                value = value[arg]
            elif kind == "index":
                value = self._index(value, arg if isinstance(arg, int) else self._eval(arg), tree)
            else:
                items = [] if value is None else value if isinstance(value, list) else [value]
                value = [self._apply(v, arg, tree) for v in items]
        return value

    def _index(self, value: Value, index: Value, tree: Tree[Token]) -> Value:
        if is_whole_unknown(index):
            return self._unknown_of(tree, index)
        if isinstance(value, list):
            number = to_num(index)
            if isinstance(number, float) and not number.is_integer():  # 1.5, and 1e400 (inf) before int() overflows
                raise EvalError(f"index {number!r} is not a whole number")
            i = int(number)
            if not 0 <= i < len(value):
                raise EvalError(f"index {i} out of range")
            return value[i]
        if isinstance(value, Mapping):
            key = to_str(index)
            if key not in value:
                raise EvalError(f"no key {key!r}")
            return value[key]
        raise EvalError(f"a {tf_funcs.type_name(value)} cannot be indexed")


def _key_name(key: tuple[str, ...]) -> str:
    """How a memo key reads in a cycle message: local.a, var.x, aws_kms_key.k.policy, data.x.y.json."""
    kind, rest = key[0], ".".join(key[1:])
    return {"arg": rest, "present": f"{rest}.count", "count": f"{rest}.count", "doc": f"{rest}.json"}.get(
        kind, f"{kind}.{rest}"
    )


def _size(value: Value) -> int | float | None:
    """How many instances a count or for_each value makes (None: not known)."""
    if isinstance(value, str) and not is_whole_unknown(value):
        try:
            value = to_num(value)  # Terraform converts count = "2" to a number
        except EvalError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, list | Mapping) and first_unknown(value) is None:
        return len(value)
    return None


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


_ARITHMETIC: dict[str, Callable[[Any, Any], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _flatten(tree: Tree[Token]) -> tuple[Tree[Token], list[Step]]:
    """A traversal's root and its steps, walking the left-nested parse tree iteratively."""
    steps: list[Step] = []
    node = tree
    while True:
        while node.data == "expr_term" and len(kids(node)) == 1:
            node = kids(node)[0]
        if node.data == "get_attr_expr_term":
            node, op = kids(node)[:2]
            steps.append(("attr", token_text(kids(op)[0])))
        elif node.data == "index_expr_term":
            node, op = kids(node)[:2]
            steps.append(_index_step(op))
        elif node.data in ("attr_splat_expr_term", "full_splat_expr_term"):
            node, op = kids(node)[:2]
            sub = [("attr", token_text(kids(s)[0])) if s.data == "get_attr" else _index_step(s) for s in kids(op)]
            steps.append(("splat", sub))
        else:
            break
    steps.reverse()
    return node, steps


def _index_step(op: Tree[Token]) -> Step:
    if op.data == "short_index":  # list.0
        return ("index", int(next(str(c) for c in op.children if isinstance(c, Token) and c.type == "INT_LITERAL")))
    return ("index", kids(op)[0])


_HANDLERS: dict[str, Callable[[Evaluator, Tree[Token]], Value]] = {
    "int_lit": Evaluator._literal,
    "float_lit": Evaluator._literal,
    "literal_value": Evaluator._literal,
    "string": Evaluator._string,
    "template_string": Evaluator._template_string,
    "heredoc_template": Evaluator._heredoc,
    "heredoc_template_trim": Evaluator._heredoc,
    "tuple": Evaluator._tuple,
    "object": Evaluator._object,
    "identifier": Evaluator._identifier,
    "function_call": Evaluator._call,
    "conditional": Evaluator._conditional,
    "binary_op": Evaluator._binary,
    "unary_op": Evaluator._unary,
    "for_tuple_expr": Evaluator._for,
    "for_object_expr": Evaluator._for,
    "get_attr_expr_term": Evaluator._traversal,
    "index_expr_term": Evaluator._traversal,
    "attr_splat_expr_term": Evaluator._traversal,
    "full_splat_expr_term": Evaluator._traversal,
}


# --- heredocs -----------------------------------------------------------------------------------------------

_HEREDOC_HEAD = re.compile(r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n")
_TEMPLATE_MARK = re.compile(r"\$\$\{|%%\{|\$\{|%\{")


def heredoc_parts(token: str, src: Source, line: int) -> list[str | Expr | None]:
    """A heredoc's template: literal text, interpolated expressions (parsed), None for each directive.

    python-hcl2 keeps a heredoc as one token, its ``${...}`` unparsed; they are parsed here, one by one, with
    the line they are written on. ``<<-`` removes the indentation of the least indented line, as Terraform."""
    head = _HEREDOC_HEAD.match(token)
    if head is None:
        raise IacError(src.file, line, "not valid HCL: a heredoc without its opening marker")
    rest = token[head.end() :].rstrip("\r\n")
    body = rest[: len(rest) - len(head.group(2))].rstrip(" \t")
    if head.group(1):
        lines = body.split("\n")
        indents = [len(s) - len(s.lstrip(" \t")) for s in lines if s.strip()]
        cut = min(indents, default=0)
        body = "\n".join(s[cut:] for s in lines)
    out: list[str | Expr | None] = []
    literal: list[str] = []
    i = 0
    while (m := _TEMPLATE_MARK.search(body, i)) is not None:
        literal.append(body[i : m.start()])
        if m.group() in ("$${", "%%{"):
            literal.append(m.group()[1:])
            i = m.end()
            continue
        end = _closing(body, m.end())
        where = line + 1 + body.count("\n", 0, m.start())
        if end < 0:
            raise IacError(src.file, where, f"not valid HCL: {m.group()} without its closing brace in a heredoc")
        if literal:
            out.append("".join(literal))
            literal = []
        inner = body[m.end() : end].strip().removeprefix("~").removesuffix("~")
        out.append(parse_expression(inner, src, where) if m.group() == "${" else None)
        i = end + 1
    literal.append(body[i:])
    if "".join(literal):
        out.append("".join(literal))
    return out


def _closing(text: str, start: int) -> int:
    """The index of the brace closing the interpolation opened just before ``start`` (-1: none), skipping
    braces inside quoted strings and the interpolations within those."""
    stack = ["{"]
    k = start
    while k < len(text):
        c = text[k]
        if stack[-1] == '"':
            if c == "\\":
                k += 2
                continue
            if text.startswith("$${", k):
                k += 3
                continue
            if text.startswith("${", k):
                stack.append("{")
                k += 2
                continue
            if c == '"':
                stack.pop()
        elif c == '"':
            stack.append('"')
        elif c == "{":
            stack.append("{")
        elif c == "}":
            stack.pop()
            if not stack:
                return k
        k += 1
    return -1
