"""Figures people would rather look at than read: learning curves and attention heatmaps.

Used by the notebooks and by ``python -m s2s plot``. Chinese text is drawn with Noto Sans CJK SC,
which the ``mplfonts`` package installs with the project (matplotlib's default font has no Chinese
glyphs and would draw empty boxes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import font_manager

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"


def cjk_font_path() -> Path:
    """The CJK font file shipped by ``mplfonts`` (located without importing the package)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the mplfonts package is missing: pip install -r requirements.txt")
    path = Path(spec.submodule_search_locations[0]) / "fonts" / CJK_FONT_FILE
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the mplfonts package")
    return path


def cjk_font() -> font_manager.FontProperties:
    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path))


def learning_curves(log_csv: str | Path) -> plt.Figure:
    """Loss, dev BLEU/chrF, learning rate and gradient norm per interval from
    ``logs/train.csv``, against epochs (passes over the training data, fractional)."""
    log = pd.read_csv(log_csv)
    x = log["epoch"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    panels = [
        (
            axes[0, 0],
            [("loss", "train loss"), ("nll", "train NLL"), ("val_nll", "dev NLL")],
            "nats",
        ),
        (axes[0, 1], [("val_bleu", "dev BLEU"), ("val_chrf", "dev chrF")], "score"),
        (axes[1, 0], [("lr", "learning rate")], "rate"),
        (axes[1, 1], [("grad_norm", "gradient norm (mean)")], "global norm"),
    ]
    for ax, series, ylabel in panels:
        for column, label in series:
            if column in log:
                ax.plot(x, log[column], marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    return fig


def attention_heatmap(
    source: list[str], output: list[str], weights: np.ndarray, title: str = ""
) -> plt.Figure:
    """Attention weights ``[len(output), len(source)]`` with the pieces on the axes."""
    font = cjk_font()
    height = 1.0 + 0.35 * len(output)
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * len(source), height), constrained_layout=True)
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, fontproperties=font, rotation=60, ha="right")
    ax.set_yticks(range(len(output)), output, fontproperties=font)
    ax.set_xlabel("source pieces")
    ax.set_ylabel("output pieces")
    if title:
        ax.set_title(title, fontproperties=font)
    fig.colorbar(image, ax=ax, fraction=0.05)
    return fig


def save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
