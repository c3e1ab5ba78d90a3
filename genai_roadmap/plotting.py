"""The course's plot style: small figures, titles and labelled axes, readable in a notebook."""
from __future__ import annotations

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
}


def use_style() -> None:
    """Apply the course's matplotlib style (call once in the imports cell)."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)


def heatmap(ax, matrix, xlabels=None, ylabels=None, title: str = "", cmap: str = "viridis"):
    """Draw a labelled heatmap of a 2-D array on `ax`, with a colour bar."""
    import numpy as np

    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D matrix, got shape {m.shape}")
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), xlabels, rotation=90, fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    ax.grid(False)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im
