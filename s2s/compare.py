"""The recurrent-family comparison: one run per (cell, attention), same data, same time budget.

``python -m s2s compare --lang zh-en`` (``make compare``) trains every combination of
``compare.cells`` and ``compare.attention`` for ``compare.minutes`` of wall clock each, on one
shared data split and one pair of SentencePiece models, and writes ``compare.md`` and
``compare.csv`` to the output folder. Each combination is an ordinary run folder, so an
interrupted comparison resumes where it stopped and finished runs are only re-evaluated.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd

from s2s.experiments import summarize

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
    """``config`` with one grid point's cell and attention and the comparison's time budget."""
    config = copy.deepcopy(config)
    config["model"].update(cell=cell, attention=attention)
    config["train"]["max_minutes"] = config["compare"]["minutes"]
    return config


def share_prepared(first: Path, run: Path) -> None:
    """Give ``run`` the data, SentencePiece models and shards of ``first`` (same data for every
    cell, tokenised once)."""
    for name in ("data", "spm", "shards"):
        if (first / name).exists() and not (run / name).exists():
            shutil.copytree(first / name, run / name)


def parameter_count(run: Path) -> int:
    from s2s.runs import load_trained

    return load_trained(run)[1].count_params()


def compare(config: dict, out: Path, corpus: Path | None = None, log=print) -> pd.DataFrame:
    """Train (or resume) every grid point under ``out`` and return the comparison table."""
    from s2s.train import train

    grid = [(c, a) for c in config["compare"]["cells"] for a in config["compare"]["attention"]]
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
    shown.to_csv(out / "compare.csv", index=False)
    (out / "compare.md").write_text(
        shown.to_markdown(index=False, intfmt=",") + "\n", encoding="utf-8"
    )
