"""The cell x attention grid: one run per (cell, attention), same data, same time budget.

``s2s grid --lang zh-en`` (``make grid``) trains every combination of
``grid.cells`` and ``grid.attention`` for ``grid.minutes`` of wall clock each, on one
shared data split and one pair of SentencePiece models, and writes ``grid.md`` and
``grid.csv`` to the output folder. Each combination is an ordinary run folder, so an
interrupted comparison resumes where it stopped and finished runs are only re-evaluated.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd

from s2s.analysis.experiment_log import summarize
from s2s.models.loading import load_trained
from s2s.training.runner import train

COLUMNS = {
    "cell": "cell",
    "attention": "attention",
    "parameters": "parameters",
    "train_min": "train min",
    "epochs": "epochs",
    "tok_s": "tgt tok/s",
    "dev_bleu": "dev BLEU",
    "test_bleu": "test BLEU",
    "test_chrf": "test chrF",
}


def grid_config(config: dict, cell: str, attention: str) -> dict:
    """``config`` with one grid point's cell and attention and the grid's time budget."""
    config = copy.deepcopy(config)
    config["model"].update(cell=cell, attention=attention)
    config["train"]["max_minutes"] = config["grid"]["minutes"]
    return config


def share_prepared(first: Path, run: Path) -> None:
    """Give ``run`` the data, SentencePiece models and shards of ``first`` (same data for every
    cell, tokenised once)."""
    for name in ("data", "spm", "shards"):
        if (first / name).exists() and not (run / name).exists():
            shutil.copytree(first / name, run / name)


def parameter_count(run: Path) -> int:
    return load_trained(run)[1].count_params()


def run_grid(config: dict, out: Path, corpus: Path | None = None, log=print) -> pd.DataFrame:
    """Train (or resume) every grid point under ``out`` and return the comparison table."""
    grid = [(c, a) for c in config["grid"]["cells"] for a in config["grid"]["attention"]]
    out.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    for i, (cell, attention) in enumerate(grid, 1):
        run = out / f"{cell}-{attention}"
        log(f"[{i}/{len(grid)}] {cell} + {attention} -> {run}")
        if first is not None:
            share_prepared(first, run)
        train(grid_config(config, cell, attention), run, corpus, log=log)
        first = first or run
        row = summarize(run)
        rows.append(
            {"cell": cell, "attention": attention, "parameters": parameter_count(run), **row}
        )
        write_table(pd.DataFrame(rows), out)  # after each run, so a partial grid is readable
    return table(pd.DataFrame(rows))


def table(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[list(COLUMNS)].rename(columns=COLUMNS)


def write_table(frame: pd.DataFrame, out: Path) -> None:
    shown = table(frame)
    shown.to_csv(out / "grid.csv", index=False)
    (out / "grid.md").write_text(
        shown.to_markdown(index=False, intfmt=",") + "\n", encoding="utf-8"
    )
