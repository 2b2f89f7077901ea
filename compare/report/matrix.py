"""The page of `hbench matrix`: what changed between environments (reports/<matrix_id>/index.html, summary.md,
matrix.json). Read from the runs and their comparisons; nothing is refitted.

Sections: the environments (pins, cache key, build and run cost), the package versions side by side (every
package whose resolved version differs, then the versions each run's manifest recorded), and per environment
against the first: verdict, counts, flagged measures with z, runtime ratios (CPU and wall) per engine.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from compare import regress
from compare.matrix import MatrixResult
from compare.regress_markdown import MEASURE_COLUMNS, MEASURE_TABLES, RUNTIME_COLUMNS, headline, to_markdown
from compare.report.page import CSS, Section


def environments(m: MatrixResult) -> pd.DataFrame:
    rows = [
        {
            "env": r.resolved.spec.name,
            "pins": ", ".join(r.resolved.spec.pins) or "(hbench's defaults)",
            "key": r.resolved.key,
            "built now": r.built,
            "build+install s": round(r.build_s, 1),
            "run wall s": round(r.run_wall_s, 1),
            "run CPU s": round(r.run_cpu_s, 1),
            "run id": r.run_id,
        }
        for r in m.runs
    ]
    return pd.DataFrame(rows)


def version_table(m: MatrixResult, differing: bool) -> pd.DataFrame:
    """Resolved versions side by side: packages whose version differs between environments (`differing`),
    or every package hbench records in a run's manifest, as that run recorded it."""
    if differing:
        per = {r.resolved.spec.name: r.resolved.versions() for r in m.runs}
    else:
        per = {r.resolved.spec.name: r.store.manifest().get("versions", {}) for r in m.runs}
    names = sorted({n for v in per.values() for n in v}, key=str.lower)
    rows = [{"package": n, **{e: v.get(n, "-") for e, v in per.items()}} for n in names]
    df = pd.DataFrame(rows, columns=["package", *per])
    if differing and len(df):
        df = df[df[list(per)].nunique(axis=1) > 1]
    return df.reset_index(drop=True)


def flagged(result: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [df[df["flagged"]] for name, df in result.items() if name in MEASURE_TABLES and len(df)]
    hit = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["z"])
    return hit.reindex(columns=MEASURE_COLUMNS).sort_values("z", key=abs, ascending=False)


def counts(result: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"table": n, "compared": len(df), "flagged": int(df["flagged"].sum()) if len(df) else 0}
            for n, df in result.items()
        ]
    )


def _comparison_section(m: MatrixResult, name: str) -> Section:
    first = m.runs[0].resolved.spec.name
    result, thresholds = m.comparisons[name], m.plan.thresholds
    sec = Section(f"{name} against {first}")
    sec.text(headline(result, thresholds).replace("**", "") + ".")
    for problem in m.problems.get(name, []):
        sec.text(f"Not comparable: {problem}.")
    for note in regress.notes(result, thresholds):
        sec.text(f"Note: {note}.")
    sec.table(counts(result), "Measures compared and flagged")
    hit = flagged(result)
    if hit.empty:
        sec.text("No measure moved beyond its Monte Carlo error.")
    sec.table(hit, "Flagged measures, largest |z| first")
    rt = result["runtime"]
    sec.table(
        rt[[c for c in [*RUNTIME_COLUMNS, "flagged"] if c in rt.columns]],
        "Runtime: median seconds per fit, ratio = this environment / the first",
    )
    return sec


def render(m: MatrixResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    secs = [Section("Environments"), Section("Package versions")]
    p = m.plan
    secs[0].text(
        f"Suite {p.suite_name}, seed {p.seed}, replications {p.reps or 'as the suite says'}; every "
        f"environment runs the same hbench wheel (built from this checkout). Python packages only: R and "
        f"its packages are Debian's, one version each."
    )
    secs[0].table(environments(m), "Environments (pins, cache key, build and run cost)", open_=True)
    secs[1].table(version_table(m, differing=True), "Resolved versions that differ between environments")
    secs[1].table(version_table(m, differing=False), "Versions each run recorded (manifest)")
    secs += [_comparison_section(m, name) for name in m.comparisons]
    (out / "index.html").write_text(_page(p.matrix_id, secs))
    (out / "summary.md").write_text(markdown(m))
    (out / "matrix.json").write_text(json.dumps(to_json(m), indent=1, default=str) + "\n")
    return out / "index.html"


def _page(title: str, sections: list[Section]) -> str:
    body = "\n".join(f"<section><h2>{html.escape(s.title)}</h2>{''.join(s.blocks)}</section>" for s in sections)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hbench matrix "
        f"{html.escape(title)}</title><style>{CSS}</style></head><body><h1>What changed between environments: "
        f"{html.escape(title)}</h1>{body}</body></html>\n"
    )


def markdown(m: MatrixResult) -> str:
    first = m.runs[0].resolved.spec.name
    parts = [
        f"## hbench matrix {m.plan.matrix_id}: suite {m.plan.suite_name}, seed {m.plan.seed}",
        "",
        environments(m).to_markdown(index=False),
        "",
        "### Versions that differ",
        "",
        version_table(m, differing=True).to_markdown(index=False) or "(none)",
        "",
    ]
    for name, result in m.comparisons.items():
        parts.append(to_markdown(result, first, name, m.plan.thresholds, title="hbench matrix"))
    return "\n".join(parts)


def to_json(m: MatrixResult) -> dict:
    first = m.runs[0]
    return {
        "matrix_id": m.plan.matrix_id,
        "suite": m.plan.suite_name,
        "seed": m.plan.seed,
        "environments": environments(m).to_dict("records"),
        "resolved": {r.resolved.spec.name: r.resolved.versions() for r in m.runs},
        "comparisons": {
            name: {
                **regress.to_json(
                    result,
                    first.store,
                    next(r.store for r in m.runs if r.resolved.spec.name == name),
                    m.plan.thresholds,
                ),
                "not_comparable": m.problems.get(name, []),
            }
            for name, result in m.comparisons.items()
        },
    }
