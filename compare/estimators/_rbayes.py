"""What the R samplers (rstanarm, brms) share: settings, an engine base class (availability, supports, the start
of a fit), the sampler's own diagnostics from rstan, and the hand-off of their posterior draws to the project's
summariser (compare.estimators._bayes).

Why draws and not R's summaries: every Bayesian engine's means, quantiles, R-hat/ESS (ArviZ, per chain),
PSIS-LOO, pred_new and SBC draws are then computed by the same code, so differences between engines are
differences between samplers and priors, not between summary conventions. Kept out of the registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.errors import InputError
from compare.estimators import _bayes, _r
from compare.estimators.base import YES, Estimator, Support, no, no_known_se
from compare.fitresult import FitResult
from compare.formula import ModelSpec
from compare.priors import Layout, PriorSpec, effective, parse_priors
from compare.settings import setting


@dataclass(frozen=True)
class RSamplerSettings(_bayes.SamplerSettings):
    """NUTS controls of the R samplers; adapt_delta defaults to rstanarm's 0.95 (brms's is 0.8; FINDINGS)."""

    adapt_delta: float = setting(
        0.95,
        "target acceptance rate of step-size adaptation (0.95: rstanarm's default; brms's own is 0.8)",
        lo=0.5,
        hi=0.9999,
    )
    cores: int = setting(
        1,
        "chains run in parallel by rstan in new R processes (their start-up cost ~20 s a fit "
        "here: slower than 1 for short runs)",
        lo=1,
    )

    def problems(self) -> list[str]:
        """Prior strings the R package cannot express are refused when the suite or `hbench fit` reads them,
        before anything runs (each engine's `check` raises InputError saying why); what needs the model (its
        coefficient names) is checked by `check_priors` once the model is known."""
        out = super().problems()
        if not out:
            try:
                self.check(parse_priors(self.prior_strings), None)
            except InputError as exc:
                out.append(str(exc))
        return out

    def check_priors(self, layout: Layout) -> None:
        super().check_priors(layout)
        self.check(effective(parse_priors(self.prior_strings), layout), layout)

    def prior_plan(self) -> list[str]:
        return list(self.prior_strings) or ["the R package's own defaults"]

    @staticmethod
    def check(spec: PriorSpec, layout: Layout | None) -> None:
        """InputError for a prior the engine cannot express (layout None: what the strings alone show)."""

    @staticmethod
    def translate(spec: PriorSpec, md: _bayes.ModelData) -> Any:
        return spec


class RSamplerEngine(Estimator):
    """What the rstanarm and brms engines share: their R package's availability, the models they take, and the
    start of a fit (model check, clock, the shared model data, the prior strings in the package's terms).
    Subclasses set `name`, `Settings` (an RSamplerSettings with its `translate`), `package`, `r_code` and
    `no_blocks`, and implement `fit`."""

    kind: ClassVar[str] = "bayesian"
    package: ClassVar[str] = ""  # the R package, as _r.package_status names it
    r_code: ClassVar[str] = ""  # the engine's R file (compare/estimators/R/), sourced once per R session
    no_blocks: ClassVar[str] = ""  # why a model without a random-effect term is refused
    known_se_refusal: ClassVar[str] = ""  # why known measurement SEs (`y | se(s)`) are refused; "": they are fitted
    settings: RSamplerSettings

    def available(self) -> Support:
        return _r.package_status(self.package, self.r_code)

    def supports(self, model: ModelSpec) -> Support:
        verdict = _bayes.supports(model)
        if not verdict:
            return no(f"{self.name}: {verdict.reason}")
        if not model.formula.blocks:
            return no(self.no_blocks)
        refused = no_known_se(model, self.name, self.known_se_refusal) if self.known_se_refusal else None
        return refused if refused is not None else YES

    def begin(self, data: FitData) -> tuple[float, _bayes.ModelData, Any]:
        """(perf_counter at the start, the shared model data, the translated priors) after checking the model."""
        self.require(data.model)
        started = time.perf_counter()
        md = _bayes.prepare(data, self.settings.priors)
        layout = Layout.of(data.design, data.family)
        spec = effective(parse_priors(self.settings.prior_strings), layout)  # what applies to this model
        self.settings.check(spec, layout)
        return started, md, self.settings.translate(spec, md)


def intercept_first(md: _bayes.ModelData) -> list[str]:
    """Fixed-effect names in the order _bayes.fit_result expects engines to return b (intercept first)."""
    return (["Intercept"] if md.has_intercept else []) + [n for n in md.x_names if n != "Intercept"]


def chains_first(a: np.ndarray) -> np.ndarray:
    """rstan's (iterations, chains, ...) arrays as (chains, iterations, ...)."""
    return np.swapaxes(np.asarray(a, float), 0, 1)


def sampler_stats(raw: dict[str, Any], chains: int, draws: int, max_treedepth: int) -> _bayes.SamplerStats:
    """Divergences, tree-depth hits and energy per (chain, draw) from rstan::get_sampler_params."""

    def grid(name: str) -> np.ndarray:
        return np.asarray(raw[name], float).reshape(draws, chains).T

    return _bayes.SamplerStats(grid("divergent") > 0, grid("treedepth") >= max_treedepth, grid("energy"))


def sampler_times(raw: dict[str, Any], cores: int) -> tuple[float, float]:
    """(warm-up, sampling) seconds from rstan: summed over chains run one after another, the slowest when parallel."""
    warm, sample = np.atleast_1d(np.asarray(raw["warmup_s"], float)), np.atleast_1d(np.asarray(raw["sample_s"], float))
    pick = np.sum if cores == 1 else np.max
    return float(pick(warm)), float(pick(sample))


def finish(
    engine: str,
    md: _bayes.ModelData,
    data: FitData,
    draws: _bayes.Draws,
    sstats: _bayes.SamplerStats,
    timing: _bayes.Timing,
    settings: RSamplerSettings,
    notes: list[str],
    seed: int,
    prior_text: list[str],
    r_out: dict[str, Any],
) -> FitResult:
    """The shared summariser's FitResult, with the engine's own prior description (not hbench's resolution of
    the prior strings, which describes rstanarm's defaults) and R's warnings kept."""
    vacuous = [t for t in md.priors.text if t.startswith("priors with no parameter")]
    md.priors.text = prior_text + ["priors used, as the engine reports them: " + "; ".join(md.priors.used)] + vacuous
    out = _bayes.fit_result(engine, md, data, draws, sstats, timing, settings, notes, seed)
    warm, sample = sampler_times(r_out["sampler"], settings.cores)
    out.details.update(rstan_warmup_s=warm, rstan_sampling_s=sample, r_wall_s=_r.num(r_out["wall"]))
    out.warnings += [f"R: {' '.join(m.split())}" for m in _r.strs(r_out["msgs"])]  # one line each
    return out
