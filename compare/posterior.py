"""Posterior draws kept on request (`keep_draws = true`, `hbench fit --save-draws DIR`), as ArviZ
InferenceData: posterior, sample_stats, observed_data and posterior_predictive (replicated outcomes for the
observed rows and an outcome for a new group), written as netCDF.

Results keep summaries only; draws are what a reader needs to re-analyse a fit (the seed works with
`as.matrix(post)`, `posterior_predict`, `pp_check`). In a run they live beside the parts, one file per
(task, engine): results/<run_id>/draws/<task key>/<engine label>.nc, written atomically by the worker before
the task's part, so a part on disk means its draws are on disk too and `--resume` redoes both or neither.

Variables are grouped by estimand class (b, sd, cor, sigma, phi, r, mrp); each has one dimension whose
coordinates are hbench's parameter names, so `idata.posterior["b"].sel(b_name="b[x]")` is b[x]'s draws.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from compare.errors import InputError
from compare.fitresult import describe

SUFFIX = ".nc"


def _az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def inference_data(
    names: list[str],
    values: np.ndarray,
    stats: dict[str, np.ndarray],
    y: np.ndarray,
    y_rep: np.ndarray,
    pred_new: tuple[str, np.ndarray] | None,
) -> Any:
    """InferenceData from named draws (chains, draws, M), sampler stats (chains, draws), the observed outcome
    and its replicates (chains, draws, N)."""
    az = _az()
    posterior, coords, dims = {}, {}, {}
    classes = [describe(n).param_class for n in names]
    for cls in dict.fromkeys(classes):
        idx = [i for i, c in enumerate(classes) if c == cls]
        posterior[cls] = values[..., idx]
        coords[f"{cls}_name"] = [names[i] for i in idx]
        dims[cls] = [f"{cls}_name"]
    predictive = {"y": y_rep}
    dims["y"] = ["obs"]
    if pred_new is not None:
        predictive["pred_new"] = pred_new[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(
            posterior=posterior,
            sample_stats=stats,
            observed_data={"y": y},
            posterior_predictive=predictive,
            coords=coords,
            dims=dims,
        )
    if pred_new is not None:
        idata.posterior_predictive["pred_new"].attrs["parameter"] = pred_new[0]
    return idata


def save(idata: Any, path: Path) -> Path:
    """Write atomically (a temporary file in the same folder, then rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        idata.to_netcdf(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def draws_path(run_dir: Path, task_key: str, engine: str) -> Path:
    return Path(run_dir) / "draws" / task_key / f"{engine}{SUFFIX}"


def find_draws(run_id: str, scenario: str, cell: int, rep: int, engine: str, results: str | Path = "results") -> Path:
    """The file of one fit's kept draws (InputError naming what is missing when there is none)."""
    from compare.store import RunStore, part_key

    store = RunStore(run_id, results)
    store.manifest()  # one clear line when the run does not exist
    path = draws_path(store.dir, part_key(scenario, cell, rep), engine)
    if not path.is_file():
        raise InputError(
            f"no draws kept for {engine} on {scenario} cell {cell} rep {rep} in run {run_id} "
            "(an engine keeps them with `keep_draws = true` in its settings)"
        )
    return path


def load_draws(run_id: str, scenario: str, cell: int, rep: int, engine: str, results: str | Path = "results") -> Any:
    """The kept draws of one fit of a run, as ArviZ InferenceData."""
    return _az().from_netcdf(find_draws(run_id, scenario, cell, rep, engine, results))
