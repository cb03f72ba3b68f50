"""``prepare --stats``: length percentiles, pairs lost per maximum length, vocabulary coverage."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from s2s.analysis.corpus_stats import (
    corpus_stats,
    length_percentiles,
    piece_coverage,
    share_lost,
)
from s2s.config import load_config
from s2s.config.run_folder import RunPaths
from s2s.data.prepared import iter_train
from s2s.data.stage import prepare
from s2s.text.tokenizer import Tokenizer, train_sentencepiece
from tests.helpers import ROOT, TINY


def test_share_lost_counts_a_pair_once_when_either_side_is_too_long():
    src, tgt = np.array([1, 5, 9, 3]), np.array([2, 2, 1, 8])
    frame = share_lost(src, tgt, (4, 8, 10))
    assert frame["pairs lost"].tolist() == [0.75, 0.25, 0.0]


def test_percentiles_are_exact_on_known_lengths():
    table = length_percentiles({"src chars": np.arange(1, 101)})
    assert table.loc["src chars", "p50"] == 50 and table.loc["src chars", "p100"] == 100


def test_coverage_counts_unknown_pieces(tmp_path):
    model = train_sentencepiece(
        ["我们走吧。", "你好。"] * 30, tmp_path / "zh", vocab_size=20, lang="zh"
    )
    coverage = piece_coverage(Tokenizer(model), ["我们走吧。", "猫"])
    assert coverage["sentences with an unknown piece"] == 0.5
    assert 0 < coverage["unknown pieces"] < 1


def test_corpus_stats_on_a_real_slice(corpus_file, tmp_path):
    config = load_config("zh-en", overrides=TINY)
    paths = RunPaths(tmp_path)
    data = prepare(config, paths, corpus_file, log=lambda *_: None)
    stats = corpus_stats(data, paths.data, config)
    held_out = [
        {"src": source, "tgt": ref}
        for eval_set in data.sets.values()
        for source, refs in zip(eval_set.sources, eval_set.references, strict=True)
        for ref in refs
    ]
    everything = pd.concat([*iter_train(paths.data), pd.DataFrame(held_out)])
    assert stats["pairs"] == len(everything)
    percentiles = stats["percentiles"]
    assert percentiles.loc["src chars", "p100"] == everything["src"].str.len().max()
    assert (percentiles.diff(axis=1).iloc[:, 1:] >= 0).all().all()  # percentiles only grow
    lost = stats["lost_by_chars"].set_index("max length")["pairs lost"]
    too_long = (everything["src"].str.len() > 25) | (everything["tgt"].str.len() > 25)
    assert lost[25] == too_long.mean() and lost[150] == 0.0
    assert (stats["coverage"].loc["unknown pieces"] < 0.05).all()


def test_prepare_stats_prints_the_tables_and_saves_the_histogram(corpus_file, tmp_path):
    """From the run's own SentencePiece models: nothing is left in the temporary folder (the
    statistics used to train models of their own in a mkdtemp folder and leave it there)."""
    png = tmp_path / "lengths.png"
    settings = [arg for o in TINY for arg in ("--set", o)]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "s2s", "prepare", "--lang", "zh-en", "--run", str(tmp_path)),
            *("--corpus", str(corpus_file), "--stats", "--plot", str(png), *settings),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 0, done.stderr
    assert not [p for p in scratch.iterdir() if p.name.startswith("s2s-")]
    for title in ("percentiles", "maximum length in characters", "in pieces", "coverage"):
        assert title in done.stdout
    assert Image.open(png).size[0] > 500
