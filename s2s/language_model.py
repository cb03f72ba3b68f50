"""Recurrent language models: predict the next piece, with the translator's cells and search.

:class:`RecurrentLM` is an embedding, ``layers`` recurrent layers of ``model.cell`` (the layers of
:mod:`s2s.cells`, residual from the second on, as in the decoder) and an output layer (or the
embedding matrix again, ``tie_embeddings``). It trains on the pipeline's teacher-forced batches
``((src, <s> y), y </s>)`` with the translator's loss, ignoring ``src`` (empty for a language
model).

Search code is not copied: :class:`LMSearch` presents a language model to
:func:`s2s.search.decode` as a translation model without a source, so sampling and greedy
continuation are the search's own strategies; :class:`ShallowFusion` adds ``weight * log p_lm``
to a translation model's next-token log-probabilities inside beam search.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from s2s.cells import recurrent_layer, state_count
from s2s.choices import CELLS
from s2s.loss import sequence_loss
from s2s.pipeline import pad_batch
from s2s.search import BestSampler, RandomSampler, SinglePath, decode
from s2s.vocab import BOS_ID, EOS_ID, PAD_ID


@keras.saving.register_keras_serializable(package="s2s")
class RecurrentLM(keras.Model):
    """``model(tokens [B, T])`` -> next-token logits ``[B, T, V]``; :meth:`step` for search.

    Example:
    >>> lm = RecurrentLM(vocab_size=20, embedding_dim=8, units=8, cell="gru")
    >>> tuple(lm(ops.ones((2, 5), dtype="int32")).shape)
    (2, 5, 20)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        units: int = 512,
        layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
        if tie_embeddings and units != embedding_dim:
            raise ValueError(
                f"tied embeddings need units == embedding_dim ({units} != {embedding_dim})"
            )
        self.hparams = dict(
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            layers=layers,
            cell=cell,
            dropout=dropout,
            tie_embeddings=tie_embeddings,
        )
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = [recurrent_layer(cell, units, name=f"rnn_{i}") for i in range(layers)]
        self.drop = keras.layers.Dropout(dropout)
        self.output_proj = (
            None if tie_embeddings else keras.layers.Dense(vocab_size, name="output_proj")
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.tokens_tracker = keras.metrics.Sum(name="tokens")

    def build(self, input_shape=None):
        if self.hparams["tie_embeddings"]:
            self.output_bias = self.add_weight(
                shape=(self.hparams["vocab_size"],), initializer="zeros", name="output_bias"
            )

    def logits(self, x):
        """The output layer; tied: ``x E^T + b``."""
        if self.output_proj is None:
            return ops.matmul(x, ops.transpose(self.embedding.embeddings)) + self.output_bias
        return self.output_proj(x)

    def call(self, tokens, training=False):
        """Teacher forcing over ``tokens [B, T]`` (``<s>`` first), every layer from zeros."""
        x = self.embedding(tokens)
        for i, rnn in enumerate(self.rnns):
            out, *_ = rnn(self.drop(x, training=training))
            x = out + x if i > 0 else out
        return self.logits(self.drop(x, training=training))

    def initial_state(self, batch) -> list:
        """Zeros for every layer's state tensors: the state before ``<s>``."""
        count, units = state_count(self.hparams["cell"]), self.hparams["units"]
        return [[ops.zeros((batch, units)) for _ in range(count)] for _ in self.rnns]

    def step(self, tokens, states):
        """One token ``tokens [N]`` -> ``(logits [N, V], new states)``, as :meth:`call` computes
        it at that position."""
        x = self.embedding(tokens)
        new_states = []
        for i, rnn in enumerate(self.rnns):
            out, layer_states = rnn.cell(x, states[i], training=False)
            new_states.append(list(layer_states))
            x = out + x if i > 0 else out
        return self.logits(x), new_states

    def read(self, tokens):
        """The states after reading ``tokens [B, T]`` (all rows real, no padding)."""
        states = self.initial_state(ops.shape(tokens)[0])
        x = self.embedding(tokens)
        for i, rnn in enumerate(self.rnns):
            out, *final = rnn(x, initial_state=states[i])
            states[i] = list(final)
            x = out + x if i > 0 else out
        return states

    # -- training: the translator's loss on the pipeline's batches -------------------------

    def compile(self, optimizer, label_smoothing: float = 0.0, clipnorm=None, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.label_smoothing, self.clipnorm = label_smoothing, clipnorm

    @property
    def metrics(self):
        return [self.loss_tracker, self.nll_tracker, self.grad_norm_tracker, self.tokens_tracker]

    def _sequence_losses(self, data, training):
        (_, tokens_in), tokens_out = data
        return sequence_loss(self(tokens_in, training=training), tokens_out, self.label_smoothing)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, nll, tokens = self._sequence_losses(data, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        if self.clipnorm:
            grads, norm = tf.clip_by_global_norm(grads, self.clipnorm)
        else:
            norm = tf.linalg.global_norm(grads)
        self.optimizer.apply(grads, self.trainable_variables)
        self.grad_norm_tracker.update_state(norm)
        return self._update(loss, nll, tokens) | {"grad_norm": self.grad_norm_tracker.result()}

    def test_step(self, data):
        return self._update(*self._sequence_losses(data, training=False))

    def _update(self, loss, nll, tokens) -> dict:
        self.loss_tracker.update_state(loss, sample_weight=tokens)
        self.nll_tracker.update_state(nll, sample_weight=tokens)
        self.tokens_tracker.update_state(tokens)
        return {
            m.name: m.result() for m in (self.loss_tracker, self.nll_tracker, self.tokens_tracker)
        }

    # -- saving ----------------------------------------------------------------------------

    def get_config(self):
        return {**super().get_config(), **self.hparams}

    def get_build_config(self):
        return {"build_by_calling": True}

    def build_from_config(self, config):
        self(ops.ones((1, 2), dtype="int32"))


def from_config_dict(lm_cfg: dict, cell: str, vocab_size: int) -> RecurrentLM:
    """A built, untrained model of a run's ``lm`` config section."""
    model = RecurrentLM(
        vocab_size,
        embedding_dim=lm_cfg["embedding_dim"],
        units=lm_cfg["units"],
        layers=lm_cfg["layers"],
        cell=cell,
        dropout=lm_cfg["dropout"],
        tie_embeddings=lm_cfg["tie_embeddings"],
    )
    model.build_from_config({})
    return model


# -- scoring ---------------------------------------------------------------------------------


def sentence_log_probs(lm: RecurrentLM, ids: list[list[int]], batch_size: int = 64) -> np.ndarray:
    """``log P(y </s>)`` of each sentence (natural log), ``</s>`` included: ``[N]``."""
    out = np.zeros(len(ids), np.float64)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        tokens_in = pad_batch([[BOS_ID, *seq] for seq in chunk])
        targets = pad_batch([[*seq, EOS_ID] for seq in chunk])
        log_probs = tf.nn.log_softmax(tf.cast(lm(tokens_in), tf.float32), axis=-1)
        picked = tf.gather(log_probs, targets, batch_dims=2).numpy()
        out[start : start + len(chunk)] = (picked * (targets != PAD_ID)).sum(axis=1)
    return out


# -- search -----------------------------------------------------------------------------------


class LMSearch:
    """A language model as :func:`s2s.search.decode` sees a translation model.

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
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1) + self.weight * (
            tf.nn.log_softmax(tf.cast(lm_logits, tf.float32), axis=-1)
        )
        return log_probs, (tm_states, lm_states), weights
