"""Encoder, decoder and the Seq2Seq model that ties them together.

The decoder has two ways to run, sharing every weight:
- :meth:`Decoder.call`: the whole target sequence at once (teacher forcing, training);
- :meth:`Decoder.step`: one token for a batch of hypotheses (search).
``tests/test_model.py`` checks that stepping through the reference reproduces the teacher-forced
logits.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from s2s.attention import Attention
from s2s.cells import recurrent_layer, state_count
from s2s.choices import BRIDGES
from s2s.loss import sequence_loss
from s2s.vocab import PAD_ID


class WordDropout(keras.layers.Dropout):
    """Drops whole tokens: an embedding ``[B, T, E]`` loses each position's vector with
    probability ``rate`` (the rest scaled by ``1 / (1 - rate)``), so the model learns to read a
    sentence with words missing (Sennrich & Zhang 2019 found it among the regularisers that
    matter most on small corpora). Identity outside training."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(rate, noise_shape=(None, None, 1), **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return config


@keras.saving.register_keras_serializable(package="s2s")
class Encoder(keras.layers.Layer):
    """Embeddings and stacked bidirectional RNNs.

    ``call(src [B,S])`` returns the memory ``[B, S, 2U]``, the final states of the last layer
    (each ``[B, 2U]``, forward and backward concatenated) and the source mask ``[B, S]``.
    Padding (id 0) is masked, so a sentence encodes the same whatever it is padded to.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.args = dict(
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=num_layers,
            cell=cell,
            dropout=dropout,
            word_dropout=word_dropout,
        )
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        # The backward layer is given, not left to Bidirectional to clone from the forward one:
        # cloning serialises the same layer twice, and inside keras.saving.load_model that
        # records object ids which a later layer can reuse once the clone's source is freed
        # (Keras then hands back an earlier cell in place of a new layer).
        self.rnns = [
            keras.layers.Bidirectional(
                recurrent_layer(cell, units),
                backward_layer=recurrent_layer(cell, units, go_backwards=True),
                name=f"birnn_{i}",
            )
            for i in range(num_layers)
        ]
        self.dropout = keras.layers.Dropout(dropout)
        self.word_dropout = WordDropout(word_dropout)

    def call(self, src, training=False):
        mask = ops.not_equal(src, PAD_ID)
        x = self.dropout(
            self.word_dropout(self.embedding(src), training=training), training=training
        )
        for i, rnn in enumerate(self.rnns):
            if i > 0:
                x = self.dropout(x, training=training)
            out, *states = rnn(x, mask=mask, training=training)
            x = out + x if i > 0 else out  # residual from the second layer on
        half = len(states) // 2
        final = [ops.concatenate([states[j], states[half + j]], axis=-1) for j in range(half)]
        return x, final, mask

    def get_config(self):
        return {**super().get_config(), **self.args}


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
            return ops.matmul(attentional, ops.transpose(self.embedding.embeddings)) + (
                self.output_bias
            )
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


@keras.saving.register_keras_serializable(package="s2s")
class Seq2Seq(keras.Model):
    """Bidirectional RNN encoder + attention decoder, trained with teacher forcing.

    ``model((src [B,S], tgt_in [B,T]))`` returns logits ``[B, T, V_tgt]``. For search use
    :meth:`encode` once and :meth:`decode_step` per token.

    Example:
    >>> model = Seq2Seq(src_vocab_size=100, tgt_vocab_size=90, embedding_dim=8,
    ...                 encoder_units=8, attention_dim=8)
    >>> src = ops.convert_to_tensor([[5, 6, 7, 0]]); tgt_in = ops.convert_to_tensor([[2, 9, 10]])
    >>> tuple(model((src, tgt_in)).shape)
    (1, 3, 90)
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embedding_dim: int = 256,
        encoder_units: int = 256,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        cell: str = "lstm",
        attention: str = "general",
        attention_dim: int = 256,
        dropout: float = 0.0,
        input_feeding: bool = False,
        bridge: str = "final",
        tie_embeddings: bool = False,
        attention_scaled: bool = False,
        word_dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hparams = dict(
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            embedding_dim=embedding_dim,
            encoder_units=encoder_units,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            cell=cell,
            attention=attention,
            attention_dim=attention_dim,
            dropout=dropout,
            input_feeding=input_feeding,
            bridge=bridge,
            tie_embeddings=tie_embeddings,
            attention_scaled=attention_scaled,
            word_dropout=word_dropout,
        )
        self.encoder = Encoder(
            src_vocab_size,
            embedding_dim,
            encoder_units,
            encoder_layers,
            cell,
            dropout,
            word_dropout,
            name="encoder",
        )
        self.bridge = Bridge(bridge, 2 * encoder_units, state_count(cell), name="bridge")
        self.decoder = Decoder(
            tgt_vocab_size,
            embedding_dim,
            2 * encoder_units,
            num_layers=decoder_layers,
            cell=cell,
            attention=attention,
            attention_dim=attention_dim,
            dropout=dropout,
            input_feeding=input_feeding,
            tie_embeddings=tie_embeddings,
            attention_scaled=attention_scaled,
            word_dropout=word_dropout,
            name="decoder",
        )
        self.label_smoothing = 0.0
        self.clipnorm: float | None = None
        self.sequence_loss = sequence_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.tokens_tracker = keras.metrics.Sum(name="tokens")

    @classmethod
    def from_config_dict(cls, model_config: dict, src_vocab_size: int, tgt_vocab_size: int):
        """Build from the ``model`` section of a run config."""
        return cls(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **model_config)

    def encode(self, src, training=False):
        """Returns ``(memory, keys, mask, decoder initial states)``."""
        memory, final, mask = self.encoder(src, training=training)
        keys = self.decoder.attention.keys(memory)
        return memory, keys, mask, self.decoder.initial_state(self.bridge(final))

    def decode_step(self, tokens, states, memory, keys, mask, beam: int = 1):
        """``tokens [B*beam]`` of ``beam`` hypotheses per sentence of ``memory [B, S, D]``."""
        return self.decoder.step(tokens, states, memory, keys, mask, beam=beam)

    def call(self, inputs, training=False):
        src, tgt_in = inputs
        memory, keys, mask, states = self.encode(src, training=training)
        return self.decoder(tgt_in, memory, keys, mask, states, training=training)

    # -- training ---------------------------------------------------------------------------

    def compile(
        self,
        optimizer,
        label_smoothing: float = 0.0,
        clipnorm: float | None = None,
        sequence_loss=sequence_loss,
        **kwargs,
    ):
        """``sequence_loss(logits, targets, label_smoothing) -> (loss, nll, tokens)`` (see
        :mod:`s2s.loss`), ``label_smoothing`` and global-norm ``clipnorm`` are used by
        :meth:`train_step` and :meth:`test_step`."""
        super().compile(optimizer=optimizer, **kwargs)
        _apply_gradients_as_given(self.optimizer)
        self.label_smoothing, self.clipnorm = label_smoothing, clipnorm
        self.sequence_loss = sequence_loss

    @property
    def metrics(self):
        return [self.loss_tracker, self.nll_tracker, self.grad_norm_tracker, self.tokens_tracker]

    def _sequence_losses(self, data, training):
        (src, tgt_in), tgt_out = data
        logits = self((src, tgt_in), training=training)
        return self.sequence_loss(logits, tgt_out, self.label_smoothing)

    def train_step(self, data):
        """One update. Under a ``tf.distribute`` strategy each replica holds part of the global
        batch; its loss is weighted by its share of the global token count and the gradients
        are summed over replicas before clipping, so the update is the one a single device
        would make on the whole batch. The optimizer applies the sum as it is (one all-reduce
        per gradient, not two: see :func:`_apply_gradients_as_given`)."""
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        scale = self.optimizer.scale_loss(tf.constant(1.0))  # mixed_float16 loss scale, else 1
        with tf.GradientTape() as tape:
            loss, nll, tokens = self._sequence_losses(data, training=True)
            if replicas > 1:
                total = replica.all_reduce("sum", tokens)
                share = tokens / tf.maximum(total, 1.0)
                loss, nll, tokens = loss * share, nll * share, total
            scaled_loss = loss * scale
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        if replicas > 1:
            grads = replica.all_reduce("sum", grads)
            loss, nll = replica.all_reduce("sum", [loss, nll])  # the global means, for the logs
        if self.clipnorm:  # scaled gradients: clipping at clipnorm * scale clips at clipnorm
            grads, norm = tf.clip_by_global_norm(grads, self.clipnorm * scale)
        else:
            norm = tf.linalg.global_norm(grads)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update_metrics(loss, nll, tokens, norm / scale, replicas)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy Keras builds the model by reducing the first batch across replicas,
        # which fails under MultiWorkerMirroredStrategy (keras-team/keras#20585). Nothing is
        # left to build here: the model and its optimizer are built before fit.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def test_step(self, data):
        loss, nll, tokens = self._sequence_losses(data, training=False)
        return self._update_metrics(loss, nll, tokens)

    def _update_metrics(self, loss, nll, tokens, grad_norm=None, replicas: int = 1):
        """Update the trackers; returns this step's logs.

        With ``replicas > 1`` the values are global and the same on every replica: each
        replica counts ``1 / replicas`` of the tokens, so the trackers, which are summed over
        replicas when read at the end of an epoch, hold the global figures, and every
        replica's logs are the global figures.
        """
        weight = tokens / replicas if replicas > 1 else tokens
        self.loss_tracker.update_state(loss, sample_weight=weight)
        self.nll_tracker.update_state(nll, sample_weight=weight)
        self.tokens_tracker.update_state(weight)
        trackers = [self.loss_tracker, self.nll_tracker, self.tokens_tracker]
        if grad_norm is not None:
            self.grad_norm_tracker.update_state(grad_norm)
            trackers.append(self.grad_norm_tracker)
        logs = {m.name: m.result() for m in trackers}
        logs["tokens"] = logs["tokens"] * replicas
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages step logs across workers over axis 0, which scalars lack.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    # -- saving -----------------------------------------------------------------------------

    def get_config(self):
        return {**super().get_config(), **self.hparams}

    def get_build_config(self):
        return {"build_by_calling": True}

    def build_from_config(self, config):
        """Create every weight by running a one-token batch (shapes are not known statically)."""
        one = ops.ones((1, 2), dtype="int32")
        self((one, one))


def _apply_gradients_as_given(optimizer) -> None:
    """Stop ``optimizer`` from summing the gradients over replicas inside ``apply``.

    Keras's TensorFlow optimizer all-reduces the gradients it is given. :meth:`Seq2Seq.train_step`
    has summed them already, because clipping must see the global gradient's norm; a second
    sum doubled each step's traffic (and the step then divided by the replica count to undo
    it). Outside a replica context Keras's reduction does nothing, so one device is unaffected.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps one
    if not hasattr(inner, "_all_reduce_sum_gradients"):
        raise RuntimeError(
            f"{type(inner).__name__} has no _all_reduce_sum_gradients: this Keras version "
            "reduces gradients elsewhere; review Seq2Seq.train_step before training"
        )
    inner._all_reduce_sum_gradients = list  # [(grad, var), ...] -> the same pairs
