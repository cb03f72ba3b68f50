"""The output layer shared by the decoder and the language model when it is tied to the target
embeddings (Press & Wolf 2017): ``logits = x E^T + b``, one matrix for reading and writing."""

from __future__ import annotations

from keras import ops


def tied_logits(x, embedding, bias):
    """``x [..., E]`` -> logits ``[..., V]`` through the embedding matrix ``E [V, E]`` of the
    ``keras.layers.Embedding`` ``embedding``, plus ``bias [V]``."""
    return ops.matmul(x, ops.transpose(embedding.embeddings)) + bias
