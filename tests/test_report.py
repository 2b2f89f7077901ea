"""The report: built from a stored run (test-double engines), tables for papers, `hbench plot`, and a real
browser load (headless Chromium via Playwright) that checks every image renders, nothing logs an error, the
first screen shows a figure, every navigation link lands on its section and every figure has alt text and a
link to the CSV of its numbers.
Skipped with a clear reason only when no Chromium is installed (the Makefile's set-up installs Debian's).

The headline (samplers beside optimisers) and the SBC section need sampler results; rather than run a
sampler, a small results table is built by hand with sampler diagnostics and SBC ranks filled, its
measures worked out by hand, and rendered by the report's own functions."""

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from compare import report as report_module
from compare.report import tables
from compare.report.page import MAX_INLINE_ROWS
from compare.store import conform
from compare.summary import summarise
from tests.doubles import seeds_of
from tests.handmade import long_table

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HBENCH_ENGINES": "tests.doubles", "PYTHONPATH": str(ROOT)}
SUITE = """
name = "r"
seed = 3
reps = 12
[[scenario]]
name = "varying_intercept"
cells = [0, 1]
[[scenario]]
name = "seed_slopes"
cells = [0]
[[engine]]
name = "ols-double"
[[engine]]
name = "failing-double"
settings = { fail_seeds = %s }
""" % seeds_of(3, [("varying_intercept", 0), ("varying_intercept", 1), ("seed_slopes", 0)], [3])
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "s.toml").write_text(SUITE)
    run = subprocess.run([sys.executable, "-m", "compare", "run", "s.toml", "--run-id", "rep", "--no-progress",
                          "--workers", "2"], cwd=tmp, env=ENV, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    res = subprocess.run([sys.executable, "-m", "compare", "report", "rep"], cwd=tmp, env=ENV,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp / "reports" / "rep"


def test_report_files_and_tables(report):
    html = (report / "index.html").read_text()
    assert html.count("<img") >= 5 and "data:image/png;base64," in html
    for needle in ("Do intervals cover?", "Failures", "deliberate failure on seed", "hbench simulate varying_intercept",
                   "Run manifest", "zip plot", "Engines and their controls", "fail_seeds=[", "shift=0.0",
                   "Simulation-based calibration", "No prior-DGP cell", "No grid cell of this run has both"):
        assert needle in html, needle
    # the report opens with the seed's question (here: no sampler ran, and it says so), then the overview
    assert html.index("<h2>") == html.index(f"<h2>{report_module.HEADLINE_TITLE}</h2>") < html.index("<h2>Overview</h2>")
    for name in ("performance", "fits", "headline_coverage", "headline_runtime", "engine_controls"):
        assert (report / "tables" / f"{name}.csv").exists()
        tex = (report / "tables" / f"{name}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex  # booktabs
    assert (report / "tables" / "headline.csv").exists()
    controls = pd.read_csv(report / "tables" / "engine_controls.csv").set_index("engine")
    assert controls.loc["ols-double", "kind"] == "optimiser" and controls.loc["ols-double", "name"] == "ols-double"
    md = (report / "summary.md").read_text()
    assert "coverage" in md and md.index(report_module.HEADLINE_TITLE) < md.index("engines and their controls")


# ---- a hand-made run with a sampler: headline and SBC -------------------------------------------------------

N = 40  # replications of cell 0 (both engines); SBC needs >= 10 ranks
PARAMS = ["b[x]", "sd[g][x]", "cor[g][Intercept,x]", "r[g][1,x]"]
MANIFEST = {"suite": "hand", "run_seed": 1, "level": 0.95, "reference": None, "status": "finished",
            "engines": [{"name": "lme4", "label": "freq", "settings": {"reml": True, "profile": None},
                         "only": [], "max_reps": None},
                        {"name": "stan", "label": "bayes", "settings": {"chains": 4, "warmup": 1000, "draws": 1000,
                         "adapt_delta": 0.8, "max_treedepth": 10, "priors": []}, "only": ["toy"], "max_reps": N}]}


def _row(cell, rep, engine, parameter, **kw):
    return {"scenario": "toy", "cell": cell, "rep": rep, "run_seed": 1, "engine_seed": rep, "engine": engine,
            "status": "ok", "parameter": parameter, "converged": True, "wall_s": 0.1, **kw}


def handmade_table() -> pd.DataFrame:
    """Cell 0: 'freq' (an optimiser) covers b[x] with [t - 1, t + 1] except every 4th replication (30/40 = 0.75,
    width 2; interval "wald-z" for b, "profile" for sd and cor) and gives b[x] a second interval, "wald-t",
    [t - 2, t + 2] (always covers, width 4), singular on every 5th (8/40), and fails 2 more fits (2/42);
    'bayes' (a sampler, "quantile" intervals) always covers
    b[x] with widths 1.5 and 2.5 in turn (mean 2), has a divergence on every 10th fit (4/40; on those its
    estimates are 0.5 too high), reaches the maximum tree depth on every 8th (5/40), ranks of b[x]
    spread evenly over 0..99 (calibrated) and of sd[g][x] piled at 0 and 99 (a U: too narrow). 'freq' says it
    did not converge exactly on the fits whose intervals miss (every 4th). Cell 1: only 'freq', so it has no
    side-by-side answer."""
    rows = []
    for rep in range(N):
        for p in PARAMS:
            t = 0.5
            lo, hi = (t + 1, t + 3) if rep % 4 == 0 else (t - 1, t + 1)
            how = {"b": "wald-z", "r": "conditional-sd"}.get(p[0], "profile")
            rows.append(_row(0, rep, "freq", p, estimate=t, se=0.5, lower=lo, upper=hi, true=t, interval=how,
                             singular=rep % 5 == 0, converged=rep % 4 != 0))
            if p == "b[x]":
                rows.append({**rows[-1], "interval": "wald-t", "lower": t - 2, "upper": t + 2, "primary": False})
            half = 0.75 if rep % 2 == 0 else 1.25
            rank = rep * 100 // N if p != "sd[g][x]" else (0 if rep % 2 == 0 else 99)
            rows.append(_row(0, rep, "bayes", p, estimate=t + 0.5 * (rep % 10 == 0), se=0.5, lower=t - half,
                             upper=t + half, true=t, interval="quantile", divergences=float(rep % 10 == 0),
                             treedepth_hits=3 * (rep % 8 == 0), rhat_max=1.001, sbc_rank=float(rank), sbc_draws=99.0))
        rows.append(_row(1, rep, "freq", "b[x]", estimate=0.0, se=1.0, lower=-2.0, upper=2.0, true=0.0, singular=False,
                         interval="wald-z"))
    for rep in (N, N + 1):
        rows.append(_row(0, rep, "freq", None, status="failed", error="boom", converged=False))
    table = conform(long_table(rows))
    table["covered"] = (table["lower"] <= table["true"]) & (table["true"] <= table["upper"])
    return table


def test_headline_side_by_side_by_hand():
    result = summarise(handmade_table())
    data = tables.headline(result.intervals, result.fits)
    assert data[["engine", "interval"]].values.tolist() == [  # optimiser first; wald-z, wald-t, then profile
        ["freq", "wald-z"], ["freq", "wald-t"], ["freq", "profile"], ["bayes", "quantile"]]  # r[...]: not here
    data = data.set_index(["engine", "interval"])
    assert set(data["cell"]) == {0}  # cell 1 had no sampler
    freq, t, bayes = ("freq", "wald-z"), ("freq", "wald-t"), ("bayes", "quantile")
    assert data.loc[freq, "kind"] == "optimiser" and data.loc[bayes, "kind"] == "sampler"
    assert data.loc[freq, "coverage b[x]"] == pytest.approx(0.75)
    assert data.loc[freq, "coverage b[x] mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / N))
    assert (data.loc[t, "coverage b[x]"], data.loc[t, "coverage b[x] mcse"]) == (1.0, 0.0)
    assert data.loc[t, "width b[x]"] == 4.0
    assert pd.isna(data.loc[t, "coverage sd[g][x]"])  # no t interval for an SD
    assert data.loc[("freq", "profile"), "coverage sd[g][x]"] == pytest.approx(0.75)
    assert (data.loc[bayes, "coverage b[x]"], data.loc[bayes, "coverage b[x] mcse"]) == (1.0, 0.0)
    assert data.loc[freq, "width b[x]"] == pytest.approx(2.0) and data.loc[freq, "width b[x] mcse"] == 0
    # widths 1.5, 2.5 in turn: squared deviations sum 40 x 0.25 = 10; MCSE sqrt(10 / 39 / 40) = sqrt(1 / 156)
    assert data.loc[bayes, "width b[x]"] == pytest.approx(2.0)
    assert data.loc[bayes, "width b[x] mcse"] == pytest.approx(math.sqrt(1 / 156))
    assert data.loc[bayes, "divergent_fit_rate"] == pytest.approx(0.1) and pd.isna(data.loc[freq, "divergent_fit_rate"])
    assert data.loc[freq, "singular_rate"] == pytest.approx(0.2) and pd.isna(data.loc[bayes, "singular_rate"])
    assert data.loc[t, "singular_rate"] == pytest.approx(0.2)  # an engine's fit rates on each of its rows
    assert data.loc[freq, "failure_rate"] == pytest.approx(2 / 42) and data.loc[bayes, "failure_rate"] == 0
    assert not any(c.startswith("coverage r[") for c in data.columns)  # b, sd and cor only
    cols = [c for c in data.columns if c.startswith("coverage ") and not c.endswith("mcse")]
    assert cols == ["coverage b[x]", "coverage sd[g][x]", "coverage cor[g][Intercept,x]"]  # b, sd, cor order
    text = tables.headline_display(data.reset_index()).set_index("engine")
    assert text.loc["freq · wald-z", "coverage b[x]"] == f"0.750 ({math.sqrt(0.75 * 0.25 / N):.3f})"
    assert text.loc["freq · wald-t", "coverage b[x]"] == "1.000 (0.000)"
    assert text.loc["bayes · quantile", "fits with divergences"] == "0.100 (0.047)"
    assert text.loc["freq · wald-z", "fits with divergences"] == ""
    assert text.loc["freq · wald-z", "failed fits"] == f"{2 / 42:.3f} ({math.sqrt(2 / 42 * 40 / 42 / 42):.3f})"


def test_coverage_table_has_a_row_per_interval_type():
    result = summarise(handmade_table())
    cov = tables.headline_tables(result.intervals, result.fits)["headline_coverage"]
    cell0 = cov[cov["cell"] == 0]
    assert cell0[["engine", "interval"]].values.tolist() == [["bayes", "quantile"], ["freq", "wald-z"],
                                                             ["freq", "wald-t"]]
    assert cell0.set_index("interval").loc["wald-t", "coverage (MCSE)"] == "1.000 (0.000)"


def test_sbc_verdicts_by_hand():
    verdicts = tables.sbc_verdicts(summarise(handmade_table()).sbc).set_index("parameter")
    assert "r[g][1,x]" not in verdicts.index  # group effects stay in the CSV
    assert verdicts.loc["b[x]", "inside 95% band"] == "yes" and verdicts.loc["sd[g][x]", "inside 95% band"] == "no"
    assert verdicts.loc["b[x]", "n"] == N and float(verdicts.loc["sd[g][x]", "chi-square p"]) < 1e-6


def test_engine_controls_from_the_manifest():
    controls = tables.engine_controls(MANIFEST, {"freq": "optimiser", "bayes": "sampler"}).set_index("engine")
    assert controls.loc["bayes", "settings"] == ("chains=4, warmup=1000, draws=1000, adapt_delta=0.8, "
                                                 "max_treedepth=10, priors=(default)")
    assert controls.loc["freq", "settings"] == "reml=True, profile=(default)" and controls.loc["freq", "name"] == "lme4"
    assert controls.loc["bayes", "replications"] == f"first {N}" and controls.loc["bayes", "scenarios"] == "toy"
    old = {"engines": [{"name": "mixedlm", "settings": {}, "only": [], "max_reps": None}]}  # before labels
    assert tables.engine_controls(old).iloc[0][["engine", "settings"]].tolist() == ["mixedlm", "(defaults)"]


@pytest.fixture(scope="module")
def handmade_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hand") / "hand"
    report_module.render("hand", dict(MANIFEST), handmade_table(), out)
    return out


def test_handmade_report_sections(handmade_report):
    html = (handmade_report / "index.html").read_text()
    first, overview = html.index(f"<h2>{report_module.HEADLINE_TITLE}</h2>"), html.index("<h2>Overview</h2>")
    assert html.index("<h2>") == first < overview
    head = html[first:html.index("</section>", first)]
    side = "samplers beside optimisers, every interval type: toy, cell "
    assert side + "0" in head and side + "1" not in head  # cell 1 had no sampler
    assert head.index("<img") < head.index("<table")  # pictures first, tables collapsed beneath
    assert "coverage of each engine&#x27;s primary interval, bias and RMSE, toy, cell 1" in head
    assert "0.750 (" in head and "fits with divergences" in head
    assert "freq · wald-z" in head and "freq · wald-t" in head and "bayes · quantile" in head
    for needle in ("SBC verdicts, toy, cell 0", "SBC ECDF difference with simultaneous 95% band",
                   "SBC rank histograms", "inside 95% band", "priors=(default)", "max_treedepth=10"):
        assert needle in html, needle
    data = pd.read_csv(handmade_report / "tables" / "headline.csv")
    assert sorted(set(data["engine"])) == ["bayes", "freq"] and "width b[x] mcse" in data
    assert {"wald-z", "wald-t"} <= set(data["interval"])
    tex = (handmade_report / "tables" / "headline.tex").read_text()
    assert "\\toprule" in tex and "0.750 (" in tex  # value (MCSE) in one cell
    md = (handmade_report / "summary.md").read_text()
    assert md.index(report_module.HEADLINE_TITLE) < md.index("0.750 (") < md.index("engines and their controls")
    assert "simulation-based calibration" in md and "freq · wald-t" in md


def test_sbc_ecdf_plot_marks_the_miscalibrated_parameter():
    from compare.report.plots import sbc_ecdf

    fig = sbc_ecdf.plot(handmade_table(), "toy", 0)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert any("bayes: sd[g][x] (OUTSIDE" in t for t in titles) and any("bayes: b[x] (inside" in t for t in titles)
    assert not any(": r[g]" in t for t in titles) and any(": cor[g]" in t for t in titles)
    assert sbc_ecdf.plot(handmade_table(), "toy", 1) is None  # no ranks in cell 1


def test_report_bad_run_id_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "compare", "report", "nope", "--results", str(tmp_path)],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_handmade_warnings_and_sensitivity_by_hand():
    result = summarise(handmade_table())
    w = result.warnings.set_index(["cell", "engine", "warning"])
    assert w.loc[(0, "bayes", "tree depth reached"), "share"] == pytest.approx(5 / 40)
    assert w.loc[(0, "bayes", "tree depth reached"), "share_mcse"] == pytest.approx(math.sqrt(0.125 * 0.875 / 40))
    assert w.loc[(0, "bayes", "divergent"), "share"] == pytest.approx(0.1)
    assert w.loc[(0, "freq", "not converged"), "share"] == pytest.approx(10 / 40)
    assert w.loc[(0, "freq", "failed"), "share"] == pytest.approx(2 / 42)
    assert (0, "freq", "divergent") not in w.index and (0, "bayes", "singular") not in w.index
    sens = result.sensitivity.set_index(["cell", "engine", "parameter"])
    freq, bayes = sens.loc[(0, "freq", "b[x]")], sens.loc[(0, "bayes", "b[x]")]
    # freq's non-converged fits are exactly its non-covering ones: 30/40 cover over all fits, 30/30 without them
    assert (freq["n_all"], freq["n_clean"]) == (40, 30)
    assert (freq["coverage_all"], freq["coverage_clean"]) == (0.75, 1.0)
    # bayes is 0.5 too high on its 4 divergent fits: bias 4 x 0.5 / 40 = 0.05 over all, 0 without them
    assert bayes["n_clean"] == 36 and bayes["bias_all"] == pytest.approx(0.05) and bayes["bias_clean"] == 0


def _figures(html: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<figure><img alt="([^"]*)" src="data:image/png;base64,([^"]+)"><figcaption>.*?'
                      r'<a class="csv" href="([^"]+)">numbers \(CSV\)</a>', html)


@pytest.mark.parametrize("which", ["report", "handmade_report"])
def test_every_figure_has_alt_text_and_its_numbers(which, request):
    report = request.getfixturevalue(which)
    html = (report / "index.html").read_text()
    figures = _figures(html)
    assert len(figures) == html.count("<figure>") >= 6
    for alt, _, href in figures:
        assert alt.strip() and (report / href).is_file(), href
        assert len(pd.read_csv(report / href)) > 0, href
    assert len({data for _, data, _ in figures}) == len(figures)  # nothing embedded twice
    tables_html = re.findall(r"<table.*?</table>", html, re.DOTALL)
    assert tables_html and all("<td" in t for t in tables_html)  # no empty tables
    assert all(t.count("<tr") <= MAX_INLINE_ROWS + 1 for t in tables_html)  # long tables: links only


def test_front_figure_numbers_by_hand(handmade_report):
    """The front figure's CSV holds what it draws: freq's primary (wald-z) coverage of b[x] 30/40, bayes's bias."""
    d = pd.read_csv(handmade_report / "tables" / "figures" / "front-toy-0.csv").set_index(
        ["engine", "parameter", "measure"])
    assert d.loc[("freq", "b[x]", "coverage"), "value"] == 0.75 and d.loc[("freq", "b[x]", "coverage"),
                                                                            "interval"] == "wald-z"
    assert d.loc[("bayes", "b[x]", "bias"), "value"] == pytest.approx(0.05)
    assert not d.index.get_level_values("parameter").str.startswith("r[").any()
    html = (handmade_report / "index.html").read_text()
    for needle in ("warnings tally per engine and cell", "Robust summaries", "median width",
                   "key parameter over all fits beside those without divergent"):
        assert needle in html, needle


def test_grid_figures_and_between_engines(report):
    """varying_intercept ran on 2 cells: nested-loop plots of coverage and bias and rejection curves; two
    engines on the same datasets: scatter and Bland-Altman against the reference (here the first engine)."""
    html = (report / "index.html").read_text()
    for needle in ("nested-loop plot of coverage of b[x] across the grid cells of varying_intercept",
                   "nested-loop plot of bias of b[x]", "rejection rate of the fixed effects along each grid factor",
                   "estimate against failing-double&#x27;s estimate", "Bland-Altman against failing-double"):
        assert needle in html, needle
    nest = pd.read_csv(report / "tables" / "figures" / "nestloop-coverage-varying-intercept.csv")
    assert sorted(set(nest["cell"])) == [0, 1] and {"position", "size"} <= set(nest.columns)
    assert (nest["measure"] == "coverage").all() and set(nest["engine"]) == {"ols-double", "failing-double"}


def test_nested_order_loops_over_the_first_factor_slowest():
    from compare.report import grid

    g = grid.cell_grid("maas_hox", list(range(27)))
    assert grid.factors(g) == ["g", "size", "sd.g"]
    order = g.loc[grid.nested_order(g)]
    assert order["g#"].is_monotonic_increasing
    assert all(part["size#"].is_monotonic_increasing for _, part in order.groupby("g#"))
    assert list(order["g"].iloc[[0, 9, 18]]) == ["30", "50", "100"]


@pytest.mark.parametrize("kind,out,magic", [("forest", "f.pdf", b"%PDF"), ("zip", "z.svg", b"<?xml"),
                                            ("nestloop", "n.png", b"\x89PNG"), ("scatter", "s.svg", b"<?xml"),
                                            ("bland-altman", "b.svg", b"<?xml"), ("heat", "h.svg", b"<?xml")])
def test_plot_command_writes_one_figure(report, kind, out, magic):
    tmp = report.parent.parent
    res = subprocess.run([sys.executable, "-m", "compare", "plot", "rep", kind, "--scenario", "varying_intercept",
                          "--out", out], cwd=tmp, env=ENV, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp / out).read_bytes().startswith(magic) and res.stdout.strip() == out


@pytest.mark.parametrize("args,needle", [
    (["pie"], "plot kind 'pie'"), (["forest", "--scenario", "nope"], "--scenario nope: not in this run"),
    (["forest", "--out", "bad/f.jpg"], "must end in .pdf, .svg or .png"),
    (["nestloop", "--scenario", "seed_slopes"], "needs a grid"), (["zip", "--parameter", "b[nope]"], "b[nope]"),
    (["forest", "--cell", "7"], "--cell 7"), (["forest", "--measure", "speed"], "--measure speed")])
def test_plot_bad_input_exit_2(report, args, needle):
    tmp = report.parent.parent
    (tmp / "bad").mkdir(exist_ok=True)
    out = [] if "--out" in args else ["--out", "bad/x.svg"]
    res = subprocess.run([sys.executable, "-m", "compare", "plot", "rep", *args, *out], cwd=tmp, env=ENV,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    assert list((tmp / "bad").iterdir()) == []


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")
@pytest.mark.parametrize("which", ["report", "handmade_report"])
def test_report_loads_in_a_real_browser(which, request):
    report = request.getfixturevalue(which)
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    errors = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((report / "index.html").as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        first = page.evaluate("() => { const r = document.querySelector('figure img').getBoundingClientRect();"
                              " return [r.top, r.height, window.innerHeight]; }")
        page.screenshot(path=str(report / "screenshot.png"), full_page=False)
        figures = page.eval_on_selector_all("figure", "els => els.map(f => [f.querySelector('img').alt, "
                                            "(f.querySelector('a.csv') || {}).href || ''])")
        landed = []
        for href in page.eval_on_selector_all("nav a", "els => els.map(a => a.getAttribute('href'))"):
            page.click(f"nav a[href='{href}']")
            landed.append((href, page.evaluate(LANDED, href[1:])))
        browser.close()
    assert len(images) >= 5
    assert all(done and width > 0 for done, width in images), images
    assert errors == []
    top, height, screen = first
    assert 0 <= top and top + height / 2 < screen  # the first screen shows (most of) a figure
    assert figures and all(alt.strip() and href.endswith(".csv") and Path(urlparse(href).path).is_file()
                           for alt, href in figures), figures
    assert len(landed) >= 8
    for href, (heading_top, nav_bottom, at_end, screen_h) in landed:
        # the section's heading just below the sticky navigation bar, or the page scrolled to its end with the
        # heading on screen (a short last section cannot reach the top)
        assert nav_bottom - 1 <= heading_top <= nav_bottom + 80 or (at_end and 0 <= heading_top < screen_h), href
    assert (report / "screenshot.png").stat().st_size > 10_000


LANDED = """id => { const h = document.getElementById(id).querySelector('h2').getBoundingClientRect();
  const nav = document.querySelector('nav').getBoundingClientRect();
  const end = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
  return [h.top, nav.bottom, end, window.innerHeight]; }"""
