"""Shared look: one colour per engine, stable across plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"]


KNOWN = {
    "lme4": "#d95f02",
    "mixedlm": "#7570b3",
    "mixedlm-ml": "#a6761d",
    "mixedlm-robust": "#e7298a",
    "bayesmixedglm-map": "#66a61e",
    "bayesmixedglm-vb": "#e6ab02",
    "pymc": "#1f78b4",
    "stan": "#1b9e77",
}


def engine_colours(engines) -> dict[str, str]:
    """The same colour for an engine in every plot of every report, whichever engines a plot shows."""
    import zlib

    return {e: KNOWN.get(e, PALETTE[zlib.crc32(e.encode()) % len(PALETTE)]) for e in engines}


def figure(n_panels: int, width: float = 4.2, height: float = 3.2, ncols: int = 3):
    ncols = max(1, min(ncols, n_panels))
    nrows = (n_panels + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def png_bytes(fig, dpi: int = 80) -> bytes:
    """The figure as a small PNG: rendered at `dpi`, then reduced to a 64-colour palette (plots use a handful
    of colours; anti-aliased edges lose nothing a reader sees), about a third of the full-colour size."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def engine_legend(fig, colours: dict[str, str], engines) -> None:
    """One legend for the whole figure, under it: the engines in the figure's order."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[e], marker="o", ls="-", lw=1.2, ms=4) for e in engines]
    fig.legend(handles, list(engines), loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
