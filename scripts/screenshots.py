"""Screenshots of a report for the README: its first screen, its first nested-loop plot, its warnings tally.

Run after `make bench`:  .venv/bin/python scripts/screenshots.py reports/<run> docs
Needs Playwright and Chromium (installed by `make setup`); the images are 1400 px wide, as a laptop shows them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

VIEWPORT = {"width": 1400, "height": 1000}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync", "--disable-background-networking"]


def chromium() -> str:
    """The system Chromium set-up installs (Playwright's own download needs the internet)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise SystemExit("screenshots: no chromium on PATH (make setup installs it)")


def shoot(report: Path, out: Path) -> list[Path]:
    """Write report-first-screen.png, report-nested-loop.png and report-warnings.png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    shots = [out / "report-first-screen.png", out / "report-nested-loop.png", out / "report-warnings.png"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto((report / "index.html").as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(shots[0]))
        page.add_style_tag(content="nav { position: static !important; }")  # the sticky bar would cover the shots
        nested = page.locator("figure:has(img[alt^='nested-loop plot'])").first
        if nested.count() == 0:
            raise SystemExit(f"screenshots: {report} has no nested-loop plot (the run has no grid)")
        nested.screenshot(path=str(shots[1]))
        warnings = page.locator("section:has(h2:text-is('Warnings'))").first
        warnings.scroll_into_view_if_needed()
        warnings.screenshot(path=str(shots[2]))
        browser.close()
    return shots


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: screenshots.py REPORT_DIR OUT_DIR")
    for shot in shoot(Path(sys.argv[1]).resolve(), Path(sys.argv[2])):
        print(shot, shot.stat().st_size)
