"""Engine `stan`: the package's generic GLMM program (compare/stan/glmm.stan) through PyStan 3 or through
CmdStan (cmdstanpy; compare/estimators/_cmdstan.py). `backend = "auto"` takes CmdStan when an installation
exists (it samples the seed model faster: README "Stan backends"), else PyStan. Same program, same data,
same seed (Stan's seed + chain ids 1..chains on both), same FitResult and InferenceData layout; a fit's
notes name the backend that ran it.

One program serves every family and scenario (X and the random-effect blocks are data), so a worker
compiles once.  PyStan/httpstan traps handled here (see shared FINDINGS):
- httpstan caches fits keyed by (program, data, seed, arguments): an identical request returns the cached
  fit in 0.3 s.  Every request carries a fresh `nonce` in its data (unused by the model), so each fit is
  a real run, and we delete our fit files afterwards (11.6 MB each).
- its C++ build leaves a `build/` folder in the current directory: we build from a temporary directory;
  the build is driven in-process, so httpstan's 300 s HTTP client timeout cannot cut it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any, ClassVar, Literal

import numpy as np

from compare.data import FitData
from compare.estimators import _bayes, _cmdstan
from compare.estimators.base import YES, Estimator, Support, no
from compare.families import FAMILIES, LINKS
from compare.fitresult import FitResult
from compare.formula import ModelSpec
from compare.priors import DISTS, Dist
from compare.settings import Settings, setting

PROGRAM = "glmm.stan"
_FUNCTION = "stan::services::sample::hmc_nuts_diag_e_adapt"
_NONCE = itertools.count()
STANC_ATTEMPTS = 8  # httpstan runs stanc with a hard-coded 1 s timeout (httpstan/compile.py): retry under load


def _nonce() -> int:
    """Unique per request across processes (pid) and within one (counter)."""
    return (os.getpid() * 100_000 + next(_NONCE)) % (2**31 - 1)


def program_code() -> str:
    return resources.files("compare").joinpath("stan", PROGRAM).read_text()


def stan_data(md: _bayes.ModelData, nonce: int) -> dict[str, Any]:
    """The data block of glmm.stan for one dataset (1-based group indices)."""
    p = md.priors
    integer = md.family != "gaussian"
    return {
        "family": FAMILIES[md.family].code,
        "link": LINKS[md.link].code,
        "N": md.N,
        "P": md.Xc.shape[1],
        "has_intercept": int(md.has_intercept),
        "Xc": md.Xc,
        "xbar": md.xbar,
        "off": md.offset,
        "y_real": md.y if not integer else np.zeros(0),
        "se_mode": md.se_mode,
        "se": md.se if md.se is not None else np.zeros(0),
        "y_int": np.rint(md.y).astype(int) if integer else np.zeros(0, dtype=int),
        "trials": np.rint(md.trials).astype(int) if md.family == "binomial" else np.zeros(0, dtype=int),
        "K": len(md.blocks),
        "q": [b.q for b in md.blocks],
        "J": [b.J for b in md.blocks],
        "correlated": [int(b.correlated) for b in md.blocks],
        "Q": md.Q,
        "Z": md.Z,
        "gidx": (md.gidx + 1).astype(int),
        "R": md.R,
        "NCPC": sum(len(b.pairs) for b in md.blocks),
        "NZETA": sum(b.q for b in md.blocks if b.q > 1),
        "b_code": [int(c) for c in p.b_codes],
        "b_par": p.b_par,
        "int_code": p.int_code,
        "int_par": p.int_par,
        "int_uncentred": int(p.int_uncentred),
        "sigma_code": p.sigma_code,
        "sigma_par": p.sigma_par,
        "phi_code": p.phi_code,
        "phi_par": p.phi_par,
        "sigma_lower": p.sigma_bounds[0],
        "sigma_upper": p.sigma_bounds[1],
        "separate": int(p.separate),
        "sd_code": [int(c) for c in p.sd_codes],
        "sd_par": p.sd_par,
        "sd_lower": p.sd_bounds[:, 0] if p.separate else np.zeros(0),
        "sd_upper": p.sd_bounds[:, 1] if p.separate else np.zeros(0),
        "lkj_eta": p.lkj_eta,
        "decov": list(p.decov),
        "nonce": nonce,
    }


def _dist(code: int, par) -> Dist:
    """The distribution a DISTS code and its padded parameter row stand for."""
    name = next(n for n, d in DISTS.items() if d.code == int(code))
    return Dist(name, tuple(float(v) for v in list(par)[: len(DISTS[name].args)]))


def priors_in_data(data: dict[str, Any], md: _bayes.ModelData) -> list[str]:
    """The priors glmm.stan samples under, decoded from its data block (codes, parameter rows, bounds), as
    prior strings: what the program is given, read back, for checking it against a request."""
    free = [n for n in md.x_names if n != "Intercept"]
    out = [f"b[{n}] ~ {_dist(c, p)}" for n, c, p in zip(free, data["b_code"], np.asarray(data["b_par"]), strict=True)]
    if data["has_intercept"]:
        label = "b[Intercept]" if data["int_uncentred"] else "Intercept"
        out.append(f"{label} ~ {_dist(data['int_code'], data['int_par'])}")
    if data["family"] == 1:
        sigma = _dist(data["sigma_code"], data["sigma_par"])
        out.append(f"sigma ~ {_bounded(sigma, data['sigma_lower'], data['sigma_upper'])}")
    terms = [(b.group, t) for b in md.blocks for t in b.names]
    if data["separate"]:
        rows = zip(terms, data["sd_code"], np.asarray(data["sd_par"]), data["sd_lower"], data["sd_upper"], strict=True)
        out += [f"sd[{g}][{t}] ~ {_bounded(_dist(c, p), lo, hi)}" for (g, t), c, p, lo, hi in rows]
        if any(data["correlated"]):
            out.append(f"cor ~ lkj({data['lkj_eta']:g})")
    elif terms:
        out.append(f"cov ~ {Dist('decov', tuple(float(v) for v in data['decov']))}")
    return out


def _bounded(d: Dist, lower: float, upper: float) -> str:
    """A positive parameter's prior as the program has it: with its bounds named when they are not the prior's
    own support (a uniform's interval, else (0, inf)), so that such a prior never reads back as the request."""
    lo, hi = float(lower), float(upper)
    return str(d) if (lo, hi) == d.bounds() else f"{d} truncated to ({lo:g}, {hi:g})"


@contextlib.contextmanager
def _scratch_cwd():
    """Run in a temporary directory so setuptools' build/ folder never lands in the caller's tree."""
    old = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="hbench_stan_")
    os.chdir(tmp)
    try:
        yield
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_built(code: str) -> bool:
    """Build the httpstan extension module unless cached on disk; True when it was compiled now."""
    import httpstan.cache
    import httpstan.compile
    import httpstan.models

    name = httpstan.models.calculate_model_name(code)
    try:
        httpstan.models.import_services_extension_module(name)
        return False
    except KeyError:
        pass
    for attempt in range(STANC_ATTEMPTS):
        try:
            with _scratch_cwd():
                _, stanc_warnings = httpstan.compile.compile(code, f"model_{name.split('/')[1]}")
                httpstan.cache.delete_model_directory(name)
                httpstan.cache.dump_stanc_warnings(stanc_warnings, name)
                output = asyncio.run(httpstan.models.build_services_extension_module(code))
                httpstan.cache.dump_services_extension_module_compiler_output(output, name)
            return True
        except subprocess.TimeoutExpired:  # httpstan gives stanc 1 s, too little on a loaded machine
            if attempt == STANC_ATTEMPTS - 1:
                raise
    return True


def _fit_names(model_name: str, data: dict, kwargs: dict, seed: int, chains: int) -> list[str]:
    """The names httpstan gives our chains' fits: its own hash of the request PyStan sends
    (kwargs, function, chain, data, init, random_seed, in that order).  Knowing them, we delete exactly
    our files; other processes may be sampling the same program into the same cache at the same time."""
    import httpstan.fits
    import httpstan.schemas
    from stan.model import DataJSONEncoder

    names = []
    for chain in range(1, chains + 1):
        payload = json.loads(DataJSONEncoder().encode(kwargs))
        payload.update(function=_FUNCTION, chain=chain, data=data, init={}, random_seed=seed)
        args = httpstan.schemas.CreateFitRequest().load(payload)
        function = args.pop("function")
        names.append(httpstan.fits.calculate_fit_name(function, model_name, args))
    return names


def _drop_fits(names: list[str]) -> int:
    """Delete our fit files from httpstan's cache (11.6 MB each); returns how many were found."""
    import httpstan.cache

    found = 0
    for name in names:
        path = httpstan.cache.fit_path(name)
        if path.exists():
            found += 1
            path.unlink(missing_ok=True)
    return found


def cmdstan_path() -> str | None:
    """A CmdStan installation cmdstanpy can use (compare.estimators._cmdstan.find), else None."""
    try:
        import cmdstanpy  # noqa: F401
    except ImportError:
        return None
    return _cmdstan.find()


@dataclass(frozen=True)
class StanSettings(_bayes.SamplerSettings):
    backend: Literal["auto", "pystan", "cmdstanpy"] = setting(
        "auto",
        "auto: cmdstanpy when a CmdStan installation exists (CMDSTAN, the one make setup builds in "
        ".venv, or ~/.cmdstan), else PyStan 3",
    )


class StanEstimator(Estimator):
    """Stan NUTS (diag_e) with the package's generic GLMM program."""

    name: ClassVar[str] = "stan"
    kind: ClassVar[str] = "bayesian"
    Settings: ClassVar[type[Settings]] = StanSettings
    settings: StanSettings
    _compiled: ClassVar[dict[str, Any]] = {}  # per process: backend -> compiled handle

    def available(self) -> Support:
        if self.backend() == "cmdstanpy":
            if not cmdstan_path():
                return no(f"backend cmdstanpy: {_cmdstan.missing()}")
            return YES
        try:
            import stan  # noqa: F401
        except ImportError as exc:
            return no(f"PyStan is not installed ({exc})")
        return YES

    def backends(self) -> str:
        """What `hbench engines` says: which backend `auto` takes here and what each backend would run on."""
        cmdstan = cmdstan_path()
        try:
            pystan = f"PyStan {metadata.version('pystan')}"
        except metadata.PackageNotFoundError:
            pystan = "PyStan missing"
        cmd = f"CmdStan {_cmdstan.version(cmdstan)} at {cmdstan}" if cmdstan else "CmdStan missing"
        return f"auto -> {'cmdstanpy' if cmdstan else 'pystan'}; cmdstanpy: {cmd}; pystan: {pystan}"

    def supports(self, model: ModelSpec) -> Support:
        return _bayes.supports(model)

    def backend(self) -> str:
        if self.settings.backend == "auto":
            return "cmdstanpy" if cmdstan_path() else "pystan"
        return self.settings.backend

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        start = time.perf_counter()
        s = self.settings
        md = _bayes.prepare(data, s.priors)
        runner = _run_cmdstanpy if self.backend() == "cmdstanpy" else _run_pystan
        stan_seed = int(seed) % (2**31 - 1) or 1  # Stan takes seeds below 2^31
        draws, sstats, compile_s, count, sampling_s, notes = runner(self._compiled, md, s, stan_seed)
        timing = _bayes.Timing(time.perf_counter() - start, compile_s, sampling_s, count)
        return _bayes.fit_result(self.name, md, data, draws, sstats, timing, s, notes, seed)


def _run_pystan(cache: dict, md: _bayes.ModelData, s: StanSettings, seed: int):
    import httpstan.models
    import stan

    code = program_code()
    compile_s, count, notes = 0.0, 0, ["backend: PyStan 3 (httpstan)"]
    if "pystan" not in cache:
        t0 = time.perf_counter()
        ensure_built(code)  # from httpstan's disk cache when an earlier process built it: compile_s says which
        compile_s, count = time.perf_counter() - t0, 1
        cache["pystan"] = httpstan.models.calculate_model_name(code)
    model_name = cache["pystan"]
    kwargs = {"num_warmup": s.warmup, "num_samples": s.draws, "delta": s.adapt_delta, "max_depth": s.max_treedepth}
    messages = io.StringIO()
    with _scratch_cwd(), contextlib.redirect_stderr(messages), contextlib.redirect_stdout(messages):
        posterior = stan.build(code, data=stan_data(md, _nonce()), random_seed=seed)
        names = _fit_names(model_name, posterior.data, kwargs, seed, s.chains)
        t0 = time.perf_counter()
        try:
            fit = posterior.sample(num_chains=s.chains, **kwargs)
        finally:
            found = _drop_fits(names)
        sampling_s = time.perf_counter() - t0
    if found != s.chains:
        notes.append(f"httpstan fit cache: found {found} of {s.chains} fit files to delete")

    def get(name: str) -> np.ndarray:
        idx = fit._parameter_indexes(name)
        if not len(idx):
            return np.zeros((fit.num_chains, s.draws, 0))
        return np.transpose(fit._draws[list(idx), :, :], (2, 1, 0))

    return _draws(get, md, s) + (compile_s, count, sampling_s, notes)


def level_major(md: _bayes.ModelData, r: np.ndarray) -> np.ndarray:
    """glmm.stan stores each block's effects term-major; the shared summaries read them level-major."""
    out = np.empty_like(r)
    for blk in md.blocks:
        seg = slice(blk.r_start, blk.r_start + blk.q * blk.J)
        out[..., seg] = r[..., seg].reshape(*r.shape[:-1], blk.q, blk.J).swapaxes(-1, -2).reshape(*r.shape[:-1], -1)
    return out


def _draws(get, md: _bayes.ModelData, s: StanSettings) -> tuple[_bayes.Draws, _bayes.SamplerStats]:
    """Draws and sampler statistics from `get(name) -> (chains, draws, k)`, the same for both backends."""
    sigma = get("sigma")[..., 0] if md.has_sigma else None
    phi = get("phi")[..., 0] if md.family == "negbinomial" else None
    draws = _bayes.Draws(get("b"), get("sds"), get("cors"), level_major(md, get("r")), sigma, phi)
    sstats = _bayes.SamplerStats(
        get("divergent__")[..., 0] > 0, get("treedepth__")[..., 0] >= s.max_treedepth, get("energy__")[..., 0]
    )
    return draws, sstats


def _run_cmdstanpy(cache: dict, md: _bayes.ModelData, s: StanSettings, seed: int):
    """glmm.stan through CmdStan: compiled once per machine (see _cmdstan), then one CmdStan run per fit."""
    cmdstan = cmdstan_path()
    if cmdstan is None:
        raise _cmdstan.CmdStanError(f"backend cmdstanpy: {_cmdstan.missing()}")
    compile_s, count = 0.0, 0
    if cache.get("cmdstanpy", (None,))[0] != cmdstan:
        t0 = time.perf_counter()
        exe, compiled = _cmdstan.executable(program_code(), cmdstan)
        compile_s, count = time.perf_counter() - t0, int(compiled)
        cache["cmdstanpy"] = (cmdstan, exe)
    exe = cache["cmdstanpy"][1]
    get, sampling_s = _cmdstan.sample(
        exe,
        cmdstan,
        stan_data(md, 0),
        chains=s.chains,
        warmup=s.warmup,
        draws=s.draws,
        adapt_delta=s.adapt_delta,
        max_treedepth=s.max_treedepth,
        seed=seed,
    )
    notes = [f"backend: CmdStan {_cmdstan.version(cmdstan)} through cmdstanpy"]
    return _draws(get, md, s) + (compile_s, count, sampling_s, notes)


ESTIMATORS = [StanEstimator]
