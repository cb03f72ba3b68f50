"""The recurrent family the encoder and decoder are built from: LSTM, GRU, MGU and the plain RNN.

Each layer returns its full output sequence and its final states; its ``cell`` is what the
decoder's one-step function calls at search time, so both paths share the same weights and math.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="s2s")
class Orthogonal(keras.initializers.Orthogonal):
    """Keras's orthogonal initializer, computed in float32 whatever the weight's dtype, then cast:
    TensorFlow has no bfloat16 QR, so a model built under the ``bfloat16`` policy (weights
    stored in bfloat16 for decoding) could not be created with the stock one. Float32 weights
    get exactly the stock initializer's values."""

    def __call__(self, shape, dtype=None):
        return ops.cast(super().__call__(shape, dtype="float32"), dtype or "float32")


@keras.saving.register_keras_serializable(package="s2s")
class MGUCell(keras.layers.Layer):
    """Minimal gated unit (Zhou et al., 2016): one forget gate, one candidate.

    ``f = σ(W_f [h, x] + b_f)``, ``h~ = tanh(W_h [f ⊙ h, x] + b_h)``, ``h' = (1 - f) ⊙ h + f ⊙ h~``.
    Half the recurrent parameters of an LSTM of the same width (2 blocks instead of 4).

    Example:
    >>> layer = keras.layers.RNN(MGUCell(8), return_sequences=True, return_state=True)
    >>> out, h = layer(keras.random.normal((2, 5, 3)))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 5, 8), (2, 8))
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        d, u = input_shape[-1], self.units
        self.kernel = self.add_weight(
            shape=(d, 2 * u), initializer="glorot_uniform", name="kernel"
        )  # x -> [forget, candidate]
        self.recurrent_kernel = self.add_weight(
            shape=(u, 2 * u), initializer=Orthogonal(), name="recurrent_kernel"
        )  # h -> [forget, candidate]
        self.bias = self.add_weight(shape=(2 * u,), initializer="zeros", name="bias")

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        u = self.units
        x_f, x_h = ops.split(ops.matmul(inputs, self.kernel) + self.bias, 2, axis=-1)
        f = ops.sigmoid(x_f + ops.matmul(h, self.recurrent_kernel[:, :u]))
        candidate = ops.tanh(x_h + ops.matmul(f * h, self.recurrent_kernel[:, u:]))
        h_new = (1.0 - f) * h + f * candidate
        return h_new, [h_new]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _mgu(units: int, **kwargs) -> keras.layers.RNN:
    return keras.layers.RNN(MGUCell(units), **kwargs)


CELLS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "mgu": _mgu,
    "rnn": keras.layers.SimpleRNN,
}


def recurrent_layer(
    cell: str, units: int, name: str | None = None, go_backwards: bool = False
) -> keras.layers.RNN:
    """A sequence-to-sequence recurrent layer of type ``cell`` with ``units`` units."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
    kwargs = {"reset_after": True} if cell == "gru" else {}
    if cell != "mgu":  # MGUCell picks its own
        kwargs["recurrent_initializer"] = Orthogonal()
    return CELLS[cell](
        units,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        name=name,
        **kwargs,
    )


def state_count(cell: str) -> int:
    """How many state tensors one layer of ``cell`` carries (LSTM: h and c; the others: h)."""
    return 2 if cell == "lstm" else 1
