"""What the Bayesian engines share: model data from a Design, and posterior draws -> FitResult.

Both engines sample the same model (compare/stan/glmm.stan describes it) and hand back draws of
the same five quantities -- b (fixed effects, intercept un-centred), sd (per group-level term),
cor (per correlated pair), r (group effects, flattened block by block, level-major), sigma (gaussian) and
phi (negbinomial) -- so
summaries, diagnostics, predictions, MRP and PSIS-LOO are computed once, here, identically.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from compare import posterior
from compare.data import FitData
from compare.errors import InputError
from compare.estimators.base import YES, Support, no
from compare.families import FAMILIES, inverse_link
from compare.fitresult import (
    FitResult,
    SamplerDiagnostics,
    describe,
    make_params,
    name_b,
    name_cor,
    name_pred_new,
    name_r,
    name_sd,
)
from compare.formula import ModelSpec
from compare.priors import (
    Dist,
    Layout,
    PriorSpec,
    ResolvedPriors,
    check_model,
    effective,
    parse_priors,
    resolve,
    vacuous,
)
from compare.settings import DEFAULT_LEVEL, Settings, setting

RHAT_OK = 1.01


@dataclass(frozen=True)
class SamplerSettings(Settings):
    """NUTS controls and priors shared by both samplers. Defaults are rstanarm's stan_glmer (adapt_delta 0.95,
    max_treedepth 15), whose priors are the default too: Stan's own 0.8 / 10 made every J = 8 fit diverge."""

    chains: int = setting(4, "Markov chains", lo=1)
    warmup: int = setting(1000, "warm-up (adaptation) iterations per chain", lo=1)
    draws: int = setting(1000, "post-warm-up draws per chain", lo=1)
    adapt_delta: float = setting(0.95, "target acceptance rate of step-size adaptation", lo=0.5, hi=0.9999)
    max_treedepth: int = setting(15, "maximum NUTS tree depth", lo=1, hi=30)
    keep_draws: bool = setting(
        False,
        "keep every draw as ArviZ InferenceData (results/<run>/draws/, `hbench draws`); summaries are kept either way",
    )
    priors: tuple[str, ...] | Literal["scenario", "rstanarm"] | None = setting(
        None,
        'brms-style prior strings ("b ~ normal(0, 4)", "b[x] ~ normal(0, 1)", "sd[g][x] ~ normal(0, 1)"), '
        '"scenario" (the scenario\'s [priors]) or "rstanarm" (its defaults); unset: the scenario\'s on '
        'dgp = "prior" cells, rstanarm\'s elsewhere',
    )

    prior_rules = "everything, a family per coefficient; a prior on a coefficient or SD the model lacks is refused"

    def problems(self) -> list[str]:
        out = super().problems()
        if isinstance(self.priors, tuple):
            try:
                parse_priors(self.priors)
            except InputError as exc:
                out.append(str(exc))
        return out

    @property
    def prior_strings(self) -> tuple[str, ...]:
        """The prior strings: `priors` as given, none for the defaults (a keyword such as "scenario" is resolved
        to strings per cell by compare.priors.for_cell before an engine is built for it)."""
        return self.priors if isinstance(self.priors, tuple) else ()

    def check_priors(self, layout: Layout) -> None:
        """InputError (one line) unless this engine can honour every prior on a model of this layout: the
        suite and `hbench fit` ask before anything runs. hbench's samplers take everything the grammar
        accepts; a prior on a coefficient or SD the model lacks is refused, never ignored."""
        check_model(parse_priors(self.prior_strings), layout)

    def prior_plan(self) -> list[str]:
        """What the engine is asked for, for the run's manifest: the prior strings, or which defaults (each
        fit's `details["priors"]` has every prior it used, with the data-dependent scales filled in)."""
        if isinstance(self.priors, tuple) and self.priors:
            return list(self.priors)
        keyword = {
            "scenario": "the scenario's [priors]",
            None: "rstanarm defaults; the scenario's [priors] on prior-DGP cells",
        }
        key = self.priors if isinstance(self.priors, str) or self.priors is None else None
        return [keyword.get(key, "rstanarm defaults (autoscaled per dataset)")]


def supports(model: ModelSpec) -> Support:
    fam = FAMILIES.get(model.family)
    if fam is None:
        return no(f"family {model.family!r} is not one of {', '.join(FAMILIES)}")
    if model.link not in fam.links:
        return no(f"{model.family} with link {model.link!r} (supported: {', '.join(fam.links)})")
    if model.formula.response.se is not None and model.family != "gaussian":
        return no(f"known measurement SEs (se()) are for gaussian models only, not {model.family}")
    return YES


@dataclass
class BlockInfo:
    group: str
    names: list[str]
    levels: list[str]
    correlated: bool
    col: int  # first column in Z
    r_start: int  # first element in the flat r vector

    @property
    def q(self) -> int:
        return len(self.names)

    @property
    def J(self) -> int:
        return len(self.levels)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(itertools.combinations(range(self.q), 2)) if self.correlated and self.q > 1 else []


@dataclass
class ModelData:
    """A Design in the form both engines sample: centred free predictors, blocks as ragged arrays."""

    family: str
    link: str
    x_names: list[str]
    has_intercept: bool
    X: np.ndarray  # full fixed-effect matrix, x_names order
    Xc: np.ndarray  # free predictors, centred when there is an intercept
    xbar: np.ndarray
    offset: np.ndarray
    y: np.ndarray
    trials: np.ndarray
    blocks: list[BlockInfo]
    Z: np.ndarray  # (N, Q) block covariates, concatenated
    gidx: np.ndarray  # (N, K) 0-based level index per block
    priors: ResolvedPriors
    prior_key: tuple = field(default=())
    se: np.ndarray | None = None  # known measurement SDs (`y | se(s)`), gaussian only
    se_sigma: bool = False  # a residual SD besides them (`se(s, sigma = TRUE)`)

    @property
    def has_sigma(self) -> bool:
        """A residual SD is sampled: gaussian, unless known SEs stand in for it."""
        return self.family == "gaussian" and (self.se is None or self.se_sigma)

    @property
    def se_mode(self) -> int:
        """0: no known SEs; 1: known SEs alone; 2: known SEs and a residual SD (glmm.stan's `se_mode`)."""
        return 0 if self.se is None else 2 if self.se_sigma else 1

    def obs_sd(self, sigma: np.ndarray | None) -> np.ndarray:
        """Each row's SD of y around its mean per draw (S, N) or (S, 1), for flat sigma draws (S,) or None."""
        if self.se is None:
            assert sigma is not None, "a gaussian model's draws carry sigma"
            return sigma[:, None]
        if sigma is None:
            return self.se[None, :]
        return np.sqrt(sigma[:, None] ** 2 + self.se[None, :] ** 2)

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def b_perm(self) -> list[int]:
        """Engines return b with the intercept first; this puts it back in x_names order."""
        ours = (["Intercept"] if self.has_intercept else []) + [n for n in self.x_names if n != "Intercept"]
        return [ours.index(n) for n in self.x_names]

    @property
    def Q(self) -> int:
        return self.Z.shape[1]

    @property
    def R(self) -> int:
        return sum(b.q * b.J for b in self.blocks)

    def shape_key(self) -> tuple:
        """Everything a compiled graph depends on: structure, every shape, prior families."""
        blocks = tuple((b.q, b.J, b.correlated) for b in self.blocks)
        key = (self.family, self.link, self.N, self.Xc.shape[1], self.has_intercept, blocks, self.prior_key)
        return key + ((self.se_mode,) if self.se_mode else ())


def prepare(data: FitData, priors: tuple[str, ...] | str | None) -> ModelData:
    """ModelData for one dataset with the priors resolved (rstanarm defaults where none were given)."""
    if isinstance(priors, str) and priors != "rstanarm":
        raise ValueError(
            f"priors = {priors!r} is resolved by the harness from a scenario's [priors]; "
            "give prior strings to fit data of your own"
        )
    priors = priors if isinstance(priors, tuple) else ()
    d = data.design
    names = list(d.x_names)
    has_int = "Intercept" in names
    free = [k for k, n in enumerate(names) if n != "Intercept"]
    Xf = d.X[:, free]
    xbar = Xf.mean(axis=0) if has_int else np.zeros(len(free))
    blocks, cols, col, r_start = [], [], 0, 0
    for bd in d.blocks:
        blocks.append(
            BlockInfo(
                bd.group, list(bd.names), list(bd.levels), bool(bd.block.correlated) and len(bd.names) > 1, col, r_start
            )
        )
        cols.append(bd.X)
        col += len(bd.names)
        r_start += len(bd.names) * bd.n_levels
    N = d.X.shape[0]
    Z = np.hstack(cols) if cols else np.zeros((N, 0))
    gidx = np.stack([bd.index for bd in d.blocks], axis=1) if d.blocks else np.zeros((N, 0), dtype=np.int64)
    layout = Layout.of(d, data.family)
    asked = parse_priors(priors)
    check_model(asked, layout)
    spec = effective(asked, layout)
    y = np.asarray(d.y, dtype=float)
    if d.se is not None and not d.formula.response.se_sigma:
        spec = known_se_priors(spec, y)
    elif data.family == "gaussian" and not np.ptp(y) > 0:
        raise ValueError("gaussian response is constant: sigma's posterior piles up at 0 (no regular fit)")
    trials = np.asarray(d.trials if d.trials is not None else np.zeros(N), dtype=float)
    terms = [(b.group, t) for b in blocks for t in b.names]
    resolved = resolve(spec, data.family, y, Xf, [names[k] for k in free], terms, layout.has_sigma)
    unused = vacuous(asked, layout)
    if unused:
        resolved.text.append(
            f"priors with no parameter in this model (applied to nothing): {'; '.join(map(str, unused))}"
        )
    key = resolved.key()  # the graph's structure; scales are data
    return ModelData(
        data.family,
        data.link,
        names,
        has_int,
        d.X,
        Xf - xbar,
        xbar,
        np.asarray(d.offset, float),
        y,
        trials,
        blocks,
        Z,
        gidx.astype(np.int64),
        resolved,
        key,
        None if d.se is None else np.asarray(d.se, float),
        d.formula.response.se_sigma,
    )


def known_se_priors(spec: PriorSpec, y: np.ndarray) -> PriorSpec:
    """The priors of a model whose known SEs replace sigma (`y | se(s)`). rstanarm cannot fit it, so it has no
    default to copy, and decov would scale the SDs by a sigma that is not there (a unit-scale prior whatever the
    units of y). Unless covariance priors are given, the SDs get the separate form's brms-like default instead,
    half student_t(3, 0, 2.5 sd(y)), as compare.priors.resolve writes it."""
    if spec.separate or spec.cov is not None:
        return spec
    sy = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    return dataclasses.replace(
        spec, given=(*spec.given, ("sd", Dist("student_t", (3.0, 0.0, 2.5 * sy if sy > 0 else 2.5))))
    )


# ---------------------------------------------------------------- draws -> summaries


@dataclass
class Draws:
    """Posterior draws, each (chains, draws, k); sigma and phi are (chains, draws) or None."""

    b: np.ndarray
    sd: np.ndarray
    cor: np.ndarray
    r: np.ndarray
    sigma: np.ndarray | None
    phi: np.ndarray | None = None  # negbinomial's dispersion

    def flat(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


@dataclass
class SamplerStats:
    diverging: np.ndarray  # (chains, draws) bool
    treedepth_hit: np.ndarray  # (chains, draws) bool
    energy: np.ndarray  # (chains, draws)


def _eta(md: ModelData, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Linear predictor (S, N) for flat draws b (S, P) and r (S, R)."""
    eta = b @ md.X.T + md.offset
    for k, blk in enumerate(md.blocks):
        u = r[:, blk.r_start : blk.r_start + blk.q * blk.J].reshape(-1, blk.J, blk.q)
        z = md.Z[:, blk.col : blk.col + blk.q]
        eta += np.einsum("nq,snq->sn", z, u[:, md.gidx[:, k], :])
    return eta


def _chunks(total: int, size: int = 500):
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


def _loglik(md: ModelData, eta: np.ndarray, sigma: np.ndarray | None, phi: np.ndarray | None = None) -> np.ndarray:
    if md.family == "gaussian":
        return stats.norm.logpdf(md.y, eta, md.obs_sd(sigma))
    mu = inverse_link(md.link, eta)
    if md.family == "binomial":
        return stats.binom.logpmf(md.y, md.trials, np.clip(mu, 1e-300, 1 - 1e-16))
    if md.family == "negbinomial":
        assert phi is not None, "a negbinomial model's draws carry phi"
        size = phi[:, None]
        return stats.nbinom.logpmf(md.y, size, size / (size + mu))
    return stats.poisson.logpmf(md.y, mu)


def pointwise(md: ModelData, draws: Draws, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Pointwise log-likelihood (chains, draws, N) and the poststratified mean per draw (chains, draws)."""
    C, S = draws.b.shape[:2]
    b, r = draws.flat(draws.b), draws.flat(draws.r)
    sigma = draws.flat(draws.sigma) if draws.sigma is not None else None
    phi = draws.flat(draws.phi) if draws.phi is not None else None
    ll = np.empty((C * S, md.N))
    mrp = np.empty(C * S) if weights is not None else None
    for sl in _chunks(C * S):
        eta = _eta(md, b[sl], r[sl])
        ll[sl] = _loglik(md, eta, None if sigma is None else sigma[sl], None if phi is None else phi[sl])
        if weights is not None and mrp is not None:
            mrp[sl] = inverse_link(md.link, eta) @ weights / weights.sum()
    return ll.reshape(C, S, md.N), None if mrp is None else mrp.reshape(C, S)


def predictive(md: ModelData, draws: Draws, seed: int) -> np.ndarray:
    """Replicated outcomes of the observed rows, one per draw (chains, draws, N): posterior_predict."""
    C, S = draws.b.shape[:2]
    rng = np.random.default_rng([seed, 7042])
    b, r = draws.flat(draws.b), draws.flat(draws.r)
    sigma = draws.flat(draws.sigma) if draws.sigma is not None else None
    out = np.empty((C * S, md.N))
    for sl in _chunks(C * S):
        eta = _eta(md, b[sl], r[sl])
        if md.family == "gaussian":
            out[sl] = eta + md.obs_sd(None if sigma is None else sigma[sl]) * rng.standard_normal(eta.shape)
        elif md.family == "binomial":
            out[sl] = rng.binomial(md.trials.astype(np.int64), inverse_link(md.link, eta))
        elif md.family == "negbinomial":
            assert draws.phi is not None, "a negbinomial model's draws carry phi"
            size = draws.flat(draws.phi)[sl, None]
            out[sl] = rng.negative_binomial(size, size / (size + inverse_link(md.link, eta)))
        else:
            out[sl] = rng.poisson(inverse_link(md.link, eta))
    return out.reshape(C, S, md.N)


def pred_new(md: ModelData, draws: Draws, seed: int) -> np.ndarray:
    """Outcome for a new level of the first block's factor (CONTRACT's pred_new), per draw (chains, draws)."""
    C, S = draws.b.shape[:2]
    rng = np.random.default_rng([seed, 7041])
    b, sd, cor = draws.flat(draws.b), draws.flat(draws.sd), draws.flat(draws.cor)
    eta = b @ md.X.mean(axis=0) + md.offset.mean()
    group = md.blocks[0].group
    cor_at = 0
    for blk in md.blocks:
        n_pairs = len(blk.pairs)
        if blk.group == group:
            corr = np.tile(np.eye(blk.q), (C * S, 1, 1))
            for m, (i, j) in enumerate(blk.pairs):
                corr[:, i, j] = corr[:, j, i] = cor[:, cor_at + m]
            s = sd[:, blk.col : blk.col + blk.q]
            L = np.linalg.cholesky(corr + 1e-12 * np.eye(blk.q))
            u = np.einsum("sij,sj->si", L, rng.standard_normal((C * S, blk.q))) * s
            eta += u @ md.Z[:, blk.col : blk.col + blk.q].mean(axis=0)
        cor_at += n_pairs
    if md.has_sigma:
        assert draws.sigma is not None, "a gaussian model's draws carry sigma"
        value = eta + draws.flat(draws.sigma) * rng.standard_normal(C * S)
    elif md.family == "gaussian":  # known SEs alone: a new group's mean (its own SE is unknown), as simulate's truth
        value = eta
    else:
        value = inverse_link(md.link, eta)
    return value.reshape(C, S)


def _named_draws(md: ModelData, draws: Draws) -> tuple[list[str], np.ndarray]:
    """Every reported parameter's name and its draws, stacked (chains, draws, M)."""
    names = [name_b(n) for n in md.x_names]
    parts = [draws.b]
    names += [name_sd(blk.group, t) for blk in md.blocks for t in blk.names]
    parts.append(draws.sd)
    names += [name_cor(blk.group, blk.names[i], blk.names[j]) for blk in md.blocks for i, j in blk.pairs]
    parts.append(draws.cor)
    if draws.sigma is not None:
        names.append("sigma")
        parts.append(draws.sigma[..., None])
    if draws.phi is not None:
        names.append("phi")
        parts.append(draws.phi[..., None])
    names += [name_r(blk.group, lv, t) for blk in md.blocks for lv in blk.levels for t in blk.names]
    parts.append(draws.r)
    return names, np.concatenate([p.reshape(p.shape[0], p.shape[1], int(np.prod(p.shape[2:]))) for p in parts], axis=2)


def thinned_draws(names: list[str], values: np.ndarray, keep: int = 99) -> dict[str, np.ndarray]:
    """`keep` evenly spaced draws of every parameter but the group effects, pooled over chains, for
    simulation-based calibration: the harness ranks the truth among them (engines never see it)."""
    flat = values.reshape(-1, values.shape[2])
    idx = np.linspace(0, flat.shape[0] - 1, min(keep, flat.shape[0])).astype(int)
    return {n: flat[idx, i] for i, n in enumerate(names) if describe(n).param_class != "r"}


def _az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def _convergence(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk and tail ESS (ArviZ) for (chains, draws, M)."""
    az = _az()
    ds = az.convert_to_dataset({"v": values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(ds, method="rank")["v"].values
        bulk = az.ess(ds, method="bulk")["v"].values
        tail = az.ess(ds, method="tail")["v"].values
    return np.atleast_1d(rhat), np.atleast_1d(bulk), np.atleast_1d(tail)


def summary_rows(names: list[str], values: np.ndarray, level: float = DEFAULT_LEVEL) -> list[dict[str, Any]]:
    """Posterior mean, SD, median and the central `level` quantile interval of each named quantity."""
    flat = values.reshape(-1, values.shape[2])
    rhat, bulk, tail = _convergence(values)
    lo, med, hi = np.quantile(flat, [0.5 - level / 2, 0.5, 0.5 + level / 2], axis=0)
    by_parameter = np.ascontiguousarray(flat.T)  # each parameter's draws reduced alone, as a reader of one does
    mean, sd = by_parameter.mean(axis=1), by_parameter.std(axis=1, ddof=1)
    return [
        {
            "parameter": n,
            "estimate": float(mean[m]),
            "se": float(sd[m]),
            "median": float(med[m]),
            "lower": float(lo[m]),
            "upper": float(hi[m]),
            "rhat": float(rhat[m]),
            "ess_bulk": float(bulk[m]),
            "ess_tail": float(tail[m]),
            "interval": "quantile",
        }
        for m, n in enumerate(names)
    ]


def _loo(ll: np.ndarray) -> dict[str, Any]:
    az = _az()
    idata = az.from_dict(posterior={"_": np.zeros(ll.shape[:2])}, log_likelihood={"y": ll})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = az.loo(idata, pointwise=True)
    k = np.asarray(res.pareto_k)
    return {
        "loo_elpd": float(res.elpd_loo),
        "loo_se": float(res.se),
        "p_loo": float(res.p_loo),
        "pareto_k_gt_07": int(np.sum(k > 0.7)),
        "pareto_k_max": float(np.max(k)),
    }


def _ebfmi(energy: np.ndarray) -> float:
    num = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / energy.shape[1]
    return float(np.min(num / np.var(energy, axis=1)))


@dataclass
class Timing:
    wall_s: float
    compile_s: float
    sampling_s: float  # warmup + draws: neither engine reports them separately here
    compile_count: int


def fit_result(
    engine: str,
    md: ModelData,
    data: FitData,
    draws: Draws,
    sstats: SamplerStats,
    timing: Timing,
    settings: SamplerSettings,
    notes: list[str],
    seed: int,
) -> FitResult:
    """Everything a Bayesian FitResult records, from draws that both engines produce the same way."""
    draws.b = draws.b[..., md.b_perm]
    names, values = _named_draws(md, draws)
    rows = summary_rows(names, values, settings.level)
    weights = data.frame[data.poststratify].to_numpy(float) if data.poststratify else None
    ll, mrp = pointwise(md, draws, weights)
    extra_names, extra = [], []
    if mrp is not None:
        extra_names.append("mrp")
        extra.append(mrp)
    if md.blocks:
        extra_names.append(name_pred_new(md.blocks[0].group))
        extra.append(pred_new(md, draws, seed))
    if extra:
        rows += summary_rows(extra_names, np.stack(extra, axis=2), settings.level)
    params = make_params(rows)
    diag = _diagnostics(params, sstats, timing.sampling_s, _loo(ll))
    warn = _warnings(diag, settings)
    everything = np.concatenate([values] + [e[..., None] for e in extra], axis=2)
    thinned = thinned_draws(names + extra_names, everything)
    idata = None
    if settings.keep_draws:
        kept = [n for n in names + extra_names if describe(n).param_class != "pred_new"]
        new_group = (extra_names[-1], extra[-1]) if md.blocks else None
        idata = posterior.inference_data(
            kept, everything[..., : len(kept)], _stats(sstats), md.y, predictive(md, draws, seed), new_group
        )
    converged = bool(not diag.rhat_max_hyper > RHAT_OK and diag.divergences == 0)
    notes = (
        notes
        + [
            "sampling_s is warmup + draws (not separated); warmup_s is NaN",
            f"converged = R-hat <= {RHAT_OK} for every b, sd, cor, sigma, phi and no divergent transitions "
            "(group effects r count in rhat_max, not in converged)",
        ]
        + md.priors.text
    )
    details = {"priors": list(md.priors.used)}
    return FitResult(
        engine,
        params,
        converged=converged,
        singular=None,
        warnings=warn,
        notes=notes,
        wall_s=timing.wall_s,
        compile_s=timing.compile_s,
        warmup_s=math.nan,
        sampling_s=timing.sampling_s,
        compile_count=timing.compile_count,
        sampler=diag,
        draws=thinned,
        idata=idata,
        details=details,
    )


DERIVED = ("mrp", "pred_new")  # quantities computed from the draws, not sampled parameters


def _stats(sstats: SamplerStats) -> dict[str, np.ndarray]:
    return {"diverging": sstats.diverging, "reached_max_treedepth": sstats.treedepth_hit, "energy": sstats.energy}


def _diagnostics(
    params: pd.DataFrame, sstats: SamplerStats, sampling_s: float, loo: dict[str, Any]
) -> SamplerDiagnostics:
    """Model parameters only (not derived predictions: mrp, pred_new); hyper-parameters apart from group effects."""
    frame = params[~params["param_class"].isin(DERIVED)]
    hyper = frame[frame["param_class"] != "r"]
    ess_min = float(np.nanmin(frame["ess_bulk"])) if len(frame) else math.nan
    return SamplerDiagnostics(
        rhat_max=float(np.nanmax(frame["rhat"])) if len(frame) else math.nan,
        rhat_max_hyper=float(np.nanmax(hyper["rhat"])) if len(hyper) else math.nan,
        ess_bulk_min=ess_min,
        ess_tail_min=float(np.nanmin(frame["ess_tail"])) if len(frame) else math.nan,
        ess_bulk_per_s=ess_min / sampling_s if sampling_s > 0 else math.nan,
        divergences=int(np.sum(sstats.diverging)),
        treedepth_hits=int(np.sum(sstats.treedepth_hit)),
        ebfmi_min=_ebfmi(sstats.energy),
        **loo,
    )


def _warnings(diag: SamplerDiagnostics, settings: SamplerSettings) -> list[str]:
    out = []
    if diag.divergences:
        out.append(f"{diag.divergences} divergent transitions after warmup (adapt_delta={settings.adapt_delta})")
    if diag.rhat_max > RHAT_OK:
        out.append(f"max R-hat {diag.rhat_max:.3f} > {RHAT_OK}")
    if diag.treedepth_hits:
        out.append(f"{diag.treedepth_hits} transitions hit the maximum tree depth {settings.max_treedepth}")
    if diag.ebfmi_min < 0.3:
        out.append(f"E-BFMI {diag.ebfmi_min:.2f} < 0.3")
    if diag.ess_bulk_min < 100 * settings.chains:
        out.append(f"min bulk ESS {diag.ess_bulk_min:.0f} < {100 * settings.chains}")
    if diag.pareto_k_gt_07:
        out.append(f"PSIS-LOO: {diag.pareto_k_gt_07} Pareto k > 0.7")
    return out
