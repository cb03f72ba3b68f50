import keras
import numpy as np
import pytest
from keras import ops

from s2s.models.attention import Attention


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_padding_gets_no_weight_and_does_not_change_the_context(kind):
    rng = np.random.default_rng(0)
    att = Attention(kind, query_dim=6, units=5)
    memory = rng.normal(size=(1, 4, 6)).astype("float32")
    query = rng.normal(size=(1, 3, 6)).astype("float32")
    mask = np.array([[True, True, True, False]])
    padded = memory.copy()
    padded[0, 3] = 100.0  # whatever sits in a padded slot
    context, weights = att(query, att.keys(memory), memory, mask)
    context2, _ = att(query, att.keys(padded), padded, mask)
    short_context, _ = att(query, att.keys(memory[:, :3]), memory[:, :3], mask[:, :3])
    assert np.all(ops.convert_to_numpy(weights)[..., 3] == 0.0)
    np.testing.assert_allclose(ops.sum(weights, -1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(context, context2, rtol=1e-6)
    np.testing.assert_allclose(context, short_context, rtol=1e-5, atol=1e-6)


def test_a_fully_padded_row_gives_finite_output():
    att = Attention("general", query_dim=4)
    memory = np.zeros((1, 3, 4), "float32")
    context, _ = att(
        np.ones((1, 2, 4), "float32"), att.keys(memory), memory, np.zeros((1, 3), bool)
    )
    assert np.isfinite(ops.convert_to_numpy(context)).all()


def test_config_round_trip():
    att = Attention("additive", query_dim=8, units=3, name="a")
    clone = Attention.from_config(att.get_config())
    assert (clone.kind, clone.query_dim, clone.units) == ("additive", 8, 3)
    assert keras.saving.get_registered_object("s2s>Attention") is Attention


def test_scaled_scores_are_divided_by_the_square_root_of_the_query_width():

    query, memory = keras.random.normal((2, 3, 16), seed=1), keras.random.normal((2, 5, 16), seed=2)
    mask = np.ones((2, 5), bool)
    plain = Attention("dot", query_dim=16)
    scaled = Attention("dot", query_dim=16, scaled=True)
    _, w_plain = plain(query, plain.keys(memory), memory, mask)
    _, w_scaled = scaled(query, scaled.keys(memory), memory, mask)
    scores = np.einsum("btd,bsd->bts", np.asarray(query), np.asarray(memory)) / 4.0
    expected = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    np.testing.assert_allclose(w_scaled, expected, rtol=1e-5)
    assert np.asarray(w_plain).max() > np.asarray(w_scaled).max()  # sharper without scaling


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_a_fully_padded_row_is_finite_in_float16(kind):
    """-1e9 is -inf in float16: a fully masked row then gave a softmax of NaN."""
    from s2s.models.precision import precision

    with precision("mixed_float16"):
        att = Attention(kind, query_dim=4, units=3)
    memory = np.ones((2, 3, 4), "float16")
    mask = np.array([[True, True, False], [False, False, False]])
    context, weights = att(np.ones((2, 2, 4), "float16"), att.keys(memory), memory, mask)
    assert weights.dtype == "float16"
    assert np.isfinite(ops.convert_to_numpy(context)).all()
    np.testing.assert_allclose(ops.convert_to_numpy(weights)[1], 1 / 3, rtol=1e-3)
    assert np.all(ops.convert_to_numpy(weights)[0, :, 2] == 0.0)
