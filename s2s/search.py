"""Greedy and beam search as TensorFlow graph code (``tf.while_loop``, no Python loop over time).

Both take a ``step`` model (``encode`` + ``decode_step``, see :class:`s2s.model.Seq2Seq`) and a
padded source batch ``[B, S]``, and return token ids ending in ``</s>`` (then padding) and
length-normalised scores.

Conventions shared by both, so that beam size 1 reproduces greedy exactly:
- a hypothesis' length ``n`` counts its tokens including ``</s>``; its score is
  ``log P(y) / lp(n)`` with the GNMT penalty ``lp(n) = ((5 + n) / 6) ** alpha``;
- sentence ``i`` may produce at most ``floor(a * src_len_i + b)`` tokens before ``</s>``; at that
  point ``</s>`` is forced. The limit depends on the sentence alone, so a sentence translates the
  same alone or inside any batch.
"""

from __future__ import annotations

import tensorflow as tf

from s2s.choices import STOPPING
from s2s.vocab import BOS_ID, EOS_ID, PAD_ID

NEG_INF = -1e30  # a finite "minus infinity": sums and divisions stay finite, never NaN
_FINISHED_THRESHOLD = -1e20


def length_penalty(length, alpha: float):
    """GNMT length penalty ``((5 + n) / 6) ** alpha``."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def max_output_lengths(src, max_len_a: float, max_len_b: int):
    """Per-sentence limit on tokens before ``</s>``, and the loop bound for the whole batch."""
    src_len = tf.reduce_sum(tf.cast(tf.not_equal(src, PAD_ID), tf.float32), axis=1)
    per_sentence = tf.cast(tf.floor(max_len_a * src_len + max_len_b), tf.int32)
    padded_len = tf.cast(tf.shape(src)[1], tf.float32)
    steps = tf.cast(tf.floor(max_len_a * padded_len + max_len_b), tf.int32) + 1
    return per_sentence, tf.maximum(steps, tf.reduce_max(per_sentence) + 1)


def _log_probs(logits, step, limit):
    """Log-softmax, with every token but ``</s>`` ruled out where a hypothesis hit its limit."""
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    vocab = tf.shape(log_probs)[-1]
    not_eos = tf.not_equal(tf.range(vocab), EOS_ID)[None, :]
    forced = tf.logical_and((step >= limit)[:, None], not_eos)
    return tf.where(forced, NEG_INF, log_probs)


def greedy_search(
    model,
    src,
    alpha: float = 0.0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    return_attention: bool = False,
):
    """Pick the most likely token at each step.

    Returns ``(ids [B, T], scores [B])``, plus attention weights ``[B, T, S]`` when asked.
    """

    def most_likely(log_probs, t):
        best_log_prob, best = tf.math.top_k(log_probs, k=1)  # top_k: ties go to the lower id
        return best[:, 0], best_log_prob[:, 0]

    return _one_path_search(model, src, most_likely, alpha, max_len_a, max_len_b, return_attention)


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
):
    """Draw each token from the model's distribution, sharpened or flattened by ``temperature``
    and restricted to the ``top_k`` most likely tokens (0: all). Seeded and stateless: the same
    batch and seed give the same samples. Scores are the model's own (untempered) log-probability,
    length-normalised.
    """

    def draw(log_probs, t):
        logits = log_probs / temperature
        if top_k:
            kth = tf.math.top_k(logits, k=top_k).values[:, -1:]
            logits = tf.where(logits < kth, NEG_INF, logits)
        token = tf.random.stateless_categorical(logits, 1, seed=[seed, t], dtype=tf.int32)[:, 0]
        return token, tf.gather(log_probs, token, batch_dims=1)

    return _one_path_search(model, src, draw, alpha, max_len_a, max_len_b, return_attention)


def _one_path_search(model, src, choose, alpha, max_len_a, max_len_b, return_attention):
    """One hypothesis per sentence, extended by ``choose(log_probs [B,V], t) -> (ids, log_p)``."""
    batch = tf.shape(src)[0]
    memory, keys, mask, states = model.encode(src)
    limit, steps = max_output_lengths(src, max_len_a, max_len_b)

    def body(t, tokens, states, finished, log_prob, length, out, attention):  # attention: () or TA
        logits, states, weights = model.decode_step(tokens, states, memory, keys, mask)
        token, token_log_prob = choose(_log_probs(logits, t, limit), t)
        token = tf.where(finished, PAD_ID, token)
        log_prob += tf.where(finished, 0.0, token_log_prob)
        length += tf.cast(tf.logical_not(finished), tf.int32)
        finished = tf.logical_or(finished, tf.equal(token, EOS_ID))
        if return_attention:
            attention = attention.write(t, weights)
        return t + 1, token, states, finished, log_prob, length, out.write(t, token), attention

    def cond(t, tokens, states, finished, *_):
        return tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(finished)))

    init = (
        tf.constant(0),
        tf.fill([batch], BOS_ID),
        states,
        tf.zeros([batch], tf.bool),
        tf.zeros([batch]),
        tf.zeros([batch], tf.int32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None])
        if return_attention
        else (),
    )
    *_, log_prob, length, out, attention = tf.while_loop(cond, body, init)
    ids = tf.transpose(out.stack(), [1, 0])
    scores = log_prob / length_penalty(length, alpha)
    if return_attention:
        return ids, scores, tf.transpose(attention.stack(), [1, 0, 2])
    return ids, scores


def _gather_beams(tensor, indices):
    """``tensor [B, K, ...]``, ``indices [B, K']`` -> ``[B, K', ...]``."""
    return tf.gather(tensor, indices, batch_dims=1)


def _flat(tensor, batch, beam):
    return tf.reshape(tensor, tf.concat([[batch * beam], tf.shape(tensor)[2:]], axis=0))


def _split(tensor, batch, beam):
    return tf.reshape(tensor, tf.concat([[batch, beam], tf.shape(tensor)[1:]], axis=0))


def beam_search(
    model,
    src,
    beam_size: int = 5,
    alpha: float = 0.6,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    return_attention: bool = False,
    stopping: str = "exact",
):
    """Batched beam search with alive and finished hypotheses kept apart.

    Each step expands the ``K`` alive hypotheses of a sentence into ``2K`` best candidates.
    A candidate ending in ``</s>`` among the best ``K`` moves to the finished set with its
    length-normalised score and never grows again; the best ``K`` other candidates stay alive.
    Every hypothesis is forced to end at the sentence's length limit. A sentence is done when it
    has ``K`` finished hypotheses and none of its alive ones can beat the worst of them:

    - ``stopping="exact"``: no alive hypothesis could, at any length up to the limit. Its
      log-probability only falls as it grows, and the length penalty only grows, so its best
      possible score is ``log P / lp(limit + 1)``. (With ``alpha = 0`` this is ``log P``.)
    - ``stopping="early"``: the best alive hypothesis, ended at its current length, would not
      (the common heuristic, Hugging Face's default). It stops sooner and makes beam size 1
      return greedy's result for every ``alpha``; ``exact`` does so for ``alpha = 0``, and
      otherwise may find a longer hypothesis that greedy missed.

    The loop ends when every sentence is done. Finished sets of done sentences are frozen, so
    batch neighbours cannot change a sentence's result.

    Returns ``(ids [B, K, T], scores [B, K])``, best first, plus the attention weights of each
    returned hypothesis ``[B, K, T, S]`` when asked.
    """
    k = beam_size
    batch = tf.shape(src)[0]
    memory, keys, mask, states = model.encode(src)
    if stopping not in STOPPING:
        raise ValueError(f"stopping must be one of {STOPPING}, not {stopping!r}")
    limit, steps = max_output_lengths(src, max_len_a, max_len_b)
    longest_penalty = length_penalty(limit + 1, alpha)  # [B]: </s> included
    tile = lambda x: tf.repeat(x, k, axis=0)  # noqa: E731  [B, ...] -> [B*K, ...]
    memory, keys, mask, limit = tile(memory), tile(keys), tile(mask), tile(limit)
    states = tf.nest.map_structure(tile, states)

    first_beam_only = tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], axis=0)
    alive_log_prob = tf.tile(first_beam_only[None, :], [batch, 1])
    finished_score = tf.fill([batch, k], NEG_INF)
    rank_may_finish = tf.range(2 * k) < k
    # What each hypothesis carries, one entry per step: its tokens, and its attention weights
    # only when asked for. Alive and finished sets share one layout [B, K, steps, ...].
    history = {"seq": tf.zeros([batch, k, steps], tf.int32)}
    if return_attention:
        history["attention"] = tf.zeros([batch, k, steps, tf.shape(src)[1]])
    gather = lambda nest, index: tf.nest.map_structure(  # noqa: E731
        lambda x: _gather_beams(x, index), nest
    )

    def write(histories, step_values, t):
        """Put ``step_values [B, 2K, ...]`` at step ``t`` of ``histories [B, 2K, T, ...]``."""

        def one(history, value):
            at = tf.one_hot(t, steps, dtype=history.dtype)
            at = tf.reshape(at, [1, 1, -1] + [1] * (len(value.shape) - 2))
            return history + at * tf.expand_dims(value, 2)

        return tf.nest.map_structure(one, histories, step_values)

    def body(t, tokens, states, alive, alive_log_prob, finished, finished_score, done):
        logits, states, weights = model.decode_step(tokens, states, memory, keys, mask)
        log_probs = _split(_log_probs(logits, t, limit), batch, k)  # [B, K, V]
        vocab = tf.shape(log_probs)[-1]
        candidates = tf.reshape(alive_log_prob[:, :, None] + log_probs, [batch, k * vocab])
        top_log_prob, top_index = tf.math.top_k(candidates, k=2 * k)
        top_beam, top_token = top_index // vocab, top_index % vocab
        step = {"seq": top_token}
        if return_attention:
            step["attention"] = _gather_beams(_split(weights, batch, k), top_beam)
        top = write(gather(alive, top_beam), step, t)
        is_eos = tf.equal(top_token, EOS_ID)

        # Finished: </s> candidates among the best K, scored with the length penalty.
        may_finish = tf.logical_and(is_eos, rank_may_finish[None, :])
        new_score = tf.where(may_finish, top_log_prob / length_penalty(t + 1, alpha), NEG_INF)
        merged_score, merged_index = tf.math.top_k(
            tf.concat([finished_score, new_score], axis=1), k=k
        )
        merged = gather(
            tf.nest.map_structure(lambda f, c: tf.concat([f, c], axis=1), finished, top),
            merged_index,
        )
        finished_score = tf.where(done[:, None], finished_score, merged_score)
        finished = tf.nest.map_structure(  # done sentences are frozen
            lambda old, new: tf.where(
                tf.reshape(done, [-1] + [1] * (len(new.shape) - 1)), old, new
            ),
            finished,
            merged,
        )

        # Alive: the best K candidates that did not end.
        alive_log_prob, alive_index = tf.math.top_k(tf.where(is_eos, NEG_INF, top_log_prob), k=k)
        alive = gather(top, alive_index)
        parent = _gather_beams(top_beam, alive_index) + tf.range(batch)[:, None] * k
        tokens = tf.reshape(_gather_beams(top_token, alive_index), [-1])
        states = tf.nest.map_structure(lambda s: tf.gather(s, tf.reshape(parent, [-1])), states)

        # Done: K finished, and the best alive hypothesis cannot beat the worst of them.
        full = finished_score[:, k - 1] > _FINISHED_THRESHOLD
        penalty = longest_penalty if stopping == "exact" else length_penalty(t + 1, alpha)
        alive_best = alive_log_prob[:, 0] / penalty
        done = tf.logical_or(done, tf.logical_and(full, alive_best <= finished_score[:, k - 1]))
        return t + 1, tokens, states, alive, alive_log_prob, finished, finished_score, done

    def cond(t, *args):
        return tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(args[-1])))

    init = (
        tf.constant(0),
        tf.fill([batch * k], BOS_ID),
        states,
        history,
        alive_log_prob,
        history,
        finished_score,
        tf.zeros([batch], tf.bool),
    )
    t, *_, finished, finished_score, _ = tf.while_loop(cond, body, init)
    if return_attention:
        return finished["seq"][:, :, :t], finished_score, finished["attention"][:, :, :t]
    return finished["seq"][:, :, :t], finished_score
