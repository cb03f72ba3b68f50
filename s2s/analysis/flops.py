"""Model FLOPs counted layer by layer from the config and the padded batch shapes, for MFU
figures (multiply-add = 2 FLOPs; a backward pass = 2 x the forward pass)."""

from __future__ import annotations

import tensorflow as tf

GATES = {"lstm": 4, "gru": 3, "mgu": 2, "rnn": 1}  # weight blocks per recurrent layer


def encoder_flops(hp: dict, positions: int) -> float:
    """FLOPs of the encoder and the attention keys over ``positions`` source positions."""
    g, e, u, a = GATES[hp["cell"]], hp["embedding_dim"], hp["encoder_units"], hp["attention_dim"]
    h = 2 * u
    flops = 0.0
    for layer in range(hp["encoder_layers"]):  # two directions
        d_in = e if layer == 0 else 2 * u
        flops += positions * 2 * (2 * g * u * (d_in + u))
    if hp["attention"] == "general":
        flops += positions * 2 * (2 * u) * h  # keys
    elif hp["attention"] == "additive":
        flops += positions * 2 * (2 * u) * a  # keys
    return flops


def decoder_flops(hp: dict, positions: int, src_len: int) -> float:
    """FLOPs of the decoder (cells, attention over ``src_len`` positions, attentional vector,
    output projection) at ``positions`` target positions."""
    g, e, u, a = GATES[hp["cell"]], hp["embedding_dim"], hp["encoder_units"], hp["attention_dim"]
    h, v = 2 * u, hp["tgt_vocab_size"]
    flops = 0.0
    for layer in range(hp["decoder_layers"]):
        d_in = (e + (a if hp.get("input_feeding") else 0)) if layer == 0 else h
        flops += positions * 2 * g * h * (d_in + h)
    if hp["attention"] == "additive":
        flops += positions * 2 * h * a + positions * src_len * 4 * a  # queries; add, tanh, energy
    else:
        flops += positions * src_len * 2 * h  # scores
    flops += positions * src_len * 2 * (2 * u)  # context
    flops += positions * 2 * (2 * u + h) * a  # attentional vector
    flops += positions * 2 * a * v  # output projection
    return flops


def forward_flops(hp: dict, batch: int, src_len: int, tgt_len: int) -> float:
    """Forward-pass FLOPs of one padded batch, layer by layer (multiply-add = 2 FLOPs)."""
    return encoder_flops(hp, batch * src_len) + decoder_flops(hp, batch * tgt_len, src_len)


def decode_flops(hp: dict, src_lens, out_lens, beam: int) -> float:
    """The FLOPs a search must spend: each sentence encoded once, then ``beam`` hypotheses
    stepped once per token of its translation (``out_lens``, ``</s>`` included). Work on
    padding, on hypotheses past the best one's end, softmax and top-k are not counted."""
    return sum(
        encoder_flops(hp, s) + beam * decoder_flops(hp, n, s)
        for s, n in zip(src_lens, out_lens, strict=True)
    )


def flops_per_target_token(dataset: tf.data.Dataset, hp: dict) -> float:
    """Training FLOPs (3 x forward) per real target token, averaged over one epoch of batches."""
    flops, tokens = 0.0, 0
    for (src, _), tgt_out in dataset:
        b, s = src.shape
        flops += 3 * forward_flops(hp, b, s, tgt_out.shape[1])
        tokens += int(tf.math.count_nonzero(tgt_out))
    return flops / tokens
