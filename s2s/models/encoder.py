"""The encoder: embeddings and stacked bidirectional RNNs over the source pieces."""

from __future__ import annotations

import keras
from keras import ops

from s2s.models.cells import recurrent_layer
from s2s.text.vocab import PAD_ID


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
