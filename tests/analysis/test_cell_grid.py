"""The cell x attention grid: shared data, one run per grid point, a readable table."""

from __future__ import annotations

import pandas as pd

from s2s.analysis.cell_grid import run_grid
from s2s.config import load_config
from tests.helpers import TINY


def test_the_grid_trains_each_point_on_shared_data(tmp_path, corpus_file):
    config = load_config(
        "zh-en",
        overrides=[
            *TINY,
            "train.epochs=1",
            "grid.cells=[gru, mgu]",
            "grid.attention=[dot]",
            "grid.minutes=5",
        ],
    )
    frame = run_grid(config, tmp_path, corpus_file, log=lambda *_: None)

    assert list(frame["cell"]) == ["gru", "mgu"] and set(frame["attention"]) == {"dot"}
    assert frame["parameters"].iloc[0] > frame["parameters"].iloc[1] > 0  # MGU: 2 blocks, GRU: 3
    assert frame["test BLEU"].notna().all() and (frame["epochs"] == 1).all()
    first, second = tmp_path / "gru-dot", tmp_path / "mgu-dot"
    for name in ("data/train.tsv", "spm/src.model", "spm/tgt.model"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    saved = pd.read_csv(tmp_path / "grid.csv")
    assert list(saved.columns) == list(frame.columns) and len(saved) == 2
    assert "| gru " in (tmp_path / "grid.md").read_text(encoding="utf-8")
