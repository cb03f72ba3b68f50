"""What many tests share: the repository root, a tiny config, tiny random models and batches."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def corpus_dir() -> Path:
    return Path(os.environ.get("S2S_CORPUS_DIR", ROOT.parent / "shared" / "corpora"))


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
    from s2s.models.seq2seq import Seq2Seq

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


def read_frame(path, columns: dict, src_lang: str, tgt_lang: str, limit: int | None = None):
    """A TSV corpus read whole into one frame of ``line, src, tgt`` and its cleaning report
    (tests only: the data stage streams a corpus a chunk at a time)."""
    import pandas as pd

    from s2s.data.cleaning import CleaningReport
    from s2s.data.readers import iter_tsv

    report = CleaningReport(path=str(path))
    frames = list(iter_tsv(path, columns, src_lang, tgt_lang, report, limit))
    empty = pd.DataFrame(columns=["line", "src", "tgt"])
    return (pd.concat(frames, ignore_index=True) if frames else empty), report


def clean_corpus(config: dict, path=None, chunk_lines: int = 100_000, workers: int = 1):
    """The configured corpus read and cleaned as the data stage does it, chunk by chunk, the
    kept pairs gathered into one frame: ``(frame, report)`` (tests only)."""
    import pandas as pd

    from s2s.data.cleaning import Cleaner, clean_chunks
    from s2s.data.readers import open_corpus

    data = config["data"]
    chunks, report = open_corpus(config, path, chunk_lines)
    cleaner = Cleaner(
        report, data["src_lang"], data["tgt_lang"], data["max_chars"], data["chinese_script"]
    )
    frames = list(clean_chunks(chunks, cleaner, workers))
    empty = pd.DataFrame(columns=["line", "src", "tgt"])
    return (pd.concat(frames, ignore_index=True) if frames else empty), report
