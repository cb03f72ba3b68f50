"""The attention decoder and the bridge that starts it from the encoder's final states.

The decoder has two ways to run, sharing every weight:
- :meth:`Decoder.call`: the whole target sequence at once (teacher forcing, training);
- :meth:`Decoder.step`: one token for a batch of hypotheses (search).
``tests/models/test_seq2seq.py`` checks that stepping through the reference reproduces the
teacher-forced logits.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from s2s.config.choices import BRIDGES
from s2s.models.attention import Attention
from s2s.models.cells import recurrent_layer
from s2s.models.encoder import WordDropout
from s2s.models.output import tied_logits


@keras.saving.register_keras_serializable(package="s2s")
class Decoder(keras.layers.Layer):
    """Stacked RNN initialised from the encoder, attention, attentional layer, output projection.

    Luong-style: ``h~ = tanh(W_c [context; h])``, ``logits = W_o h~``. With ``input_feeding`` the
    previous step's attentional vector ``h~`` is concatenated to the next input token's embedding
    (Luong et al., 2015), so the decoder knows what it attended to; the teacher-forced path then
    has to run step by step, which is slower.

    The decoder state is a list with one entry per layer (that layer's state tensors), plus, with
    input feeding, a last entry ``[h~]``.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        num_layers: int = 1,
        cell: str = "lstm",
        attention: str = "general",
        attention_dim: int = 256,
        dropout: float = 0.0,
        input_feeding: bool = False,
        tie_embeddings: bool = False,
        attention_scaled: bool = False,
        word_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if tie_embeddings and attention_dim != embedding_dim:
            raise ValueError(
                f"tied embeddings need attention_dim == embedding_dim "
                f"({attention_dim} != {embedding_dim})"
            )
        self.args = dict(
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
            cell=cell,
            attention=attention,
            attention_dim=attention_dim,
            dropout=dropout,
            input_feeding=input_feeding,
            tie_embeddings=tie_embeddings,
            attention_scaled=attention_scaled,
            word_dropout=word_dropout,
        )
        self.input_feeding = input_feeding
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = [recurrent_layer(cell, units, name=f"rnn_{i}") for i in range(num_layers)]
        self.attention = Attention(
            attention,
            query_dim=units,
            units=attention_dim,
            scaled=attention_scaled,
            name="attention",
        )
        self.combine = keras.layers.Dense(
            attention_dim, activation="tanh", use_bias=False, name="combine"
        )
        self.tie_embeddings = tie_embeddings
        if not tie_embeddings:
            self.output_proj = keras.layers.Dense(vocab_size, name="output_proj")
        self.dropout = keras.layers.Dropout(dropout)
        self.word_dropout = WordDropout(word_dropout)

    def build(self, input_shape=None):
        if self.tie_embeddings:
            self.output_bias = self.add_weight(
                shape=(self.args["vocab_size"],), initializer="zeros", name="output_bias"
            )

    def logits(self, attentional):
        """The output layer; with tied embeddings it is ``h~ E^T + b`` (E: target embeddings)."""
        if self.tie_embeddings:
            return tied_logits(attentional, self.embedding, self.output_bias)
        return self.output_proj(attentional)

    def initial_state(self, encoder_final: list) -> list:
        """The decoder state at ``<s>``: every layer starts from the encoder's final states."""
        states = [list(encoder_final) for _ in self.rnns]
        if self.input_feeding:
            batch = ops.shape(encoder_final[0])[0]
            states.append([ops.zeros((batch, self.args["attention_dim"]), encoder_final[0].dtype)])
        return states

    def call(self, tgt_in, memory, keys, mask, states, training=False):
        """Teacher forcing: ``tgt_in [B,T]`` -> logits ``[B, T, V]``.

        No mask is passed to the RNNs: targets are right-padded, so padded steps come after every
        real one and cannot change it; the loss ignores their outputs.
        """
        x = self.word_dropout(self.embedding(tgt_in), training=training)
        x = self.dropout(x, training=training)
        if self.input_feeding:
            attentional = self._feed_loop(x, memory, keys, mask, states, training)
        else:
            for i, rnn in enumerate(self.rnns):
                if i > 0:
                    x = self.dropout(x, training=training)
                out, *_ = rnn(x, initial_state=states[i], training=training)
                x = out + x if i > 0 else out
            context, _ = self.attention(x, keys, memory, mask)
            attentional = self.combine(ops.concatenate([context, x], axis=-1))
            attentional = self.dropout(attentional, training=training)
        return self.logits(attentional)

    def _feed_loop(self, x, memory, keys, mask, states, training):
        """The input-feeding decoder over a whole target ``x [B,T,E]``, one step at a time."""

        def body(carry, x_t):
            return self._step(x_t, carry, memory, keys, mask, training)[1]

        steps = tf.scan(body, tf.transpose(x, [1, 0, 2]), initializer=states)
        return tf.transpose(steps[-1][0], [1, 0, 2])  # every step's (dropped-out) h~

    def _step(self, x, states, memory, keys, mask, training=False, beam: int = 1):
        """One step on an embedded input ``x [N,E]``: ``(h~ [N,A], new states, weights [N,S])``.

        ``N = B * beam``: with ``beam > 1`` the rows are ``beam`` hypotheses per sentence, and
        ``memory``/``keys``/``mask`` are per sentence (``[B, S, ..]``, not tiled), so attention
        reads each sentence's memory once for all its hypotheses.
        """
        layers = states[: len(self.rnns)]
        if self.input_feeding:
            x = ops.concatenate([x, states[-1][0]], axis=-1)
        new_states = []
        for i, rnn in enumerate(self.rnns):
            if i > 0:
                x = self.dropout(x, training=training)
            out, layer_states = rnn.cell(x, layers[i], training=False)
            new_states.append(list(layer_states))
            x = out + x if i > 0 else out
        queries = ops.reshape(x, (-1, beam, ops.shape(x)[-1]))  # [B, beam, U]
        context, weights = self.attention(queries, keys, memory, mask)
        context = ops.reshape(context, (-1, ops.shape(context)[-1]))
        weights = ops.reshape(weights, (-1, ops.shape(weights)[-1]))
        attentional = self.combine(ops.concatenate([context, x], axis=-1))
        attentional = self.dropout(attentional, training=training)
        if self.input_feeding:
            new_states.append([attentional])
        return attentional, new_states, weights

    def step(self, tokens, states, memory, keys, mask, beam: int = 1):
        """One search step: ``tokens [B*beam]`` -> logits ``[B*beam, V]``, new states, weights
        ``[B*beam, S]``; ``memory``, ``keys`` and ``mask`` hold ``B`` sentences (see _step)."""
        attentional, new_states, weights = self._step(
            self.embedding(tokens), states, memory, keys, mask, beam=beam
        )
        return self.logits(attentional), new_states, weights

    def get_config(self):
        return {**super().get_config(), **self.args}


@keras.saving.register_keras_serializable(package="s2s")
class Bridge(keras.layers.Layer):
    """How the decoder starts from the encoder's final states ``[B, 2U]`` (one per state tensor).

    ``final``: as they are (default); ``projection``: ``tanh(W s + b)``, one learned layer per
    state tensor; ``zeros``: the decoder starts from zeros and learns everything from attention.
    """

    KINDS = BRIDGES

    def __init__(self, kind: str = "final", units: int = 512, num_states: int = 1, **kwargs):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"unknown bridge {kind!r}; choose from {', '.join(self.KINDS)}")
        self.kind, self.units, self.num_states = kind, units, num_states
        self.projections = [
            keras.layers.Dense(units, activation="tanh", name=f"state_{i}")
            for i in range(num_states if kind == "projection" else 0)
        ]

    def call(self, final: list) -> list:
        if self.kind == "zeros":
            return [ops.zeros_like(s) for s in final]
        if self.kind == "final":
            return list(final)
        return [proj(s) for proj, s in zip(self.projections, final, strict=True)]

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "units": self.units,
            "num_states": self.num_states,
        }
