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

Or, with ``jit_compile``, the whole search is one XLA program (:func:`compiled`): shapes must
then stay fixed, so nothing is compacted (a done sentence's finished set is frozen instead) and
the batch is padded to a power-of-two number of sentences and a multiple of 8 pieces. XLA
fuses each step's ~200 small ops, which is what a batch of one sentence is made of; at batch
64 the matmuls dominate, and compaction saves more than fusion does (``bench/README.md``).

Strategies: :class:`BeamSearch` (``K`` hypotheses, alive and finished kept apart) and
:class:`SinglePath` (one hypothesis a sentence, its tokens chosen by a :class:`Sampler`:
greedy with :class:`BestSampler`, sampling with :class:`RandomSampler`).

Conventions shared by all, so that beam size 1 reproduces greedy exactly:
- a hypothesis' length ``n`` counts its tokens including ``</s>``; its score is
  ``log P(y) / lp(n)`` with the GNMT penalty ``lp(n) = ((5 + n) / 6) ** alpha``;
- sentence ``i`` may produce at most ``floor(a * src_len_i + b)`` tokens before ``</s>``; at that
  point ``</s>`` is forced. The limit depends on the sentence alone, so a sentence translates the
  same alone or inside any batch.

Shapes: ``B`` sentences in the batch, ``A`` of them still active, ``K`` hypotheses a sentence,
``S`` source positions, ``V`` target vocabulary, ``T`` steps run.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from s2s.choices import STOPPING
from s2s.vocab import BOS_ID, EOS_ID, PAD_ID

NEG_INF = -1e30  # a finite "minus infinity": sums and divisions stay finite, never NaN
_FINISHED_THRESHOLD = -1e20


def length_penalty(length, alpha: float):
    """GNMT length penalty ``((5 + n) / 6) ** alpha``."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _bound(pieces, max_len_a: float, max_len_b: int):
    """The loop bound of a batch ``pieces`` long: its longest limit, and one step for </s>."""
    return tf.cast(tf.floor(max_len_a * tf.cast(pieces, tf.float32) + max_len_b), tf.int32) + 1


def max_output_lengths(src, max_len_a: float, max_len_b: int):
    """Per-sentence limit on tokens before ``</s>``, and the loop bound for the whole batch."""
    src_len = tf.reduce_sum(tf.cast(tf.not_equal(src, PAD_ID), tf.float32), axis=1)
    per_sentence = tf.cast(tf.floor(max_len_a * src_len + max_len_b), tf.int32)
    steps = _bound(tf.shape(src)[1], max_len_a, max_len_b)
    return per_sentence, tf.maximum(steps, tf.reduce_max(per_sentence) + 1)


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


# -- the state ---------------------------------------------------------------------------------


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


class Active(NamedTuple):
    """Everything held per active sentence; compaction gathers every field alike."""

    index: tf.Tensor  # [A] the sentence's row in the batch
    tokens: tf.Tensor  # [A*K] the alive hypotheses' last tokens
    states: object  # decoder states, [A*K, ...] each
    memory: tf.Tensor  # [A, S, D]
    keys: tf.Tensor  # [A, S, Dk]
    mask: tf.Tensor  # [A, S]
    limit: tf.Tensor  # [A] tokens allowed before </s>
    alive_log_prob: tf.Tensor  # [A, K]
    finished: Finished  # [A, K] each
    done: tf.Tensor  # [A] bool: only a fixed-shape loop keeps done sentences (see decode)


# -- strategies --------------------------------------------------------------------------------


class BestSampler:
    """The most likely token (ties: the lower id)."""

    def __call__(self, log_probs, t):
        best_log_prob, best = tf.math.top_k(log_probs, k=1)
        return best[:, 0], best_log_prob[:, 0]


class RandomSampler:
    """A token drawn from the distribution sharpened or flattened by ``temperature`` and kept
    to the ``top_k`` most likely tokens (0: all). Stateless: seeded by ``(seed, step)``."""

    def __init__(self, temperature: float = 1.0, top_k: int = 0, seed: int = 0):
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
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
        done = tf.logical_and(worst > _FINISHED_THRESHOLD, alive_log_prob[:, 0] / penalty <= worst)
        return Step(tokens, parents, alive_log_prob, finished, done)


# -- the loop ----------------------------------------------------------------------------------


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

    ``compact=False`` keeps every shape fixed, as XLA needs (:func:`compiled`): a done sentence
    stays in the batch, its finished set frozen, and the history has room for the loop bound's
    steps (``T`` is then that bound; the steps not run hold padding). The number of steps run
    comes last in what it returns. ``unpadded``: ``(sentences, pieces)`` of the batch before
    :func:`compiled` padded it; the rows after ``sentences`` start done, and the loop stops
    where the compacting loop would on the unpadded batch.
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
            memory=per_sentence(active.memory),
            keys=per_sentence(active.keys),
            mask=per_sentence(active.mask),
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


# -- the searches the rest of s2s calls --------------------------------------------------------


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
