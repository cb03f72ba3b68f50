"""Search strategies: what one step of the search loop (:mod:`s2s.decoding.loop`) does with the
next-token log-probabilities of the hypotheses alive.

:class:`BeamSearch` keeps ``K`` hypotheses a sentence, alive and finished apart;
:class:`SinglePath` keeps one, its tokens chosen by a sampler: greedy with :class:`BestSampler`,
sampling with :class:`RandomSampler`.

Conventions shared by all, so that beam size 1 reproduces greedy exactly:
- a hypothesis' length ``n`` counts its tokens including ``</s>``; its score is
  ``log P(y) / lp(n)`` with the GNMT penalty ``lp(n) = ((5 + n) / 6) ** alpha``;
- sentence ``i`` may produce at most ``floor(a * src_len_i + b)`` tokens before ``</s>``; at that
  point ``</s>`` is forced (``forced``). The limit depends on the sentence alone, so a sentence
  translates the same alone or inside any batch.

Shapes: ``A`` sentences still active, ``K`` hypotheses a sentence, ``V`` target vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from s2s.config.choices import STOPPING
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID

NEG_INF = -1e30  # a finite "minus infinity": sums and divisions stay finite, never NaN
FINISHED_THRESHOLD = -1e20


def length_penalty(length, alpha: float):
    """GNMT length penalty ``((5 + n) / 6) ** alpha``."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def top_k(values, k, block: int = 40):
    """``tf.math.top_k(values, k)`` over the last axis of ``values [N, V]``: the same values and
    indices, ties to the lower index, found by blocks of ``block`` consecutive entries.

    The best ``k`` entries of a row lie in the ``k`` blocks with the highest maxima (ties: the
    lower block), since any other block's entries are beaten by those ``k`` maxima; so a max over
    blocks and a top-k over ``k * block`` entries replace a top-k over all ``V`` (TensorFlow's
    CPU top-k costs ~1.5 ns an entry; beam search runs it on every step's ``[A*K, V]``). The
    chosen blocks are read in index order, so ties keep the lower index as before.
    """
    size, known = values.shape[-1], tf.get_static_value(k)
    if size is None or known is None or -(-size // block) <= known:  # unknown, or few blocks
        return tf.math.top_k(values, k=k)
    k, blocks = int(known), -(-size // block)
    rows = tf.shape(values)[0]
    if size % block:  # pad the last block with entries below every real one
        fill = tf.fill([rows, blocks * block - size], tf.constant(-float("inf"), values.dtype))
        values = tf.concat([values, fill], axis=1)
    blocked = tf.reshape(values, [rows, blocks, block])
    _, best = tf.math.top_k(tf.reduce_max(blocked, axis=-1), k=k)
    best = tf.sort(best, axis=-1)  # [N, k] blocks in index order
    candidates = tf.reshape(tf.gather(blocked, best, batch_dims=1), [rows, k * block])
    top_values, at = tf.math.top_k(candidates, k=k)
    return top_values, tf.gather(best, at // block, batch_dims=1) * block + at % block


class Finished(NamedTuple):
    """A sentence's finished hypotheses, best first, each ``[.., K]``: its score, the step of
    its ``</s>`` (-1: slot empty) and the alive hypothesis that ``</s>`` extended."""

    score: tf.Tensor
    end: tf.Tensor
    parent: tf.Tensor

    @classmethod
    def empty(cls, rows, k: int) -> Finished:
        return cls(
            tf.fill([rows, k], NEG_INF), tf.fill([rows, k], -1), tf.zeros([rows, k], tf.int32)
        )


class Step(NamedTuple):
    """What a strategy's step returns for the ``A`` active sentences."""

    tokens: tf.Tensor  # [A, K] the alive hypotheses' new tokens
    parents: tf.Tensor  # [A, K] which alive hypothesis of the previous step each one extends
    alive_log_prob: tf.Tensor  # [A, K]
    finished: Finished  # [A, K] each
    done: tf.Tensor  # [A] bool


class BestSampler:
    """The most likely token (ties: the lower id)."""

    def __call__(self, log_probs, t):
        best_log_prob, best = tf.math.top_k(log_probs, k=1)
        return best[:, 0], best_log_prob[:, 0]


class RandomSampler:
    """A token drawn from the distribution sharpened or flattened by ``temperature`` and kept
    to the ``top_k`` most likely tokens (0: all). Stateless: seeded by ``(seed, step)``."""

    def __init__(self, temperature: float = 1.0, top_k: int = 0, seed: int = 0):
        if isinstance(temperature, (int, float)) and temperature <= 0:  # a tensor: checked by
            raise ValueError(f"temperature must be positive, not {temperature}")  # its caller
        self.temperature, self.top_k, self.seed = temperature, top_k, seed

    def __call__(self, log_probs, t):
        never = tf.one_hot(
            [PAD_ID, BOS_ID], tf.shape(log_probs)[-1], on_value=True, off_value=False
        )
        logits = tf.where(tf.reduce_any(never, 0), NEG_INF, log_probs / self.temperature)
        if self.top_k:
            kth = tf.math.top_k(logits, k=self.top_k).values[:, -1:]
            logits = tf.where(logits < kth, NEG_INF, logits)
        token = tf.random.stateless_categorical(logits, 1, seed=[self.seed, t], dtype=tf.int32)
        return token[:, 0], tf.gather(log_probs, token[:, 0], batch_dims=1)


class SinglePath:
    """One hypothesis a sentence, extended by ``sampler``; done at its ``</s>``."""

    width = 1

    def __init__(self, sampler, alpha: float = 0.0):
        self.sampler, self.alpha = sampler, alpha

    def step(self, t, log_probs, alive_log_prob, finished: Finished, forced, limit) -> Step:
        token, token_log_prob = self.sampler(log_probs, t)
        token = tf.where(forced, EOS_ID, token)
        token_log_prob = tf.where(forced, log_probs[:, EOS_ID], token_log_prob)
        log_prob = alive_log_prob[:, 0] + token_log_prob
        done = tf.equal(token, EOS_ID)
        score = log_prob / length_penalty(t + 1, self.alpha)
        finished = Finished(
            tf.where(done, score, finished.score[:, 0])[:, None],
            tf.where(done, t, finished.end[:, 0])[:, None],
            finished.parent,
        )
        zeros = tf.zeros_like(token)[:, None]
        return Step(token[:, None], zeros, log_prob[:, None], finished, done)


class BeamSearch:
    """``K`` hypotheses a sentence, alive and finished kept apart.

    Each step expands the ``K`` alive hypotheses of a sentence into its ``2K`` best candidates
    (each hypothesis' best ``2K`` tokens first, then the best ``2K`` of those ``K * 2K``: the
    same set as the best of all ``K * V``). A candidate ending in ``</s>`` among the best ``K``
    moves to the finished set with its length-normalised score and never grows again; the best
    ``K`` other candidates stay alive. A sentence is done when it has ``K`` finished hypotheses
    and none of its alive ones can beat the worst of them:

    - ``stopping="exact"``: no alive hypothesis could, at any length up to the limit. Its
      log-probability only falls as it grows, and the length penalty only grows, so its best
      possible score is ``log P / lp(limit + 1)``. (With ``alpha = 0`` this is ``log P``.)
    - ``stopping="early"``: the best alive hypothesis, ended at its current length, would not
      (the common heuristic, Hugging Face's default). It stops sooner and makes beam size 1
      return greedy's result for every ``alpha``; ``exact`` does so for ``alpha = 0``, and
      otherwise may find a longer hypothesis that greedy missed.
    """

    def __init__(self, beam_size: int, alpha: float = 0.6, stopping: str = "exact"):
        if stopping not in STOPPING:
            raise ValueError(f"stopping must be one of {STOPPING}, not {stopping!r}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, not {beam_size}")
        self.width, self.alpha, self.stopping = beam_size, alpha, stopping

    def step(self, t, log_probs, alive_log_prob, finished: Finished, forced, limit) -> Step:
        k = self.width
        rows = tf.shape(alive_log_prob)[0]
        # Each hypothesis' best min(2K, V) tokens; a hypothesis at its limit may only end.
        vocab = log_probs.shape[-1]
        width = min(2 * k, vocab) if vocab else tf.minimum(2 * k, tf.shape(log_probs)[-1])
        row_log_prob, row_token = top_k(log_probs, width)
        per_row = tf.shape(row_token)[-1]
        forced = tf.repeat(forced, k)[:, None]
        only_eos = tf.range(per_row)[None, :] == 0
        row_token = tf.where(forced, tf.where(only_eos, EOS_ID, PAD_ID), row_token)
        eos_log_prob = tf.where(only_eos, log_probs[:, EOS_ID : EOS_ID + 1], NEG_INF)
        row_log_prob = tf.where(forced, eos_log_prob, row_log_prob)
        candidates = alive_log_prob[:, :, None] + tf.reshape(row_log_prob, [rows, k, per_row])
        top_log_prob, top_index = tf.math.top_k(tf.reshape(candidates, [rows, -1]), k=2 * k)
        top_beam = top_index // per_row
        top_token = tf.gather(tf.reshape(row_token, [rows, -1]), top_index, batch_dims=1)
        is_eos = tf.equal(top_token, EOS_ID)

        # Finished: </s> candidates among the best K, scored with the length penalty.
        may_finish = tf.logical_and(is_eos, tf.range(2 * k)[None, :] < k)
        new_score = tf.where(may_finish, top_log_prob / length_penalty(t + 1, self.alpha), NEG_INF)
        merged_score, merged = tf.math.top_k(tf.concat([finished.score, new_score], 1), k=k)
        pick = lambda old, new: tf.gather(tf.concat([old, new], 1), merged, batch_dims=1)  # noqa: E731
        finished = Finished(
            merged_score,
            pick(finished.end, tf.fill(tf.shape(top_beam), t)),
            pick(finished.parent, top_beam),
        )

        # Alive: the best K candidates that did not end.
        alive_log_prob, alive = tf.math.top_k(tf.where(is_eos, NEG_INF, top_log_prob), k=k)
        tokens = tf.gather(top_token, alive, batch_dims=1)
        parents = tf.gather(top_beam, alive, batch_dims=1)

        # Done: K finished, and the best alive hypothesis cannot beat the worst of them.
        if self.stopping == "exact":
            penalty = length_penalty(limit + 1, self.alpha)  # [A]: </s> included
        else:
            penalty = length_penalty(t + 1, self.alpha)
        worst = finished.score[:, k - 1]
        done = tf.logical_and(worst > FINISHED_THRESHOLD, alive_log_prob[:, 0] / penalty <= worst)
        return Step(tokens, parents, alive_log_prob, finished, done)
