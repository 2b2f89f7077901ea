"""One generic simulator for lme4-style GLMMs: (cell spec, rng) -> Dataset.

Data come from design matrices (compare.design), never from a hand-written
generator per scenario.  Two random streams keep the seed's distinction between
sampling designs: `rng` draws what every replication redraws (observations),
`cell_rng` draws what a stratified design keeps fixed across replications (the
groups' covariates and effects).  Under a cluster design both are `rng`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare import departures
from compare.data import Dataset, FitData
from compare.design import BlockDesign, Design, build_design, group_index
from compare.errors import InputError
from compare.families import inverse_link
from compare.formula import has_sigma
from compare.generator import generate
from compare.realdata import as_dataset
from compare.seeds import cell_seq, engine_seed, replication_seq
from compare.spec import MAX_ROWS, CellSpec, Scenario, correlation_matrix, lookup

MAX_TRIALS = 2**62  # binomial trials are drawn as int64
MAX_POISSON = 1e18  # numpy's largest poisson mean is about 9.2e18


@dataclass(frozen=True)
class Params:
    """Parameter values used to generate one dataset."""

    b: dict[str, float]
    sd: dict[str, dict[str, float]]  # group -> term -> sd
    cor: dict[str, np.ndarray]  # block key -> correlation matrix
    sigma: float | None
    phi: float | None = None  # negbinomial's dispersion


def block_key(block: BlockDesign) -> str:
    return f"{block.group}|{block.block.expr}"


def _layout_frame(cell: CellSpec, rng: np.random.Generator) -> pd.DataFrame:
    names = list(cell.layout.factors)
    combos = list(itertools.product(*(cell.layout.factors[n] for n in names)))
    size = cell.layout.size
    if isinstance(size, int):
        counts = np.full(len(combos), size)
    elif isinstance(size, tuple):
        counts = rng.integers(size[0], size[1], len(combos), endpoint=True)
    else:
        counts = size.draw(rng, len(combos))
        if counts.sum() > MAX_ROWS:
            raise InputError(f"field 'layout.size': drew {counts.sum():,} rows, more than {MAX_ROWS:,}")
    rows = np.repeat(np.arange(len(combos)), counts)
    frame = pd.DataFrame({n: [combos[r][i] for r in rows] for i, n in enumerate(names)})
    for n in names:  # keep the spec's level order, so the first level is the reference category
        if not all(isinstance(v, (int, float)) for v in cell.layout.factors[n]):
            frame[n] = pd.Categorical(
                frame[n].astype(str), categories=[str(v) for v in cell.layout.factors[n]], ordered=True
            )
    return frame


def _draw_covariate(cell: CellSpec, name: str, frame: pd.DataFrame, rng, cell_rng) -> np.ndarray:
    dist = cell.covariates[name]
    per = cell.per.get(name)
    use = cell_rng if name in cell.fixed_covariates or (per and cell.design == "stratified") else rng
    if per is None:
        return dist.draw(use, len(frame))
    index, levels = group_index(frame, per)
    return dist.draw(use, len(levels))[index]


def _block_terms(design: Design) -> dict[str, list[str]]:
    terms: dict[str, list[str]] = {}
    for bd in design.blocks:
        terms.setdefault(bd.group, []).extend(bd.names)
    return terms


def _check_extra(given: dict, needed: list[str], where: str) -> None:
    for key in given:
        if key != "*" and key not in needed:
            raise InputError(f"field '{where}.{key}': not a term of the model (terms: {', '.join(needed)})")


def _fixed_params(cell: CellSpec, design: Design) -> Params:
    t = cell.truth
    _check_extra(t.b, design.x_names, "truth.b")
    b = {n: lookup(t.b, n, "truth.b") for n in design.x_names}
    groups = _block_terms(design)
    _check_extra(t.sd, list(groups), "truth.sd")
    sd = {}
    for g, terms in groups.items():
        given = t.sd.get(g)
        if given is None:
            raise InputError(f"field 'truth.sd.{g}': missing (needed by the formula)")
        _check_extra(given, terms, f"truth.sd.{g}")
        sd[g] = {term: lookup(given, term, f"truth.sd.{g}") for term in terms}
    cor = {}
    for bd in design.blocks:
        cors = t.cor.get(bd.group, {})
        if bd.block.correlated:
            cor[block_key(bd)] = correlation_matrix(bd.names, cors, f"truth.cor.{bd.group}")
        else:
            cor[block_key(bd)] = np.eye(len(bd.names))
    _check_extra(t.cor, [bd.group for bd in design.blocks if bd.block.correlated], "truth.cor")
    return Params(b, sd, cor, t.sigma, t.phi)


def _prior_params(cell: CellSpec, design: Design, rng: np.random.Generator) -> Params:
    from compare.distributions import lkj_corr

    p = cell.priors
    assert p is not None
    _check_extra(p.b, design.x_names, "priors.b")
    b = {n: float(lookup(p.b, n, "priors.b").draw(rng, 1)[0]) for n in design.x_names}
    sd = {}
    for g, terms in _block_terms(design).items():
        given = p.sd.get(g)
        if given is None:
            raise InputError(f"field 'priors.sd.{g}': missing (needed by the formula)")
        sd[g] = {term: float(lookup(given, term, f"priors.sd.{g}").draw(rng, 1)[0]) for term in terms}
    cor = {}
    for bd in design.blocks:
        if bd.block.correlated and len(bd.names) > 1:
            prior = p.cor.get(bd.group)
            if prior is None:
                raise InputError(f"field 'priors.cor.{bd.group}': missing (needed by the formula)")
            cor[block_key(bd)] = lkj_corr(rng, len(bd.names), prior.params["eta"])
        else:
            cor[block_key(bd)] = np.eye(len(bd.names))
    sigma = None
    if has_sigma(cell.formula, cell.family):
        if p.sigma is None:
            raise InputError("field 'priors.sigma': missing (a gaussian model has a residual SD)")
        sigma = float(p.sigma.draw(rng, 1)[0])
    phi = None
    if cell.family == "negbinomial":
        if p.phi is None:
            raise InputError("field 'priors.phi': missing (a negbinomial model has a dispersion phi)")
        phi = float(p.phi.draw(rng, 1)[0])
        if not phi > 0:
            raise InputError(f"field 'priors.phi': drew phi = {phi!r}; the dispersion must be positive")
    return Params(b, sd, cor, sigma, phi)


def _check_shapes(cell: CellSpec, design: Design) -> None:
    terms = _block_terms(design)
    for group, given in cell.shapes.groups.items():
        _check_extra(given, terms[group], f"shape.{group}")


def _standard_draws(cell: CellSpec, bd: BlockDesign, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, q) independent draws with mean 0 and SD 1, each term's column of its shape. All normal: one
    standard_normal((n, q)) call, the draw every scenario without a [shape] has always made."""
    shapes = [cell.shapes.of(bd.group, t) for t in bd.names]
    if all(s.kind == "normal" for s in shapes):
        return rng.standard_normal((n, len(bd.names)))
    return np.column_stack([s.standard(rng, n) for s in shapes]).reshape(n, len(bd.names))


def _group_effects(cell: CellSpec, params: Params, design: Design, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each block's (J, q) effects: standardized draws of each term's shape (normal unless [shape] says
    otherwise) combined through the Cholesky factor of the block's correlation and scaled by its SDs. The effects
    then have the true SDs and Pearson correlations whatever the shapes; a term after the block's first is a
    mix of several terms' shapes, and dependence beyond correlation is not Gaussian."""
    effects = {}
    for bd in design.blocks:
        sds = np.array([params.sd[bd.group][t] for t in bd.names])
        chol = np.linalg.cholesky(params.cor[block_key(bd)])
        z = _standard_draws(cell, bd, bd.n_levels, rng)
        effects[block_key(bd)] = (z @ chol.T) * sds
    return effects


def _intercepts(design: Design, params: Params, effects: dict[str, np.ndarray]) -> dict[str, tuple]:
    """group -> (row level index, random intercepts, their true SD), for the groups whose blocks have one."""
    return {
        bd.group: (bd.index, effects[block_key(bd)][:, bd.names.index("Intercept")], params.sd[bd.group]["Intercept"])
        for bd in design.blocks
        if "Intercept" in bd.names
    }


def _linear_predictor(design: Design, params: Params, effects: dict[str, np.ndarray]) -> np.ndarray:
    beta = np.array([params.b[n] for n in design.x_names])
    eta = design.X @ beta + design.offset if beta.size else design.offset.copy()
    for bd in design.blocks:
        eta = eta + np.einsum("nq,nq->n", bd.X, effects[block_key(bd)][bd.index])
    return eta


def _errors(cell: CellSpec, sigma, n: int, rng: np.random.Generator) -> np.ndarray:
    """Level-1 errors with SD `sigma`: normal (the historical draw), or the [shape] residual standardized."""
    if cell.shapes.residual.kind == "normal":
        return rng.normal(0.0, sigma, n)
    return sigma * cell.shapes.residual.standard(rng, n)


def negbinomial_draws(rng: np.random.Generator, mu: np.ndarray, phi: float) -> np.ndarray:
    """NB2 counts with mean mu and variance mu + mu^2 / phi: numpy's (n, p) parametrisation with n = phi and
    p = phi / (phi + mu), which numpy draws as a gamma-poisson mixture (rate ~ Gamma(phi, scale mu / phi))."""
    return rng.negative_binomial(phi, phi / (phi + mu))


def _respond(cell: CellSpec, frame: pd.DataFrame, mu: np.ndarray, params: Params, sigma, trials, rng) -> None:
    r = cell.formula.response
    if cell.family == "gaussian" and r.se is not None:  # y | se(s): known SEs, plus sigma with se(s, sigma = TRUE)
        noise = frame[r.se].to_numpy(float) * rng.standard_normal(len(mu))
        frame[r.y] = mu + noise + (0.0 if sigma is None else _errors(cell, sigma, len(mu), rng))
    elif cell.family == "gaussian":
        frame[r.y] = mu + _errors(cell, sigma, len(mu), rng)
    elif cell.family == "poisson":
        frame[r.y] = rng.poisson(mu)
    elif cell.family == "negbinomial":
        assert params.phi is not None, "a negbinomial cell's parameters carry phi"
        frame[r.y] = negbinomial_draws(rng, mu, params.phi)
    else:
        successes = rng.binomial(trials.astype(np.int64), mu)
        frame[r.y] = successes
        frame[r.other] = trials.astype(np.int64) if r.kind == "trials" else trials.astype(np.int64) - successes


def _truth(cell: CellSpec, design: Design, params: Params, effects, mu_pop: np.ndarray, frame) -> dict[str, float]:
    truth = {f"b[{n}]": float(v) for n, v in params.b.items()}
    for g, terms in params.sd.items():
        truth.update({f"sd[{g}][{t}]": float(v) for t, v in terms.items()})
    for bd in design.blocks:
        corr = params.cor[block_key(bd)]
        if bd.block.correlated:
            for i, j in itertools.combinations(range(len(bd.names)), 2):
                truth[f"cor[{bd.group}][{bd.names[i]},{bd.names[j]}]"] = float(corr[i, j])
        u = effects[block_key(bd)]
        for lv, level in enumerate(bd.levels):
            for k, term in enumerate(bd.names):
                truth[f"r[{bd.group}][{level},{term}]"] = float(u[lv, k])
    if params.sigma is not None:
        truth["sigma"] = float(params.sigma)
    if params.phi is not None:
        truth["phi"] = float(params.phi)
    if cell.poststratify:
        w = frame[cell.poststratify].to_numpy(float)
        truth["mrp"] = float(np.sum(w * mu_pop) / np.sum(w))
    return truth


def _new_group_truth(cell: CellSpec, design: Design, params: Params, rng) -> dict[str, float]:
    """Truth for `pred_new[g]`: a realised outcome for a new level of the first block's factor.

    The new group's effects come from the true covariance, at the average covariate row (column
    means of X and of the block's covariates, mean offset); other factors' effects are zero.
    Gaussian: a new observation (residual noise included, like posterior_predict); otherwise
    the expected outcome (probability or rate), since one count says little.
    """
    group = design.blocks[0].group
    beta = np.array([params.b[n] for n in design.x_names])
    eta = float(design.X.mean(0) @ beta) if beta.size else 0.0
    eta += float(design.offset.mean())
    for bd in design.blocks:
        if bd.group != group:
            continue
        sds = np.array([params.sd[group][t] for t in bd.names])
        u = (np.linalg.cholesky(params.cor[block_key(bd)]) @ _standard_draws(cell, bd, 1, rng)[0]) * sds
        eta += float(bd.X.mean(0) @ u)
    if cell.family == "gaussian" and params.sigma is None:  # known SEs alone: the new group's mean
        value = eta
    elif cell.family == "gaussian":
        value = eta + float(_errors(cell, params.sigma, 1, rng)[0])
    else:
        value = float(inverse_link(cell.link, np.array([eta]))[0])
    return {f"pred_new[{group}]": float(value)}


def _check_finite(values: np.ndarray, where: str, what: str) -> None:
    """Huge but finite spec values can overflow to inf or NaN: one error line, not a dataset of infinities."""
    if values.dtype.kind in "iuf" and not np.all(np.isfinite(values)):
        raise InputError(f"field '{where}': {what}")


@np.errstate(over="ignore", invalid="ignore")  # overflow is checked and reported as one line, not warned about
def simulate(cell: CellSpec, rng: np.random.Generator, cell_rng: np.random.Generator | None = None) -> Dataset:
    """Simulate one dataset of `cell`. `cell_rng` draws what stays fixed across reps: under a stratified design
    the groups, their effects and covariates; under a cluster design only covariates marked `fixed = true`."""
    if cell.generator is not None:
        return generate(cell, rng)
    if cell.dataset is not None:  # a published dataset: nothing drawn
        return as_dataset(cell)
    fixed_rng = rng if cell_rng is None else cell_rng  # `fixed = true` covariates: the same in every rep
    if cell.design == "cluster" or cell_rng is None:
        cell_rng = rng
    frame = _layout_frame(cell, cell_rng)
    for name in cell.covariates:
        frame[name] = _draw_covariate(cell, name, frame, rng, fixed_rng if cell.design == "cluster" else cell_rng)
        _check_finite(frame[name].to_numpy(), f"covariates.{name}", "drew a value too large for a float")
    trials = None
    if cell.trials is not None:
        trials = cell.trials.draw(cell_rng if cell.design == "stratified" else rng, len(frame))
        p = cell.trials.params
        text = [v for v in [*p.get("values", []), *p.get("levels", []), p.get("value")] if isinstance(v, str)]
        if text:
            raise InputError(f"field 'trials': {text[0]!r} is not a number of trials")
        too_many = [v for v in trials.tolist() if not v <= MAX_TRIALS]
        if too_many:
            raise InputError(f"field 'trials': drew {too_many[0]!r} trials, more than 2^62")
        trials = trials.astype(float)
        if np.any(trials < 0):
            raise InputError("field 'trials': drew a negative number of trials")
    departures.center(cell, frame)
    design = build_design(cell.formula, cell.family, frame, with_response=False)
    _check_shapes(cell, design)
    params = _fixed_params(cell, design) if cell.dgp == "fixed" else _prior_params(cell, design, rng)
    effects = _group_effects(cell, params, design, cell_rng)
    if cell.between and departures.shift_between(cell, frame, _intercepts(design, params, effects), cell_rng):
        departures.center(cell, frame)
        design = build_design(cell.formula, cell.family, frame, with_response=False)
    source = "truth" if cell.dgp == "fixed" else "priors"
    mu = inverse_link(cell.link, _linear_predictor(design, params, effects))
    _check_finite(mu, source, "the model's mean overflows: values too large for the covariates")
    if cell.family in ("poisson", "negbinomial") and np.max(mu, initial=0) > MAX_POISSON:
        raise InputError(f"field '{source}': a {cell.family} mean of {np.max(mu):g} is more than {MAX_POISSON:g}")
    _respond(cell, frame, mu, params, departures.residual_sd(cell, frame, params.sigma, cell_rng), trials, rng)
    truth = _truth(cell, design, params, effects, mu, frame)
    if design.blocks:
        truth.update(_new_group_truth(cell, design, params, rng))
    _check_finite(frame[cell.formula.response.y].to_numpy(), source, "the simulated response overflows")
    _check_finite(np.array(list(truth.values())), source, "a true value overflows")
    frame = departures.drop_missing(cell, frame, rng)
    data = FitData(frame, cell.formula, cell.family, cell.link, cell.poststratify)
    return Dataset(data, truth, cell.scenario, cell.index)


def dataset_for(scenario: Scenario, cell: int, rep: int, run_seed: int) -> Dataset:
    """Replication `rep` of `cell`, reproducible alone from the run seed."""
    spec = scenario.cell(cell)
    rng = np.random.default_rng(replication_seq(run_seed, scenario.name, cell, rep))
    cell_rng = np.random.default_rng(cell_seq(run_seed, scenario.name, cell))
    ds = simulate(spec, rng, cell_rng)
    ds.rep = rep
    ds.seed = engine_seed(run_seed, scenario.name, cell, rep)
    return ds


def dry_run(cell: CellSpec) -> None:
    """Simulate once with a fixed seed so load-time validation catches names derived from the data."""
    rng = np.random.default_rng(0)
    simulate(cell, rng, np.random.default_rng(1))
