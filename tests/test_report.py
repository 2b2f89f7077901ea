"""The report: built from a stored run (test-double engines), tables for papers, and a real browser
load (headless Chromium via Playwright) that checks every image renders and nothing logs an error.
Skipped with a clear reason only when no Chromium is installed (the Makefile's set-up installs Debian's)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
settings = { fail_reps = [3] }
"""
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
    for needle in ("Do intervals cover?", "Failures", "deliberate failure on rep 3", "hbench simulate varying_intercept",
                   "Run manifest", "zip plot"):
        assert needle in html, needle
    for name in ("performance", "fits", "headline_coverage", "headline_runtime"):
        assert (report / "tables" / f"{name}.csv").exists()
        tex = (report / "tables" / f"{name}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex  # booktabs
    assert "coverage" in (report / "summary.md").read_text()


def test_report_bad_run_id_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "compare", "report", "nope", "--results", str(tmp_path)],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")
def test_report_loads_in_a_real_browser(report):
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
        page.screenshot(path=str(report / "screenshot.png"), full_page=False)
        browser.close()
    assert len(images) >= 5
    assert all(done and width > 0 for done, width in images), images
    assert errors == []
    assert (report / "screenshot.png").stat().st_size > 10_000
