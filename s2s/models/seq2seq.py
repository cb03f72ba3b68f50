"""The encoder-decoder translation model: :class:`Seq2Seq` ties the encoder, the bridge and the
attention decoder together and trains as a :class:`~s2s.models.base.SequenceModel`."""

from __future__ import annotations

import keras
from keras import ops

from s2s.models.base import SequenceModel
from s2s.models.cells import state_count
from s2s.models.decoder import Bridge, Decoder
from s2s.models.encoder import Encoder


@keras.saving.register_keras_serializable(package="s2s")
class Seq2Seq(SequenceModel):
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

    def logits_for(self, src, tgt_in, training=False):
        return self((src, tgt_in), training=training)

    def vocabulary_weights(self) -> list[tuple]:
        """``(variable, side, axis)`` of every weight indexed by piece ids: which vocabulary
        (``src`` or ``tgt``) its ``axis`` runs over (for a new vocabulary's shared rows)."""
        decoder = self.decoder
        found = [
            (self.encoder.embedding.embeddings, "src", 0),
            (decoder.embedding.embeddings, "tgt", 0),
        ]
        if decoder.tie_embeddings:
            return [*found, (decoder.output_bias, "tgt", 0)]
        return [
            *found,
            (decoder.output_proj.kernel, "tgt", 1),
            (decoder.output_proj.bias, "tgt", 0),
        ]

    # -- saving -----------------------------------------------------------------------------

    def get_config(self):
        return {**super().get_config(), **self.hparams}

    def get_build_config(self):
        return {"build_by_calling": True}

    def build_from_config(self, config):
        """Create every weight by running a one-token batch (shapes are not known statically)."""
        one = ops.ones((1, 2), dtype="int32")
        self((one, one))
