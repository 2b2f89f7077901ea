"""Engine `brms`: brms::brm (rstan backend) through rpy2 (compare.estimators._r), the seed's funding example.

Priors are brms's own classes; hbench's prior strings map one to one (`b ~ normal(0, 4)` ->
set_prior("normal(0, 4)", class = "b"); Intercept, sd, cor, sigma likewise; `phi` is brms's `shape` of its
negbinomial family, whose default prior is gamma(0.01, 0.01)). `cov ~ decov(...)` has no brms
equivalent and is refused by the settings. A prior for a class the model does not have (sigma of a binomial
model) is dropped with a note, as hbench's other samplers ignore it.

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

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.errors import InputError
from compare.estimators import _bayes, _r, _rbayes
from compare.fitresult import FitResult
from compare.priors import PriorSpec
from compare.settings import Settings, setting

R_CODE = "brms.R"  # compare/estimators/R/brms.R (which imports rstan_sampler.R)


def brms_priors(spec: PriorSpec) -> list[tuple[str, str]]:
    """(brms class, prior string) for parsed prior strings; InputError for what brms cannot express."""
    if spec.cov is not None:
        raise InputError("brms has no decov prior: give 'sd ~ ...' and 'cor ~ lkj(...)' priors instead")
    out = []
    for cls, d in (
        ("b", spec.b),
        ("Intercept", spec.intercept),
        ("sd", spec.sd),
        ("cor", spec.cor),
        ("sigma", spec.sigma),
        ("shape", spec.phi),  # brms's negbinomial shape is NB2's phi
    ):
        if d is not None:
            out.append((cls, f"{d.name}({', '.join(repr(float(a)) for a in d.args)})"))
    return out


@dataclass(frozen=True)
class BrmsSettings(_rbayes.RSamplerSettings):
    max_treedepth: int = setting(10, "maximum NUTS tree depth (brms's and Stan's default 10)", lo=1, hi=30)
    priors: tuple[str, ...] = setting(
        (),
        "brms prior strings by class (b, Intercept, sd, cor, sigma, phi = brms's negbinomial shape), e.g. "
        '"sd ~ cauchy(0, 1)" (default: brms\'s own priors)',
    )
    translate = staticmethod(brms_priors)


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
            _r.str_vector([c for c, _ in priors]),
            _r.str_vector([p for _, p in priors]),
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
        dropped = _r.strs(r["dropped"])
        if dropped:
            notes.append(f"priors for {', '.join(dropped)} dropped: this model has no such parameter")
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
