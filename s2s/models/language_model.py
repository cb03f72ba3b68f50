"""Recurrent language models: predict the next piece, with the translator's cells and training.

:class:`RecurrentLM` is an embedding, ``layers`` recurrent layers of ``model.cell`` (the layers of
:mod:`s2s.models.cells`, residual from the second on, as in the decoder) and an output layer (or
the embedding matrix again, ``tie_embeddings``). It is a :class:`~s2s.models.base.SequenceModel`:
it trains on the pipeline's teacher-forced batches ``((src, <s> y), y </s>)`` with the
translator's loss, train step and trackers, ignoring ``src`` (empty for a language model).
Search over it lives in :mod:`s2s.decoding.fusion`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from s2s.config.choices import CELLS
from s2s.data.pipeline import pad_batch
from s2s.models.base import SequenceModel
from s2s.models.cells import recurrent_layer, state_count
from s2s.models.output import tied_logits
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID


@keras.saving.register_keras_serializable(package="s2s")
class RecurrentLM(SequenceModel):
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

    def build(self, input_shape=None):
        if self.hparams["tie_embeddings"]:
            self.output_bias = self.add_weight(
                shape=(self.hparams["vocab_size"],), initializer="zeros", name="output_bias"
            )

    def logits(self, x):
        """The output layer; tied: ``x E^T + b``."""
        if self.output_proj is None:
            return tied_logits(x, self.embedding, self.output_bias)
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

    def vocabulary_weights(self) -> list[tuple]:
        """``(variable, side, axis)`` of every weight indexed by piece ids (``side`` is
        ``lm``: the one vocabulary of the model's side)."""
        found = [(self.embedding.embeddings, "lm", 0)]
        if self.output_proj is None:
            return [*found, (self.output_bias, "lm", 0)]
        return [*found, (self.output_proj.kernel, "lm", 1), (self.output_proj.bias, "lm", 0)]

    def logits_for(self, src, tgt_in, training=False):
        """The pipeline's batches hold an empty source for a language model: ``tgt_in`` alone."""
        return self(tgt_in, training=training)

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
