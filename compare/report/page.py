"""The HTML page: sections of figures, text and collapsed tables, each figure a palette PNG embedded once,
with alt text and a link to the CSV of the numbers it draws; long tables sit in closed <details> with links to
their CSV and LaTeX files (tables/). Nothing here computes a measure."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from compare.report.plots._style import png_bytes

FIGURE_DIR = "figures"  # under tables/: the numbers behind each figure
MAX_INLINE_ROWS = 60  # a longer table saved under tables/ is linked, not written into the page


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "figure"


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)
    numbers: dict[str, pd.DataFrame] = field(default_factory=dict)  # figure CSV name -> its numbers
    anchor: str = ""
    nav: str = ""  # the navigation bar's label, when shorter than the title

    def figure(self, fig, caption: str, numbers: pd.DataFrame | str | None, name: str | None = None) -> bool:
        """Embed `fig` (if any) with `caption` as alt text and caption, linked to its numbers: a frame (written to
        tables/figures/<name>.csv) or the relative path of a table already written. True when embedded."""
        if fig is None:
            return False
        if isinstance(numbers, pd.DataFrame):
            name = slug(name or caption)
            while name in self.numbers:
                name += "-x"
            self.numbers[name] = numbers
            href = f"tables/{FIGURE_DIR}/{name}.csv"
        else:
            href = numbers or "tables/"
        data = base64.b64encode(png_bytes(fig)).decode()
        cap = html.escape(caption)
        self.blocks.append(
            f'<figure><img alt="{cap}" src="data:image/png;base64,{data}">'
            f'<figcaption>{cap} <a class="csv" href="{html.escape(href)}">numbers (CSV)</a>'
            f"</figcaption></figure>"
        )
        return True

    def table(
        self, df: pd.DataFrame | None, caption: str, csv: str | None = None, nowrap: bool = False, open_: bool = False
    ) -> None:
        """A table, collapsed under its caption unless `open_`; `csv`: the tables/ name it is also saved under
        (CSV and LaTeX). Nothing for an empty table; only the links for one of more than MAX_INLINE_ROWS rows."""
        if df is None or df.empty:
            return
        links = f' · <a href="tables/{csv}.csv">CSV</a> <a href="tables/{csv}.tex">LaTeX</a>' if csv else ""
        if csv and len(df) > MAX_INLINE_ROWS:
            self.blocks.append(f'<p class="long">{html.escape(caption)} ({len(df)} rows){links}</p>')
            return
        classes = "tbl nowrap" if nowrap else "tbl"
        body = df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3g}", classes=classes, border=0)
        self.blocks.append(
            f"<details{' open' if open_ else ''}><summary>{html.escape(caption)} "
            f'({len(df)} rows){links}</summary><div class="wide">{body}</div></details>'
        )

    def text(self, body: str) -> None:
        self.blocks.append(f"<p>{html.escape(body)}</p>")

    def heading(self, body: str) -> None:
        self.blocks.append(f"<h3>{html.escape(body)}</h3>")

    def raw(self, markup: str) -> None:
        self.blocks.append(markup)


def write_numbers(sections: list[Section], tables_dir: Path) -> None:
    folder = tables_dir / FIGURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for sec in sections:
        for name, df in sec.numbers.items():
            df.to_csv(folder / f"{name}.csv", index=False)


CSS = """body{font-family:system-ui,sans-serif;max-width:1400px;margin:auto;padding:0 1em 1em;color:#222}
h1{font-size:1.3em;margin:.4em 0} h2{border-bottom:2px solid #ddd;margin-top:1.5em;font-size:1.2em}
h3{font-size:1em;margin:1em 0 .3em} figure{margin:.6em 0} img{max-width:100%;height:auto}
figcaption{font-size:.8em;color:#555} a.csv{margin-left:.5em}
table.tbl{border-collapse:collapse;font-size:.8em;margin:.5em 0}
table.tbl td,table.tbl th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
table.nowrap td{white-space:nowrap} details{margin:.4em 0} summary{cursor:pointer;font-size:.9em}
pre{background:#f6f6f6;padding:1em;font-size:.75em;overflow:auto}
nav{position:sticky;top:0;background:#fff;padding:.3em 0;border-bottom:1px solid #ddd;font-size:.85em;z-index:1;
white-space:nowrap;overflow-x:auto}
nav a{margin-right:.8em} p.long{font-size:.9em} section{scroll-margin-top:3.5em} div.wide{overflow-x:auto}
p{max-width:70em}"""


def render_page(run_id: str, sections: list[Section]) -> str:
    for i, s in enumerate(sections):
        s.anchor = s.anchor or f"s{i}-{slug(s.title)[:30]}"
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.nav or s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.blocks)}</section>' for s in sections
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hbench report {html.escape(run_id)}"
        f"</title><style>{CSS}</style></head><body><nav>{nav}</nav><h1>hbench report: {html.escape(run_id)}</h1>"
        f"{body}</body></html>\n"
    )
