"""Translate text with a trained run: tokenise, batch by length, search, detokenise, restore order.

Defined answers for awkward input: an empty (or all-space) line translates to an empty line
without running the model; a line longer than the model's maximum source length is truncated,
with a warning on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from s2s.data import normalize
from s2s.pipeline import pad_batch
from s2s.search import beam_search, greedy_search
from s2s.tokenizer import Tokenizer


@dataclass
class Hypothesis:
    text: str
    score: float


class Translator:
    """Batched translation with greedy (``beam_size=1``) or beam search, traced once.

    The search functions take an input signature with unknown batch and length, so new batch
    shapes do not retrace them.
    """

    def __init__(
        self,
        model,
        src_tokenizer: Tokenizer,
        tgt_tokenizer: Tokenizer,
        src_lang: str,
        beam_size: int = 5,
        alpha: float = 0.6,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        batch_size: int = 64,
        max_src_len: int = 200,
    ):
        self.model, self.src_tok, self.tgt_tok = model, src_tokenizer, tgt_tokenizer
        self.src_lang = src_lang
        self.beam_size, self.alpha = beam_size, alpha
        self.max_len_a, self.max_len_b = max_len_a, max_len_b
        self.batch_size, self.max_src_len = batch_size, max_src_len
        spec = [tf.TensorSpec([None, None], tf.int32)]
        self._greedy = tf.function(self._greedy_fn, input_signature=spec)
        self._beam = tf.function(self._beam_fn, input_signature=spec)

    @classmethod
    def from_config(cls, model, src_tokenizer, tgt_tokenizer, config: dict, **overrides):
        search = {**config["search"], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(
            model,
            src_tokenizer,
            tgt_tokenizer,
            config["data"]["src_lang"],
            beam_size=search["beam_size"],
            alpha=search["alpha"],
            max_len_a=search["max_len_a"],
            max_len_b=search["max_len_b"],
            batch_size=search["batch_size"],
            max_src_len=config["train"]["bucket_boundaries"][-1] - 1,
        )

    def _greedy_fn(self, src):
        return greedy_search(self.model, src, self.alpha, self.max_len_a, self.max_len_b)

    def _beam_fn(self, src):
        return beam_search(
            self.model, src, self.beam_size, self.alpha, self.max_len_a, self.max_len_b
        )

    def search_ids(self, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best hypothesis per row of a padded id batch: ``(ids [B, T], scores [B])``."""
        if self.beam_size == 1:
            ids, scores = self._greedy(tf.constant(src))
            return ids.numpy(), scores.numpy()
        ids, scores = self._beam(tf.constant(src))
        return ids.numpy()[:, 0], scores.numpy()[:, 0]

    def encode_sources(self, sentences: Sequence[str]) -> list[list[int]]:
        texts = [normalize(s, self.src_lang) for s in sentences]
        ids = self.src_tok.encode(texts)
        for n, seq in enumerate(ids):
            if len(seq) > self.max_src_len:
                print(
                    f"warning: sentence {n + 1} has {len(seq)} pieces; translating its first "
                    f"{self.max_src_len}",
                    file=sys.stderr,
                )
                ids[n] = seq[: self.max_src_len]
        return ids

    def translate(self, sentences: Sequence[str]) -> list[Hypothesis]:
        """Translate in the given order; batches are formed by length to limit padding."""
        ids = self.encode_sources(sentences)
        results = [Hypothesis("", 0.0)] * len(ids)
        order = sorted((i for i, seq in enumerate(ids) if seq), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out_ids, scores = self.search_ids(pad_batch([ids[i] for i in chunk]))
            for i, text, score in zip(chunk, self.tgt_tok.decode(out_ids), scores, strict=True):
                results[i] = Hypothesis(text, float(score))
        return results

    def translate_stream(self, lines: Iterator[str], chunk: int | None = None) -> Iterator[str]:
        """Translate a stream chunk by chunk (order kept), yielding one output line per input."""
        chunk = chunk or self.batch_size * 4
        buffer: list[str] = []
        for line in lines:
            buffer.append(line.rstrip("\r\n"))
            if len(buffer) >= chunk:
                yield from (h.text for h in self.translate(buffer))
                buffer = []
        if buffer:
            yield from (h.text for h in self.translate(buffer))
