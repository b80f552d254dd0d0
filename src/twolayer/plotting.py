"""One plotting style for every figure of the book."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: background of every figure, shown inline or saved: opaque, so that black lines and labels
#: stay visible on a dark page
BACKGROUND = "white"
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.6,
    "figure.facecolor": BACKGROUND,
    "axes.facecolor": BACKGROUND,
    "savefig.facecolor": BACKGROUND,
    "savefig.transparent": False,
}
#: line style of theoretical curves and bounds drawn next to measurements
THEORY = {"color": "black", "linestyle": "--", "linewidth": 1.2}


def use_style() -> None:
    """Apply the book's matplotlib style (call once per notebook)."""
    mpl.rcParams.update(STYLE)


def ordered_colors(count: int, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """``count`` colors along a sequential colormap, for ordered values such as widths."""
    positions = np.linspace(0.05, 0.85, count) if count > 1 else [0.4]
    colormap = mpl.colormaps[cmap]
    return [colormap(p) for p in positions]


def panels(count: int, width: float = 3.4, height: float = 2.8, **kwargs):
    """A row of ``count`` axes labelled (a), (b), ... as in the papers' figures."""
    kwargs.setdefault("layout", "constrained")
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), **kwargs)
    axes = np.atleast_1d(axes)
    return fig, axes


def width_ticks(ax: plt.Axes, widths: Sequence[int]) -> None:
    """Label a logarithmic width axis with the widths themselves and no minor labels."""
    ax.set_xticks(list(widths), [str(m) for m in widths])
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())


def caption_labels(axes: Sequence[plt.Axes], captions: Sequence[str]) -> None:
    """Titles '(a) caption', '(b) caption', ... on a row of axes."""
    for i, (ax, text) in enumerate(zip(axes, captions, strict=True)):
        ax.set_title(f"({chr(ord('a') + i)}) {text}")


def save(fig: plt.Figure, directory: str | Path, name: str) -> Path:
    """Save ``fig`` as ``<directory>/figures/<name>.png`` and return the path.

    The PNG gets an opaque white background whatever the style in force, so that it reads
    the same on a light and on a dark page.
    """
    path = Path(directory) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor=BACKGROUND, transparent=False)
    return path
