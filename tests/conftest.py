"""Shared fixtures: the real corpus slice, a tiny config, tiny random and trained models."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from s2s.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    return Path(os.environ.get("S2S_CORPUS_DIR", ROOT.parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def corpus_file() -> Path:
    path = corpus_dir() / "tatoeba-cmn-eng" / "cmn.txt"
    if not path.exists():
        pytest.fail(f"the test corpus is missing: {path} (set S2S_CORPUS_DIR)")
    return path


TINY = [  # pins what the tests rely on, whatever the pair's recipe chooses
    "data.limit=2500",
    "data.dev_sources=100",
    "data.test_sources=100",
    "tokenizer.src.vocab_size=1500",
    "tokenizer.tgt.vocab_size=700",
    "model.embedding_dim=32",
    "model.encoder_units=32",
    "model.attention_dim=32",
    "model.cell=lstm",
    "model.dropout=0.0",
    "train.epochs=2",
    "train.batch_tokens=1024",
    "train.bucket_boundaries=[8, 16, 32]",
    "train.learning_rate=0.01",
    "search.beam_size=3",
    "search.tune_alpha=[]",
    "search.tune_beam=[]",
]


@pytest.fixture
def tiny_config() -> dict:
    return load_config("zh-en", overrides=TINY)


def random_model(
    cell: str = "lstm",
    attention: str = "general",
    src_vocab: int = 50,
    tgt_vocab: int = 40,
    layers: int = 1,
    sharpen: float = 8.0,
    seed: int = 0,
    input_feeding: bool = False,
    bridge: str = "final",
    tie_embeddings: bool = False,
):
    """An untrained model whose output layer is scaled up, so that search has no near-ties."""
    from s2s.model import Seq2Seq

    keras.utils.set_random_seed(seed)
    model = Seq2Seq(
        src_vocab_size=src_vocab,
        tgt_vocab_size=tgt_vocab,
        embedding_dim=16,
        encoder_units=16,
        encoder_layers=layers,
        decoder_layers=layers,
        cell=cell,
        attention=attention,
        attention_dim=16,
        input_feeding=input_feeding,
        bridge=bridge,
        tie_embeddings=tie_embeddings,
    )
    model.build_from_config({})
    kernel = (model.decoder.embedding if tie_embeddings else model.decoder.output_proj).weights[0]
    kernel.assign(kernel.numpy() * sharpen)
    return model


def random_batch(
    rng: np.random.Generator, rows: int, max_len: int, vocab: int, min_len: int = 1
) -> np.ndarray:
    """Right-padded random id rows of mixed lengths (ids 4.. are real pieces)."""
    out = np.zeros((rows, max_len), dtype=np.int32)
    for r in range(rows):
        n = rng.integers(min_len, max_len + 1)
        out[r, :n] = rng.integers(4, vocab, size=n)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, corpus_file) -> Path:
    """A tiny model trained for two short epochs on 2,500 real pairs, through the real stages."""
    from s2s.train import train

    run = tmp_path_factory.mktemp("run") / "zh-en"
    train(load_config("zh-en", overrides=TINY), run, corpus_file, log=lambda *_: None)
    return run
