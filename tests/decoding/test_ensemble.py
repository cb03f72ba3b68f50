"""Ensembles: the mean of the members' log-probabilities at each step of the one search."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf

from s2s.config import ConfigError
from s2s.decoding.ensemble import Ensemble, load_ensemble
from s2s.decoding.search import beam_search, greedy_search
from s2s.decoding.translator import Translator
from s2s.text.vocab import BOS_ID
from tests.helpers import random_batch, random_model

SENTENCES = ["我们走吧。", "", "他一小时前走了。", "你好！", "汤姆不想去那里，因为他很累。"]


def test_an_ensemble_of_a_model_with_itself_is_that_model_exactly():
    model = random_model(seed=3)
    src = tf.constant(random_batch(np.random.default_rng(0), 7, 9, 50))
    alone = beam_search(model, src, 4, 0.6)
    twice = beam_search(Ensemble([model, model]), src, 4, 0.6)
    for a, b in zip(alone, twice, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_each_step_scores_the_mean_of_the_members_log_probabilities():
    """By hand on two tiny models of different widths and cells: the first step's scores."""
    first = random_model(cell="lstm", seed=1)
    second = random_model(cell="gru", attention="additive", seed=2)
    src = tf.constant(random_batch(np.random.default_rng(1), 3, 6, 50))
    ensemble = Ensemble([first, second])
    memory, keys, mask, states = ensemble.encode(src)
    tokens = tf.fill([3], BOS_ID)
    scores, _, weights = ensemble.decode_step(tokens, states, memory, keys, mask)
    by_hand = []
    for model in (first, second):
        m, k, msk, s = model.encode(src)
        logits, _, _ = model.decode_step(tokens, s, m, k, msk)
        by_hand.append(tf.nn.log_softmax(logits).numpy())
    np.testing.assert_allclose(scores.numpy(), (by_hand[0] + by_hand[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(weights.numpy().sum(axis=1), 1.0, atol=1e-5)
    greedy, _ = greedy_search(ensemble, src, 0.0)
    never = np.isin(np.arange(40), [0, 2])  # <pad> and <s> are never chosen
    best = np.argmax(np.where(never, -np.inf, (by_hand[0] + by_hand[1]) / 2), 1)
    np.testing.assert_array_equal(greedy.numpy()[:, 0], best)  # the search follows the mean


def test_an_ensemble_translates_each_sentence_alone_as_in_a_batch():
    ensemble = Ensemble([random_model(seed=4), random_model(cell="mgu", seed=5)])
    src = random_batch(np.random.default_rng(2), 6, 8, 50)
    ids, scores = beam_search(ensemble, tf.constant(src), 3, 0.6)
    for row in range(len(src)):
        length = int((src[row] > 0).sum())
        one_ids, one_scores = beam_search(
            ensemble, tf.constant(src[row : row + 1, :length]), 3, 0.6
        )
        width = one_ids.shape[-1]
        np.testing.assert_array_equal(one_ids.numpy()[0], ids.numpy()[row, :, :width])
        np.testing.assert_allclose(one_scores.numpy()[0], scores.numpy()[row], rtol=1e-5)


def test_a_run_with_itself_translates_as_the_run(trained_run):
    config, model, src_tok, tgt_tok = load_ensemble(trained_run)
    alone = Translator.from_config(model, src_tok, tgt_tok, config).translate(SENTENCES)
    config, pair, src_tok, tgt_tok = load_ensemble(trained_run, [trained_run])
    assert isinstance(pair, Ensemble) and len(pair.members) == 2
    both = Translator.from_config(pair, src_tok, tgt_tok, config).translate(SENTENCES)
    assert [(h.text, h.score) for h in both] == [(h.text, h.score) for h in alone]


def test_the_last_checkpoints_make_an_ensemble(trained_run):
    _, model, _, _ = load_ensemble(trained_run, checkpoints=2)
    assert isinstance(model, Ensemble) and len(model.members) == 2
    with pytest.raises(ConfigError, match="keeps 2 checkpoint"):
        load_ensemble(trained_run, checkpoints=9)


def test_a_member_with_another_vocabulary_is_refused_naming_both_runs(trained_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained_run, other, ignore=shutil.ignore_patterns("shards", "checkpoints"))
    shutil.copy(other / "spm" / "src.model", other / "spm" / "tgt.model")  # another target
    with pytest.raises(ConfigError, match=rf"{other} has another target vocabulary than"):
        load_ensemble(trained_run, [other])


def test_the_exported_ensemble_translates_like_python(trained_run, tmp_path):
    from s2s.serving.export import export

    target = export(trained_run, tmp_path, others=[trained_run], checkpoints=2)
    config, model, src_tok, tgt_tok = load_ensemble(trained_run, [trained_run], checkpoints=2)
    expected = Translator.from_config(model, src_tok, tgt_tok, config).translate(SENTENCES)
    served = tf.saved_model.load(str(target)).signatures["serving_default"]
    out = served(text=tf.constant(SENTENCES))
    assert [t.decode() for t in out["translation"].numpy()] == [h.text for h in expected]
    np.testing.assert_allclose(out["score"].numpy(), [h.score for h in expected], atol=1e-4)
