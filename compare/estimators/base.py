"""The Estimator contract: `name`, `kind`, a typed `Settings` class, `supports(model)`, `available()` and
`fit(data: FitData, *, seed) -> FitResult`.

Estimators know nothing of replications or runs (SimDesign's separation): they get one FitData, which
holds no truth, replication or scenario, and an explicit seed (blackjax's `kernel(rng_key, ...)`), and
return one FitResult or raise. No engine calls another: comparisons between engines are computed from
their results (compare.summary). Heavy one-time work (compiling a Stan program or a PyMC graph) is cached
inside the estimator, keyed by model structure and data shapes, so a worker process that keeps the object
pays it once; `FitResult.compile_count` says whether this fit paid it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from compare import settings as _settings
from compare.families import FAMILIES
from compare.formula import ModelSpec

if TYPE_CHECKING:
    from compare.data import FitData
    from compare.fitresult import FitResult


@dataclass(frozen=True)
class Support:
    """Truthy when the engine can fit the model; otherwise `reason` says why not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


YES = Support(True)


def no(reason: str) -> Support:
    return Support(False, reason)


def no_known_se(model: ModelSpec, engine: str, why: str) -> Support | None:
    """The refusal of an engine that cannot fit known measurement SEs (`y | se(s)`), None for other models.

    Fitting such a model without them would estimate a different model (one residual SD), so it is refused."""
    if model.formula.response.se is None:
        return None
    return no(f"{engine} cannot fit known measurement SEs ({model.formula.response.y} | se(...)): {why}")


def glmm_support(model: ModelSpec, engine: str, no_se_why: str) -> Support:
    """What lme4 and glmmTMB refuse alike: known measurement SEs (`no_se_why` says why), a family or link not
    wired up in compare.families, a model without random effects (lm/glm fit those)."""
    refused = no_known_se(model, engine, no_se_why)
    if refused is not None:
        return refused
    if model.family not in FAMILIES:
        return no(f"{engine} engine: family {model.family!r} is not wired up")
    if model.link not in FAMILIES[model.family].links:
        return no(f"{engine} engine: link {model.link!r} is not available for {model.family}")
    if not model.formula.blocks:
        return no(f"{engine} needs at least one random-effect term (use lm/glm otherwise)")
    return YES


class Estimator:
    """Base class for engines. Subclasses set `name`, `kind` and `Settings`, and implement `supports` and `fit`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "frequentist"  # or "bayesian": a sampler, reported with R-hat/ESS/divergences
    Settings: ClassVar[type[_settings.Settings]] = _settings.Settings
    settings: _settings.Settings  # each engine narrows this to its own Settings class

    def __init__(self, settings: _settings.Settings | None = None) -> None:
        settings = self.Settings() if settings is None else settings
        if type(settings) is not self.Settings:
            raise TypeError(f"{self.name}: settings must be {self.Settings.__name__}, not {type(settings).__name__}")
        self.settings = settings

    @classmethod
    def configured(cls, raw: Mapping[str, Any] | None = None, where: str = "settings", **internal: Any) -> Estimator:
        """An instance from user settings (a suite's table, CLI options), checked: InputError on a bad key."""
        return cls(_settings.parse(cls.Settings, raw, where, **internal))

    @property
    def level(self) -> float:
        return self.settings.level

    def available(self) -> Support:
        """Whether the engine can run on this machine at all (R installed, ...)."""
        return YES

    def supports(self, model: ModelSpec) -> Support:
        raise NotImplementedError

    def require(self, model: ModelSpec) -> None:
        """Raise with the reason when the model is not supported (fit's first line in every engine)."""
        verdict = self.supports(model)
        if not verdict:
            raise ValueError(verdict.reason)

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        raise NotImplementedError
