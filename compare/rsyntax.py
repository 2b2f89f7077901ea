"""R's expression syntax as formulas use it: a tokenizer, a parser with R's operator precedence, and R's deparse.

Why our own: a term's name is R's deparse of its expression (`I(age^2)`, `poly(x, 2)`, `log(x + 1)`), and every
engine must see the terms R sees, so the text is read with R's precedence (`^` above unary minus above `:` above
`*` above `+`) and written back with R's spacing. compare.formula turns the tree into terms (what `+ * : ^ -`
mean in a formula), compare.rexpr evaluates an atom on a data frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from compare.errors import InputError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])"
    r"|(?P<name>(?:[^\W\d]|\.(?!\d))[\w.]*)|(?P<op>\|\||%in%|[-+*/^:|(),=~]))"
)
_SPACED = {"+", "-", "*", "|", "||", "%in%", "~"}  # R's deparse writes `a + b`, `a * b` but `a/b`, `a^b`, `a:b`
_RESERVED = {"TRUE", "FALSE", "NULL", "NA", "Inf", "NaN", "if", "else", "function", "for", "while", "in"}


@dataclass(frozen=True)
class Num:
    value: float
    literal: str = ""  # TRUE / FALSE, written back as such


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Node, ...]  # positional arguments
    kwargs: tuple[tuple[str, Node], ...] = ()  # (name, node) pairs, in the order written


@dataclass(frozen=True)
class Bin:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: Node


@dataclass(frozen=True)
class Paren:
    inner: Node


Node: TypeAlias = "Num | Var | Call | Bin | Unary | Paren"


def r_number(v: float) -> str:
    """A double as R's as.character/deparse writes it: 15 significant digits at most, fixed or scientific
    notation whichever is narrower (fixed on a tie): 2, 0.5, 1e+05, 1e-04, 123456."""
    if v == 0:
        return "0"
    ref = float(f"{v:.15g}")
    digits = next(d for d in range(1, 16) if float(f"{v:.{d}g}") == ref)
    sci = f"{v:.{digits - 1}e}"
    fixed = format(Decimal(f"{v:.{digits}g}"), "f")
    return fixed if len(fixed) <= len(sci) else sci


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; InputError at the first character R's formula syntax (as hbench reads it) cannot take."""
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InputError(f"formula: unexpected character {text[pos:].lstrip()[:1]!r} in {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent, lowest precedence first: | ||, + -, * /, %in%, :, unary + -, ^ (right-associative)."""

    def __init__(self, text: str):
        self.text, self.toks, self.i = text, tokens(text), 0

    def fail(self, what: str) -> InputError:
        return InputError(f"formula: {what} in {self.text!r}")

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise self.fail("unexpected end" + (f" (expected {expected!r})" if expected else ""))
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise self.fail(f"expected {expected!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.bar()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return node

    def _left(self, ops: set[str], below) -> Node:
        node = below()
        while self.peek() in ops and self.toks[self.i][0] == "op":
            op = self.take()[1]
            node = Bin(op, node, below())
        return node

    def bar(self) -> Node:
        return self._left({"|", "||"}, self.sum)

    def sum(self) -> Node:
        return self._left({"+", "-"}, self.prod)

    def prod(self) -> Node:
        return self._left({"*", "/"}, self.special)

    def special(self) -> Node:
        return self._left({"%in%"}, self.colon)

    def colon(self) -> Node:
        return self._left({":"}, self.unary)

    def unary(self) -> Node:
        if self.peek() in ("-", "+"):
            op = self.take()[1]
            return Unary(op, self.unary())
        return self.power()

    def power(self) -> Node:
        base = self.primary()
        if self.peek() == "^":
            self.take()
            return Bin("^", base, self.unary())
        return base

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return Num(float(text))
        if kind == "name":
            if self.peek() == "(":
                return self.call(text)
            if text in ("TRUE", "FALSE"):
                return Num(1.0 if text == "TRUE" else 0.0, text)
            if text in _RESERVED:
                raise self.fail(f"{text!r} cannot be used here")
            return Var(text)
        if text == "(":
            inner = self.bar()
            self.take(")")
            return Paren(inner)
        raise self.fail(f"unexpected {text!r}")

    def call(self, fn: str) -> Call:
        self.take("(")
        args, kwargs = [], []
        while self.peek() != ")":
            if self.i + 1 < len(self.toks) and self.toks[self.i][0] == "name" and self.toks[self.i + 1][1] == "=":
                name = self.take()[1]
                self.take("=")
                kwargs.append((name, self.bar()))
            elif kwargs:
                raise self.fail(f"a positional argument after a named one in {fn}()")
            else:
                args.append(self.bar())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        return Call(fn, tuple(args), tuple(kwargs))


def parse(text: str) -> Node:
    """The expression tree of `text` (one side of a formula, or an argument)."""
    if not text.strip():
        raise InputError(f"formula: empty expression in {text!r}")
    return _Parser(text).parse()


def deparse(node: Node) -> str:
    """R's deparse of an expression: the text R uses for a term's and a coefficient's name."""
    if isinstance(node, Num):
        return node.literal or r_number(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand)}"
    if isinstance(node, Bin):
        sep = f" {node.op} " if node.op in _SPACED else node.op
        return f"{deparse(node.left)}{sep}{deparse(node.right)}"
    if isinstance(node, Call):
        parts = [deparse(a) for a in node.args] + [f"{k} = {deparse(v)}" for k, v in node.kwargs]
        return f"{node.fn}({', '.join(parts)})"
    raise TypeError(f"not an expression node: {node!r}")


def variables(node: Node) -> set[str]:
    """Every data column an expression reads (names of functions and of named arguments are not columns)."""
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Paren):
        return variables(node.inner)
    if isinstance(node, Unary):
        return variables(node.operand)
    if isinstance(node, Bin):
        return variables(node.left) | variables(node.right)
    if isinstance(node, Call):
        args = node.args[:1] if node.fn == "C" else node.args  # C(x, treatment): the contrast is not a column
        out: set[str] = set()
        for a in args:
            out |= variables(a)
        for _, v in node.kwargs:
            out |= variables(v)
        return out
    return set()
