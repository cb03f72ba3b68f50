"""Search with a language model: alone (sampling and greedy continuation of a prefix) or fused
with a translation model (shallow fusion inside beam search).

Search code is not copied: :class:`LMSearch` presents a language model to
:func:`s2s.decoding.search.decode` as a translation model without a source, so sampling and
greedy continuation are the search's own strategies; :class:`ShallowFusion` adds
``weight * log p_lm`` to a translation model's next-token log-probabilities inside beam search.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from s2s.decoding.loop import decode
from s2s.decoding.strategies import BestSampler, RandomSampler, SinglePath
from s2s.models.language_model import RecurrentLM
from s2s.text.vocab import BOS_ID


class LMSearch:
    """A language model as :func:`s2s.decoding.loop.decode` sees a translation model.

    The "source" is the prefix every row continues (``[B, P]``, the same for all rows, ``P``
    known when traced, 0 allowed): :meth:`encode` reads ``<s>`` and all of the prefix but its
    last piece, which :meth:`start` gives as the first token to feed. Memory is a
    one-position dummy.
    """

    def __init__(self, lm: RecurrentLM):
        self.lm = lm

    def encode(self, src):
        batch = tf.shape(src)[0]
        if src.shape[1] == 0:
            states = self.lm.initial_state(batch)
        else:
            states = self.lm.read(tf.concat([tf.fill([batch, 1], BOS_ID), src[:, :-1]], axis=1))
        memory = tf.zeros([batch, 1, 1])
        return memory, memory, tf.ones([batch, 1], tf.bool), states

    @staticmethod
    def start(src):
        """The first token to feed: the prefix's last piece, or ``<s>``."""
        if src.shape[1] == 0:
            return tf.fill([tf.shape(src)[0]], BOS_ID)
        return src[:, -1]

    def decode_step(self, tokens, states, memory, keys, mask, beam: int = 1):
        logits, states = self.lm.step(tokens, states)
        return logits, states, tf.zeros([tf.shape(tokens)[0], 1])


def continue_text(
    lm: RecurrentLM,
    prefix: list[int],
    n: int,
    max_len: int = 50,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    greedy: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` continuations of ``prefix``: ``(ids [n, T] ending in </s> then padding, log P
    [n])`` by sampling (``temperature``, ``top_k``, ``seed``: the same seed, the same
    samples) or greedily."""
    sampler = BestSampler() if greedy else RandomSampler(temperature, top_k, seed)
    model, strategy = LMSearch(lm), SinglePath(sampler)
    search = tf.function(  # rows unknown when traced, as in Translator: the loop may shrink them
        lambda src: decode(model, src, strategy, 0.0, max_len, start=LMSearch.start(src)),
        input_signature=[tf.TensorSpec([None, len(prefix)], tf.int32)],
    )
    src = np.tile(np.array(prefix, np.int32).reshape(1, -1), (n, 1))
    ids, scores = search(tf.constant(src))
    return ids.numpy()[:, 0], scores.numpy()[:, 0]


class ShallowFusion:
    """A translation model whose next-token scores are ``log p_tm + weight * log p_lm``.

    The language model reads the target side from ``<s>`` as the decoder does; its vocabulary
    must be the translation model's target vocabulary. With ``weight = 0`` every score equals
    the translation model's own log-probability, bit for bit.
    """

    scores_are_log_probs = True  # search.decode uses them as they are

    def __init__(self, model, lm: RecurrentLM, weight: float):
        self.model, self.lm, self.weight = model, lm, weight

    def encode(self, src):
        memory, keys, mask, states = self.model.encode(src)
        return memory, keys, mask, (states, self.lm.initial_state(tf.shape(src)[0]))

    def decode_step(self, tokens, states, memory, keys, mask, beam: int = 1):
        tm_states, lm_states = states
        logits, tm_states, weights = self.model.decode_step(
            tokens, tm_states, memory, keys, mask, beam=beam
        )
        lm_logits, lm_states = self.lm.step(tokens, lm_states)
        if not getattr(self.model, "scores_are_log_probs", False):  # an ensemble's are
            logits = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        log_probs = logits + self.weight * tf.nn.log_softmax(tf.cast(lm_logits, tf.float32), -1)
        return log_probs, (tm_states, lm_states), weights
