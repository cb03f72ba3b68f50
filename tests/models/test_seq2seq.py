import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s.models.encoder import WordDropout
from s2s.models.loss import sequence_loss
from s2s.models.seq2seq import Seq2Seq
from s2s.text.vocab import BOS_ID
from tests.helpers import random_batch, random_model


@pytest.mark.parametrize("cell", ["lstm", "gru", "mgu", "rnn"])
def test_padding_never_changes_a_sentence_encoding_or_loss(cell):
    model = random_model(cell=cell, layers=2)
    src = np.array([[5, 6, 7, 8]], np.int32)
    tgt_in, tgt_out = np.array([[BOS_ID, 9, 10]], np.int32), np.array([[9, 10, 3]], np.int32)
    pad = lambda x, n: np.pad(x, [[0, 0], [0, n]])  # noqa: E731
    memory, _, _, states = model.encode(src)
    memory_p, _, _, states_p = model.encode(pad(src, 5))
    np.testing.assert_allclose(memory, memory_p[:, :4], rtol=1e-5, atol=1e-6)
    for a, b in zip(tf.nest.flatten(states), tf.nest.flatten(states_p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    loss = sequence_loss(model((src, tgt_in)), tgt_out, 0.1)
    loss_p = sequence_loss(model((pad(src, 5), pad(tgt_in, 3))), pad(tgt_out, 3), 0.1)
    np.testing.assert_allclose([float(x) for x in loss], [float(x) for x in loss_p], rtol=1e-5)


@pytest.mark.parametrize(
    "cell,attention,layers,feeding",
    [
        ("lstm", "general", 1, False),
        ("lstm", "dot", 2, False),
        ("lstm", "additive", 1, False),
        ("gru", "general", 2, False),
        ("gru", "additive", 1, False),
        ("lstm", "general", 1, True),
        ("lstm", "additive", 2, True),
        ("gru", "dot", 2, True),
        ("mgu", "general", 2, False),
        ("mgu", "additive", 1, True),
        ("rnn", "dot", 2, False),
        ("rnn", "general", 1, True),
    ],
)
def test_stepping_through_the_reference_reproduces_teacher_forced_logits(
    cell, attention, layers, feeding
):
    model = random_model(cell=cell, attention=attention, layers=layers, input_feeding=feeding)
    rng = np.random.default_rng(1)
    src = random_batch(rng, 3, 6, 50)
    tgt_in = np.concatenate([np.full((3, 1), BOS_ID), rng.integers(4, 40, (3, 4))], 1)
    forced = model((src, tgt_in)).numpy()
    memory, keys, mask, states = model.encode(src)
    for t in range(tgt_in.shape[1]):
        logits, states, weights = model.decode_step(tgt_in[:, t], states, memory, keys, mask)
        np.testing.assert_allclose(logits, forced[:, t], rtol=1e-4, atol=1e-4)
        assert np.all(weights.numpy()[src == 0] == 0)


@pytest.mark.parametrize(
    "cell,feeding,bridge,tie",
    [
        ("lstm", False, "final", False),
        ("lstm", True, "projection", True),
        ("mgu", False, "zeros", False),
    ],
)
def test_saved_and_reloaded_model_gives_identical_logits(tmp_path, cell, feeding, bridge, tie):
    model = random_model(
        cell=cell,
        attention="additive",
        layers=2,
        input_feeding=feeding,
        bridge=bridge,
        tie_embeddings=tie,
    )
    src = np.array([[5, 6, 7, 0]], np.int32)
    tgt_in = np.array([[BOS_ID, 9, 10]], np.int32)
    model.save(tmp_path / "m.keras")
    clone = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert isinstance(clone, Seq2Seq)
    assert clone.get_config()["attention"] == "additive"
    np.testing.assert_array_equal(model((src, tgt_in)).numpy(), clone((src, tgt_in)).numpy())


@pytest.mark.parametrize("bridge,tie", [("projection", False), ("zeros", True)])
def test_bridges_and_tied_embeddings_keep_search_and_training_in_step(bridge, tie):
    model = random_model(cell="lstm", layers=2, bridge=bridge, tie_embeddings=tie)
    rng = np.random.default_rng(2)
    src = random_batch(rng, 3, 6, 50)
    tgt_in = np.concatenate([np.full((3, 1), BOS_ID), rng.integers(4, 40, (3, 4))], 1)
    forced = model((src, tgt_in)).numpy()
    memory, keys, mask, states = model.encode(src)
    if bridge == "zeros":
        assert not any(np.any(s.numpy()) for s in tf.nest.flatten(states))
    for t in range(tgt_in.shape[1]):
        logits, states, _ = model.decode_step(tgt_in[:, t], states, memory, keys, mask)
        np.testing.assert_allclose(logits, forced[:, t], rtol=1e-4, atol=1e-4)
    names = [v.path for v in model.trainable_variables]
    assert any("bridge" in n for n in names) == (bridge == "projection")
    assert any("output_proj" in n for n in names) != tie


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
def test_a_float16_training_step_on_all_padding_rows_has_a_finite_loss(attention):
    """The bucket top-up rows are all padding; under mixed_float16 they used to make NaN."""
    from s2s.models.precision import precision

    rng = np.random.default_rng(0)
    src, tgt = random_batch(rng, 4, 7, 50), random_batch(rng, 4, 6, 40, min_len=2)
    src[2:], tgt[2:] = 0, 0  # two top-up rows of padding only
    batch = tf.data.Dataset.from_tensors(((src, tgt[:, :-1]), tgt[:, 1:]))
    with precision("mixed_float16"):
        model = random_model(attention=attention, sharpen=1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), clipnorm=5.0, jit_compile=False)
    history = model.fit(batch, epochs=1, verbose=0).history
    assert model.decoder.compute_dtype == "float16"
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["grad_norm"][0])
    assert all(np.isfinite(v.numpy()).all() for v in model.trainable_weights)


def test_word_dropout_drops_whole_tokens_in_training_only():
    layer = WordDropout(0.5)
    x = np.ones((8, 64, 16), np.float32)
    y = np.asarray(layer(x, training=True))
    kept = y[..., 0] > 0
    assert np.all(y[kept] == 2.0) and np.all(y[~kept] == 0.0)  # a position goes whole
    assert 0.35 < kept.mean() < 0.65
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_word_dropout_reaches_both_sides_and_changes_only_training():
    rng = np.random.default_rng(0)
    src, tgt_in = random_batch(rng, 4, 9, 50), random_batch(rng, 4, 7, 40)

    def outputs(word_dropout: float):
        keras.utils.set_random_seed(0)
        model = Seq2Seq(50, 40, 16, 16, attention_dim=16, word_dropout=word_dropout)
        train = [model((src, tgt_in), training=True) for _ in range(2)]
        return model, train, [model((src, tgt_in)) for _ in range(2)]

    model, (a, b), (c, d) = outputs(0.3)
    assert model.encoder.word_dropout.rate == model.decoder.word_dropout.rate == 0.3
    assert not np.allclose(a, b)  # tokens dropped at random in training ...
    np.testing.assert_array_equal(c, d)  # ... and never outside it
    _, (a, b), _ = outputs(0.0)
    np.testing.assert_array_equal(a, b)  # (nothing else in this model is random)
