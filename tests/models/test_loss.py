import numpy as np
import pytest
import tensorflow as tf

from s2s.models.loss import sequence_loss
from s2s.text.vocab import BOS_ID, PAD_ID


def numpy_loss(logits: np.ndarray, targets: np.ndarray, smoothing: float) -> tuple[float, float]:
    """Cross-entropy against an explicit smoothed target distribution, token by token."""
    vocab = logits.shape[-1]
    possible = np.ones(vocab, bool)
    possible[[PAD_ID, BOS_ID]] = False  # never targets: no smoothing mass on them
    losses, nlls = [], []
    for row, target_row in zip(logits, targets, strict=True):
        for z, target in zip(row, target_row, strict=True):
            if target == PAD_ID:
                continue
            log_p = z - np.log(np.exp(z - z.max()).sum()) - z.max()
            q = np.where(possible, smoothing / possible.sum(), 0.0)
            q[target] += 1.0 - smoothing
            losses.append(-(q * log_p).sum())
            nlls.append(-log_p[target])
    return float(np.mean(losses)), float(np.mean(nlls))


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.2])
def test_loss_matches_a_numpy_reference_and_ignores_padding(smoothing):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 4, 9)).astype(np.float32)
    targets = np.array([[4, 5, 3, 0], [7, 3, 0, 0]], np.int32)
    loss, nll, tokens = sequence_loss(tf.constant(logits), tf.constant(targets), smoothing)
    expected_loss, expected_nll = numpy_loss(logits, targets, smoothing)
    assert float(tokens) == 5
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(float(nll), expected_nll, rtol=1e-5)


def test_smoothing_puts_no_mass_on_pad_or_bos():
    # Raising the logits of <pad> and <s> must not change the smoothed loss's uniform part
    # the way it would if they were in the smoothing set: compare with the reference.
    logits = np.zeros((1, 1, 6), np.float32)
    logits[0, 0, [PAD_ID, BOS_ID]] = -50.0  # a model sure never to say them
    targets = np.array([[4]], np.int32)
    loss, _, _ = sequence_loss(tf.constant(logits), tf.constant(targets), 0.1)
    expected, _ = numpy_loss(logits, targets, 0.1)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert float(loss) < 2.0  # with mass on pad/<s>, -log p of them (~50) would dominate


def test_a_batch_of_padding_only_has_zero_loss_not_nan():
    logits = tf.zeros((2, 3, 5))
    loss, nll, tokens = sequence_loss(logits, tf.zeros((2, 3), tf.int32), 0.1)
    assert float(tokens) == 0 and float(loss) == 0.0 and float(nll) == 0.0
