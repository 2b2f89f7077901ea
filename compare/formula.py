"""Parse lme4/brms-style mixed-model formulas, R's formula language for the fixed part, into one structure.

The right-hand side is read once, with R's precedence (compare.rsyntax), and expanded as R's terms() does:
`a*b` = a + b + a:b, `(a + b)^2`, `a/b` = a + a:b, `-` removes a term, `0`/`-1` the intercept, terms sorted by
order and, within a term, variables in order of first appearance (so `x:b + b` has the term `x:b`, `b + x:b`
the term `b:x`, as R names them). Atoms are columns or calls (`factor(x)`, `I(x^2)`, `poly(x, 2)`...), named by
R's deparse; compare.design evaluates them. Random-effect blocks `(expr | g)` and `(expr || g)` are split off as
lme4 does (`||` into uncorrelated blocks, `g1/g2` into `g1` and lme4's `g2:g1`), and so is `offset(expr)`.
The binomial responses `cbind(s, f)`, `s | trials(n)` and `p(s, n)` are read on the left, and so is brms's known
measurement error of a gaussian response, `y | se(s)` (`se(s, sigma = TRUE)`: a residual SD besides it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from compare import rexpr
from compare.errors import InputError
from compare.rsyntax import Bin, Call, Node, Num, Paren, Unary, Var, deparse, parse, variables

_NAME = r"(?:[^\W\d]|\.)[\w.]*"  # a column name: letters (any script), digits, "_" and "."


@dataclass(frozen=True)
class Response:
    """The left-hand side.

    kind is "single" (y), "cbind" (successes, failures) or "trials" (successes, trials). `se` names the column of
    known measurement SDs of a single response (brms's `y | se(s)`): y_i ~ normal(mu_i, se_i), with no residual SD
    unless `se_sigma` (`se(s, sigma = TRUE)`: y_i ~ normal(mu_i, sqrt(sigma^2 + se_i^2))). It is data the model
    reads, not a response column, so it is not among `columns`.
    """

    kind: str
    y: str
    other: str | None = None
    se: str | None = None
    se_sigma: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.y,) if self.other is None else (self.y, self.other)


@dataclass(frozen=True)
class Atom:
    """One variable of a model: a column or a call, `label` being R's name for it (its deparse)."""

    node: Node
    label: str


@dataclass(frozen=True)
class Terms:
    """A right-hand side as R's terms() sees it: the intercept, and the terms (each a tuple of atoms, in
    variable order), sorted by order as R sorts them."""

    intercept: bool
    terms: tuple[tuple[Atom, ...], ...]

    @property
    def labels(self) -> list[str]:
        return [":".join(a.label for a in t) for t in self.terms]

    @property
    def variables(self) -> set[str]:
        out: set[str] = set()
        for t in self.terms:
            for a in t:
                out |= variables(a.node)
        return out


@dataclass(frozen=True)
class Block:
    """One random-effect block: the terms of `expr` vary by `group`, jointly normal if correlated."""

    group: str
    expr: str
    correlated: bool = True

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The columns of `g`, `g2:g1` or lme4's `g3:(g2:g1)`."""
        return tuple(p.strip("() ") for p in self.group.split(":"))

    @cached_property
    def terms(self) -> Terms:
        return parse_rhs(self.expr)


@dataclass(frozen=True)
class Formula:
    text: str
    response: Response
    fixed: str  # right-hand side in R syntax ("1 + x", "0 + factor(g)"), "" when there are no fixed effects
    offset: str | None  # the offset's expression (`o`, `log(n)`)
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    @property
    def group_factors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for b in self.blocks:
            seen.setdefault(b.group, None)
        return tuple(seen)

    @cached_property
    def fixed_terms(self) -> Terms:
        return parse_rhs(self.fixed) if self.fixed else Terms(False, ())

    @cached_property
    def offset_node(self) -> Node | None:
        return None if self.offset is None else parse(self.offset)

    @property
    def atoms(self) -> list[Atom]:
        """Every atom of the fixed part and of the blocks (a column or call; repeats possible)."""
        return [a for terms in (self.fixed_terms, *(b.terms for b in self.blocks)) for t in terms.terms for a in t]

    @property
    def factor_columns(self) -> set[str]:
        """Columns read only as factor(x), as.factor(x) or C(x): R may get them as factors, with hbench's levels
        (R's C() refuses a number: cbpp's `period` read from a CSV)."""
        wrapped = {
            a.node.args[0].name
            for a in self.atoms
            if isinstance(a.node, Call) and a.node.fn in rexpr.FACTOR_FNS and isinstance(a.node.args[0], Var)
        }
        elsewhere = {
            v
            for a in self.atoms
            if not (isinstance(a.node, Call) and a.node.fn in rexpr.FACTOR_FNS and isinstance(a.node.args[0], Var))
            for v in variables(a.node)
        }
        if self.offset_node is not None:
            elsewhere |= variables(self.offset_node)
        return wrapped - elsewhere - {c for b in self.blocks for c in b.group_columns}

    @property
    def variables(self) -> set[str]:
        """Every data column the formula reads."""
        names = set(self.response.columns) | self.fixed_terms.variables
        if self.response.se is not None:
            names.add(self.response.se)
        if self.offset_node is not None:
            names |= variables(self.offset_node)
        for b in self.blocks:
            names |= b.terms.variables | set(b.group_columns)
        return names


@dataclass(frozen=True)
class ModelSpec:
    """What an engine needs to know to say whether it can fit a model: formula, family, link."""

    formula: Formula
    family: str
    link: str

    @property
    def has_sigma(self) -> bool:
        return has_sigma(self.formula, self.family)


def has_sigma(formula: Formula, family: str) -> bool:
    """Whether the model has a residual SD: gaussian, unless known SEs (`y | se(s)`) replace it."""
    return family == "gaussian" and (formula.response.se is None or formula.response.se_sigma)


class _Expander:
    """R's EncodeVars over one right-hand side: terms as sets of atom indices, the intercept, offsets, bars."""

    def __init__(self, text: str, top: bool):
        self.text, self.top = text, top
        self.atoms: list[Atom] = []
        self.intercept = True
        self.offsets: list[Node] = []
        self.bars: list[Bin] = []

    def fail(self, what: str) -> InputError:
        return InputError(f"formula: {what} in {self.text!r}")

    def atom(self, node: Node) -> frozenset[int]:
        rexpr.check_atom(node, self.text)
        label = deparse(node)
        for k, a in enumerate(self.atoms):
            if a.label == label:
                return frozenset({k})
        self.atoms.append(Atom(node, label))
        return frozenset({len(self.atoms) - 1})

    def terms(self, node: Node, deleting: bool = False) -> list[frozenset[int]]:
        if isinstance(node, Paren):
            if isinstance(node.inner, Bin) and node.inner.op in ("|", "||"):
                if not self.top or deleting:
                    raise self.fail(f"a random-effect term ({deparse(node.inner)}) cannot be used here")
                self.bars.append(node.inner)
                return []
            return self.terms(node.inner, deleting)
        if isinstance(node, Num):
            if node.value in (0, 1) and not node.literal:
                self.intercept = (node.value == 1) != deleting
                return []
            raise self.fail(f"the number {deparse(node)} is not a term")
        if isinstance(node, Unary):
            if node.op == "+":
                return self.terms(node.operand, deleting)
            self.terms(node.operand, not deleting)
            return []
        if isinstance(node, Call) and node.fn == "offset":
            if deleting or not self.top or len(node.args) != 1 or node.kwargs:
                raise self.fail("offset() takes one expression, added to the model")
            rexpr.check_numeric(node.args[0], self.text)
            self.offsets.append(node.args[0])
            return []
        if isinstance(node, (Var, Call)):
            return [self.atom(node)]
        if isinstance(node, Bin):
            return self.binary(node, deleting)
        raise self.fail(f"cannot read {deparse(node)!r}")

    def binary(self, node: Bin, deleting: bool) -> list[frozenset[int]]:
        op = node.op
        if op in ("|", "||"):
            raise self.fail(f"a random-effect term must be in parentheses: ({deparse(node)})")
        left = self.terms(node.left, deleting)
        if op == "-":
            removed = self.terms(node.right, not deleting)
            return [t for t in left if t not in removed]
        if op == "^":
            power = node.right
            if not (isinstance(power, Num) and power.value >= 1 and power.value == int(power.value)):
                raise self.fail(f"the power in {deparse(node)} must be a whole number (use I() for arithmetic)")
            out = left
            for _ in range(int(power.value) - 1):
                out = _union(out, [a | b for a in out for b in left])
            return out
        right = self.terms(node.right, deleting)
        products = [a | b for a in left for b in right]
        if op == "+":
            return _union(left, right)
        if op == "*":
            return _union(left, right, products)
        if op in (":", "%in%"):
            return _union(products)
        if op == "/":
            outer = frozenset().union(*left) if left else frozenset()
            return _union(left, [outer | b for b in right])
        raise self.fail(f"operator {op!r} is not supported")

    def result(self, found: list[frozenset[int]]) -> Terms:
        ordered = sorted(_union(t for t in found if t), key=len)  # stable: order of appearance within an order
        return Terms(self.intercept, tuple(tuple(self.atoms[k] for k in sorted(t)) for t in ordered))


def _union(*lists) -> list[frozenset[int]]:
    out: list[frozenset[int]] = []
    for lst in lists:
        for t in lst:
            if t not in out:
                out.append(t)
    return out


def parse_rhs(text: str) -> Terms:
    """The terms of a right-hand side without random-effect terms or offsets ('1 + x', '0 + factor(g)')."""
    ex = _Expander(text, top=False)
    return ex.result(ex.terms(parse(text)))


def _explicit_intercept(node: Node | None) -> bool:
    """Whether a sum says 0, 1 or -1 itself (then its text is kept as written)."""
    if node is None:
        return False
    if isinstance(node, Num):
        return True
    if isinstance(node, Unary):
        return _explicit_intercept(node.operand)
    if isinstance(node, Bin) and node.op in ("+", "-"):
        return _explicit_intercept(node.left) or _explicit_intercept(node.right)
    return False


def _prune(node: Node) -> Node | None:
    """The fixed part's tree: random-effect terms and offset() taken out of the top-level sum."""
    if isinstance(node, Paren) and isinstance(node.inner, Bin) and node.inner.op in ("|", "||"):
        return None
    if isinstance(node, Call) and node.fn == "offset":
        return None
    if isinstance(node, Bin) and node.op in ("+", "-"):
        left, right = _prune(node.left), _prune(node.right)
        if right is None:
            return left
        if left is None:
            return right if node.op == "+" else Unary("-", right)
        return Bin(node.op, left, right)
    return node


def _rhs_text(node: Node | None, terms: Terms) -> str:
    """R text of a right-hand side: as written (R then orders variables as we did), `1 + ` in front where the
    intercept is implicit; '1' or '' when it has no terms."""
    if not terms.terms or node is None:
        return "1" if terms.intercept else ""
    text = deparse(node)
    return text if _explicit_intercept(node) else f"1 + {text}"


def _parse_response(lhs: str, text: str) -> Response:
    lhs = lhs.strip()
    m = re.fullmatch(rf"cbind\(\s*({_NAME})\s*,\s*({_NAME})\s*\)", lhs)
    if m:
        return Response("cbind", m.group(1), m.group(2))
    m = re.fullmatch(rf"p\(\s*({_NAME})\s*,\s*({_NAME})\s*\)", lhs)
    if m:
        return Response("trials", m.group(1), m.group(2))
    m = re.fullmatch(rf"({_NAME})\s*\|\s*trials\(\s*({_NAME})\s*\)", lhs)
    if m:
        return Response("trials", m.group(1), m.group(2))
    if re.fullmatch(_NAME, lhs):
        return Response("single", lhs)
    if re.search(r"\|\s*se\s*\(", lhs):
        return _se_response(lhs, text)
    raise InputError(f"formula: cannot read the response {lhs!r} in {text!r}")


def _se_response(lhs: str, text: str) -> Response:
    """brms's `y | se(s)`, `y | se(s, sigma = TRUE)` (or FALSE, the default): a column of known SDs."""
    m = re.fullmatch(rf"({_NAME})\s*\|\s*se\(\s*({_NAME})\s*(?:,\s*sigma\s*=\s*(TRUE|FALSE|T|F)\s*)?\)", lhs)
    if not m:
        raise InputError(
            f"formula: cannot read the response {lhs!r} in {text!r} (known SEs are y | se(s) or "
            "y | se(s, sigma = TRUE), s a column)"
        )
    return Response("single", m.group(1), se=m.group(2), se_sigma=m.group(3) in ("TRUE", "T"))


def _group_names(node: Node, text: str) -> list[str]:
    """lme4's grouping factors: g, g1:g2 as written, g1/g2 as g1 and g2:g1 (g1/g2/g3 adds g3:(g2:g1))."""
    if isinstance(node, Bin) and node.op == "/":
        outer = _group_names(node.left, text)
        inner = deparse(node.right)
        if not re.fullmatch(rf"{_NAME}(:{_NAME})*", inner):
            raise InputError(f"formula: cannot read the grouping factor {deparse(node)!r} in {text!r}")
        last = outer[-1]
        return [*outer, f"{inner}:{last}" if ":" not in last else f"{inner}:({last})"]
    name = deparse(node)
    if not re.fullmatch(rf"{_NAME}(:{_NAME})*", name):
        raise InputError(f"formula: cannot read the grouping factor {name!r} in {text!r} (columns, g1:g2 or g1/g2)")
    return [name]


def _random_blocks(bar: Bin, text: str) -> list[Block]:
    ex = _Expander(text, top=False)
    terms = ex.result(ex.terms(bar.left))
    blocks = []
    for g in _group_names(bar.right, text):
        if bar.op == "||":
            if terms.intercept:
                blocks.append(Block(g, "1", correlated=False))
            blocks += [Block(g, f"0 + {label}", correlated=False) for label in terms.labels]
        else:
            blocks.append(Block(g, _rhs_text(bar.left, terms) or "0", correlated=True))
    return blocks


def parse_formula(text: str) -> Formula:
    """Parse `y ~ x + factor(g) + (1 + x | g)` and friends; raise InputError naming what is wrong."""
    if text.count("~") != 1:
        raise InputError(f"formula: expected exactly one '~' in {text!r}")
    lhs, rhs = text.split("~")
    response = _parse_response(lhs, text)
    tree = parse(rhs)
    ex = _Expander(text, top=True)
    fixed = ex.result(ex.terms(tree))
    if len(ex.offsets) > 1:
        raise InputError(f"formula: only one offset() is supported in {text!r}")
    blocks = [b for bar in ex.bars for b in _random_blocks(bar, text)]
    offset = deparse(ex.offsets[0]) if ex.offsets else None
    return Formula(text.strip(), response, _rhs_text(_prune(tree), fixed), offset, tuple(blocks))
