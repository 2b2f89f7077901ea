"""Render a run into `reports/<run_id>/`: a self-contained index.html that answers in figures first (each an
embedded palette PNG with alt text and a link to the CSV of its numbers; the long tables collapsed beneath and in
tables/*.csv + tables/*.tex, booktabs), and summary.md.

Everything is read from the stored results and the measures computed from them; nothing is refitted.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from compare import metrics, realagree
from compare.report import realdata as real
from compare.report import sections as secs
from compare.report.measures import key_parameter, long_measures
from compare.report.page import Section, render_page, write_numbers
from compare.report.plots import boundary, coverage, forest, ppc, runtime, sbc, sbc_ecdf, zipplot
from compare.report.sections import HEADLINE_TITLE, cell_title
from compare.report.tables import (
    engine_controls,
    headline,
    headline_cells,
    headline_display,
    headline_tables,
    sbc_verdicts,
    write_tables,
)
from compare.settings import DEFAULT_LEVEL
from compare.status import FAILED, Status
from compare.store import RunStore
from compare.summary import summarise

REPORTS_DIR = Path("reports")
__all__ = ["HEADLINE_TITLE", "build", "render"]


def _scenario_section(table, long, ivals, fits, scenario: str, level: float, run_dir: Path | None = None) -> Section:
    """One scenario in detail: boundary fits by cell, coverage of every interval type and EmpSE beside ModSE
    per cell, a zip plot and a predictive check; the grid and the fit outcomes collapsed."""
    sec = Section(f"Scenario {scenario}", nav=scenario)
    cells = sorted(int(c) for c in table[table["scenario"] == scenario]["cell"].unique())
    labels = secs.cell_labels(scenario, cells)
    sec.table(pd.DataFrame({"cell": cells, "grid": [labels.get(c, "") for c in cells]}), "grid cells")
    sec.figure(
        boundary.plot(fits, scenario, labels),
        f"singular (boundary) fit rate by engine and grid cell, {scenario}",
        "tables/fits.csv",
    )
    shown = [c for s, c in secs.key_cells(long) if s == scenario]
    for cell in shown:
        title = cell_title(scenario, cell)
        sec.figure(
            coverage.plot(ivals, scenario, cell, level),
            f"coverage of every interval type, {title}",
            "tables/intervals.csv",
        )
        fig, d = forest.plot(long, scenario, cell, (("empse", "modse"),), level)
        sec.figure(fig, f"empirical SE beside model SE, {title}", d, f"se-{scenario}-{cell}")
    key = key_parameter(long, scenario)
    if key and cells:
        zip_rows = metrics.primary_rows(table)
        zip_rows = zip_rows[
            (zip_rows["scenario"] == scenario) & (zip_rows["cell"] == cells[0]) & (zip_rows["parameter"] == key)
        ]
        sec.figure(
            zipplot.plot(table, scenario, cells[0], key, level),
            f"zip plot of {key} (each engine's primary interval), {cell_title(scenario, cells[0])}",
            zip_rows[
                [
                    "scenario",
                    "cell",
                    "rep",
                    "engine",
                    "parameter",
                    "interval",
                    "estimate",
                    "se",
                    "lower",
                    "upper",
                    "true",
                    "covered",
                ]
            ],
            f"zip-{scenario}",
        )
    sec.figure(
        _ppc(table, scenario, cells, run_dir),
        f"predictive check for one example fit of {scenario}: "
        "posterior predictive draws where the engine kept them, else an approximation from estimates and SEs",
        "tables/performance.csv",
    )
    f = fits[fits["scenario"] == scenario]
    cols = [
        c
        for c in [
            "cell",
            "engine",
            "fits",
            "failure_rate",
            "singular_rate",
            "corr_at_bound_rate",
            "nonconvergence_rate",
            "reached_reference_rate",
            "divergent_fit_rate",
            "treedepth_rate",
            "wall_s_median",
        ]
        if c in f
    ]
    sec.table(f[cols], f"fit outcomes of {scenario} (rates; MCSE in tables/fits.csv)", csv="fits")
    return sec


def _ppc(table: pd.DataFrame, scenario: str, cells: list[int], run_dir: Path | None):
    from compare.catalogue import load_scenario
    from compare.simulate import dataset_for

    ok = table[(table["scenario"] == scenario) & (table["status"] == Status.OK)]
    if ok.empty or not cells:
        return None
    first = ok.sort_values(["cell", "rep"]).iloc[0]
    cell, rep = int(first["cell"]), int(first["rep"])
    try:
        ds = dataset_for(load_scenario(scenario), cell, rep, int(first["run_seed"]))
    except Exception:  # noqa: BLE001 - the scenario changed since the run; the check is optional
        return None
    return ppc.plot(
        table, ds.data, scenario, cell, rep, _kept_predictive(run_dir, ok, scenario, cell, rep), max_groups=6
    )


def _kept_predictive(run_dir: Path | None, ok: pd.DataFrame, scenario: str, cell: int, rep: int) -> dict:
    """Engine -> replicated outcomes (draws, rows) of the example fit, for engines that kept their draws."""
    from compare import posterior
    from compare.store import part_key

    out: dict = {}
    if run_dir is None:
        return out
    for engine in sorted(ok["engine"].unique()):
        path = posterior.draws_path(run_dir, part_key(scenario, cell, rep), engine)
        if path.is_file():
            y = posterior._az().from_netcdf(path).posterior_predictive["y"].values
            out[engine] = y.reshape(-1, y.shape[-1])
    return out


def _failures(table: pd.DataFrame) -> pd.DataFrame:
    f = table[table["status"].isin(list(FAILED))].drop_duplicates(["scenario", "cell", "rep", "engine"])
    if f.empty:
        return f
    out = f[["scenario", "cell", "rep", "engine", "status", "run_seed", "engine_seed", "error"]].copy()
    out["rerun"] = [
        f"hbench simulate {s} --cell {c} --rep {r} --seed {seed} --out data.csv"
        for s, c, r, seed in zip(out["scenario"], out["cell"], out["rep"], out["run_seed"])
    ]
    return out


def build(store: RunStore, out_root: Path | str = REPORTS_DIR) -> Path:
    """Write the report for a stored run; returns the path of index.html."""
    manifest = store.manifest()
    manifest["status"] = store.state(manifest)  # a killed run's manifest still says "running"
    return render(store.run_id, manifest, store.load(), Path(out_root) / store.run_id, store.dir)


def render(run_id: str, manifest: dict, table: pd.DataFrame, out: Path, run_dir: Path | None = None) -> Path:
    """Write index.html, summary.md and tables/ for a results table and its manifest into `out`. Apart from
    `build` so that a hand-made table (sampler columns, SBC ranks) renders without running any engine."""
    result = summarise(table, manifest.get("reference"), float(manifest.get("level", DEFAULT_LEVEL)))
    ivals, fits, level = result.intervals, result.fits, result.level
    long = long_measures(result, table)
    out.mkdir(parents=True, exist_ok=True)
    heads = headline_tables(ivals, fits)
    head_data = headline(ivals, fits)
    head_text = headline_display(head_data)
    controls = engine_controls(manifest, metrics.engine_kinds(table))
    real_tables = real.tables(table, manifest) if realagree.is_realdata(manifest) else {}
    write_tables(
        out / "tables",
        {
            **result.tables(),
            **heads,
            "headline": head_data,
            "engine_controls": controls,
            "measures": long,
            "failures": _failures(table),
            **real_tables,
        },
        tex={"headline": head_text},
    )
    # published data have no truth: coverage, bias and calibration are undefined, agreement takes their place
    truth = not real_tables
    sections = [
        real.section(real_tables) if real_tables else None,
        secs.front(long, head_text, level) if truth else None,
        secs.across_grid(long, level) if truth else None,
        secs.warnings_section(result),
        secs.robust(result, long, level) if truth else None,
        secs.between_engines(result, table, long),
        _sbc_section(table, result.sbc) if truth else None,
        _overview(manifest, table, heads, controls),
    ]
    runtime_sec = Section("Runtime")
    runtime_sec.figure(runtime.plot(table), "runtime per fit and compile cost by engine", "tables/fits.csv")
    sections.append(runtime_sec)
    for scenario in sorted(table["scenario"].unique()):
        sections.append(_scenario_section(table, long, ivals, fits, scenario, level, run_dir))
    sections.append(_failures_section(table))
    man = Section("Run manifest")
    shown = json.dumps({k: v for k, v in manifest.items() if k != "suite_raw"}, indent=1, default=str)
    man.raw(f"<details><summary>manifest.json</summary><pre>{html.escape(shown)}</pre></details>")
    sections.append(man)
    shown_sections = [s for s in sections if s is not None]
    write_numbers(shown_sections, out / "tables")
    (out / "index.html").write_text(render_page(run_id, shown_sections))
    (out / "summary.md").write_text(
        _markdown(run_id, manifest, head_text, level, controls, heads, sbc_verdicts(result.sbc), _failures(table))
    )
    return out / "index.html"


def _failures_section(table: pd.DataFrame) -> Section:
    fail = Section("Failures")
    failures = _failures(table)
    if len(failures):
        fail.text(
            f"{len(failures)} fits failed, timed out or crashed; each with the seed and command that "
            f"regenerate its data."
        )
        fail.table(failures, "failed fits", csv="failures", open_=True)
    else:
        fail.text("No fit failed, timed out or crashed.")
    skipped = table[table["status"] == Status.SKIPPED].drop_duplicates(["scenario", "engine"])
    fail.table(
        skipped[["scenario", "engine", "error"]].rename(columns={"error": "why skipped"}),
        "skipped (the engine cannot express the model)",
    )
    return fail


def _headline_note(level: float) -> str:
    return (
        f"The seed lecture's question, side by side on the same simulated datasets: per grid cell where samplers "
        f"(Bayesian, posterior intervals) and optimisers (maximum likelihood, REML, MAP, VB) both ran, coverage of "
        f"nominal {level:g} intervals and their mean width (upper - lower) for every fixed effect (b), group SD "
        f"(sd) and correlation (cor), one row per engine and interval type ('lme4 · wald-t': lme4's t(J-1) "
        f"interval); the share of fits with divergent transitions (samplers), of singular fits "
        f"(optimisers) and of failed fits. Monte Carlo SEs in parentheses: coverage differences within about two "
        f"of them are noise. Numbers in tables/headline.csv."
    )


def _sbc_section(table: pd.DataFrame, sbc_table: pd.DataFrame) -> Section:
    """Calibration of the samplers on prior-DGP cells (truth drawn from the prior): verdicts, ECDF differences
    with simultaneous bands, rank histograms."""
    sec = Section("Simulation-based calibration")
    have = table[table["sbc_rank"].notna()]
    cells = sorted(set(zip(have["scenario"], have["cell"])))
    if not cells:
        sec.text("No prior-DGP cell with posterior draws in this run: nothing to calibrate.")
        return sec
    sec.text(
        f"Ranks of the true value among thinned posterior draws, one per fit; "
        f"calibrated posteriors give uniform ranks. Verdicts: chi-square p, and whether the ECDF difference "
        f"stays inside the simultaneous 95% band (Säilynoja, Bürkner & Vehtari 2022; the band is left by 5% "
        f"of uniform rank sets), from at least {metrics.SBC_MIN_RANKS} ranks."
    )
    for scenario, cell in cells:
        title = cell_title(scenario, int(cell))
        sec.table(
            sbc_verdicts(sbc_table, scenario, cell).drop(columns=["scenario", "cell"], errors="ignore"),
            f"SBC verdicts, {title}",
            csv="sbc",
            open_=True,
        )
        sec.figure(
            sbc_ecdf.plot(table, scenario, cell),
            f"SBC ECDF difference with simultaneous 95% band, {title}",
            "tables/sbc.csv",
        )
        sec.figure(sbc.plot(table, scenario, cell), f"SBC rank histograms, {title}", "tables/sbc.csv")
    return sec


def _overview(manifest: dict, table: pd.DataFrame, heads: dict[str, pd.DataFrame], controls: pd.DataFrame) -> Section:
    sec = Section("Overview")
    n_fits = len(table.drop_duplicates(["scenario", "cell", "rep", "engine"]))
    sec.text(
        f"Suite {manifest.get('suite')}, run seed {manifest.get('run_seed')}, {manifest.get('n_tasks')} tasks, "
        f"{n_fits} fits, status {manifest.get('status')}; intervals at level {manifest.get('level', DEFAULT_LEVEL)}, "
        f"reference engine {manifest.get('reference')}; git {manifest.get('git_commit')}; "
        f"started {manifest.get('started')}, finished {manifest.get('finished')}."
    )
    sec.table(
        controls, "Engines and their controls (settings as the run recorded them)", csv="engine_controls", open_=True
    )
    sec.table(
        heads.get("headline_coverage"),
        "Do intervals cover? Coverage of fixed effects by engine and interval type (MCSE)",
        csv="headline_coverage",
    )
    sec.table(
        heads.get("headline_boundary"),
        "How often does each engine fit on the boundary? (singular rate, MCSE)",
        csv="headline_boundary",
    )
    sec.table(
        heads.get("headline_runtime"), "How long does each engine take? (seconds per fit)", csv="headline_runtime"
    )
    return sec


def _md_table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3g")


def _markdown(
    run_id: str,
    manifest: dict,
    headline_text: pd.DataFrame,
    level: float,
    controls: pd.DataFrame,
    heads: dict[str, pd.DataFrame],
    verdicts: pd.DataFrame,
    failures: pd.DataFrame,
) -> str:
    """summary.md opens, like index.html, with the seed's question answered per cell."""
    parts = [
        f"# hbench report: {run_id}\n",
        f"Suite `{manifest.get('suite')}`, seed {manifest.get('run_seed')}, "
        f"git {manifest.get('git_commit')}, status {manifest.get('status')}.\n",
        f"\n## {HEADLINE_TITLE}\n",
    ]
    cells = headline_cells(headline_text)
    if cells:
        parts.append(_headline_note(level) + "\n")
        for (scenario, cell), df in cells.items():
            parts += [f"\n### {cell_title(scenario, cell)}\n", _md_table(df), "\n"]
    else:
        parts.append("No grid cell of this run has both a sampler and an optimiser fitted on the same datasets.\n")
    if len(controls):
        parts += ["\n## engines and their controls\n", _md_table(controls), "\n"]
    for name, df in heads.items():
        if df is not None and len(df):
            parts += [f"\n## {name.replace('_', ' ')}\n", _md_table(df), "\n"]
    if len(verdicts):
        parts += ["\n## simulation-based calibration\n", _md_table(verdicts), "\n"]
    parts.append(f"\n{len(failures)} failed fits; see index.html for each with its seed.\n")
    return "\n".join(parts)
