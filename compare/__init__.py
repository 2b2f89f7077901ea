"""hbench: frequentist and Bayesian estimators of multilevel models, side by side on the same simulated data."""

__version__ = "0.1.0"


def load_draws(run_id: str, scenario: str, cell: int, rep: int, engine: str, results: str = "results"):
    """One fit's kept posterior draws as ArviZ InferenceData (see compare.posterior)."""
    from compare.posterior import load_draws as _load

    return _load(run_id, scenario, cell, rep, engine, results)
