"""The Estimator contract: a name, `supports(model)`, `fit(dataset) -> FitResult`.

Estimators know nothing of replications or runs (SimDesign's separation):
they get one Dataset and return one FitResult, or raise.  Heavy one-time work
(compiling a Stan program or a PyMC graph) is cached inside the estimator
object, keyed by model structure and data shapes, so a worker process that
keeps the object pays it once; `FitResult.compile_count` says whether this fit
paid it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from compare.formula import ModelSpec

if TYPE_CHECKING:
    from compare.fitresult import FitResult
    from compare.simulate import Dataset


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


class Estimator:
    """Base class for engines. Subclasses set `name` and `kind` and implement `supports` and `fit`."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "frequentist"  # or "bayesian"

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @property
    def level(self) -> float:
        """Level of the central intervals this engine reports (setting `level`, default 0.95)."""
        return float(self.settings.get("level", 0.95))

    def supports(self, model: ModelSpec) -> Support:
        raise NotImplementedError

    def fit(self, dataset: "Dataset") -> "FitResult":
        raise NotImplementedError

    def available(self) -> Support:
        """Whether the engine can run on this machine at all (R installed, ...)."""
        return YES
