"""Engine `brms`: brms::brm (rstan backend) through rpy2 (compare.estimators._r), the seed's funding example.

Priors are brms's own classes; hbench's prior strings map one to one (`b ~ normal(0, 4)` ->
set_prior("normal(0, 4)", class = "b"); `b[x]` -> class b, coef x; `sd[g][x]` -> class sd, group g, coef x;
Intercept, sd, cor, sigma likewise; a uniform on sd or sigma bounds the class with lb/ub as brms needs; `phi` is
brms's `shape` of its negbinomial family, whose default prior is gamma(0.01, 0.01)).
Refused before anything runs, one line each: `cov ~ decov(...)` (no brms equivalent), a uniform on one SD (brms
bounds per class), and `b[Intercept]` (the data's scale) beside other fixed effects (brms's Intercept is
centred).  Each fit records the priors brms's prior_summary(fit) reports, per parameter (`details["priors"]`).

Compiling a brms model takes 2-4 minutes and ~2 GB (FINDINGS), so each worker process compiles once per
generated Stan program and refits every new dataset with update(fit, newdata = ., recompile = FALSE).
Trap handled here: brms's default priors depend on the data (gaussian: student_t(3, median(y), mad(y)) on the
intercept, student_t(3, 0, mad(y)) on sigma and SDs) and are written into the Stan code as numbers, and
update(recompile = FALSE) keeps the compiled program, so a reused model would silently sample with the priors
of whichever dataset compiled it. So those defaults are passed as data (stanvars hb_<class>_<k>, values taken
from brms's own get_prior on each dataset) and the compiled model is looked up by its full Stan code: a reused
model is the very program brms generates for this dataset and these priors. Debian's r-cran-bh ships no
headers: rstan is pointed at /usr/include (FINDINGS) when BH has none.

Draws come back per chain and are summarised by compare.estimators._bayes like every sampler's.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.errors import InputError
from compare.estimators import _bayes, _r, _rbayes
from compare.fitresult import FitResult
from compare.priors import Dist, Layout, Prior, PriorSpec, check_model, effective, parse_prior, parse_priors
from compare.settings import Settings, setting

R_CODE = "brms.R"  # compare/estimators/R/brms.R (which imports rstan_sampler.R)


# One brms prior: (prior, class, coef, group, lb, ub, label), "" where brms's set_prior takes its default;
# label is the hbench prior's own (b[x], sd[g][x]) for the notes.
BrmsPrior = tuple[str, str, str, str, str, str, str]


def refusal(p: Prior, spec: PriorSpec, layout: Layout | None) -> str:
    """Why brms cannot express prior p ('' when it can); without a layout, what the strings alone show."""
    if p.cls == "cov":
        return "brms has no decov prior: give 'sd ~ ...' and 'cor ~ lkj(...)' priors instead"
    if p.dist.name == "uniform" and p.target:
        return "brms bounds an SD per class only (set_prior's ub): give 'sd ~ uniform(lower, upper)' for every SD"
    if p.dist.name == "uniform" and p.cls == "sd" and spec.sd_terms:
        return "the class bound it needs (ub) would truncate the sd[g][x] priors given beside it"
    if layout is not None and p.label == "b[Intercept]" and layout.free:
        return (
            "brms's Intercept prior is on the intercept of centred predictors, not on the data's scale "
            "(write 'Intercept ~ ...')"
        )
    return ""


def check(spec: PriorSpec, layout: Layout | None) -> None:
    """InputError (one line, naming brms and the prior) for what brms cannot express."""
    for p in spec.priors():
        why = refusal(p, spec, layout)
        if why:
            raise InputError(f"brms: prior '{p}': {why}")


def _brms_dist(d: Dist) -> str:
    return f"{d.name}({', '.join(repr(float(a)) for a in d.args)})"


def brms_priors(spec: PriorSpec, md: _bayes.ModelData | None = None) -> list[BrmsPrior]:
    """set_prior's arguments for each parsed prior (already checked by `check`): b -> class b, b[x] -> class b
    coef x, Intercept (and b[Intercept] of a model with no other fixed effect) -> class Intercept, sd -> class
    sd, sd[g][x] -> class sd group g coef x, sigma, cor; a uniform on sd or sigma bounds the class (lb, ub)."""
    out = []
    for p in spec.priors():
        cls, coef, group = p.cls, "", ""
        if p.label == "b[Intercept]":
            cls = "Intercept"
        elif p.cls == "b" and p.target:
            coef = p.target[0]
        elif p.cls == "sd" and p.target:
            group, coef = p.target
        elif p.cls == "phi":
            cls = "shape"  # brms's negbinomial shape is NB2's phi
        lb, ub = (repr(float(a)) for a in p.dist.args) if p.dist.name == "uniform" else ("", "")
        out.append((_brms_dist(p.dist), cls, coef, group, lb, ub, p.label))
    return out


def _r_user(priors: list[BrmsPrior]):
    """The priors as the R list brms_priors takes: one character vector per set_prior argument."""
    cols = ("prior", "class", "coef", "group", "lb", "ub", "label")
    return _r.named_list({c: _r.str_vector([row[k] for row in priors]) for k, c in enumerate(cols)})


def read_back(table: Any, values: dict[str, float], md: _bayes.ModelData, renamed: dict[str, str]) -> list[str]:
    """The prior of every parameter of the model from brms's prior_summary(fit) (a coefficient's own row, else
    its group's, else its class's; hb_* stanvars replaced by the numbers the fit was given), as prior strings.
    An SD's or sigma's bounds (its class row's lb, ub) are named when they are not its prior's own support."""
    cols = {k: _r.strs(v) for k, v in _r.items(table)}
    rows = list(zip(cols["prior"], cols["class"], cols["coef"], cols["group"], strict=True))
    bounds = {
        c: (lb, ub)
        for c, co, g, lb, ub in zip(cols["class"], cols["coef"], cols["group"], cols["lb"], cols["ub"])
        if co == "" and g == ""
    }

    def find(cls: str, *tries: tuple[str, str]) -> str:
        for coef, group in tries:
            for prior, c, co, g in rows:
                if c == cls and co == coef and g == group and prior:
                    return _numbers(prior, values)
        return "flat"

    def positive(cls: str, *tries: tuple[str, str]) -> str:
        prior = find(cls, *tries)
        lb, ub = (float(v) if v else default for v, default in zip(bounds.get(cls, ("", "")), (0.0, math.inf)))
        try:
            own = parse_prior(f"{cls} ~ {prior}").dist.bounds()
        except InputError:
            own = None
        return prior if own == (lb, ub) else f"{prior} truncated to ({lb:g}, {ub:g})"

    out = [f"b[{n}] ~ {find('b', (renamed.get(n, n), ''), ('', ''))}" for n in md.x_names if n != "Intercept"]
    if md.has_intercept:
        out.append(f"Intercept ~ {find('Intercept', ('', ''))}")
    if md.has_sigma:
        out.append(f"sigma ~ {positive('sigma', ('', ''))}")
    if md.family == "negbinomial":
        out.append(f"phi ~ {find('shape', ('', ''))}")  # brms's shape: gamma, positive by its support
    for blk in md.blocks:
        tries = [((renamed.get(t, t), blk.group), ("", blk.group), ("", "")) for t in blk.names]
        out += [f"sd[{blk.group}][{t}] ~ {positive('sd', *tr)}" for t, tr in zip(blk.names, tries)]
    if any(blk.correlated for blk in md.blocks):
        # brms puts an LKJ prior on each correlation matrix as lkj_corr_cholesky(eta) on its Cholesky factor L
        lkj = find("L", ("", "")).replace("lkj_corr_cholesky(", "lkj(")
        out.append(f"cor ~ {lkj if lkj != 'flat' else find('cor', ('', ''))}")
    return out


def _numbers(prior: str, values: dict[str, float]) -> str:
    """brms's prior string with the hb_* stanvar names replaced by their values."""
    return re.sub(r"\bhb_[A-Za-z]+_\d+\b", lambda m: f"{values[m.group(0)]:g}", prior)


@dataclass(frozen=True)
class BrmsSettings(_rbayes.RSamplerSettings):
    max_treedepth: int = setting(10, "maximum NUTS tree depth (brms's and Stan's default 10)", lo=1, hi=30)
    priors: tuple[str, ...] = setting(
        (),
        "brms-style prior strings: b, b[x], Intercept, sd, sd[g][x], sigma, cor (no decov), phi (brms's negbinomial "
        "shape), e.g. "
        '"sd ~ cauchy(0, 1)" (default: brms\'s own priors)',
    )
    check = staticmethod(check)
    translate = staticmethod(brms_priors)
    prior_rules = "b[Intercept] only when the model has no other fixed effect; sd ~ uniform not beside sd[g][x] priors"


class BrmsEngine(_rbayes.RSamplerEngine):
    """brms::brm, compiled once per Stan program per process, refitted with update(recompile = FALSE)."""

    name: ClassVar[str] = "brms"
    Settings: ClassVar[type[Settings]] = BrmsSettings
    settings: BrmsSettings
    package: ClassVar[str] = "brms"
    r_code: ClassVar[str] = R_CODE
    no_blocks: ClassVar[str] = "brms engine: hbench compares multilevel models; this one has no random-effect term"

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        start, md, priors = self.begin(data)
        s = self.settings
        r = _r.call(
            "brms",
            R_CODE,
            "fit_brms",
            _r.r_formula(data.formula, data.family, binomial="trials"),
            _r.r_frame(data),
            data.family,
            data.link,
            _r_user(priors),
            s.chains,
            s.warmup + s.draws,
            s.warmup,
            s.adapt_delta,
            s.max_treedepth,
            s.cores,
            int(seed) % (2**31 - 1) or 1,
            _r.str_vector(_terms(md)),
        )
        draws = _draws(md, r, s.chains, s.draws, level_labels(data))
        sstats = _rbayes.sampler_stats(r["sampler"], s.chains, s.draws, s.max_treedepth)
        compile_s = _r.num(r["compile_s"])
        compiled = int(bool(_r.num(r["compiled"])))
        timing = _bayes.Timing(time.perf_counter() - start, compile_s, _r.num(r["wall"]), compiled)
        notes = [
            "backend: brms (rstan); compiled once per Stan program per process, refitted with "
            "update(recompile = FALSE)",
            "sampling_s is the wall time of brms's update() call in R (rstan's own chain times in details)",
        ]
        md.priors.used = read_back(r["priors"], _named(r["prior_data"]), md, dict(zip(_terms(md), _r.strs(r["terms"]))))
        out = _rbayes.finish(
            self.name,
            md,
            data,
            draws,
            sstats,
            timing,
            s,
            notes,
            seed,
            ["brms priors: " + "; ".join(_r.strs(r["prior_text"]) or ["brms defaults"])],
            r,
        )
        out.details["brms_prepare_s"] = _r.num(r["prep_s"])
        out.details["prior_data"] = _named(r["prior_data"])
        return out


def planned_priors(data: FitData, strings: tuple[str, ...]) -> list[str]:
    """The priors brms would fit `data` with under these prior strings, read back (prior_summary) from an
    unsampled brm(empty = TRUE) whose priors are built exactly as a fit's: no compile, so a corpus of requests
    can be checked in seconds. InputError when brms cannot express one."""
    layout = Layout.of(data.design, data.family)
    check_model(parse_priors(strings), layout)
    spec = effective(parse_priors(strings), layout)
    check(spec, layout)
    md = _bayes.prepare(data, strings)
    r = _r.call(
        "brms",
        R_CODE,
        "brms_prior_check",
        _r.r_formula(data.formula, data.family, binomial="trials"),
        _r.r_frame(data),
        data.family,
        data.link,
        _r_user(brms_priors(spec, md)),
        _r.str_vector(_terms(md)),
    )
    return read_back(r["priors"], _named(r["prior_data"]), md, dict(zip(_terms(md), _r.strs(r["terms"]))))


def forget_compiled() -> None:
    """Drop this process's compiled brms models (tests use it to check reuse)."""
    if _r.package_status("brms", R_CODE):
        with _r.quiet_r():
            _r.r_env(R_CODE)["forget_compiled"]()


def _named(x: Any) -> dict[str, float]:
    """The prior numbers a fit passed to Stan as data (hb_* stanvars), by name."""
    parts = dict(_r.items(x))
    return {n: float(v) for n, v in zip(_r.strs(parts["names"]), np.atleast_1d(np.asarray(parts["values"], float)))}


def _terms(md: _bayes.ModelData) -> list[str]:
    """Every fixed and group-level term name of the design (brms renames them: `Age25-34` is `Age25M34`)."""
    return list(dict.fromkeys(md.x_names + [t for blk in md.blocks for t in blk.names]))


def _missing(level: str, levels: list[str]) -> int:
    raise RuntimeError(f"brms returned no group-effect draws for level {level!r} (it has {levels[:10]})")


def level_labels(data: FitData) -> list[dict[str, str]]:
    """Per block, the design's level label -> brms's: brms names a level of an interaction group `g1:g2` by its
    columns' values joined with '_' (the design joins them with ':'); other groups keep their labels."""
    out = []
    for bd in data.design.blocks:
        cols = bd.group.split(":")
        if len(cols) == 1:
            out.append({lv: lv for lv in bd.levels})
            continue
        first = np.unique(bd.index, return_index=True)[1]  # a row of each level, in index order
        values = data.frame[cols].astype(str).to_numpy()
        out.append({bd.levels[j]: "_".join(values[row]) for j, row in enumerate(first)})
    return out


def _draws(
    md: _bayes.ModelData, r: dict[str, Any], chains: int, draws: int, labels: list[dict[str, str]]
) -> _bayes.Draws:
    """The shared Draws from brms's accessors, by group, term and level label; chain-stacked -> (chains, draws)."""

    def per_chain(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, float)
        return a.reshape(chains, draws, *a.shape[1:])

    groups = _r.strs(r["groups"])
    by_group = {g: k for k, g in enumerate(groups)}

    def block(group: str) -> int:
        if group not in by_group:
            raise RuntimeError(f"brms returned no group-level draws for {group!r} (it has {groups})")
        return by_group[group]

    renamed = dict(zip(_terms(md), _r.strs(r["terms"]), strict=True))

    def position(names: list[str], term: str, what: str) -> int:
        name = renamed.get(term, term)
        if name not in names:
            raise RuntimeError(f"brms returned no {what} draws for {name!r} (it has {names})")
        return names.index(name)

    fe_names = [_r.term(n) for n in _r.strs(r["fixef_names"])]
    fe = per_chain(np.atleast_2d(np.asarray(r["fixef"], float)).reshape(chains * draws, -1))
    b = [fe[..., position(fe_names, n, "fixed-effect")] for n in _rbayes.intercept_first(md)]
    sd, cor, rr = [], [], []
    for blk, label in zip(md.blocks, labels, strict=True):
        k = block(blk.group)
        sd_names = [_r.term(n) for n in _r.strs(_r.nth(r["sd_names"], k))]
        sds = per_chain(_r.nth(r["sd"], k))
        sd += [sds[..., position(sd_names, t, "sd")] for t in blk.names]
        cors = per_chain(_r.nth(r["cor"], k))
        for i, j in blk.pairs:
            cor.append(cors[..., position(sd_names, blk.names[i], "cor"), position(sd_names, blk.names[j], "cor")])
        levels = _r.strs(_r.nth(r["r_levels"], k))
        terms = [_r.term(t) for t in _r.strs(_r.nth(r["r_terms"], k))]
        effects = per_chain(_r.nth(r["r"], k))
        for level in blk.levels:
            at = levels.index(label[level]) if label[level] in levels else _missing(label[level], levels)
            rr += [effects[..., at, position(terms, t, "group-effect")] for t in blk.names]
    sigma = per_chain(r["sigma"]) if md.has_sigma else None
    phi = per_chain(r["shape"]) if md.family == "negbinomial" else None

    def stack(parts: list[np.ndarray]) -> np.ndarray:
        return np.stack(parts, axis=2) if parts else np.zeros((chains, draws, 0))

    return _bayes.Draws(stack(b), stack(sd), stack(cor), stack(rr), sigma, phi)


ESTIMATORS = [BrmsEngine]
