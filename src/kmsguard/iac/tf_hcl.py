"""Reading Terraform files: bounded, strict UTF-8, parsed by python-hcl2's grammar into blocks of expressions.

We walk python-hcl2's Lark parse tree (``hcl2.api.parses_to_tree``) rather than its dict output (``hcl2.loads``):
the dict gives every expression back as HCL text (``"${jsonencode({...})}"``) that would need a second parser
before it could be evaluated, while the tree *is* the parsed expression, and the parser propagates positions, so
every node knows its line. The LALR parser is iterative (``"[" * 100_000`` parses without recursing); what walks
the tree afterwards is bounded here (block nesting) and in ``tf_eval`` (expression depth and a work budget).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from kmsguard.fileio import MAX_DEPTH, LoadError, decode_utf8
from kmsguard.iac.declared import IacError

MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """One file's text; ``line_offset`` is added to node lines (a snippet parsed out of a heredoc)."""

    file: str  # relative to the scanned root, POSIX
    text: str
    line_offset: int = 0


@dataclass(frozen=True)
class Expr:
    """An expression tree and the source it was parsed from."""

    tree: Tree[Token]
    src: Source

    @property
    def line(self) -> int | None:
        return line_of(self.tree, self.src)

    @property
    def text(self) -> str:
        return text_of(self.tree, self.src)


@dataclass
class Block:
    """A block (``resource "aws_kms_key" "main" {...}``): its type, labels, attributes and nested blocks."""

    kind: str
    labels: tuple[str, ...]
    attrs: dict[str, Expr]
    src: Source
    line: int
    blocks: list[Block] = field(default_factory=list)

    def nested(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]


def line_of(tree: Tree[Token], src: Source) -> int | None:
    meta = tree.meta
    return None if meta.empty else meta.line + src.line_offset


def text_of(tree: Tree[Token], src: Source) -> str:
    """The expression as written, whitespace runs collapsed (it names conditions and unknowns)."""
    meta = tree.meta
    return "" if meta.empty else " ".join(src.text[meta.start_pos : meta.end_pos].split())


def kids(tree: Tree[Token]) -> list[Tree[Token]]:
    """The child trees that carry meaning (tokens and newline/comment runs left out)."""
    return [c for c in tree.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def token_text(tree: Tree[Token]) -> str:
    """The text of a one-token rule (identifier, keyword, literal value)."""
    for c in tree.children:
        if isinstance(c, Token):
            return str(c)
    return ""


# --- reading ------------------------------------------------------------------------------------------------


def read_source(path: Path, file: str) -> Source:
    """The file's text. IacError: unreadable, over 20 MB, or not UTF-8 (naming the line)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IacError(file, None, f"larger than 20 MB ({size:,} bytes): not read")
        raw = path.read_bytes()
    except OSError as e:
        raise IacError(file, None, f"cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:  # grew since the stat
        raise IacError(file, None, f"larger than 20 MB ({len(raw):,} bytes): not read")
    try:
        return Source(file, decode_utf8(raw))
    except LoadError as e:
        raise IacError(file, e.line, e.within_line()) from None


# --- parsing ------------------------------------------------------------------------------------------------


def parse_tree(src: Source) -> Tree[Token]:
    """python-hcl2's parse tree of ``src``. IacError naming the line for anything it cannot parse."""
    from hcl2.api import parses_to_tree  # imported here: building the parser is the slow part of importing hcl2

    try:
        return parses_to_tree(src.text)
    except UnexpectedInput as e:
        line = e.line + src.line_offset if isinstance(e.line, int) and e.line > 0 else None
        raise IacError(src.file, line, f"not valid HCL: {_describe(e)}") from None
    except Exception as e:  # the parser and its post-lexer raise others on input they cannot take: none may escape
        raise IacError(src.file, None, f"not valid HCL ({type(e).__name__})") from None


def _describe(e: UnexpectedInput) -> str:
    where = f" at column {e.column}" if isinstance(e.column, int) and e.column > 0 else ""
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        return "unexpected end of file"
    if isinstance(e, UnexpectedToken):
        shown = str(e.token).strip().splitlines()[0][:30] if str(e.token).strip() else e.token.type
        return f"unexpected {shown!r}{where}"
    if isinstance(e, UnexpectedCharacters):
        return f"unexpected character {e.char!r}{where}"
    return f"cannot parse{where}"


def parse_file(src: Source) -> tuple[dict[str, Expr], list[Block]]:
    """The top-level attributes (a .tfvars file) and blocks (a .tf file) of ``src``."""
    tree = parse_tree(src)
    body = next((c for c in kids(tree) if c.data == "body"), None)
    return _body(body, src, 0) if body is not None else ({}, [])


def parse_expression(text: str, src: Source, line: int) -> Expr:
    """One expression written inside a heredoc's ``${...}`` (``line``: the line its text starts on)."""
    snippet = Source(src.file, f"x = (\n{text}\n)\n", line_offset=line - 2)
    attrs, blocks = parse_file(snippet)
    if "x" not in attrs or blocks or len(attrs) != 1:
        raise IacError(src.file, line, "not valid HCL: an interpolation that is not one expression")
    return attrs["x"]


def _body(body: Tree[Token], src: Source, depth: int) -> tuple[dict[str, Expr], list[Block]]:
    attrs: dict[str, Expr] = {}
    blocks: list[Block] = []
    for item in kids(body):
        if item.data == "attribute":
            parts = kids(item)
            name, value = token_text(parts[0]), parts[-1]
            if name in attrs:
                raise IacError(src.file, line_of(item, src), f"attribute {name!r} is set twice in one block")
            attrs[name] = Expr(value, src)
        elif item.data == "block":
            blocks.append(_block(item, src, depth + 1))
    return attrs, blocks


def _block(tree: Tree[Token], src: Source, depth: int) -> Block:
    line = line_of(tree, src) or 1
    if depth > MAX_DEPTH:
        raise IacError(src.file, line, f"blocks nested deeper than {MAX_DEPTH} levels")
    parts = kids(tree)
    body = next(p for p in parts if p.data == "body")
    labels = tuple(_label(p) for p in parts[1:] if p.data != "body")
    attrs, blocks = _body(body, src, depth)
    return Block(token_text(parts[0]), labels, attrs, src, line, blocks)


_ESCAPE = re.compile(r"\\(.)")


def _label(tree: Tree[Token]) -> str:
    if tree.data != "string":
        return token_text(tree)
    text = "".join(str(t) for part in kids(tree) for t in part.children if isinstance(t, Token))
    return _ESCAPE.sub(r"\1", text)
