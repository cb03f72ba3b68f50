"""Greedy, sampling and beam search as TensorFlow graph code (``tf.while_loop``, no Python loop
over time), in one loop with pluggable strategies, as OpenNMT-tf structures decoding.

:func:`decode` runs the loop: encode once, then per step ``model.decode_step``, a log-softmax,
and the strategy's ``step``, which grows each sentence's hypotheses and says which sentences are
done. The loop keeps only what is alive:

- *history as parent pointers*: a step writes each alive hypothesis' new token and the index of
  the hypothesis it extends (``[B, K]`` each) into TensorArrays; :func:`backtrack` follows the
  pointers once at the end. No step rewrites a whole ``[B, K, T]`` history (O(T) per sentence,
  not O(T^2)); attention is written (``[B, K, S]`` a step) only when asked for.
- *compaction*: a sentence that is done leaves the batch. Its rows of the decoder state, memory
  and keys are dropped, so later steps spend no matmuls on it.
- *untiled memory*: the encoder memory and keys stay ``[A, S, D]`` (one copy per sentence, not
  per hypothesis): the decoder groups its ``A*K`` queries by sentence for attention.

With ``compact=False`` the loop keeps every shape fixed, as XLA needs: nothing is compacted (a
done sentence's finished set is frozen instead); :func:`s2s.decoding.search.compiled` runs it as
one XLA program. The strategies and their conventions are :mod:`s2s.decoding.strategies`'.

Shapes: ``B`` sentences in the batch, ``A`` of them still active, ``K`` hypotheses a sentence,
``S`` source positions, ``V`` target vocabulary, ``T`` steps run.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from s2s.decoding.strategies import NEG_INF, Finished, Step
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID


def _bound(pieces, max_len_a: float, max_len_b: int):
    """The loop bound of a batch ``pieces`` long: its longest limit, and one step for </s>."""
    return tf.cast(tf.floor(max_len_a * tf.cast(pieces, tf.float32) + max_len_b), tf.int32) + 1


def max_output_lengths(src, max_len_a: float, max_len_b: int):
    """Per-sentence limit on tokens before ``</s>``, and the loop bound for the whole batch."""
    src_len = tf.reduce_sum(tf.cast(tf.not_equal(src, PAD_ID), tf.float32), axis=1)
    per_sentence = tf.cast(tf.floor(max_len_a * src_len + max_len_b), tf.int32)
    steps = _bound(tf.shape(src)[1], max_len_a, max_len_b)
    return per_sentence, tf.maximum(steps, tf.reduce_max(per_sentence) + 1)


class Active(NamedTuple):
    """Everything held per active sentence; compaction gathers every field alike."""

    index: tf.Tensor  # [A] the sentence's row in the batch
    tokens: tf.Tensor  # [A*K] the alive hypotheses' last tokens
    states: object  # decoder states, [A*K, ...] each
    memory: tf.Tensor  # [A, S, D] (an ensemble: one per member, a tuple)
    keys: tf.Tensor  # [A, S, Dk]
    mask: tf.Tensor  # [A, S]
    limit: tf.Tensor  # [A] tokens allowed before </s>
    alive_log_prob: tf.Tensor  # [A, K]
    finished: Finished  # [A, K] each
    done: tf.Tensor  # [A] bool: only a fixed-shape loop keeps done sentences (see decode)


def next_log_probs(model, logits):
    """Log-probabilities of the next token from ``decode_step``'s output: a log-softmax, unless
    the model gives scores of its own (``scores_are_log_probs``: shallow fusion). ``<pad>`` and
    ``<s>`` are never chosen (no sentence holds them; an untrained model gives them mass); the
    other tokens keep their log-probabilities as they are."""
    if getattr(model, "scores_are_log_probs", False):
        log_probs = logits
    else:
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    ids = tf.range(tf.shape(log_probs)[-1])
    never = tf.logical_or(tf.equal(ids, PAD_ID), tf.equal(ids, BOS_ID))
    return tf.where(never[None, :], NEG_INF, log_probs)


def decode(
    model,
    src,
    strategy,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    attention=False,
    start=None,
    compact: bool = True,
    unpadded=None,
):
    """Search ``src [B, S]`` with ``strategy``; see the module docstring.

    ``model``: ``encode(src) -> (memory, keys, mask, states)`` and ``decode_step(tokens [A*K],
    states, memory [A, S, D], keys, mask, beam=K) -> (logits [A*K, V], states, weights
    [A*K, S])``. Returns ``(ids [B, K, T], scores [B, K])``, best first, ids ending in ``</s>``
    then padding, plus each hypothesis' attention weights ``[B, K, T, S]`` when asked.
    ``start``: the first token each sentence is fed ``[B]`` (default ``<s>``; a language model
    continuing a prefix is fed the prefix's last piece).

    ``compact=False`` keeps every shape fixed, as XLA needs
    (:func:`s2s.decoding.search.compiled`): a done sentence stays in the batch, its finished set
    frozen, and the history has room for the loop bound's steps (``T`` is then that bound; the
    steps not run hold padding). The number of steps run comes last in what it returns.
    ``unpadded``: ``(sentences, pieces)`` of the batch before ``compiled`` padded it; the rows
    after ``sentences`` start done, and the loop stops where the compacting loop would on the
    unpadded batch.
    """
    k = strategy.width
    batch, src_len = tf.shape(src)[0], tf.shape(src)[1]
    memory, keys, mask, states = model.encode(src)
    limit, steps = max_output_lengths(src, max_len_a, max_len_b)
    done = tf.zeros([batch], tf.bool)
    if not compact:
        size = _bound(src_len, max_len_a, max_len_b)  # from the shape alone: known to XLA
        sentences, pieces = unpadded if unpadded is not None else (batch, src_len)
        done = tf.range(batch) >= sentences
        steps = tf.maximum(
            _bound(pieces, max_len_a, max_len_b), tf.reduce_max(tf.where(done, 0, limit)) + 1
        )
    first_only = tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], axis=0)  # one start, not K copies
    active = Active(
        index=tf.range(batch),
        tokens=tf.fill([batch * k], BOS_ID) if start is None else tf.repeat(start, k),
        states=tf.nest.map_structure(lambda s: tf.repeat(s, k, axis=0), states),
        memory=memory,
        keys=keys,
        mask=mask,
        limit=limit,
        alive_log_prob=tf.tile(first_only[None, :], [batch, 1]),
        finished=Finished.empty(batch, k),
        done=done,
    )
    history = History.start(attention, size=None if compact else size)

    def body(t, active: Active, finished: Finished, history: History):
        logits, states, weights = model.decode_step(
            active.tokens, active.states, active.memory, active.keys, active.mask, beam=k
        )
        log_probs = next_log_probs(model, logits)
        forced = t >= active.limit
        step = strategy.step(
            t, log_probs, active.alive_log_prob, active.finished, forced, active.limit
        )
        history = history.write(t, active.index, batch, k, step, weights)
        if k > 1:  # each alive hypothesis continues from its parent's state
            rows = tf.reshape(step.parents + tf.range(tf.shape(step.parents)[0])[:, None] * k, [-1])
            states = tf.nest.map_structure(lambda s: tf.gather(s, rows), states)
        grown = dict(
            tokens=tf.reshape(step.tokens, [-1]), states=states, alive_log_prob=step.alive_log_prob
        )
        if not compact:
            return t + 1, freeze(active, step)._replace(**grown), finished, history
        active = active._replace(finished=step.finished, **grown)
        active, finished = tf.cond(
            tf.reduce_any(step.done),
            lambda: retire(active, finished, step.done, k),
            lambda: (active, finished),
        )
        return t + 1, active, finished, history

    def cond(t, active, *_):
        return tf.logical_and(t < steps, tf.reduce_any(tf.logical_not(active.done)))

    loop_vars = (tf.constant(0), active, Finished.empty(batch, k), history)
    invariants = (
        tf.TensorShape([]),
        _invariants(active) if compact else tf.nest.map_structure(lambda x: x.shape, active),
        tf.nest.map_structure(lambda x: x.shape, loop_vars[2]),
        history.shape_invariants(),
    )
    t, active, finished, history = tf.while_loop(cond, body, loop_vars, shape_invariants=invariants)
    # Sentences still active when the loop bound ended it keep what they finished.
    finished = _scatter_rows(finished, active.index, active.finished)
    if compact:
        return history.backtrack(finished, t, src_len)
    return (*history.backtrack(finished, size, src_len), t)


def freeze(active: Active, step: Step) -> Active:
    """The fixed-shape loop's retirement: a sentence done before this step keeps its finished
    set as it was (later steps may not change what it returns)."""
    keep = lambda old, new: tf.where(active.done[:, None], old, new)  # noqa: E731
    return active._replace(
        finished=tf.nest.map_structure(keep, active.finished, step.finished),
        done=tf.logical_or(active.done, step.done),
    )


def _invariants(active: Active):
    """Shape invariants of the active set: the number of rows may shrink."""

    def loose(x):
        return tf.TensorShape([None]).concatenate(x.shape[1:])

    return tf.nest.map_structure(loose, active)


def _scatter_rows(full: Finished, index, rows: Finished) -> Finished:
    return tf.nest.map_structure(
        lambda f, r: tf.tensor_scatter_nd_update(f, index[:, None], r), full, rows
    )


def retire(active: Active, finished: Finished, done, k: int) -> tuple[Active, Finished]:
    """Move the finished sets of the ``done`` sentences to the batch's, and drop their rows."""
    finished = _scatter_rows(
        finished,
        tf.boolean_mask(active.index, done),
        tf.nest.map_structure(lambda x: tf.boolean_mask(x, done), active.finished),
    )
    keep = tf.where(tf.logical_not(done))[:, 0]
    beams = tf.reshape(keep[:, None] * k + tf.range(k, dtype=keep.dtype)[None, :], [-1])
    per_sentence = lambda x: tf.gather(x, keep)  # noqa: E731
    per_beam = lambda x: tf.gather(x, beams)  # noqa: E731
    return (
        Active(
            index=per_sentence(active.index),
            tokens=per_beam(active.tokens),
            states=tf.nest.map_structure(per_beam, active.states),
            memory=tf.nest.map_structure(per_sentence, active.memory),
            keys=tf.nest.map_structure(per_sentence, active.keys),
            mask=tf.nest.map_structure(per_sentence, active.mask),
            limit=per_sentence(active.limit),
            alive_log_prob=per_sentence(active.alive_log_prob),
            finished=tf.nest.map_structure(per_sentence, active.finished),
            done=per_sentence(active.done),
        ),
        finished,
    )


class History(NamedTuple):
    """Per step, for the whole batch: the alive hypotheses' tokens and parents ``[B, K]`` and,
    when asked, the attention weights of the hypotheses they extended ``[B, K, S]``."""

    tokens: tf.TensorArray
    parents: tf.TensorArray
    attention: tf.TensorArray | tuple

    @classmethod
    def start(cls, attention: bool, size=None) -> History:
        """Empty arrays that grow, or (``size``: the fixed-shape loop) hold ``size`` steps."""
        array = lambda dtype, shape: tf.TensorArray(  # noqa: E731
            dtype,
            size=0 if size is None else size,
            dynamic_size=size is None,
            element_shape=shape,
        )
        return cls(
            array(tf.int32, [None, None]),
            array(tf.int32, [None, None]),
            array(tf.float32, [None, None, None]) if attention else (),
        )

    def shape_invariants(self):
        return tf.nest.map_structure(lambda _: tf.TensorShape(None), self)

    def write(self, t, index, batch, k: int, step: Step, weights) -> History:
        rows = index[:, None]
        put = lambda x: tf.scatter_nd(rows, x, tf.concat([[batch], tf.shape(x)[1:]], 0))  # noqa: E731
        attention = self.attention
        if not isinstance(attention, tuple):
            weights = tf.reshape(tf.cast(weights, tf.float32), [tf.shape(index)[0], k, -1])
            attention = attention.write(t, put(weights))
        return History(
            self.tokens.write(t, put(step.tokens)),
            self.parents.write(t, put(step.parents)),
            attention,
        )

    def backtrack(self, finished: Finished, t, src_len):
        """Follow each finished hypothesis' parent pointers from its ``</s>`` back to the start:
        ``(ids [B, K, T], scores [B, K][, attention [B, K, T, S]])``."""
        tokens, parents = self.tokens.stack(), self.parents.stack()  # [T, B, K]
        for stacked in (tokens, parents):  # the carry below keeps finished's static shape
            stacked.set_shape([None, *finished.parent.shape])
        with_attention = not isinstance(self.attention, tuple)
        attention = self.attention.stack() if with_attention else tf.zeros([t, 0, 0, 0])

        def back(carry, at):
            cursor, _, _ = carry  # [B, K]: which alive hypothesis of step s holds the path
            s, step_tokens, step_parents, step_attention = at
            before, ending = s < finished.end, tf.equal(s, finished.end)
            nxt = tf.where(before, tf.gather(step_parents, cursor, batch_dims=1), cursor)
            token = tf.where(
                ending, EOS_ID, tf.where(before, tf.gather(step_tokens, cursor, batch_dims=1), 0)
            )
            weights = tf.zeros([0])
            if with_attention:
                on_path = tf.logical_or(before, ending)[:, :, None]
                weights = tf.where(on_path, tf.gather(step_attention, nxt, batch_dims=1), 0.0)
            return nxt, token, weights

        no_weights = tf.zeros(tf.concat([tf.shape(finished.parent), [src_len]], 0))
        start = (
            finished.parent,
            tf.zeros_like(finished.parent),
            no_weights if with_attention else tf.zeros([0]),
        )
        _, ids, weights = tf.scan(
            back, (tf.range(t), tokens, parents, attention), start, reverse=True
        )
        ids = tf.transpose(ids, [1, 2, 0])
        if with_attention:
            return ids, finished.score, tf.transpose(weights, [1, 2, 0, 3])
        return ids, finished.score
