"""The shards' record format, written in Python without TensorFlow (worker processes import
this module alone; :func:`s2s.data.shards.decode_record` reads records back in graph code).

A record is one pair: ``[len(src), *src, *tgt]`` as little-endian ``int32``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from s2s.text.tokenizer import Tokenizer


def encode_record(src: list[int], tgt: list[int]) -> bytes:
    """One pair as a record: ``[len(src), *src, *tgt]`` in little-endian ``int32``."""
    return np.asarray([len(src), *src, *tgt], dtype="<i4").tobytes()


def encode_chunk(chunk: pd.DataFrame, src_tok, tgt_tok) -> tuple[list[bytes], list[int], list[int]]:
    """One chunk of pairs as records (:func:`encode_record`), with each pair's bucketing
    length (its longer side, the target counted with ``</s>``) and source length."""
    records, lengths, src_lengths = [], [], []
    for src, tgt in zip(src_tok.encode(chunk["src"]), tgt_tok.encode(chunk["tgt"]), strict=True):
        records.append(encode_record(src, tgt))
        lengths.append(max(len(src), len(tgt) + 1))
        src_lengths.append(len(src))
    return records, lengths, src_lengths


@functools.cache
def _tokenizers(src_model: Path, tgt_model: Path) -> tuple[Tokenizer, Tokenizer]:
    return Tokenizer(src_model), Tokenizer(tgt_model)


def encode_in_worker(chunk: pd.DataFrame, src_model: Path, tgt_model: Path):
    """:func:`encode_chunk` in a worker process, which loads the two models once."""
    return encode_chunk(chunk, *_tokenizers(src_model, tgt_model))
