"""The searches the rest of s2s calls: greedy, sampling and beam search over a model, run by the
loop of :mod:`s2s.decoding.loop` or, with ``jit_compile``, as one XLA program (:func:`compiled`).

Compiled, shapes must stay fixed, so nothing is compacted (a done sentence's finished set is
frozen instead) and the batch is padded to a power-of-two number of sentences and a multiple of
8 pieces. XLA fuses each step's ~200 small ops, which is what a batch of one sentence is made
of; at batch 64 the matmuls dominate, and compaction saves more than fusion does
(``bench/README.md``).
"""

from __future__ import annotations

import tensorflow as tf

from s2s.decoding.loop import decode
from s2s.decoding.strategies import BeamSearch, BestSampler, RandomSampler, SinglePath
from s2s.text.vocab import EOS_ID


def power_of_two(n):
    """The smallest power of two >= ``n`` (a scalar tensor), found without floating point."""
    powers = tf.constant([2**i for i in range(31)])
    return tf.gather(powers, tf.searchsorted(powers, tf.reshape(n, [1]))[0])


def multiple_of(n, step: int):
    """The smallest multiple of ``step`` >= ``n`` (and >= ``step``)."""
    return tf.maximum((n + step - 1) // step, 1) * step


def compiled(search, src, length_step: int = 8):
    """Run ``search(padded, sentences, pieces)`` (a fixed-shape :func:`decode`) compiled
    by XLA, on ``src [B, S]`` padded to a power-of-two number of rows and a multiple of
    ``length_step`` columns, so that a handful of shapes are compiled (1-2 s each) and later
    calls reuse them. Call it inside a ``tf.function`` traced once (as ``Translator`` and the
    export do): called eagerly, every call builds and compiles its program again.

    Padding columns are ``<pad>``, which the encoder masks; padding rows are a one-piece
    sentence (a lone ``</s>``) and are dropped from the results, as are the history's steps the
    loop did not run. The same searches as the compacting loop, up to float rounding (XLA fuses
    and reorders some sums); samples are drawn differently.
    """
    batch, length = tf.shape(src)[0], tf.shape(src)[1]
    rows, columns = power_of_two(batch), multiple_of(length, length_step)
    src = tf.pad(src, [[0, rows - batch], [0, columns - length]])
    src = tf.tensor_scatter_nd_update(
        src,
        tf.stack([tf.range(batch, rows), tf.zeros([rows - batch], tf.int32)], axis=1),
        tf.fill([rows - batch], EOS_ID),
    )
    *out, steps = tf.function(search, jit_compile=True, autograph=False)(src, batch, length)
    ids, scores = out[0][:batch, :, :steps], out[1][:batch]
    if len(out) == 3:
        return ids, scores, out[2][:batch, :, :steps, :length]
    return ids, scores


def run_search(model, src, strategy, max_len_a, max_len_b, attention=False, jit_compile=False):
    """:func:`decode`, or with ``jit_compile`` its fixed-shape loop compiled by XLA
    (:func:`compiled`; inside a traced function, as it compiles each time it is traced): the
    same search up to float rounding, twice as fast for one sentence a batch here."""
    if not jit_compile:
        return decode(model, src, strategy, max_len_a, max_len_b, attention)

    def search(padded, sentences, pieces):
        return decode(
            model,
            padded,
            strategy,
            max_len_a,
            max_len_b,
            attention,
            compact=False,
            unpadded=(sentences, pieces),
        )

    return compiled(search, src)


def greedy_search(
    model,
    src,
    alpha=0.0,
    max_len_a=1.5,
    max_len_b=10,
    return_attention=False,
    jit_compile: bool = False,
):
    """The most likely token at each step: ``(ids [B, T], scores [B])``, plus attention
    ``[B, T, S]`` when asked."""
    strategy = SinglePath(BestSampler(), alpha)
    out = run_search(model, src, strategy, max_len_a, max_len_b, return_attention, jit_compile)
    return tuple(x[:, 0] for x in out)


def sample_search(
    model,
    src,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    alpha: float = 0.0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    return_attention: bool = False,
    jit_compile: bool = False,
):
    """Draw each token from the model's distribution (:class:`RandomSampler`). The same batch
    and seed give the same samples (with ``jit_compile``, other samples than without).
    Scores are the model's own (untempered) log-probability, length-normalised. Returns as
    :func:`greedy_search`."""
    strategy = SinglePath(RandomSampler(temperature, top_k, seed), alpha)
    out = run_search(model, src, strategy, max_len_a, max_len_b, return_attention, jit_compile)
    return tuple(x[:, 0] for x in out)


def beam_search(
    model,
    src,
    beam_size: int = 5,
    alpha: float = 0.6,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    return_attention: bool = False,
    stopping: str = "exact",
    jit_compile: bool = False,
):
    """Beam search (:class:`BeamSearch`): ``(ids [B, K, T], scores [B, K])``, best first, plus
    the attention weights of each returned hypothesis ``[B, K, T, S]`` when asked."""
    strategy = BeamSearch(beam_size, alpha, stopping)
    return run_search(model, src, strategy, max_len_a, max_len_b, return_attention, jit_compile)
