"""Translate text with a trained run: tokenise, batch by length, search, detokenise, restore order.

Defined answers for awkward input: an empty (or all-space) line translates to an empty line
without running the model; a line longer than the model's maximum source length is truncated,
with a warning on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from s2s.config.validation import ConfigError
from s2s.data.pipeline import pad_batch
from s2s.decoding.fusion import ShallowFusion
from s2s.decoding.hypotheses import Candidate, Hypothesis
from s2s.decoding.search import beam_search, greedy_search, sample_search
from s2s.decoding.streaming import arrived_groups
from s2s.models.loading import fusion_model
from s2s.text.normalize import normalize
from s2s.text.tokenizer import Tokenizer
from s2s.text.vocab import EOS_ID


@dataclass
class Sampling:
    """Sampling decoding instead of search: temperature, top-k (0 = all tokens), seed."""

    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0


def check_sampling(sampling: Sampling, vocab_size: int) -> None:
    """Refuse sampling settings the search cannot run, naming the setting."""
    if not sampling.temperature > 0:
        raise ConfigError(f"sampling temperature must be positive, not {sampling.temperature}")
    if not 0 <= sampling.top_k <= vocab_size:
        raise ConfigError(
            f"sampling top_k must be 0 (every piece) to the target vocabulary's {vocab_size:,} "
            f"pieces, not {sampling.top_k:,}"
        )


class Translator:
    """Batched translation with greedy (``beam_size=1``), beam search or sampling, traced once.

    The search functions take an input signature with unknown batch and length, so new batch
    shapes do not retrace them (``traces`` counts the tracings).
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
        sampling: Sampling | None = None,
        stopping: str = "exact",
        script: str = "keep",
        lm=None,
        lm_weight: float = 0.0,
        jit_compile: bool = False,
    ):
        if sampling is not None:
            check_sampling(sampling, tgt_tokenizer.vocab_size)
        self.model, self.src_tok, self.tgt_tok = model, src_tokenizer, tgt_tokenizer
        self.src_lang = src_lang
        self.beam_size, self.alpha = beam_size, alpha
        self.max_len_a, self.max_len_b = max_len_a, max_len_b
        self.batch_size, self.max_src_len = batch_size, max_src_len
        self.sampling, self.stopping, self.script = sampling, stopping, script
        self.lm, self.lm_weight = lm, lm_weight
        self.jit_compile = jit_compile
        self.traces = 0
        # Batches of any shape and every value of alpha, temperature and seed share one trace:
        # a new setting costs no retracing.
        spec = [
            tf.TensorSpec([None, None], tf.int32, name="src"),
            tf.TensorSpec([], tf.float32, name="alpha"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]
        self._search = tf.function(
            lambda *args: self._traced_search(*args, return_attention=False), input_signature=spec
        )
        self._search_attention = tf.function(
            lambda *args: self._traced_search(*args, return_attention=True), input_signature=spec
        )

    def _traced_search(self, src, alpha, temperature, seed, return_attention: bool):
        self.traces += 1  # Python side effect: runs once per tracing, not per call
        return self._search_fn(src, alpha, temperature, seed, return_attention)

    @classmethod
    def from_config(
        cls, model, src_tokenizer, tgt_tokenizer, config: dict, sampling=None, **overrides
    ):
        """Search settings of ``config["search"]``, ``overrides`` (None: the config's) on top;
        ``lm_run``/``lm_weight`` load a language model for shallow fusion."""
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
            sampling=sampling,
            stopping=search["stopping"],
            script=config["data"].get("chinese_script", "keep"),  # runs older than the key: keep
            lm=fusion_model(search, tgt_tokenizer),
            lm_weight=search.get("lm_weight", 0.0),
            jit_compile=search.get("jit_compile", False),  # runs older than the key: off
        )

    @property
    def search_model(self):
        """What search reads: the model, or the model fused with the language model."""
        if self.lm is None:
            return self.model
        return ShallowFusion(self.model, self.lm, self.lm_weight)

    def _search_fn(self, src, alpha, temperature, seed, return_attention: bool = False):
        """``(ids [B, N, T], scores [B, N][, attention [B, N, T, S]])``, best first."""
        lengths = (alpha, self.max_len_a, self.max_len_b)
        jit = self.jit_compile
        if self.sampling is not None:
            out = sample_search(
                self.search_model,
                src,
                temperature,
                self.sampling.top_k,
                seed,
                *lengths,
                return_attention,
                jit_compile=jit,
            )
        elif self.beam_size == 1:
            out = greedy_search(self.search_model, src, *lengths, return_attention, jit)
        else:
            return beam_search(
                self.search_model,
                src,
                self.beam_size,
                *lengths,
                return_attention,
                self.stopping,
                jit_compile=jit,
            )
        return tuple(x[:, None] for x in out)

    def search_ids(
        self,
        src: np.ndarray,
        attention: bool = False,
        alpha: float | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Hypotheses per row of a padded id batch: ``(ids [B, N, T], scores [B, N])``, and
        with ``attention`` their weights ``[B, N, T, S]`` too. ``alpha`` (and, when sampling,
        ``temperature`` and ``seed``) replace the translator's own for this call."""
        sampling = self.sampling or Sampling()
        if temperature is not None or seed is not None:
            check_sampling(Sampling(temperature or sampling.temperature, sampling.top_k), 1 << 30)
        knobs = (
            tf.constant(self.alpha if alpha is None else alpha, tf.float32),
            tf.constant(sampling.temperature if temperature is None else temperature, tf.float32),
            tf.constant(sampling.seed if seed is None else seed, tf.int32),
        )
        search = self._search_attention if attention else self._search
        return tuple(x.numpy() for x in search(tf.constant(src), *knobs))

    def attention(self, sentence: str) -> tuple[list[str], list[str], np.ndarray]:
        """Source pieces, output pieces (with ``</s>``) and the attention weights ``[T, S]`` of
        the best translation of one sentence (for plots)."""
        [ids] = self.encode_sources([sentence])
        out_ids, _, weights = self.search_ids(np.array([ids], np.int32), attention=True)
        out = [int(i) for i in out_ids[0, 0]]
        out = out[: out.index(EOS_ID) + 1] if EOS_ID in out else out
        pieces = [self.tgt_tok.sp.id_to_piece(i) for i in out]
        source = [self.src_tok.sp.id_to_piece(i) for i in ids]
        return source, pieces, weights[0, 0, : len(out), : len(ids)]

    def source_ids(self, sentences: Sequence[str]) -> list[list[int]]:
        """Piece ids of each sentence, normalised as in training; not truncated."""
        return self.src_tok.encode([normalize(s, self.src_lang, self.script) for s in sentences])

    def encode_sources(self, sentences: Sequence[str], first: int = 1) -> list[list[int]]:
        """:meth:`source_ids` cut to what the model reads, with a warning for each cut naming
        the sentence's number (``first`` for the first of ``sentences``)."""
        ids = self.source_ids(sentences)
        for n, seq in enumerate(ids):
            if len(seq) > self.max_src_len:
                print(
                    f"warning: sentence {first + n} has {len(seq)} pieces; translating its "
                    f"first {self.max_src_len}",
                    file=sys.stderr,
                )
                ids[n] = seq[: self.max_src_len]
        return ids

    def translate(
        self, sentences: Sequence[str], progress=None, first: int = 1
    ) -> list[Hypothesis]:
        """Translate in the given order; batches are formed by length to limit padding.

        ``progress`` (e.g. a tqdm bar) is advanced by the number of sentences of each batch;
        ``first``: the number warnings give the first sentence (a stream's line number).
        """
        ids = self.encode_sources(sentences, first)
        results = [Hypothesis("", 0.0, [Candidate("", 0.0)]) for _ in ids]  # never shared
        order = sorted((i for i, seq in enumerate(ids) if seq), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out_ids, scores = self.search_ids(pad_batch([ids[i] for i in chunk]))
            n = out_ids.shape[1]
            texts = self.tgt_tok.decode(out_ids.reshape(len(chunk) * n, -1))
            lengths = np.argmax(out_ids[:, 0] == EOS_ID, axis=1) + 1
            for row, i in enumerate(chunk):
                nbest = [Candidate(texts[row * n + j], float(scores[row, j])) for j in range(n)]
                results[i] = Hypothesis(nbest[0][0], nbest[0][1], nbest, int(lengths[row]))
            if progress is not None:
                progress.update(len(chunk))
        if progress is not None:
            progress.update(len(ids) - len(order))  # empty lines
        return results

    def translate_stream(
        self, lines: Iterable[str], chunk: int | None = None, progress=None, pause: float = 0.05
    ) -> Iterator[Hypothesis]:
        """Translate a stream, one hypothesis per input line, in order: what has arrived is
        translated when the input pauses for ``pause`` seconds or ``chunk`` lines are waiting
        (default: four batches), so typed or piped input is answered line by line."""
        done = 0
        for group in arrived_groups(lines, chunk or self.batch_size * 4, pause):
            texts = [line.rstrip("\r\n") for line in group]
            yield from self.translate(texts, progress, first=done + 1)
            done += len(group)
