"""statsmodels' GLMM: BinomialBayesMixedGLM / PoissonBayesMixedGLM, `fit_map` (Laplace) and `fit_vb`
(mean-field variational Bayes), as a user calls them (default priors vcp_p=1, fe_p=2).

These are approximate Bayes, yet `kind` stays "frequentist": in hbench `kind` says how an engine is run
and read (kind "bayesian" means a sampler with R-hat/ESS/divergences, a `priors` setting taking brms-style
strings, minutes per fit, left out of `hbench fit` unless named), and these engines behave like the
frequentist ones in all of that: deterministic optimisation, seconds per fit, their own fixed priors. Every
FitResult says "approximate Bayes" in its notes, and the intervals are labelled "laplace-log-sd"/"vb-log-sd" so nobody
reads them as Wald or profile intervals.

What the model cannot do, and what we do about it (each is stated in the FitResult notes):
- outcomes must be 0/1: binomial counts are expanded to Bernoulli rows (FINDINGS: otherwise an
  unhelpful broadcasting error);
- random effects are independent variance components only: each term of a correlated block is its
  own component, so no correlations are estimated;
- no offset and only the canonical links (logit, log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from scipy.special import expit
from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM, PoissonBayesMixedGLM

from compare.data import FitData
from compare.design import Design
from compare.estimators import _frequentist as fq
from compare.estimators.base import YES, Estimator, Support, no
from compare.fitresult import FitResult, boundary_flags, make_params, name_sd
from compare.formula import ModelSpec
from compare.settings import Settings, setting

APPROX_NOTE = "approximate Bayes (statsmodels BayesMixedGLM, {method}); priors vcp_p={vcp_p}, fe_p={fe_p}"
CANONICAL = {"binomial": "logit", "poisson": "log"}


def expand_bernoulli(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """(row index into the original data, 0/1 outcome) with one Bernoulli row per trial."""
    assert design.trials is not None and design.y is not None, "binomial designs carry outcomes and trials"
    trials = design.trials.astype(np.int64)
    succ = design.y.astype(np.int64)
    rows = np.repeat(np.arange(design.n), trials)
    # within each original row the first `succ` trials are successes
    first = np.repeat(np.cumsum(trials) - trials, trials)
    outcome = (np.arange(rows.size) - first < succ[rows]).astype(float)
    return rows, outcome


def vc_matrix(design: Design) -> tuple[sparse.csr_matrix, np.ndarray, list[tuple[int, int]]]:
    """Columns indicator(level) * term value for every (block, term): each term its own component."""
    cols: list[sparse.csr_matrix] = []
    ident: list[int] = []
    comps: list[tuple[int, int]] = []
    for bi, b in enumerate(design.blocks):
        for k in range(len(b.names)):
            data = b.X[:, k]
            cols.append(sparse.csr_matrix((data, (np.arange(design.n), b.index)), shape=(design.n, b.n_levels)))
            ident += [len(comps)] * b.n_levels
            comps.append((bi, k))
    return sparse.hstack(cols).tocsr(), np.asarray(ident, dtype=np.int64), comps


@dataclass(frozen=True)
class BayesMixedGLMSettings(Settings):
    vcp_p: float = setting(1.0, "prior SD of the log SDs (statsmodels' vcp_p)", lo=1e-12)
    fe_p: float = setting(2.0, "prior SD of the fixed effects (statsmodels' fe_p)", lo=1e-12)


class BayesMixedGLMEngine(Estimator):
    """statsmodels Binomial/PoissonBayesMixedGLM, Laplace posterior mode (`fit_map`)."""

    name: ClassVar[str] = "bayesmixedglm-map"
    kind: ClassVar[str] = "frequentist"
    Settings: ClassVar[type[Settings]] = BayesMixedGLMSettings
    settings: BayesMixedGLMSettings
    method: ClassVar[str] = "map"

    def supports(self, model: ModelSpec) -> Support:
        if model.family not in CANONICAL:
            return no(f"BayesMixedGLM fits binomial and poisson models only, not {model.family}")
        if model.link != CANONICAL[model.family]:
            return no(f"BayesMixedGLM uses the {CANONICAL[model.family]} link only, not {model.link}")
        if model.formula.offset:
            return no("BayesMixedGLM has no offset argument")
        if not model.formula.blocks:
            return no("BayesMixedGLM needs at least one random-effect term")
        if not model.formula.fixed:
            return no("BayesMixedGLM needs at least one fixed-effect column")
        return YES

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        design = data.design
        vcp_p, fe_p = self.settings.vcp_p, self.settings.fe_p
        (result, texts, n_rows), wall = fq.timed(lambda: self._run(design, vcp_p, fe_p, seed))
        out = self._summarise(result, design, texts, data)
        out.wall_s = wall
        out.notes.insert(
            0,
            APPROX_NOTE.format(
                method="Laplace fit_map" if self.method == "map" else "mean-field fit_vb", vcp_p=vcp_p, fe_p=fe_p
            ),
        )
        if data.family == "binomial" and n_rows != design.n:
            out.notes.append(f"binomial counts expanded to {n_rows} Bernoulli rows")
        if any(b.block.correlated and len(b.names) > 1 for b in design.blocks):
            out.notes.append(
                "correlated random-effect blocks fitted as independent variance components "
                "(BayesMixedGLM has no correlations); no cor[...] estimates"
            )
        return out

    def _run(self, design: Design, vcp_p: float, fe_p: float, seed: int):
        vc, ident, comps = vc_matrix(design)
        X, y = design.X, design.y
        assert y is not None, "a design to fit has an outcome"
        if design.family == "binomial":
            rows, y = expand_bernoulli(design)
            X, vc = X[rows], vc[rows]
        cls = BinomialBayesMixedGLM if design.family == "binomial" else PoissonBayesMixedGLM
        model = cls(y, X, vc, ident, vcp_p=vcp_p, fe_p=fe_p)
        rng = np.random.default_rng(seed)
        with fq.captured_warnings() as texts:
            result = model.fit_map(rng=rng) if self.method == "map" else model.fit_vb(rng=rng)
        return (result, comps), texts, len(y)

    def _summarise(self, fitted, design: Design, texts: list[str], data: FitData) -> FitResult:
        result, comps = fitted
        how = "laplace" if self.method == "map" else "vb"
        rows = fq.fixed_rows(design.x_names, result.fe_mean, result.fe_sd, None, self.level)  # no t: not Wald
        for r in rows:
            r["interval"] = f"{how}-normal"
        sds = np.exp(result.vcp_mean)
        for (bi, k), sd, s_log in zip(comps, sds, result.vcp_sd, strict=True):
            b = design.blocks[bi]
            rows.append(fq.sd_row(b.group, b.names[k], float(sd), float(s_log), f"{how}-log-sd", level=self.level))
        start = 0
        for bi, k in comps:
            b = design.blocks[bi]
            m = result.vc_mean[start : start + b.n_levels, None]
            s = result.vc_sd[start : start + b.n_levels, None]
            rows += fq.group_effect_rows(b.group, b.levels, [b.names[k]], m, s, level=self.level)
            start += b.n_levels
        if data.poststratify:
            rows.append(fq.mrp_row(data.frame[data.poststratify].to_numpy(float), self._expected(result, design)))
        singular, corr_bound, var_zero = boundary_flags([np.array([[v * v]]) for v in sds], 1.0)
        retvals = getattr(result, "optim_retvals", None)
        converged = bool(getattr(retvals, "success", True))
        notes = [] if converged else [f"optimiser: {getattr(retvals, 'message', 'did not converge')}"]
        params = make_params(rows)
        return FitResult(
            engine=self.name,
            params=params,
            converged=converged,
            singular=singular,
            corr_at_bound=corr_bound,
            var_at_zero=var_zero,
            loglik=math.nan,
            optimizer=f"scipy BFGS ({'posterior mode' if self.method == 'map' else 'ELBO'})",
            warnings=texts,
            notes=notes,
            details={
                "approximate_bayes": how,
                "sd_names": [name_sd(design.blocks[bi].group, design.blocks[bi].names[k]) for bi, k in comps],
            },
        )

    @staticmethod
    def _expected(result: Any, design: Design) -> np.ndarray:
        """Expected outcome per original row (probability or rate) from the posterior means (plug-in)."""
        vc, _, _ = vc_matrix(design)
        eta = design.X @ result.fe_mean + vc @ result.vc_mean
        return expit(eta) if design.family == "binomial" else np.exp(eta)


class BayesMixedGLMVBEngine(BayesMixedGLMEngine):
    """statsmodels Binomial/PoissonBayesMixedGLM, mean-field variational Bayes (`fit_vb`)."""

    name: ClassVar[str] = "bayesmixedglm-vb"
    method: ClassVar[str] = "vb"


ESTIMATORS = [BayesMixedGLMEngine, BayesMixedGLMVBEngine]
