"""One publication-ready figure of one measure from a stored run (rsimsum's `autoplot`): what `hbench plot`
draws. Each kind reads the run's summary through the same plot modules as the report; a choice that names
something the run does not have (scenario, cell, parameter, measure) is an InputError naming it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from compare.errors import InputError
from compare.report.measures import MEASURES, key_parameter, long_measures
from compare.report.plots import blandaltman, forest, heat, nestloop, scatter, zipplot
from compare.summary import RunSummary

KINDS = ("forest", "zip", "nestloop", "scatter", "bland-altman", "heat")
FORMATS = ("pdf", "svg", "png")


@dataclass(frozen=True)
class Choice:
    """What to draw; None: the default (the run's first scenario and cell, the scenario's key parameter,
    coverage, the suite's reference engine)."""

    kind: str
    scenario: str | None = None
    cell: int | None = None
    parameter: str | None = None
    measure: str | None = None
    reference: str | None = None


def _named(parameter: str | None, kind: str, scenario: str) -> str:
    if parameter is None:
        raise InputError(f"{kind}: {scenario} has no parameter with estimates in this run")
    return parameter


def _pick(choice: Choice, table: pd.DataFrame, long: pd.DataFrame) -> tuple[str, int, str | None]:
    scenarios = sorted(table["scenario"].dropna().unique())
    scenario = choice.scenario or (scenarios[0] if scenarios else None)
    if scenario is None or scenario not in scenarios:
        raise InputError(f"--scenario {choice.scenario}: not in this run (it has: {', '.join(scenarios)})")
    cells = sorted(int(c) for c in table.loc[table["scenario"] == scenario, "cell"].unique())
    cell = cells[0] if choice.cell is None else choice.cell
    if cell not in cells:
        raise InputError(f"--cell {choice.cell}: {scenario} has cells {', '.join(map(str, cells))} in this run")
    names = sorted(long.loc[long["scenario"] == scenario, "parameter"].dropna().unique())
    parameter = choice.parameter or key_parameter(long, scenario)
    if choice.parameter is not None and choice.parameter not in names:
        raise InputError(
            f"--parameter {choice.parameter}: no such parameter of {scenario} in this run (e.g. {', '.join(names[:8])})"
        )
    return scenario, cell, parameter


def draw(choice: Choice, result: RunSummary, table: pd.DataFrame):
    """(figure, the numbers it draws) for `choice`."""
    if choice.kind not in KINDS:
        raise InputError(f"plot kind {choice.kind!r}: choose one of {', '.join(KINDS)}")
    if choice.measure is not None and choice.measure not in MEASURES:
        raise InputError(f"--measure {choice.measure}: choose one of {', '.join(MEASURES)}")
    long = long_measures(result, table)
    scenario, cell, parameter = _pick(choice, table, long)
    level = result.level
    if choice.kind == "heat":
        fig, d = heat.plot(result.warnings, choice.scenario)
    elif choice.kind == "forest":
        rows = ((choice.measure,),) if choice.measure else forest.FRONT
        fig, d = forest.plot(
            long, scenario, cell, rows, level, parameters=[choice.parameter] if choice.parameter else None
        )
    elif choice.kind == "nestloop":
        fig, d = nestloop.plot(
            long, scenario, _named(parameter, choice.kind, scenario), choice.measure or "coverage", level
        )
        if fig is None:
            raise InputError(
                f"nestloop: {scenario} has fewer than two grid cells in this run; a nested-loop plot needs a grid"
            )
    elif choice.kind == "zip":
        fig = zipplot.plot(table, scenario, cell, _named(parameter, choice.kind, scenario), level)
        d = table[(table["scenario"] == scenario) & (table["cell"] == cell) & (table["parameter"] == parameter)]
    else:
        ref = scatter.reference_engine(table, choice.reference or result.reference)
        if choice.reference is not None and choice.reference != ref:
            raise InputError(f"--reference {choice.reference}: no successful fit of that engine in this run")
        module = scatter if choice.kind == "scatter" else blandaltman
        fig, d = module.plot(table, scenario, cell, parameter, ref)
    if fig is None:
        raise InputError(
            f"{choice.kind}: nothing to draw for {scenario} cell {cell}"
            + (f", {parameter}" if parameter else "")
            + " in this run"
        )
    return fig, d


def save(fig, out: str) -> None:
    """Write the figure in the format its name ends with; vector for pdf/svg, 300 dpi for png."""
    import matplotlib.pyplot as plt

    fig.savefig(out, dpi=300, bbox_inches="tight")
    plt.close(fig)
