"""Recurrent language models: the loss against NumPy, step == call, sampling, scoring, fusion."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s.data.pipeline import Buckets
from s2s.decoding.fusion import LMSearch, ShallowFusion, continue_text
from s2s.decoding.search import beam_search, greedy_search
from s2s.models.language_model import RecurrentLM, sentence_log_probs
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID
from s2s.training.scorers import sentence_batches
from tests.helpers import random_batch, random_model

VOCAB = 40


def tiny_lm(cell="lstm", layers=1, tie=False, seed=0, sharpen=4.0) -> RecurrentLM:
    keras.utils.set_random_seed(seed)
    lm = RecurrentLM(VOCAB, embedding_dim=8, units=8, layers=layers, cell=cell, tie_embeddings=tie)
    lm.build_from_config({})
    kernel = lm.embedding.embeddings if tie else lm.output_proj.kernel
    kernel.assign(kernel.numpy() * sharpen)  # peaked distributions: no near-ties in search
    return lm


def sentences(rng, n=12, max_len=9) -> list[list[int]]:
    return [list(rng.integers(4, VOCAB, size=rng.integers(1, max_len + 1))) for _ in range(n)]


def numpy_lstm_lm_nll(lm: RecurrentLM, tokens_in: np.ndarray, targets: np.ndarray) -> float:
    """Mean -log p(target) over non-padding targets, computed from the weights by hand."""
    embeddings = lm.embedding.embeddings.numpy()
    kernel, recurrent, bias = (w.numpy() for w in lm.rnns[0].cell.weights)
    out_w, out_b = (w.numpy() for w in lm.output_proj.weights)
    units = recurrent.shape[0]
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    total, count = 0.0, 0
    for row_in, row_out in zip(tokens_in, targets, strict=True):
        h, c = np.zeros(units), np.zeros(units)
        for token, target in zip(row_in, row_out, strict=True):
            z = embeddings[token] @ kernel + h @ recurrent + bias  # gates i, f, c, o
            i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            if target != PAD_ID:
                logits = h @ out_w + out_b
                log_z = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
                total += log_z - logits[target]
                count += 1
    return total / count


def test_the_loss_equals_a_numpy_lstm_language_model():
    lm = tiny_lm(sharpen=1.0)
    lm.compile(optimizer="adam")
    rng = np.random.default_rng(0)
    ids = sentences(rng, n=4)
    batch = next(iter(sentence_batches(ids, Buckets((16,), 64))))
    (_, tokens_in), targets = batch
    _, nll, tokens = lm._sequence_losses(batch, training=False)
    assert int(tokens) == sum(len(s) + 1 for s in ids)
    expected = numpy_lstm_lm_nll(lm, tokens_in.numpy(), targets.numpy())
    assert float(nll) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("cell", "layers", "tie"),
    [("lstm", 2, False), ("gru", 2, True), ("mgu", 1, False), ("rnn", 2, False)],
)
def test_step_by_step_equals_the_whole_sequence(cell, layers, tie):
    lm = tiny_lm(cell, layers, tie)
    tokens = random_batch(np.random.default_rng(1), 3, 6, VOCAB, min_len=6)
    tokens[:, 0] = BOS_ID
    whole = lm(tokens).numpy()
    states = lm.initial_state(3)
    for t in range(tokens.shape[1]):
        logits, states = lm.step(tf.constant(tokens[:, t]), states)
        np.testing.assert_allclose(logits.numpy(), whole[:, t], atol=1e-4)


def test_scoring_agrees_with_the_training_loss():
    lm = tiny_lm("gru")
    lm.compile(optimizer="adam")
    ids = sentences(np.random.default_rng(2), n=30)
    log_probs = sentence_log_probs(lm, ids, batch_size=7)
    tokens = sum(len(s) + 1 for s in ids)
    losses = lm.evaluate(sentence_batches(ids, Buckets((8, 16), 64)), verbose=0, return_dict=True)
    assert -log_probs.sum() / tokens == pytest.approx(losses["nll"], rel=1e-5)


def greedy_by_hand(lm, prefix, max_len):
    """Greedy continuation, one full forward pass per token (no states carried), never
    ``<pad>`` or ``<s>``."""
    out = list(prefix)
    for _ in range(max_len):
        logits = lm(np.array([[BOS_ID, *out]], np.int32)).numpy()[0, -1]
        logits[[PAD_ID, BOS_ID]] = -np.inf  # never chosen by search
        out.append(int(np.argmax(logits)))
        if out[-1] == EOS_ID:
            break
    return out[len(prefix) :]


@pytest.mark.parametrize(("prefix", "n"), [([], 1), ([7], 2), ([7, 12, 30], 3)])
def test_greedy_continuation_reads_the_prefix_as_the_model_does(prefix, n):
    lm = tiny_lm("lstm", 2)
    ids, _ = continue_text(lm, prefix, n=n, max_len=8, greedy=True)
    assert len(ids) == n
    expected = greedy_by_hand(lm, prefix, 8)
    for row in ids:
        got = [int(t) for t in row[: len(expected)]]
        assert got == expected


def test_top_k_1_sampling_is_greedy_and_a_seed_fixes_the_samples():
    lm = tiny_lm("gru", sharpen=1.0)
    greedy, _ = continue_text(lm, [5], n=3, max_len=10, greedy=True)
    top1, _ = continue_text(lm, [5], n=3, max_len=10, top_k=1, temperature=2.0, seed=9)
    np.testing.assert_array_equal(top1, greedy)
    one, scores = continue_text(lm, [], n=8, max_len=10, seed=3)
    two, _ = continue_text(lm, [], n=8, max_len=10, seed=3)
    other, _ = continue_text(lm, [], n=8, max_len=10, seed=4)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)
    lengths = np.argmax(one == EOS_ID, axis=1) + 1
    by_scoring = sentence_log_probs(
        lm, [list(r[: n - 1]) for r, n in zip(one, lengths, strict=True)]
    )
    np.testing.assert_allclose(scores, by_scoring, rtol=1e-4)  # scores: the model's log P


def test_fusion_with_weight_zero_is_exactly_the_translation_model():
    model = random_model(tgt_vocab=VOCAB)
    lm = tiny_lm("gru")
    src = tf.constant(random_batch(np.random.default_rng(3), 6, 7, 50))
    plain = beam_search(model, src, 4, 0.6)
    fused = beam_search(ShallowFusion(model, lm, 0.0), src, 4, 0.6)
    for a, b in zip(plain, fused, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fusion_adds_the_weighted_language_model_log_probability():
    model = random_model(tgt_vocab=VOCAB)
    lm = tiny_lm("gru", sharpen=8.0)
    src = tf.constant(random_batch(np.random.default_rng(4), 3, 5, 50))
    ids, _ = greedy_search(ShallowFusion(model, lm, 0.7), src, 0.0)
    memory, keys, mask, states = model.encode(src)
    tm_logits, _, _ = model.decode_step(tf.fill([3], BOS_ID), states, memory, keys, mask)
    lm_logits, _ = lm.step(tf.fill([3], BOS_ID), lm.initial_state(3))
    first = tf.nn.log_softmax(tm_logits) + 0.7 * tf.nn.log_softmax(lm_logits)
    np.testing.assert_array_equal(ids.numpy()[:, 0], np.argmax(first.numpy(), axis=1))
    plain, _ = greedy_search(model, src, 0.0)
    assert not np.array_equal(plain.numpy(), ids.numpy())  # the language model changed something


def test_the_search_adapter_reads_an_empty_prefix_from_zeros():
    lm = tiny_lm()
    src = tf.zeros([2, 0], tf.int32)
    *_, states = LMSearch(lm).encode(src)
    for layer, zeros in zip(states, lm.initial_state(2), strict=True):
        for s, z in zip(layer, zeros, strict=True):
            np.testing.assert_array_equal(s.numpy(), z.numpy())
    np.testing.assert_array_equal(LMSearch.start(src).numpy(), [BOS_ID, BOS_ID])
