"""Scenario specs: declarative TOML files, validated on load.

A spec is the "D" of ADEMP: model formula, family, layout of groups, covariate
distributions, true values (or priors to draw them from) and a grid of factors
to vary.  A grid key is a dotted path into the spec (`"layout.factors.g" =
[8, 20, 50]`), so any field can be varied without new code.  Every grid cell
is validated on load; a bad file raises InputError naming file, field, value.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compare.distributions import NORMAL, Dist, Shape, parse_dist, parse_shape
from compare.errors import InputError
from compare.families import FAMILIES
from compare.formula import Formula, has_sigma, parse_formula
from compare.generator import check_target
from compare.validate import check_keys as _check_keys
from compare.validate import fail as _fail
from compare.validate import read_toml

TOP_KEYS = {
    "name",
    "description",
    "source",
    "formula",
    "family",
    "link",
    "dgp",
    "design",
    "layout",
    "covariates",
    "trials",
    "truth",
    "priors",
    "grid",
    "poststratify",
    "shape",
    "dropout",
    "generator",
    "params",
    "dataset",
}
# what a generator (compare.generator) makes itself: not given beside `generator`
DECLARATIVE = ("layout", "covariates", "trials", "truth", "priors", "poststratify", "shape", "dropout", "design")
TRUTH_KEYS = {"b", "sd", "cor", "sigma", "phi"}
MAX_ROWS = 1_000_000  # rows of one simulated dataset: far beyond any benchmark cell, well within memory
MAX_CELLS = 10_000  # grid cells of one scenario: each is resolved and dry-run when the scenario loads


@dataclass(frozen=True)
class Layout:
    """Rows are the full crossing of the factors' levels, each repeated `size` times (a number, a [min, max]
    range drawn uniformly, or a poisson / negbinomial distribution with a minimum, drawn per crossing)."""

    factors: dict[str, list[Any]]
    size: int | tuple[int, int] | Dist


@dataclass(frozen=True)
class Truth:
    b: dict[str, float]
    sd: dict[str, dict[str, float]]
    cor: dict[str, dict[tuple[str, str], float]]
    sigma: float | None
    phi: float | None = None  # negbinomial's dispersion: variance mu + mu^2 / phi


@dataclass(frozen=True)
class Priors:
    b: dict[str, Dist]
    sd: dict[str, dict[str, Dist]]
    cor: dict[str, Dist]
    sigma: Dist | None
    phi: Dist | None = None


@dataclass(frozen=True)
class Shapes:
    """The [shape] table: distributions of group effects (by grouping factor, then term; "*" = every term) and of
    the level-1 errors. Anything not named is normal."""

    groups: dict[str, dict[str, Shape]] = field(default_factory=dict)
    residual: Shape = NORMAL
    # heteroscedastic errors, log sigma_i = log sigma + sum of: slope * covariate_i, and per grouping factor a
    # normal effect of the row's level with this SD (both keyed by name in `residual.log_sigma`)
    log_sigma: dict[str, float] = field(default_factory=dict)

    def of(self, group: str, term: str) -> Shape:
        terms = self.groups.get(group, {})
        return terms.get(term, terms.get("*", NORMAL))


@dataclass(frozen=True)
class Dropout:
    """Responses missing at `rate` (the expected share of rows): completely at random, or at random given
    covariate `by`, P(missing_i) = expit(a + slope * by_i), a calibrated so the rows' mean is `rate`."""

    rate: float
    by: str | None = None
    slope: float = 0.0


@dataclass(frozen=True)
class CellSpec:
    """One grid cell of a scenario, fully resolved and validated."""

    scenario: str
    index: int
    factors: dict[str, Any]  # the grid values that define this cell
    formula: Formula
    family: str
    link: str
    dgp: str
    design: str
    layout: Layout
    covariates: dict[str, Dist]
    fixed_covariates: frozenset[str]
    per: dict[str, str]
    trials: Dist | None
    truth: Truth
    priors: Priors | None
    poststratify: str | None = None
    shapes: Shapes = field(default_factory=Shapes)
    dropout: Dropout | None = None
    center: dict[str, str] = field(default_factory=dict)  # covariate -> group: derived x_within and x_mean
    between: dict[str, Between] = field(default_factory=dict)  # covariate -> its group part (endogeneity)
    generator: str | None = None  # "package.module:function" making the data instead (compare.generator)
    params: dict[str, Any] = field(default_factory=dict)  # the generator's [params], grid values applied
    dataset: str | None = None  # a published dataset (compare.realdata) as the one fixed dataset of the cell
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Scenario:
    name: str
    path: Path
    description: str
    source: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    cells: list[CellSpec]

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    def cell(self, k: int) -> CellSpec:
        if not 0 <= k < len(self.cells):
            raise InputError(f"scenario {self.name}: cell {k} is out of range 0..{len(self.cells) - 1}")
        return self.cells[k]


def _number(value: Any, where: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{value!r} is not a number")
    if not math.isfinite(value):
        raise _fail(where, f"{value!r} is not a finite number")
    if lo is not None and value < lo:
        raise _fail(where, f"{value!r} is below {lo}")
    if hi is not None and value > hi:
        raise _fail(where, f"{value!r} is above {hi}")
    return float(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    """A table whose keys the user names (factors, covariates, groups, terms); anything else is an error."""
    return _check_keys(value, set(value) if isinstance(value, dict) else set(), where)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_layout(raw: Any) -> Layout:
    raw = _check_keys(raw, {"factors", "size"}, "layout")
    factors_raw = _table(raw.get("factors"), "layout.factors")
    if not factors_raw:
        raise _fail("layout.factors", "needs at least one factor")
    factors: dict[str, list[Any]] = {}
    for name, levels in factors_raw.items():
        where = f"layout.factors.{name}"
        if isinstance(levels, int) and not isinstance(levels, bool):
            if levels < 1:
                raise _fail(where, f"{levels!r} levels: need at least 1")
            if levels > MAX_ROWS:
                raise _fail(where, f"{levels!r} levels: at most {MAX_ROWS:,} rows can be simulated")
            factors[name] = [f"{name}{i + 1}" for i in range(levels)]
        elif isinstance(levels, list) and levels:
            if not all(isinstance(v, str) or _is_number(v) for v in levels):
                raise _fail(where, f"{levels!r}: level labels must be strings or finite numbers")
            if len({str(v) for v in levels}) != len(levels):
                raise _fail(where, f"{levels!r} lists a level twice")
            factors[name] = list(levels)
        else:
            raise _fail(where, f"{levels!r}: expected a number of levels or a list of labels")
    size = raw.get("size", 1)
    if isinstance(size, dict):
        size = _size_dist(size)
        largest = math.ceil(max(size.params["mean"], size.params["min"]))  # expected size; draws checked again
    elif isinstance(size, list):
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        if len(size) != 2 or not whole or size[0] < 1 or size[0] > size[1]:
            raise _fail("layout.size", f"{size!r}: expected [min, max] with 1 <= min <= max")
        size = (int(size[0]), int(size[1]))
    elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise _fail("layout.size", f"{size!r}: expected a positive whole number")
    if not isinstance(size, Dist):
        largest = size if isinstance(size, int) else size[1]
    rows = math.prod(len(v) for v in factors.values()) * largest
    if rows > MAX_ROWS:
        raise _fail("layout", f"up to {rows:,} rows (levels x size): at most {MAX_ROWS:,} rows can be simulated")
    return Layout(factors, size)


def _size_dist(raw: dict[str, Any]) -> Dist:
    """`size = { dist = "poisson", mean = 10, min = 2 }` (or negbinomial with phi); min defaults to 1."""
    dist = parse_dist(raw, "layout.size")
    if dist.kind not in ("poisson", "negbinomial"):
        raise _fail("layout.size.dist", f"{dist.kind!r}: cluster sizes are drawn from poisson or negbinomial")
    params = {"min": 1, **dist.params}
    if params["min"] < 1:
        raise _fail("layout.size.min", f"{params['min']!r}: a cluster has at least 1 row")
    return Dist(dist.kind, params)


def _parse_dropout(raw: Any, covariates: dict[str, Dist]) -> Dropout | None:
    if raw is None:
        return None
    raw = _check_keys(raw, {"rate", "by", "slope"}, "dropout")
    if "rate" not in raw:
        raise _fail("dropout", "needs 'rate', the expected share of rows whose response is missing")
    rate = _number(raw["rate"], "dropout.rate", lo=0)
    if rate >= 1:
        raise _fail("dropout.rate", f"{rate!r} must be below 1 (a share of rows, in [0, 1))")
    by = raw.get("by")
    if by is not None and (not isinstance(by, str) or by not in covariates):
        raise _fail("dropout.by", f"{by!r} is not a generated covariate ({', '.join(sorted(covariates)) or 'none'})")
    if "slope" in raw and by is None:
        raise _fail("dropout.slope", "needs 'by', the covariate the dropout depends on")
    return Dropout(rate, by, _number(raw.get("slope", 0.0), "dropout.slope", lo=-100, hi=100))


@dataclass(frozen=True)
class Between:
    """A level-1 covariate's group part: x_ij = w_ij + m_j, w_ij drawn from the covariate's distribution and
    m_j = sd * (cor * z_j + sqrt(1 - cor^2) * e_j), z_j the standardized random intercept of `group`, e_j normal:
    cor(m_j, u_j) = cor, the endogeneity the random-intercept model assumes away."""

    group: str
    sd: float
    cor: float


def _parse_between(raw: Any, where: str, layout: Layout) -> Between:
    raw = _check_keys(raw, {"group", "sd", "cor"}, where)
    group = raw.get("group")
    if not isinstance(group, str) or any(part not in layout.factors for part in group.split(":")):
        raise _fail(f"{where}.group", f"{group!r} is not a layout factor")
    if "sd" not in raw:
        raise _fail(where, "needs 'sd', the SD of the covariate's group part")
    return Between(
        group, _number(raw["sd"], f"{where}.sd", lo=0), _number(raw.get("cor", 0.0), f"{where}.cor", lo=-1, hi=1)
    )


def _parse_level1(
    extra: dict[str, dict[str, Any]], layout: Layout, per: dict[str, str], fixed: frozenset[str], names: set[str]
) -> tuple[dict[str, str], dict[str, Between]]:
    """Covariates' `center = "g"` (derived columns x_within, x_mean) and `between` (endogeneity) keys."""
    center, between = {}, {}
    for name, keys in extra.items():
        where = f"covariates.{name}"
        if name in per:
            raise _fail(where, f"a covariate drawn per {per[name]} has no within-group part to center or shift")
        if "center" in keys:
            group = keys["center"]
            if not isinstance(group, str) or any(part not in layout.factors for part in group.split(":")):
                raise _fail(f"{where}.center", f"{group!r} is not a layout factor")
            for derived in (f"{name}_within", f"{name}_mean"):
                if derived in names:
                    raise _fail(f"{where}.center", f"makes column {derived!r}, which is already a column")
            center[name] = group
        if "between" in keys:
            if name in fixed:
                raise _fail(
                    f"{where}.between", "follows the random intercept, redrawn each replication: not with fixed = true"
                )
            between[name] = _parse_between(keys["between"], f"{where}.between", layout)
    return center, between


def _parse_covariates(
    raw: Any, layout: Layout
) -> tuple[dict[str, Dist], frozenset[str], dict[str, str], dict[str, dict[str, Any]]]:
    raw = _table({} if raw is None else raw, "covariates")
    dists, fixed, per, extra = {}, set(), {}, {}
    for name, spec in raw.items():
        where = f"covariates.{name}"
        if name in layout.factors:
            raise _fail(where, "is also a layout factor")
        spec = dict(_check_keys(spec, {"dist", "fixed", "per", "center", "between", *_all_params()}, where))
        extra[name] = {k: spec.pop(k) for k in ("center", "between") if k in spec}
        if spec.pop("fixed", False):
            fixed.add(name)
        if "per" in spec:
            level = spec.pop("per")
            if any(part not in layout.factors for part in str(level).split(":")):
                raise _fail(f"{where}.per", f"{level!r} is not a layout factor")
            per[name] = str(level)
        dists[name] = parse_dist(spec, where)
    return dists, frozenset(fixed), per, {k: v for k, v in extra.items() if v}


def _all_params() -> set[str]:
    from compare.distributions import DISTRIBUTIONS

    return {p for req, opt in DISTRIBUTIONS.values() for p in req + opt}


def _parse_truth(raw: Any, family: str, sigma_needed: bool | None = None) -> Truth:
    """The [truth] table; `sigma_needed` is False for a gaussian model whose known SEs replace sigma."""
    sigma_needed = family == "gaussian" if sigma_needed is None else sigma_needed
    raw = _check_keys({} if raw is None else raw, TRUTH_KEYS, "truth")
    b = {k: _number(v, f"truth.b.{k}") for k, v in _table(raw.get("b", {}), "truth.b").items()}
    sd: dict[str, dict[str, float]] = {}
    for g, terms in _table(raw.get("sd", {}), "truth.sd").items():
        terms = _table(terms, f"truth.sd.{g}")
        sd[g] = {t: _number(v, f"truth.sd.{g}.{t}", lo=0) for t, v in terms.items()}
    cor: dict[str, dict[tuple[str, str], float]] = {}
    for g, pairs in _table(raw.get("cor", {}), "truth.cor").items():
        pairs = _table(pairs, f"truth.cor.{g}")
        cor[g] = {}
        for pair, v in pairs.items():
            where = f"truth.cor.{g}.{pair}"
            names = tuple(p.strip() for p in pair.split(","))
            if len(names) != 2 and pair != "*":
                raise _fail(where, "expected a key 'term1,term2' or '*'")
            key = ("*", "*") if pair == "*" else (names[0], names[1])
            cor[g][key] = _number(v, where, lo=-1, hi=1)
    sigma = raw.get("sigma")
    if family == "gaussian" and not sigma_needed and sigma is not None:
        raise _fail("truth.sigma", "y | se(s) has no residual SD (se(s, sigma = TRUE) adds one)")
    if sigma_needed:
        if sigma is None:
            raise _fail("truth.sigma", "a gaussian scenario needs a residual SD (or dgp = 'prior' with priors.sigma)")
        sigma = _number(sigma, "truth.sigma", lo=0)
        if sigma == 0:
            raise _fail("truth.sigma", "0 must be positive")
    elif sigma is not None:
        raise _fail("truth.sigma", f"a {family} scenario has no residual SD")
    return Truth(b, sd, cor, sigma, _parse_phi(raw.get("phi"), family))


def _parse_phi(phi: Any, family: str) -> float | None:
    """NB2's dispersion: required and positive for negbinomial, refused elsewhere."""
    if family != "negbinomial":
        if phi is not None:
            raise _fail("truth.phi", f"a {family} scenario has no dispersion phi (negbinomial has)")
        return None
    if phi is None:
        raise _fail("truth.phi", "a negbinomial scenario needs its dispersion (or dgp = 'prior' with priors.phi)")
    phi = _number(phi, "truth.phi", lo=0)
    if phi == 0:
        raise _fail("truth.phi", "0 must be positive (variance mu + mu^2 / phi)")
    return phi


def _parse_priors(raw: Any) -> Priors:
    raw = _check_keys(raw, TRUTH_KEYS, "priors")
    b = {k: parse_dist(v, f"priors.b.{k}") for k, v in _table(raw.get("b", {}), "priors.b").items()}
    sd = {}
    for g, terms in _table(raw.get("sd", {}), "priors.sd").items():
        sd[g] = {t: parse_dist(v, f"priors.sd.{g}.{t}") for t, v in _table(terms, f"priors.sd.{g}").items()}
    cor = {g: parse_dist(v, f"priors.cor.{g}") for g, v in _table(raw.get("cor", {}), "priors.cor").items()}
    for g, d in cor.items():
        if d.kind != "lkj":
            raise _fail(f"priors.cor.{g}.dist", f"{d.kind!r}: correlations take an lkj prior")
    sigma = parse_dist(raw["sigma"], "priors.sigma") if "sigma" in raw else None
    phi = parse_dist(raw["phi"], "priors.phi") if "phi" in raw else None
    return Priors(b, sd, cor, sigma, phi)


def _parse_log_sigma(raw: Any, covariates: dict[str, Dist], layout: Layout) -> dict[str, float]:
    """`log_sigma = { x = 0.5, g = 0.3 }`: a covariate's slope on log sigma, a layout factor's SD of level effects."""
    out = {}
    for name, v in _table(raw, "shape.residual.log_sigma").items():
        where = f"shape.residual.log_sigma.{name}"
        if name in covariates:
            out[name] = _number(v, where, lo=-100, hi=100)
        elif all(part in layout.factors for part in name.split(":")):
            out[name] = _number(v, where, lo=0, hi=100)
        else:
            raise _fail(
                where,
                "not a covariate (slope of log sigma) or a layout factor (SD of its levels' effects on log sigma)",
            )
    return out


def _parse_shapes(raw: Any, family: str, groups: set[str], covariates: dict[str, Dist], layout: Layout) -> Shapes:
    raw = _table({} if raw is None else raw, "shape")
    shapes: dict[str, dict[str, Shape]] = {}
    residual, log_sigma = NORMAL, {}
    for key, value in raw.items():
        where = f"shape.{key}"
        if key == "residual":
            if family != "gaussian":
                raise _fail(where, f"a {family} model has no level-1 errors to shape")
            value = dict(_check_keys(value, set(value) if isinstance(value, dict) else set(), where))
            if "log_sigma" in value:
                log_sigma = _parse_log_sigma(value.pop("log_sigma"), covariates, layout)
            residual = parse_shape({"dist": "normal", **value}, where)
            continue
        if key not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise _fail(where, f"not a grouping factor of the formula (grouping factors: {known}; or 'residual')")
        if isinstance(value, dict) and "dist" in value:
            shapes[key] = {"*": parse_shape(value, where)}
        elif isinstance(value, dict) and value:
            shapes[key] = {term: parse_shape(v, f"{where}.{term}") for term, v in value.items()}
        else:
            raise _fail(
                where, f'{value!r}: expected a shape such as {{ dist = "chisq", df = 1 }} or a table of them by term'
            )
    return Shapes(shapes, residual, log_sigma)


def _choice(raw: dict[str, Any], key: str, options: tuple[str, ...], default: str | None = None) -> str:
    value = raw.get(key, default)
    if value not in options:
        raise _fail(key, f"{value!r} is not one of {', '.join(options)}")
    return value


def _resolve_cell(name: str, index: int, factors: dict[str, Any], raw: dict[str, Any]) -> CellSpec:
    _check_keys(raw, TOP_KEYS, "")
    if not isinstance(raw.get("formula"), str):
        raise _fail("formula", f"{raw.get('formula')!r}: expected a formula string")
    try:
        formula = parse_formula(raw["formula"])
    except InputError as exc:
        raise _fail("formula", str(exc).removeprefix("formula: ")) from None
    family = _choice(raw, "family", tuple(FAMILIES))
    link = _choice(raw, "link", FAMILIES[family].links, FAMILIES[family].default_link)
    if "generator" in raw and "dataset" in raw:
        raise _fail("dataset", "not with `generator`: a scenario's data come from one or the other")
    if "generator" in raw:
        return _generator_cell(name, index, factors, raw, formula, family, link)
    if "dataset" in raw:
        return _dataset_cell(name, index, factors, raw, formula, family, link)
    if "params" in raw:
        raise _fail("params", "is the table a generator is called with: give `generator` too")
    dgp = _choice(raw, "dgp", ("fixed", "prior"), "fixed")
    design = _choice(raw, "design", ("cluster", "stratified"), "cluster")
    if dgp == "prior" and design == "stratified":
        raise _fail("design", "'stratified' keeps parameters fixed across replications; dgp = 'prior' redraws them")
    layout = _parse_layout(raw.get("layout"))
    covariates, fixed, per, extra = _parse_covariates(raw.get("covariates"), layout)
    center, between = _parse_level1(extra, layout, per, fixed, set(covariates) | set(layout.factors))
    trials = None
    if family == "binomial":
        if formula.response.kind == "single":
            raise _fail("formula", f"{formula.text!r}: binomial needs cbind(s, f) or s | trials(n) on the left")
        trials = parse_dist(raw.get("trials"), "trials")
    elif formula.response.kind != "single":
        raise _fail("formula", f"{formula.text!r}: {family} takes a single response column")
    if formula.response.se is not None and family != "gaussian":
        raise _fail("formula", f"{formula.text!r}: known SEs (se()) are for gaussian models only, not {family}")
    sigma_needed = has_sigma(formula, family)
    truth = _parse_truth(raw.get("truth"), family, sigma_needed) if dgp == "fixed" else Truth({}, {}, {}, None)
    priors = _parse_priors(raw["priors"]) if "priors" in raw else None
    if dgp == "prior" and priors is None:
        raise _fail("priors", "dgp = 'prior' needs a [priors] table")
    poststratify = raw.get("poststratify")
    if poststratify is not None and not isinstance(poststratify, str):
        raise _fail("poststratify", f"{poststratify!r}: expected the name of a generated covariate")
    shapes = _parse_shapes(raw.get("shape"), family, {b.group for b in formula.blocks}, covariates, layout)
    cell = CellSpec(
        name,
        index,
        factors,
        formula,
        family,
        link,
        dgp,
        design,
        layout,
        covariates,
        fixed,
        per,
        trials,
        truth,
        priors,
        poststratify,
        shapes,
        _parse_dropout(raw.get("dropout"), covariates),
        center,
        between,
        raw=raw,
    )
    _check_columns(cell)
    return cell


def _generator_cell(
    name: str, index: int, factors: dict[str, Any], raw: dict[str, Any], formula: Formula, family: str, link: str
) -> CellSpec:
    """A cell whose data come from a user's function: formula, family and link, the function and its params."""
    given = [k for k in DECLARATIVE if k in raw]
    if given:
        raise _fail(given[0], "not with `generator`: the generator makes the data and the truth")
    if raw.get("dgp", "fixed") != "fixed":
        raise _fail("dgp", f"{raw['dgp']!r}: a generator returns its own truth (dgp = 'fixed' or none)")
    if family == "binomial" and formula.response.kind == "single":
        raise _fail("formula", f"{formula.text!r}: binomial needs cbind(s, f) or s | trials(n) on the left")
    if family != "binomial" and formula.response.kind != "single":
        raise _fail("formula", f"{formula.text!r}: {family} takes a single response column")
    params = _check_keys(
        raw.get("params", {}), set(raw.get("params", {})) if isinstance(raw.get("params"), dict) else set(), "params"
    )
    return _bare_cell(
        name, index, factors, formula, family, link, generator=check_target(raw["generator"]), params=params, raw=raw
    )


def _bare_cell(
    name: str, index: int, factors: dict[str, Any], formula: Formula, family: str, link: str, **kw: Any
) -> CellSpec:
    """A cell with no declarative layout, truth or priors (a generator's or a published dataset's)."""
    return CellSpec(
        name,
        index,
        factors,
        formula,
        family,
        link,
        "fixed",
        "cluster",
        Layout({}, 1),
        {},
        frozenset(),
        {},
        None,
        Truth({}, {}, {}, None),
        None,
        **kw,
    )


def _dataset_cell(
    name: str, index: int, factors: dict[str, Any], raw: dict[str, Any], formula: Formula, family: str, link: str
) -> CellSpec:
    """A cell whose one dataset is a published one (`dataset = "sleepstudy"`): nothing is simulated and there is
    no truth, so replications differ only in the engines' seeds (a sampler's chains)."""
    given = [k for k in (*DECLARATIVE, "params") if k in raw]
    if given:
        raise _fail(given[0], "not with `dataset`: the data are the published dataset's")
    if raw.get("dgp", "fixed") != "fixed":
        raise _fail("dgp", f"{raw['dgp']!r}: a published dataset has no truth to draw (dgp = 'fixed' or none)")
    if family != "binomial" and formula.response.kind != "single":  # binomial: 0/1 (Bernoulli) rows as hbench fit
        raise _fail("formula", f"{formula.text!r}: {family} takes a single response column")
    return _bare_cell(
        name,
        index,
        factors,
        formula,
        family,
        link,
        dataset=raw["dataset"],
        raw=raw,
    )


def _dataset_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """A `dataset` scenario takes its family, and its formulas as a grid (one cell per formula), from the
    catalogue (compare/realdata.toml) unless it gives its own."""
    from compare import realdata

    name = raw["dataset"]
    if not isinstance(name, str) or name not in realdata.catalogue():
        raise _fail("dataset", f"{name!r}: not a dataset of `hbench data list` ({', '.join(realdata.catalogue())})")
    entry = realdata.get(name)
    out = {**raw, "family": raw.get("family", entry.family)}
    grid = raw.get("grid", {})
    if "formula" not in raw and isinstance(grid, dict) and "formula" not in grid:  # a bad grid: refused later
        out["formula"] = entry.formulas[0]
        if len(entry.formulas) > 1:
            out["grid"] = {"formula": list(entry.formulas), **grid}
    return out


def _check_columns(cell: CellSpec) -> None:
    generated = set(cell.layout.factors) | set(cell.covariates) | set(cell.formula.response.columns)
    generated |= {f"{x}_{part}" for x in cell.center for part in ("within", "mean")}
    for var in sorted(cell.formula.variables):
        if var not in generated:
            raise _fail(
                "formula", f"term {var!r} names a column that is not generated (have: {', '.join(sorted(generated))})"
            )
    if cell.poststratify is not None and cell.poststratify not in cell.covariates:
        raise _fail("poststratify", f"{cell.poststratify!r} is not a generated covariate")


def _set_path(raw: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise _fail(f"grid.{dotted}", f"'{k}' is not a table")
    node[keys[-1]] = value


def _grid_cells(grid: dict[str, Any]) -> list[dict[str, Any]]:
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _fail(f"grid.{key}", f"{values!r}: expected a non-empty list of values")
    keys = list(grid)
    n_cells = math.prod(len(grid[k]) for k in keys)
    if n_cells > MAX_CELLS:
        raise _fail("grid", f"{n_cells:,} cells: at most {MAX_CELLS:,}")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def read_scenario(path: Path) -> Scenario:
    """Parse one spec file (no simulation). Raises InputError naming the file and the field."""
    if not path.is_file():
        raise InputError(f"{path}: no such spec file")
    try:
        return parse_scenario(read_toml(path), path)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def parse_scenario(raw: dict[str, Any], path: Path) -> Scenario:
    """Every grid cell of a parsed TOML table, resolved and validated."""
    name = raw.get("name", path.stem)
    if "dataset" in raw:
        raw = _dataset_defaults(raw)
    if not isinstance(name, str) or not name.strip() or "/" in name or "\0" in name or name.startswith("."):
        raise _fail("name", f"{name!r}: expected a scenario name (it names result files: no '/', no leading '.')")
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        raise _fail("grid", "expected a table")
    cells = []
    for k, overrides in enumerate(_grid_cells(grid)):
        spec = copy.deepcopy({key: v for key, v in raw.items() if key != "grid"})
        for dotted, value in overrides.items():
            _set_path(spec, dotted, value)
        try:
            cells.append(_resolve_cell(name, k, overrides, spec))
        except InputError as exc:
            raise InputError(f"{cell_label(k, overrides)}{exc}") from None
    return Scenario(name, path, raw.get("description", ""), raw.get("source", ""), raw, grid, cells)


def cell_label(index: int, factors: dict[str, Any]) -> str:
    """'grid cell 2 (g=8, sd=0.1): ' for error messages; '' for a scenario without a grid."""
    return f"grid cell {index} ({_describe(factors)}): " if factors else ""


def lookup(table: dict, key: str, where: str) -> Any:
    """A spec table's entry for a model term: the term's own, else the table's `"*"` default; `where` names the
    table for the error."""
    if key in table:
        return table[key]
    if "*" in table:
        return table["*"]
    raise InputError(f"field '{where}.{key}': missing (needed by the formula)")


def _describe(factors: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in factors.items())


def correlation_matrix(terms: list[str], cors: dict[tuple[str, str], float], where: str) -> np.ndarray:
    """Build and check the correlation matrix of one block from its 'a,b' entries ('*' = default)."""
    default = cors.get(("*", "*"), 0.0)
    idx = {t: i for i, t in enumerate(terms)}
    corr = np.full((len(terms), len(terms)), default)
    np.fill_diagonal(corr, 1.0)
    for (a, b), v in cors.items():
        if (a, b) == ("*", "*"):
            continue
        if a not in idx or b not in idx or a == b:
            raise _fail(f"{where}.{a},{b}", f"not a pair of distinct terms of this block ({', '.join(terms)})")
        corr[idx[a], idx[b]] = corr[idx[b], idx[a]] = v
    if len(terms) > 1 and np.linalg.eigvalsh(corr).min() <= 1e-10:
        raise _fail(where, "the correlations do not form a positive-definite matrix")
    return corr
