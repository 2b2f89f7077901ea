"""The report's sections, front page first: each answers one question in pictures and keeps its long tables
collapsed beneath (and in tables/ as CSV and LaTeX). Every figure is drawn from the run's summary (or, for the
between-engine plots, from the engines' stored estimates on the same replications); nothing is refitted."""

from __future__ import annotations

import pandas as pd

from compare.report import grid as gridmod
from compare.report.measures import key_parameter, key_parameters
from compare.report.page import Section
from compare.report.plots import blandaltman, forest, heat, nestloop, power, scatter, sensitivity
from compare.report.tables import headline_cells
from compare.summary import RunSummary

HEADLINE_TITLE = "Does the Bayesian version work fine?"
KEY_CELLS_PER_SCENARIO = 3  # a scenario with more cells in the run shows its first here, the rest across the grid


def key_cells(long: pd.DataFrame) -> list[tuple[str, int]]:
    """The cells the front page answers for: every cell of a scenario run on at most KEY_CELLS_PER_SCENARIO
    cells, else the first (the grid's nested-loop plots stand for the others)."""
    out = []
    for scenario, g in long.groupby("scenario", sort=True):
        cells = sorted(int(c) for c in g["cell"].unique())
        out += [(scenario, c) for c in (cells if len(cells) <= KEY_CELLS_PER_SCENARIO else cells[:1])]
    return out


def cell_title(scenario: str, cell: int) -> str:
    grid = gridmod.cell_grid(scenario, [cell], among_spec=True)
    label = gridmod.label(grid, cell) if gridmod.factors(grid) else ""
    return f"{scenario}, cell {cell}" + (f" ({label})" if label else "")


def cell_labels(scenario: str, cells: list[int]) -> dict[int, str]:
    grid = gridmod.cell_grid(scenario, cells, among_spec=True)
    return {c: gridmod.label(grid, c) for c in cells} if gridmod.factors(grid) else {}


def front(long: pd.DataFrame, head_text: pd.DataFrame, level: float) -> Section:
    """The answer in pictures: per key cell, coverage of every engine's primary interval with 95% MC bars against
    the nominal line, and bias beside RMSE; the side-by-side tables (every interval type) collapsed beneath."""
    sec = Section(HEADLINE_TITLE)
    cells = key_cells(long)
    if not cells:
        sec.text("No fit of this run gave estimates: nothing to show; see Failures.")
    else:
        sec.text(
            f"Per key cell, each engine's primary interval: coverage against nominal {level:g} and bias beside "
            f"RMSE, with 95% Monte Carlo bars (differences within the bars are noise). Every interval type, "
            f"widths and fit rates: the tables under each cell and tables/headline.csv."
        )
    tables = headline_cells(head_text)
    for scenario, cell in cells:
        title = cell_title(scenario, cell)
        sec.heading(title)
        fig, d = forest.plot(long, scenario, cell, forest.FRONT, level)
        sec.figure(
            fig, f"coverage of each engine's primary interval, bias and RMSE, {title}", d, f"front-{scenario}-{cell}"
        )
        if (scenario, cell) in tables:
            sec.table(
                tables[(scenario, cell)],
                f"samplers beside optimisers, every interval type: {title}",
                csv="headline",
                nowrap=True,
            )
    if not tables:
        sec.text(
            "No grid cell of this run has both a sampler and an optimiser fitted on the same datasets, so "
            "there is no side-by-side table."
        )
    return sec


def across_grid(long: pd.DataFrame, level: float) -> Section | None:
    """Nested-loop plots of coverage and bias over every cell of each scenario run on two or more cells, one line
    per engine, and rejection-rate curves along each grid factor."""
    sec = Section("Across the grid")
    for scenario in sorted(long["scenario"].unique()):
        key = key_parameter(long, scenario)
        if key is None:
            continue
        for measure in ("coverage", "bias"):
            fig, d = nestloop.plot(long, scenario, key, measure, level)
            sec.figure(
                fig,
                f"nested-loop plot of {measure} of {key} across the grid cells of {scenario}",
                d,
                f"nestloop-{measure}-{scenario}",
            )
        fig, d = power.plot(long, scenario, level)
        sec.figure(
            fig, f"rejection rate of the fixed effects along each grid factor of {scenario}", d, f"rejection-{scenario}"
        )
    return sec if sec.blocks else None


def warnings_section(result: RunSummary) -> Section:
    sec = Section("Warnings")
    w = result.warnings
    if w.empty:
        sec.text("No fits.")
        return sec
    sec.text(
        "Share of fits per engine and cell that failed, were singular (optimisers), did not converge, had "
        "divergent transitions, reached the maximum tree depth, or had R-hat > 1.01 (samplers); MCSE in "
        "parentheses. Blank: the engine cannot raise that warning."
    )
    fig, _ = heat.plot(w)
    sec.figure(fig, "warnings tally per engine and cell (share of fits, MCSE)", "tables/warnings.csv")
    wide = (
        w.assign(text=[f"{s:.3f} ({m:.3f})" for s, m in zip(w["share"], w["share_mcse"])])
        .pivot_table(index=["scenario", "cell", "engine", "fits"], columns="warning", values="text", aggfunc="first")
        .reset_index()
    )
    sec.table(wide, "warnings tally (share of fits, MCSE)", csv="warnings")
    return sec


def robust(result: RunSummary, long: pd.DataFrame, level: float) -> Section:
    """Median width beside the mean (a few huge Wald widths carry a mean), and coverage and bias without the
    doubtful fits beside all fits."""
    sec = Section("Robust summaries")
    params = [p for s in sorted(long["scenario"].unique()) for p in key_parameters(long, s)]
    keys = {k for s in long["scenario"].unique() if (k := key_parameter(long, s)) is not None}
    fig, d = sensitivity.plot(result.sensitivity, sorted(keys), level)
    if not sec.figure(
        fig,
        "coverage and bias of each scenario's key parameter over all fits beside those "
        "without divergent (samplers) or non-converged (optimisers) fits",
        d,
        "sensitivity",
    ):
        sec.text(
            "No successful fit with an estimate of a key parameter diverged or failed to converge: coverage "
            "and bias without them are those of all fits (every parameter: tables/sensitivity.csv)."
        )
    width = (
        long[long["measure"].isin(["width", "width_median"])]
        .pivot_table(index=["scenario", "cell", "engine", "parameter", "interval"], columns="measure", values="value")
        .reset_index()
    )
    width = width[width["parameter"].isin(params)]
    if "width_median" in width:
        width = width.rename(columns={"width": "mean width", "width_median": "median width"})
        sec.text(
            "Interval widths of each engine's primary interval: the mean beside the median; a mean far above "
            "the median is a few enormous intervals (e.g. Wald on log-SD at a boundary), not a wide engine."
        )
        sec.table(
            width, "mean and median width of the primary interval (MCSE in tables/intervals.csv)", csv="intervals"
        )
    sens = result.sensitivity
    sec.table(
        sens[sens["n_clean"] < sens["n_all"]] if len(sens) else sens,
        "coverage and bias: all fits beside non-flagged fits (only cells with a flagged fit)",
        csv="sensitivity",
    )
    return sec


def between_engines(result: RunSummary, table: pd.DataFrame, long: pd.DataFrame) -> Section:
    """Estimate-vs-estimate and Bland-Altman plots of each key cell's key parameter, every engine against the
    reference engine on the replications both fitted; relative precision and agreement tables beneath."""
    sec = Section("Between engines")
    ref = scatter.reference_engine(table, result.reference)
    for scenario, cell in key_cells(long) if ref is not None else []:
        assert ref is not None
        key = key_parameter(long, scenario)
        if key is None:
            continue
        title = cell_title(scenario, cell)
        fig, d = scatter.plot(table, scenario, cell, key, ref)
        sec.figure(fig, f"estimate against {ref}'s estimate of {key}, {title}", d, f"scatter-{scenario}-{cell}")
        fig, d = blandaltman.plot(table, scenario, cell, key, ref)
        sec.figure(fig, f"Bland-Altman against {ref} for {key}, {title}", d, f"bland-altman-{scenario}-{cell}")
    prec = result.precision
    if len(prec):
        keep = prec[prec["param_class"].isin(["b", "sd", "cor", "sigma", "phi"]) & (prec["n_paired"] > 0)]
        sec.table(
            keep, f"relative precision against {result.reference} (%, MCSE; paired replications)", csv="precision"
        )
    agree = result.agreement
    if len(agree):
        keep = agree[agree["param_class"].isin(["b", "sd", "cor", "sigma", "phi", "mrp"])]
        sec.table(
            keep,
            "agreement: standardised differences of estimates, d = (a - b) / sqrt((se_a^2 + se_b^2) / 2)",
            csv="agreement",
        )
    if not sec.blocks:
        sec.text("One engine per dataset, or no reference engine: nothing to compare.")
    return sec
