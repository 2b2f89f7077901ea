"""Parse lme4/brms-style mixed-model formulas into a small structure.

The `formulae` package builds the design matrices (see `compare.design`), but it
does not know which random-effect terms share one correlated block, lme4's
double-bar `(x || g)`, nor the binomial responses `cbind(s, f)` and
`s | trials(n)`.  This module handles exactly those parts and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from compare.errors import InputError

_NAME = r"(?:[^\W\d]|\.)[\w.]*"  # a column name: letters (any script), digits, "_" and ".", as formulae reads them


@dataclass(frozen=True)
class Response:
    """The left-hand side.

    kind is "single" (y), "cbind" (successes, failures) or "trials" (successes, trials).
    """

    kind: str
    y: str
    other: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.y,) if self.other is None else (self.y, self.other)


@dataclass(frozen=True)
class Block:
    """One random-effect block: the terms of `expr` vary by `group`, jointly normal if correlated."""

    group: str
    expr: str
    correlated: bool = True

    @property
    def group_columns(self) -> tuple[str, ...]:
        return tuple(self.group.split(":"))


@dataclass(frozen=True)
class Formula:
    text: str
    response: Response
    fixed: str  # right-hand side for formulae, "" when there are no fixed effects
    offset: str | None
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    @property
    def group_factors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for b in self.blocks:
            seen.setdefault(b.group, None)
        return tuple(seen)

    @property
    def variables(self) -> set[str]:
        """Every data column the formula reads."""
        names = set(self.response.columns)
        if self.offset:
            names.add(self.offset)
        names |= _expr_variables(self.fixed)
        for b in self.blocks:
            names |= _expr_variables(b.expr)
            names |= set(b.group_columns)
        return names


@dataclass(frozen=True)
class ModelSpec:
    """What an engine needs to know to say whether it can fit a model: formula, family, link."""

    formula: Formula
    family: str
    link: str


def _expr_variables(expr: str) -> set[str]:
    found = set(re.findall(_NAME, expr))
    return {n for n in found if n not in {"C", "I"}}


def _split_top(text: str, seps: str) -> list[str]:
    """Split on separators that are not inside parentheses, keeping a leading '-' with its term."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InputError(f"formula: unbalanced parentheses in {text!r}")
        if depth == 0 and ch in seps:
            parts.append(cur)
            cur = "-" if ch == "-" else ""
            continue
        cur += ch
    if depth != 0:
        raise InputError(f"formula: unbalanced parentheses in {text!r}")
    parts.append(cur)
    return [p.strip() for p in parts if p.strip() not in ("", "-")]


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
    raise InputError(f"formula: cannot read the response {lhs!r} in {text!r}")


def _expand_group(group: str) -> list[str]:
    """lme4's nesting: g1/g2 means g1 and g1:g2."""
    parts = [p.strip() for p in group.split("/")]
    if not all(re.fullmatch(rf"{_NAME}(:{_NAME})*", p) for p in parts):
        raise InputError(f"formula: cannot read the grouping factor {group!r}")
    return [":".join(parts[: i + 1]) for i in range(len(parts))]


def _intercept_and_terms(parts: list[str], context: str) -> tuple[bool, list[str]]:
    """(has_intercept, other terms) of a list of terms, lme4's rules: 1 adds, 0 or -1 removes the intercept."""
    intercept, terms = True, []
    for t in parts:
        if t in ("1", "+1"):
            intercept = True
        elif t in ("0", "-1"):
            intercept = False
        elif t.startswith("-"):
            raise InputError(f"formula: cannot remove term {t[1:]!r} in {context}")
        else:
            terms.append(t)
    return intercept, terms


def _random_blocks(inner: str) -> list[Block]:
    double = "||" in inner
    expr, group = inner.split("||" if double else "|", 1)
    if "|" in group:
        raise InputError(f"formula: cannot read random term ({inner})")
    intercept, terms = _intercept_and_terms(_split_top(expr, "+-"), f"({inner})")
    blocks = []
    for g in _expand_group(group.strip()):
        if double:
            if intercept:
                blocks.append(Block(g, "1", correlated=False))
            blocks += [Block(g, f"0 + {t}", correlated=False) for t in terms]
        else:
            head = "1" if intercept else "0"
            blocks.append(Block(g, " + ".join([head, *terms]), correlated=True))
    return blocks


def parse_formula(text: str) -> Formula:
    """Parse `y ~ x + (1 + x | g)` and friends; raise InputError naming what is wrong."""
    if text.count("~") != 1:
        raise InputError(f"formula: expected exactly one '~' in {text!r}")
    lhs, rhs = text.split("~")
    response = _parse_response(lhs, text)
    offset, blocks, rest = None, [], []
    for term in _split_top(rhs, "+-"):
        inner = term[1:-1] if term.startswith("(") and term.endswith(")") else None
        if inner is not None and "|" in inner:
            blocks += _random_blocks(inner)
        elif m := re.fullmatch(rf"offset\(\s*({_NAME})\s*\)", term):
            if offset is not None:
                raise InputError(f"formula: only one offset() is supported in {text!r}")
            offset = m.group(1)
        else:
            rest.append(term)
    intercept, fixed_terms = _intercept_and_terms(rest, repr(text))
    if fixed_terms:
        fixed = " + ".join(["1" if intercept else "0", *fixed_terms])
    else:
        fixed = "1" if intercept else ""
    return Formula(text.strip(), response, fixed, offset, tuple(blocks))
