"""Render a run into `reports/<run_id>/`: a self-contained index.html (plots embedded as PNG data
URIs, so it opens from disk), summary.md, and tables/*.csv + tables/*.tex (booktabs) for papers.

Everything is read from the stored results and the metrics computed from them; nothing is refitted.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from compare import metrics
from compare.report.plots import accuracy, boundary, coverage, ppc, runtime, sbc, sbc_ecdf, zipplot
from compare.report.tables import (engine_controls, headline, headline_cells, headline_display, headline_tables,
                                   sbc_verdicts, write_tables)
from compare.settings import DEFAULT_LEVEL
from compare.status import FAILED, Status
from compare.store import RunStore
from compare.summary import RunSummary, summarise

REPORTS_DIR = Path("reports")


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)

    def figure(self, fig, caption: str) -> None:
        if fig is None:
            return
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode()
        self.blocks.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def table(self, df: pd.DataFrame, caption: str = "", nowrap: bool = False) -> None:
        """A table under its caption, scrolling sideways when wide; `nowrap` keeps "value (MCSE)" on one line."""
        if df is None or df.empty:
            return
        head = f"<h4>{html.escape(caption)}</h4>" if caption else ""
        classes = "tbl nowrap" if nowrap else "tbl"
        self.blocks.append(head + '<div class="wide">' + df.to_html(
            index=False, na_rep="", float_format=lambda v: f"{v:.3g}", classes=classes, border=0) + "</div>")

    def text(self, body: str) -> None:
        self.blocks.append(f"<p>{html.escape(body)}</p>")


def _cell_labels(scenario: str) -> dict[int, str]:
    from compare.catalogue import load_scenario

    try:
        sc = load_scenario(scenario)
    except Exception:  # a scenario renamed since the run: fall back to indices
        return {}
    return {c.index: ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.factors.items()) or f"cell {c.index}"
            for c in sc.cells}


def _key_parameter(ivals: pd.DataFrame, scenario: str, cell: int) -> str | None:
    d = ivals[(ivals["scenario"] == scenario) & (ivals["cell"] == cell) & ivals["coverage"].notna()]
    for name in ("b[Intercept]", "b[x]", "mrp"):
        if (d["parameter"] == name).any():
            return name
    return d["parameter"].iloc[0] if len(d) else None


def _scenario_section(table, perf, ivals, fits, scenario: str, level: float, run_dir: Path | None = None) -> Section:
    sec = Section(f"Scenario {scenario}")
    labels = _cell_labels(scenario)
    cells = sorted(table[table["scenario"] == scenario]["cell"].unique())
    sec.table(pd.DataFrame({"cell": cells, "grid": [labels.get(c, "") for c in cells]}), "grid cells")
    sec.figure(boundary.plot(fits, scenario, labels), "singular (boundary) fit rate by engine and grid cell")
    for cell in cells:
        sec.figure(coverage.plot(ivals, scenario, cell, level),
                   f"coverage by engine and interval type, cell {cell} ({labels.get(cell, '')})")
        sec.figure(accuracy.plot(perf, scenario, cell), f"bias / EmpSE / ModSE / RMSE, cell {cell}")
    key = _key_parameter(ivals, scenario, cells[0]) if cells else None
    if key:
        sec.figure(zipplot.plot(table, scenario, cells[0], key, level),
                   f"zip plot of {key} (each engine's primary interval), cell {cells[0]}")
    sec.figure(_ppc(table, scenario, cells, run_dir), "predictive check for one example fit: posterior predictive "
               "draws where the engine kept them, else an approximation from estimates and SEs")
    f = fits[fits["scenario"] == scenario]
    cols = [c for c in ["cell", "engine", "fits", "failure_rate", "singular_rate", "corr_at_bound_rate",
                        "nonconvergence_rate", "reached_reference_rate", "divergent_fit_rate", "wall_s_median"]
            if c in f]
    sec.table(f[cols], "fit outcomes (rates; MCSE in tables/fits.csv)")
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
    except Exception:  # the scenario changed since the run; the check is optional
        return None
    return ppc.plot(table, ds.data, scenario, cell, rep, _kept_predictive(run_dir, ok, scenario, cell, rep))


def _kept_predictive(run_dir: Path | None, ok: pd.DataFrame, scenario: str, cell: int, rep: int) -> dict:
    """Engine -> replicated outcomes (draws, rows) of the example fit, for engines that kept their draws."""
    from compare import posterior
    from compare.store import part_key

    out = {}
    for engine in sorted(ok["engine"].unique()) if run_dir is not None else []:
        assert run_dir is not None
        path = posterior.draws_path(run_dir, part_key(scenario, cell, rep), engine)
        if path.is_file():
            y = posterior._az().from_netcdf(path).posterior_predictive["y"].values
            out[engine] = y.reshape(-1, y.shape[-1])
    return out


def _failures(table: pd.DataFrame) -> pd.DataFrame:
    f = table[table["status"].isin(list(FAILED))].drop_duplicates(
        ["scenario", "cell", "rep", "engine"])
    if f.empty:
        return f
    out = f[["scenario", "cell", "rep", "engine", "status", "run_seed", "engine_seed", "error"]].copy()
    out["rerun"] = [f"hbench simulate {s} --cell {c} --rep {r} --seed {seed} --out data.csv"
                    for s, c, r, seed in zip(out["scenario"], out["cell"], out["rep"], out["run_seed"])]
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
    perf, ivals, fits, level = result.performance, result.intervals, result.fits, result.level
    out.mkdir(parents=True, exist_ok=True)
    heads = headline_tables(ivals, fits)
    head_data = headline(ivals, fits)
    head_text = headline_display(head_data)
    controls = engine_controls(manifest, metrics.engine_kinds(table))
    write_tables(out / "tables", {**result.tables(), **heads, "headline": head_data, "engine_controls": controls},
                 tex={"headline": head_text})
    sections = [_headline_section(head_text, level), _overview(manifest, table, heads, controls),
                _between_engines(result), _sbc_section(table, result.sbc)]
    runtime_sec = Section("Runtime")
    runtime_sec.figure(runtime.plot(table), "runtime per fit and compile cost by engine")
    sections.append(runtime_sec)
    for scenario in sorted(table["scenario"].unique()):
        sections.append(_scenario_section(table, perf, ivals, fits, scenario, level, run_dir))
    fail = Section("Failures (each with the seed that reproduces it)")
    failures = _failures(table)
    fail.table(failures) if len(failures) else fail.text("No fit failed, timed out or crashed.")
    skipped = table[table["status"] == Status.SKIPPED].drop_duplicates(["scenario", "engine"])
    fail.table(skipped[["scenario", "engine", "error"]].rename(columns={"error": "why skipped"}), "skipped")
    sections.append(fail)
    man = Section("Run manifest")
    man.blocks.append(f"<pre>{html.escape(json.dumps({k: v for k, v in manifest.items() if k != 'suite_raw'}, indent=1, default=str))}</pre>")
    sections.append(man)
    (out / "index.html").write_text(_page(run_id, sections))
    (out / "summary.md").write_text(_markdown(run_id, manifest, head_text, level, controls, heads,
                                              sbc_verdicts(result.sbc), failures))
    return out / "index.html"


HEADLINE_TITLE = "Does the Bayesian version work fine?"


def _headline_note(level: float) -> str:
    return (f"The seed lecture's question, side by side on the same simulated datasets: per grid cell where samplers "
            f"(Bayesian, posterior intervals) and optimisers (maximum likelihood, REML, MAP, VB) both ran, coverage of "
            f"nominal {level:g} intervals and their mean width (upper - lower) for every fixed effect (b), group SD "
            f"(sd) and correlation (cor), one row per engine and interval type ('lme4 · wald-t': lme4's t(J-1) "
            f"interval); the share of fits with divergent transitions (samplers), of singular fits "
            f"(optimisers) and of failed fits. Monte Carlo SEs in parentheses: coverage differences within about two "
            f"of them are noise. Numbers in tables/headline.csv.")


def _cell_title(scenario: str, cell: int) -> str:
    label = _cell_labels(scenario).get(cell, "")
    return f"{scenario}, cell {cell}" + (f" ({label})" if label else "")


def _headline_section(display: pd.DataFrame, level: float) -> Section:
    """The report opens with the seed's question answered: one table per cell with both kinds of engine."""
    sec = Section(HEADLINE_TITLE)
    cells = headline_cells(display)
    if not cells:
        sec.text("No grid cell of this run has both a sampler and an optimiser fitted on the same datasets, so "
                 "there is no side-by-side answer; the sections below give each engine's measures.")
        return sec
    sec.text(_headline_note(level))
    for (scenario, cell), df in cells.items():
        sec.table(df, _cell_title(scenario, cell), nowrap=True)
    return sec


def _sbc_section(table: pd.DataFrame, sbc_table: pd.DataFrame) -> Section:
    """Calibration of the samplers on prior-DGP cells (truth drawn from the prior): verdicts, ECDF differences
    with simultaneous bands, rank histograms."""
    sec = Section("Simulation-based calibration")
    have = table[table["sbc_rank"].notna()]
    cells = sorted(set(zip(have["scenario"], have["cell"])))
    if not cells:
        sec.text("No prior-DGP cell with posterior draws in this run: nothing to calibrate.")
        return sec
    sec.text(f"Ranks of the true value among thinned posterior draws, one per fit; "
             f"calibrated posteriors give uniform ranks. Verdicts: chi-square p, and whether the ECDF difference "
             f"stays inside the simultaneous 95% band (Säilynoja, Bürkner & Vehtari 2022; the band is left by 5% "
             f"of uniform rank sets), from at least {metrics.SBC_MIN_RANKS} ranks.")
    for scenario, cell in cells:
        title = _cell_title(scenario, int(cell))
        sec.table(sbc_verdicts(sbc_table, scenario, cell).drop(columns=["scenario", "cell"], errors="ignore"),
                  f"SBC verdicts, {title}")
        sec.figure(sbc_ecdf.plot(table, scenario, cell), f"SBC ECDF difference with simultaneous 95% band, {title}")
        sec.figure(sbc.plot(table, scenario, cell), f"SBC rank histograms, {title}")
    return sec


def _between_engines(result: RunSummary) -> Section:
    """Comparisons made from the engines' stored results on the same datasets (no engine refits another)."""
    sec = Section("Between engines")
    prec = result.precision
    if len(prec):
        keep = prec[prec["param_class"].isin(["b", "sd", "cor", "sigma"])]
        sec.table(keep, f"relative precision against {result.reference} (%, MCSE; paired replications)")
    agree = result.agreement
    if len(agree):
        keep = agree[agree["param_class"].isin(["b", "sd", "cor", "sigma", "mrp"])]
        sec.table(keep, "agreement: standardised differences of estimates, d = (a - b) / sqrt((se_a^2 + se_b^2) / 2)")
    if not sec.blocks:
        sec.text("One engine per dataset, or no reference engine: nothing to compare.")
    return sec


def _overview(manifest: dict, table: pd.DataFrame, heads: dict[str, pd.DataFrame], controls: pd.DataFrame) -> Section:
    sec = Section("Overview")
    n_fits = len(table.drop_duplicates(["scenario", "cell", "rep", "engine"]))
    sec.text(f"Suite {manifest.get('suite')}, run seed {manifest.get('run_seed')}, {manifest.get('n_tasks')} tasks, "
             f"{n_fits} fits, status {manifest.get('status')}; intervals at level {manifest.get('level', DEFAULT_LEVEL)}, "
             f"reference engine {manifest.get('reference')}; git {manifest.get('git_commit')}; "
             f"started {manifest.get('started')}, finished {manifest.get('finished')}.")
    sec.table(controls, "Engines and their controls (settings as the run recorded them)")
    sec.table(heads.get("headline_coverage"),
              "Do intervals cover? Coverage of fixed effects by engine and interval type (MCSE)")
    sec.table(heads.get("headline_boundary"), "How often does each engine fit on the boundary? (singular rate, MCSE)")
    sec.table(heads.get("headline_runtime"), "How long does each engine take? (seconds per fit)")
    return sec


CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:auto;padding:1em;color:#222}
h2{border-bottom:2px solid #ddd;margin-top:2em} figure{margin:1em 0} img{max-width:100%}
figcaption{font-size:.85em;color:#555} table.tbl{border-collapse:collapse;font-size:.8em;margin:.5em 0}
table.tbl td,table.tbl th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right} table.nowrap td{white-space:nowrap}
pre{background:#f6f6f6;padding:1em;font-size:.75em;overflow:auto} nav a{margin-right:1em}
div.wide{overflow-x:auto}"""


def _page(run_id: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections))
    body = "\n".join(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{"".join(s.blocks)}</section>'
                     for i, s in enumerate(sections))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hbench report {html.escape(run_id)}"
            f"</title><style>{CSS}</style></head><body><h1>hbench report: {html.escape(run_id)}</h1>"
            f"<nav>{nav}</nav>{body}</body></html>\n")


def _md_table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3g")


def _markdown(run_id: str, manifest: dict, headline_text: pd.DataFrame, level: float, controls: pd.DataFrame,
              heads: dict[str, pd.DataFrame], verdicts: pd.DataFrame, failures: pd.DataFrame) -> str:
    """summary.md opens, like index.html, with the seed's question answered per cell."""
    parts = [f"# hbench report: {run_id}\n", f"Suite `{manifest.get('suite')}`, seed {manifest.get('run_seed')}, "
             f"git {manifest.get('git_commit')}, status {manifest.get('status')}.\n", f"\n## {HEADLINE_TITLE}\n"]
    cells = headline_cells(headline_text)
    if cells:
        parts.append(_headline_note(level) + "\n")
        for (scenario, cell), df in cells.items():
            parts += [f"\n### {_cell_title(scenario, cell)}\n", _md_table(df), "\n"]
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
