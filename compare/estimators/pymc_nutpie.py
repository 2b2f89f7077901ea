"""Engine `pymc`: the same model as compare/stan/glmm.stan written in PyMC, sampled by nutpie (numba).

Compiling costs ~50 s cold, sampling ~1.5 s, so the compiled model is cached per worker process and
reused for every replication with `compiled.with_data(...)`.  nutpie's `with_data` checks only the
number of dimensions: a larger number of groups than compiled aborts the process and a smaller one
silently samples empty groups (shared FINDINGS), so the cache key is every shape (N, P, each block's
q and J, correlation structure) plus the prior families.  Data-dependent prior scales are pm.Data so
that reuse with new data also moves the (autoscaled) priors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import compare.pytensor_setup  # noqa: F401 - sets PyTensor's BLAS before pytensor is imported
from compare.data import FitData
from compare.estimators import _bayes
from compare.estimators.base import YES, Estimator, Support, no
from compare.fitresult import FitResult
from compare.formula import ModelSpec
from compare.settings import Settings, setting


def _positive_args(pm, code: int, par):
    """(PyMC class, kwargs) of a prior on a positive parameter by DISTS code: half normal/student_t/cauchy
    centred at 0, exponential, gamma, uniform (the parameter bounded to its interval), inverse gamma, lognormal."""
    table = {
        1: (pm.HalfNormal, {"sigma": par[..., 1]}),
        2: (pm.HalfStudentT, {"nu": par[..., 0], "sigma": par[..., 2]}),
        3: (pm.HalfCauchy, {"beta": par[..., 1]}),
        4: (pm.Exponential, {"lam": par[..., 0]}),
        5: (pm.Gamma, {"alpha": par[..., 0], "beta": par[..., 1]}),
        8: (pm.Uniform, {"lower": par[..., 0], "upper": par[..., 1]}),
        9: (pm.InverseGamma, {"alpha": par[..., 0], "beta": par[..., 1]}),
        10: (pm.LogNormal, {"mu": par[..., 0], "sigma": par[..., 1]}),
    }
    return table[code]


def _real_args(pm, code: int, par):
    """(PyMC class, kwargs) of a real-valued prior by DISTS code: normal, student_t, cauchy."""
    table = {
        1: (pm.Normal, {"mu": par[..., 0], "sigma": par[..., 1]}),
        2: (pm.StudentT, {"nu": par[..., 0], "mu": par[..., 1], "sigma": par[..., 2]}),
        3: (pm.Cauchy, {"alpha": par[..., 0], "beta": par[..., 1]}),
    }
    return table[code]


def _prior(pm, args, name: str, code: int, par, shape=None):
    cls, kwargs = args(pm, code, par)
    return cls(name, shape=shape, **kwargs)


def _positive_prior(pm, name: str, code: int, par, shape=None):
    return _prior(pm, _positive_args, name, code, par, shape)


def _real_prior(pm, name: str, code: int, par, shape=None):
    return _prior(pm, _real_args, name, code, par, shape)


def _vector_prior(pm, pt, args, name: str, codes, par):
    """A vector whose elements may have priors of different families (codes, one per element; par rows):
    one random variable per family (`name` itself when they share one), assembled in element order."""
    kinds = sorted({int(c) for c in codes})
    if len(kinds) == 1:
        return _prior(pm, args, name, kinds[0], par, shape=len(codes))
    out = pt.zeros(len(codes))
    for code in kinds:
        at = [i for i, c in enumerate(codes) if int(c) == code]
        part = _prior(pm, args, f"{name}_d{code}", code, par[at], shape=len(at))
        out = pt.set_subtensor(out[at], part)
    return out


def data_values(md: _bayes.ModelData) -> dict[str, np.ndarray]:
    """Every pm.Data value of the graph for one dataset (names match `build_model`)."""
    p = md.priors
    count = md.family != "gaussian"
    values = {
        "Xc": md.Xc,
        "xbar": md.xbar,
        "off": md.offset,
        "y": np.rint(md.y).astype(np.int64) if count else md.y,
        "trials": np.rint(md.trials).astype(np.int64),
        "b_par": p.b_par,
        "int_par": p.int_par,
        "sigma_par": p.sigma_par,
        "phi_par": p.phi_par,
        "sd_par": p.sd_par,
    }
    if md.se is not None:
        values["se"] = md.se
    for k, blk in enumerate(md.blocks):
        values[f"Z{k}"] = md.Z[:, blk.col : blk.col + blk.q]
        values[f"g{k}"] = md.gidx[:, k]
    return values


def build_model(md: _bayes.ModelData):
    """PyMC model: centred fixed effects, non-centred correlated blocks, rstanarm decov or brms separate priors."""
    import pymc as pm
    import pytensor.tensor as pt

    p = md.priors
    vals = data_values(md)
    with pm.Model() as model:
        d = {k: pm.Data(k, v) for k, v in vals.items()}
        eta = d["off"]
        beta = _vector_prior(pm, pt, _real_args, "beta", p.b_codes, d["b_par"]) if md.Xc.shape[1] else None
        if beta is not None:
            eta = eta + pt.dot(d["Xc"], beta)
        if md.has_intercept:
            alpha = _intercept(pm, pt, md, d, beta)
            eta = eta + alpha
        sigma = _positive_prior(pm, "sigma", p.sigma_code, d["sigma_par"]) if md.has_sigma else None
        phi = _positive_prior(pm, "phi", p.phi_code, d["phi_par"]) if md.family == "negbinomial" else None
        sds, cors, rs = [], [], []
        for k, blk in enumerate(md.blocks):
            sd_k, L_k, cor_k = _block_cov(pm, pt, md, k, blk, d, sigma)
            z = pm.Normal(f"z{k}", 0.0, 1.0, shape=(blk.J, blk.q))
            r_k = (pt.dot(z, L_k.T) if L_k is not None else z) * sd_k
            for t in range(blk.q):  # gathers from vectors: much faster gradients than gathering matrix rows
                eta = eta + d[f"Z{k}"][:, t] * r_k[:, t][d[f"g{k}"]]
            sds.append(sd_k)
            cors += cor_k
            rs.append(r_k.flatten())
        _likelihood(pm, md, eta, d, sigma, phi)
        _deterministics(pm, pt, d["xbar"], alpha if md.has_intercept else None, beta, sds, cors, rs, sigma)
    return model


def _intercept(pm, pt, md, d, beta):
    """The intercept of centred predictors, its prior on it (brms's `Intercept`) or, for a `b[Intercept]`
    prior, on alpha - xbar . beta, the intercept on the data's scale: that map has unit Jacobian, so the
    prior's log density is simply added (as glmm.stan does)."""
    p = md.priors
    if not p.int_uncentred:
        return _real_prior(pm, "alpha", p.int_code, d["int_par"])
    alpha = pm.Flat("alpha")
    b0 = alpha - (pt.dot(d["xbar"], beta) if beta is not None else 0.0)
    cls, kwargs = _real_args(pm, p.int_code, d["int_par"])
    pm.Potential("intercept_prior", pm.logp(cls.dist(**kwargs), b0))
    return alpha


def cpc_cholesky(pt, y, q: int):
    """Cholesky factor of a correlation matrix from unconstrained canonical partial correlations y, and the
    log Jacobian of that map: Stan's cholesky_factor_corr transform, as compare/stan/glmm.stan writes it,
    so both engines sample the same parameterisation (checked numerically in tests)."""
    c = pt.tanh(y)
    logjac = pt.sum(pt.log1p(-(c**2)))
    zero = pt.zeros(())
    rows = [[pt.ones(())] + [zero] * (q - 1)]
    k = 0
    for i in range(1, q):
        row, s = [], zero
        for j in range(i):
            if j > 0:
                logjac = logjac + 0.5 * pt.log1p(-s)
            v = c[k] * pt.sqrt(1 - s)
            row.append(v)
            s = s + v**2
            k += 1
        rows.append(row + [pt.sqrt(1 - s)] + [zero] * (q - i - 1))
    return pt.stack([pt.stack(r) for r in rows]), logjac


def lkj_cholesky_logp(pt, L, q: int, eta: float):
    """log LKJ(eta) density of a correlation Cholesky factor (Stan's lkj_corr_cholesky_lpdf, no constant)."""
    return sum((q - i - 1 + 2 * (eta - 1)) * pt.log(L[i, i]) for i in range(1, q))


def _block_cov(pm, pt, md, k, blk, d, sigma):
    """(sd vector, correlation Cholesky factor or None, correlation scalars) for block k.

    SDs: brms's separate half priors, or rstanarm's decov (tau ~ Gamma(shape, 1), shares from
    Gamma(concentration, 1) variates, SDs = dispersion * tau * scale * sqrt(q * pi)).
    Correlations: canonical partial correlations with the LKJ prior, as glmm.stan.
    """
    p = md.priors
    if p.separate:
        at = slice(blk.col, blk.col + blk.q)
        sd = _vector_prior(pm, pt, _positive_args, f"sd{k}", p.sd_codes[at], d["sd_par"][at])
    else:
        disp = sigma if sigma is not None else 1.0
        tau = pm.Gamma(f"tau{k}", alpha=p.decov[2], beta=1.0)
        if blk.q == 1:
            sd = (disp * tau * p.decov[3]) * pt.ones(1)
        else:
            zeta = pm.Gamma(f"zeta{k}", alpha=p.decov[1], beta=1.0, shape=blk.q)
            sd = disp * tau * p.decov[3] * pt.sqrt(blk.q * zeta / pt.sum(zeta))
    if not blk.correlated:
        return sd, None, []
    eta_lkj = p.lkj_eta if p.separate else p.decov[0]
    y = pm.Flat(f"cpc{k}", shape=len(blk.pairs))
    L, logjac = cpc_cholesky(pt, y, blk.q)
    pm.Potential(f"lkj{k}", logjac + lkj_cholesky_logp(pt, L, blk.q, eta_lkj))
    corr = pt.dot(L, L.T)
    return sd, L, [corr[i, j] for i, j in blk.pairs]


def _likelihood(pm, md, eta, d, sigma, phi=None) -> None:
    if md.family == "gaussian":
        pm.Normal("y_obs", mu=eta, sigma=_obs_sd(md, d, sigma), observed=d["y"])
    elif md.family == "poisson":
        pm.Poisson("y_obs", mu=pm.math.exp(eta), observed=d["y"])
    elif md.family == "negbinomial":  # PyMC's (mu, alpha): variance mu + mu^2 / alpha, alpha = phi (NB2)
        pm.NegativeBinomial("y_obs", mu=pm.math.exp(eta), alpha=phi, observed=d["y"])
    else:
        if md.link == "logit":
            pm.Binomial("y_obs", n=d["trials"], logit_p=eta, observed=d["y"])
            return
        prob = pm.math.invprobit(eta) if md.link == "probit" else 1 - pm.math.exp(-pm.math.exp(eta))
        pm.Binomial("y_obs", n=d["trials"], p=prob, observed=d["y"])


def _obs_sd(md, d, sigma):
    """The SD of y around its mean: sigma, or the known SEs of `y | se(s)` (with sigma: sqrt(sigma^2 + se^2))."""
    import pytensor.tensor as pt

    if md.se is None:
        return sigma
    return d["se"] if sigma is None else pt.sqrt(sigma**2 + d["se"] ** 2)


def _deterministics(pm, pt, xbar, alpha, beta, sds, cors, rs, sigma) -> None:
    """b (intercept un-centred, x_names order), sds, cors, r: the draws the shared summaries read.

    `xbar` (the predictors' means) is data, not a constant folded into the graph: a compiled model reused
    for a new dataset with `with_data` must un-centre with that dataset's means."""
    parts = []
    if alpha is not None:
        shift = pt.dot(xbar, beta) if beta is not None else 0.0
        parts.append(pt.reshape(alpha - shift, (1,)))
    if beta is not None:
        parts.append(beta)
    pm.Deterministic("b", pt.concatenate(parts) if parts else pt.zeros(0))  # intercept first, as glmm.stan
    pm.Deterministic("sds", pt.concatenate(sds) if sds else pt.zeros(0))
    pm.Deterministic("cors", pt.stack(cors) if cors else pt.zeros(0))
    pm.Deterministic("r", pt.concatenate(rs) if rs else pt.zeros(0))


@dataclass(frozen=True)
class PyMCSettings(_bayes.SamplerSettings):
    cores: int | None = setting(None, "chains sampled in parallel (default: min(chains, CPU count))", lo=1)


class PyMCNutpieEstimator(Estimator):
    """PyMC + nutpie (numba)."""

    name: ClassVar[str] = "pymc"
    kind: ClassVar[str] = "bayesian"
    Settings: ClassVar[type[Settings]] = PyMCSettings
    settings: PyMCSettings
    _compiled: ClassVar[dict[tuple, Any]] = {}  # per process: shape key -> (compiled nutpie model, PyMC model)

    def available(self) -> Support:
        try:
            import nutpie  # noqa: F401
            import pymc  # noqa: F401
        except ImportError as exc:
            return no(f"PyMC/nutpie not installed ({exc})")
        return YES

    def supports(self, model: ModelSpec) -> Support:
        return _bayes.supports(model)

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        import nutpie

        self.require(data.model)
        start = time.perf_counter()
        s = self.settings
        md = _bayes.prepare(data, s.priors)
        compiled, compile_s, count = self._compiled_for(md)
        t0 = time.perf_counter()
        trace = nutpie.sample(
            compiled,
            chains=s.chains,
            tune=s.warmup,
            draws=s.draws,
            seed=int(seed),
            target_accept=s.adapt_delta,
            maxdepth=s.max_treedepth,
            cores=s.cores or min(s.chains, os.cpu_count() or 1),
            progress_bar=False,
            save_warmup=False,
        )
        sampling_s = time.perf_counter() - t0
        draws, sstats = _trace_draws(trace, md, s)
        timing = _bayes.Timing(time.perf_counter() - start, compile_s, sampling_s, count)
        notes = ["backend: PyMC + nutpie (numba)"]
        return _bayes.fit_result(self.name, md, data, draws, sstats, timing, s, notes, seed)

    def _compiled_for(self, md: _bayes.ModelData):
        import nutpie
        import pymc as pm

        key = md.shape_key()
        values = data_values(md)
        if key in self._compiled:
            compiled, model = self._compiled[key]
            # nutpie's logp reads its own copy of the data (with_data); the initial-point function nutpie keeps
            # is PyMC's, which reads the model's shared variables: set both, or the starting point (the support
            # point of priors scaled by the data) would be the compiling dataset's, and results would depend
            # on which replication a worker compiled from
            pm.set_data(values, model=model)
            shared = {k: v for k, v in values.items() if k in compiled.shared_data}  # pruned if unused
            return compiled.with_data(**shared), 0.0, 0
        t0 = time.perf_counter()
        model = build_model(md)
        compiled = nutpie.compile_pymc_model(model, backend="numba")
        self._compiled[key] = (compiled, model)
        return compiled, time.perf_counter() - t0, 1


def _trace_draws(trace, md: _bayes.ModelData, s: PyMCSettings):
    post = trace.posterior

    def get(name: str) -> np.ndarray:
        a = np.asarray(post[name].values)
        return a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))

    sigma = np.asarray(post["sigma"].values) if md.has_sigma else None
    phi = np.asarray(post["phi"].values) if md.family == "negbinomial" else None
    draws = _bayes.Draws(get("b"), get("sds"), get("cors"), get("r"), sigma, phi)
    st = trace.sample_stats
    depth = np.asarray(st["depth"].values) if "depth" in st else np.zeros(draws.b.shape[:2])
    hit = np.asarray(st["maxdepth_reached"].values) if "maxdepth_reached" in st else depth >= s.max_treedepth
    sstats = _bayes.SamplerStats(
        np.asarray(st["diverging"].values).astype(bool), hit.astype(bool), np.asarray(st["energy"].values)
    )
    return draws, sstats


ESTIMATORS = [PyMCNutpieEstimator]
