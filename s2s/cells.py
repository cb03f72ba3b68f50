"""The recurrent layers the encoder and decoder are built from.

Each layer returns its full output sequence and its final states; its ``cell`` is what the
decoder's one-step function calls at search time, so both paths share the same weights and math.
"""

from __future__ import annotations

import keras

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def recurrent_layer(cell: str, units: int, name: str | None = None) -> keras.layers.RNN:
    """A sequence-to-sequence recurrent layer of type ``cell`` with ``units`` units."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
    kwargs = {"reset_after": True} if cell == "gru" else {}
    return CELLS[cell](units, return_sequences=True, return_state=True, name=name, **kwargs)


def state_count(cell: str) -> int:
    """How many state tensors one layer of ``cell`` carries (LSTM: h and c; GRU: h)."""
    return 2 if cell == "lstm" else 1
