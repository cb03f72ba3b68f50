import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s.models.cells import MGUCell, recurrent_layer, state_count


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_mgu_step_follows_its_equations():
    keras.utils.set_random_seed(0)
    cell = MGUCell(3)
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(2, 4)).astype("float32"), rng.normal(size=(2, 3)).astype("float32")
    out, [state] = cell(x, [h])
    w, u, b = (v.numpy() for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    f = sigmoid(x @ w[:, :3] + h @ u[:, :3] + b[:3])
    candidate = np.tanh(x @ w[:, 3:] + (f * h) @ u[:, 3:] + b[3:])
    expected = (1 - f) * h + f * candidate
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out, state)


def test_mgu_gradients_match_finite_differences():
    keras.utils.set_random_seed(1)
    cell = MGUCell(3)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 4)), tf.float64)
    h = tf.constant(rng.normal(size=(2, 3)), tf.float64)
    cell.build((None, 4))
    weights = [tf.cast(v, tf.float64) for v in (cell.kernel, cell.recurrent_kernel, cell.bias)]

    def step(x, h, kernel, recurrent, bias):
        cell.kernel, cell.recurrent_kernel, cell.bias = kernel, recurrent, bias
        return cell.call(x, [h])[0]

    theoretical, numerical = tf.test.compute_gradient(step, [x, h, *weights])
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "mgu", "rnn"])
def test_every_cell_gives_sequences_and_final_states(cell):
    layer = recurrent_layer(cell, 5)
    out, *states = layer(keras.random.normal((2, 7, 3)))
    assert tuple(out.shape) == (2, 7, 5) and len(states) == state_count(cell)
    np.testing.assert_allclose(out[:, -1], states[0], rtol=1e-6)


def test_lstm_and_gru_layers_keep_every_condition_of_the_cudnn_kernel():
    # On a GPU Keras picks cuDNN only for these settings and right-padded masks (the pipeline
    # pads on the right); this machine has no GPU, so the conditions are checked instead.
    import keras

    from tests.helpers import random_model

    for cell in ("lstm", "gru"):
        model = random_model(cell=cell, layers=2)
        layers = [
            layer
            for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.LSTM | keras.layers.GRU)
        ]
        assert len(layers) >= 3  # the encoder's two directions and the decoder
        for layer in layers:
            c = layer.cell
            assert c.recurrent_dropout == 0 and c.dropout == 0 and c.use_bias
            assert c.activation is keras.activations.tanh
            assert c.recurrent_activation is keras.activations.sigmoid
            assert not layer.unroll and layer.use_cudnn == "auto"
            assert cell == "lstm" or c.reset_after
