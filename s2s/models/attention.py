"""Attention over the encoder memory: Luong ``dot`` and ``general``, Bahdanau ``additive``.

Keys are computed from the memory once per sentence (:meth:`Attention.keys`) and reused at
every decoder step. Shapes: query ``[B, T, Dq]``, memory ``[B, S, Dm]``, mask ``[B, S]``.
"""

from __future__ import annotations

import keras
from keras import ops

from s2s.config.choices import ATTENTION as KINDS


def masked_score(dtype) -> float:
    """The score given to padded memory slots: very negative, yet finite in ``dtype``.

    Not ``-inf``: a fully padded row (bucket top-up rows, an empty sentence) must give a
    uniform softmax, not NaN. ``-1e9`` is ``-inf`` in float16, so float16 uses ``-3e4`` (as
    Keras's own softmax does); ``exp(-3e4 - max)`` is still exactly 0 next to any real score.
    """
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9


@keras.saving.register_keras_serializable(package="s2s")
class Attention(keras.layers.Layer):
    """Scores queries against the memory and returns ``(context [B,T,Dm], weights [B,T,S])``.

    - ``dot``: ``score = q · m`` (needs ``Dq == Dm``)
    - ``general``: ``score = q · (W m)``
    - with ``scaled``, ``dot`` and ``general`` scores are divided by ``sqrt(Dq)``
    - ``additive``: ``score = v · tanh(W_q q + W_k m)``

    Example:
    >>> att = Attention("general", query_dim=8)
    >>> memory = keras.random.normal((2, 5, 6)); query = keras.random.normal((2, 3, 8))
    >>> context, weights = att(query, att.keys(memory), memory, ops.ones((2, 5), "bool"))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(
        self,
        kind: str = "general",
        query_dim: int = 512,
        units: int = 256,
        scaled: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"unknown attention {kind!r}; choose from {', '.join(KINDS)}")
        self.kind, self.query_dim, self.units, self.scaled = kind, query_dim, units, scaled
        if kind == "general":
            self.key_proj = keras.layers.Dense(query_dim, use_bias=False, name="key_proj")
        elif kind == "additive":
            self.key_proj = keras.layers.Dense(units, use_bias=False, name="key_proj")
            self.query_proj = keras.layers.Dense(units, use_bias=True, name="query_proj")
            self.energy = keras.layers.Dense(1, use_bias=False, name="energy")

    def keys(self, memory):
        """What the scores compare queries with; computed once per sentence."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def call(self, query, keys, memory, mask):
        if self.kind == "additive":
            hidden = ops.tanh(self.query_proj(query)[:, :, None, :] + keys[:, None, :, :])
            scores = ops.squeeze(self.energy(hidden), -1)
        else:
            scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
            if self.scaled:  # keeps the softmax from saturating before alignment is learned
                scores = scores / ops.sqrt(ops.cast(self.query_dim, scores.dtype))
        scores = ops.where(
            mask[:, None, :], scores, ops.cast(masked_score(scores.dtype), scores.dtype)
        )
        weights = ops.softmax(scores, axis=-1)
        return ops.matmul(weights, memory), weights

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "query_dim": self.query_dim,
            "units": self.units,
            "scaled": self.scaled,
        }
