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

from compare.report.plots import accuracy, boundary, coverage, ppc, runtime, sbc, zipplot
from compare.report.tables import headline_tables, write_tables
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

    def table(self, df: pd.DataFrame, caption: str = "") -> None:
        if df is None or df.empty:
            return
        head = f"<h4>{html.escape(caption)}</h4>" if caption else ""
        self.blocks.append(head + df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}",
                                             classes="tbl", border=0))

    def text(self, body: str) -> None:
        self.blocks.append(f"<p>{html.escape(body)}</p>")


def _cell_labels(store: RunStore, scenario: str) -> dict[int, str]:
    from compare.catalogue import load_scenario

    try:
        sc = load_scenario(scenario)
    except Exception:  # a scenario renamed since the run: fall back to indices
        return {}
    return {c.index: ", ".join(f"{k.split('.')[-1]}={v}" for k, v in c.factors.items()) or f"cell {c.index}"
            for c in sc.cells}


def _key_parameter(perf: pd.DataFrame, scenario: str, cell: int) -> str | None:
    d = perf[(perf["scenario"] == scenario) & (perf["cell"] == cell) & perf["coverage"].notna()]
    for name in ("b[Intercept]", "b[x]", "mrp"):
        if (d["parameter"] == name).any():
            return name
    return d["parameter"].iloc[0] if len(d) else None


def _scenario_section(store, table, perf, fits, scenario: str, level: float) -> Section:
    sec = Section(f"Scenario {scenario}")
    labels = _cell_labels(store, scenario)
    cells = sorted(table[table["scenario"] == scenario]["cell"].unique())
    sec.table(pd.DataFrame({"cell": cells, "grid": [labels.get(c, "") for c in cells]}), "grid cells")
    sec.figure(boundary.plot(fits, scenario, labels), "singular (boundary) fit rate by engine and grid cell")
    for cell in cells:
        sec.figure(coverage.plot(perf, scenario, cell, level), f"coverage, cell {cell} ({labels.get(cell, '')})")
        sec.figure(accuracy.plot(perf, scenario, cell), f"bias / EmpSE / ModSE / RMSE, cell {cell}")
        sec.figure(sbc.plot(table, scenario, cell), f"SBC rank histograms, cell {cell}")
    key = _key_parameter(perf, scenario, cells[0]) if cells else None
    if key:
        sec.figure(zipplot.plot(table, scenario, cells[0], key, level), f"zip plot of {key}, cell {cells[0]}")
    sec.figure(_ppc(store, table, scenario, cells), "posterior/fitted predictive check for one example fit")
    f = fits[fits["scenario"] == scenario]
    cols = [c for c in ["cell", "engine", "fits", "failure_rate", "singular_rate", "corr_at_bound_rate",
                        "nonconvergence_rate", "reached_reference_rate", "divergent_fit_rate", "wall_s_median"]
            if c in f]
    sec.table(f[cols], "fit outcomes (rates; MCSE in tables/fits.csv)")
    return sec


def _ppc(store: RunStore, table: pd.DataFrame, scenario: str, cells: list[int]):
    from compare.catalogue import load_scenario
    from compare.simulate import dataset_for

    ok = table[(table["scenario"] == scenario) & (table["status"] == "ok")]
    if ok.empty or not cells:
        return None
    first = ok.sort_values(["cell", "rep"]).iloc[0]
    try:
        ds = dataset_for(load_scenario(scenario), int(first["cell"]), int(first["rep"]), int(first["run_seed"]))
    except Exception:  # the scenario changed since the run; the check is optional
        return None
    return ppc.plot(table, ds.data, scenario, int(first["cell"]), int(first["rep"]))


def _failures(table: pd.DataFrame) -> pd.DataFrame:
    f = table[table["status"].isin(["failed", "timeout", "crashed"])].drop_duplicates(
        ["scenario", "cell", "rep", "engine"])
    if f.empty:
        return f
    out = f[["scenario", "cell", "rep", "engine", "status", "run_seed", "engine_seed", "error"]].copy()
    out["rerun"] = [f"hbench simulate {s} --cell {c} --rep {r} --seed {seed} --out data.csv"
                    for s, c, r, seed in zip(out["scenario"], out["cell"], out["rep"], out["run_seed"])]
    return out


def build(store: RunStore, out_root: Path | str = REPORTS_DIR) -> Path:
    """Write the report for a run; returns the path of index.html."""
    manifest = store.manifest()
    table = store.load()
    result = summarise(table, manifest.get("reference"), float(manifest.get("level", 0.95)))
    perf, fits, level = result.performance, result.fits, result.level
    out = Path(out_root) / store.run_id
    out.mkdir(parents=True, exist_ok=True)
    heads = headline_tables(perf, fits)
    write_tables(out / "tables", {**result.tables(), **heads})
    manifest["status"] = store.state(manifest)  # a killed run's manifest still says "running"
    sections = [_overview(manifest, table, heads), _between_engines(result)]
    runtime_sec = Section("Runtime")
    runtime_sec.figure(runtime.plot(table), "runtime per fit and compile cost by engine")
    sections.append(runtime_sec)
    for scenario in sorted(table["scenario"].unique()):
        sections.append(_scenario_section(store, table, perf, fits, scenario, level))
    fail = Section("Failures (each with the seed that reproduces it)")
    failures = _failures(table)
    fail.table(failures) if len(failures) else fail.text("No fit failed, timed out or crashed.")
    skipped = table[table["status"] == "skipped"].drop_duplicates(["scenario", "engine"])
    fail.table(skipped[["scenario", "engine", "error"]].rename(columns={"error": "why skipped"}), "skipped")
    sections.append(fail)
    man = Section("Run manifest")
    man.blocks.append(f"<pre>{html.escape(json.dumps({k: v for k, v in manifest.items() if k != 'suite_raw'}, indent=1, default=str))}</pre>")
    sections.append(man)
    (out / "index.html").write_text(_page(store.run_id, sections))
    (out / "summary.md").write_text(_markdown(store.run_id, manifest, heads, failures))
    return out / "index.html"


def _between_engines(result: RunSummary) -> Section:
    """Comparisons made from the engines' stored results on the same datasets (no engine refits another)."""
    sec = Section("Between engines")
    prec = result.precision
    if len(prec):
        keep = prec[prec["parameter"].str.match(r"^(b|sd|cor|sigma)\b")]
        sec.table(keep, f"relative precision against {result.reference} (%, MCSE; paired replications)")
    agree = result.agreement
    if len(agree):
        keep = agree[agree["parameter"].str.match(r"^(b|sd|cor|sigma|mrp)\b")]
        sec.table(keep, "agreement: standardised differences of estimates, d = (a - b) / sqrt((se_a^2 + se_b^2) / 2)")
    if not sec.blocks:
        sec.text("One engine per dataset, or no reference engine: nothing to compare.")
    return sec


def _overview(manifest: dict, table: pd.DataFrame, heads: dict[str, pd.DataFrame]) -> Section:
    sec = Section("Overview")
    n_fits = len(table.drop_duplicates(["scenario", "cell", "rep", "engine"]))
    sec.text(f"Suite {manifest.get('suite')}, run seed {manifest.get('run_seed')}, {manifest.get('n_tasks')} tasks, "
             f"{n_fits} fits, status {manifest.get('status')}; git {manifest.get('git_commit')}; "
             f"started {manifest.get('started')}, finished {manifest.get('finished')}.")
    sec.table(heads.get("headline_coverage"), "Do intervals cover? Coverage of fixed effects by engine (MCSE)")
    sec.table(heads.get("headline_boundary"), "How often does each engine fit on the boundary? (singular rate, MCSE)")
    sec.table(heads.get("headline_runtime"), "How long does each engine take? (seconds per fit)")
    return sec


CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:auto;padding:1em;color:#222}
h2{border-bottom:2px solid #ddd;margin-top:2em} figure{margin:1em 0} img{max-width:100%}
figcaption{font-size:.85em;color:#555} table.tbl{border-collapse:collapse;font-size:.8em;margin:.5em 0}
table.tbl td,table.tbl th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
pre{background:#f6f6f6;padding:1em;font-size:.75em;overflow:auto} nav a{margin-right:1em}"""


def _page(run_id: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections))
    body = "\n".join(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{"".join(s.blocks)}</section>'
                     for i, s in enumerate(sections))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hbench report {html.escape(run_id)}"
            f"</title><style>{CSS}</style></head><body><h1>hbench report: {html.escape(run_id)}</h1>"
            f"<nav>{nav}</nav>{body}</body></html>\n")


def _markdown(run_id: str, manifest: dict, heads: dict[str, pd.DataFrame], failures: pd.DataFrame) -> str:
    parts = [f"# hbench report: {run_id}\n", f"Suite `{manifest.get('suite')}`, seed {manifest.get('run_seed')}, "
             f"git {manifest.get('git_commit')}, status {manifest.get('status')}.\n"]
    for name, df in heads.items():
        if df is not None and len(df):
            parts += [f"\n## {name.replace('_', ' ')}\n", df.to_markdown(index=False, floatfmt=".3g"), "\n"]
    parts.append(f"\n{len(failures)} failed fits; see index.html for each with its seed.\n")
    return "\n".join(parts)
