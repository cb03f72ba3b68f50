"""The training loss: masked, label-smoothed token cross-entropy.

Label smoothing moves ``e`` of each target's probability mass onto the tokens a target can be:
every id but ``<pad>`` and ``<s>``, which never occur as targets (as Joey NMT's ``XentLoss``
leaves out ``<pad>``). Padding positions (target id 0) count nothing.
"""

from __future__ import annotations

import tensorflow as tf

from s2s.text.vocab import BOS_ID, PAD_ID

NEVER_TARGETS = (PAD_ID, BOS_ID)


def sequence_loss(logits, targets, label_smoothing: float = 0.0):
    """``logits [B, T, V]``, ``targets [B, T]`` -> ``(loss, nll, tokens)``, scalars in float32.

    Per token, ``loss = (1 - e) * nll + e * mean_{v in A}(-log p_v)`` where ``A`` is the
    vocabulary without ``<pad>`` and ``<s>``; ``nll`` is the unsmoothed ``-log p_target``. Both
    are averaged over the non-padding tokens; ``tokens`` is their count.
    """
    logits = tf.cast(logits, tf.float32)
    mask = tf.cast(tf.not_equal(targets, PAD_ID), tf.float32)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    per_token = nll
    if label_smoothing:
        vocab = tf.shape(logits)[-1]
        allowed = tf.reduce_sum(logits, axis=-1) - tf.add_n([logits[..., i] for i in NEVER_TARGETS])
        mean_allowed = allowed / tf.cast(vocab - len(NEVER_TARGETS), tf.float32)
        uniform = tf.reduce_logsumexp(logits, axis=-1) - mean_allowed
        per_token = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    tokens = tf.reduce_sum(mask)
    denominator = tf.maximum(tokens, 1.0)
    return (
        tf.reduce_sum(per_token * mask) / denominator,
        tf.reduce_sum(nll * mask) / denominator,
        tokens,
    )
