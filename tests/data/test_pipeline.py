import numpy as np
import pytest
import tensorflow as tf

from s2s.data.pipeline import (
    Buckets,
    SubwordSampling,
    filter_long,
    pad_batch,
    resegment,
    training_dataset,
)
from s2s.text.tokenizer import Tokenizer, train_sentencepiece
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


def pairs(rng, n=300, max_len=20):
    src = [list(rng.integers(4, 50, size=rng.integers(1, max_len))) for _ in range(n)]
    tgt = [list(rng.integers(4, 50, size=rng.integers(1, max_len))) for _ in range(n)]
    return src, tgt


def epoch(ds):
    return [(s.numpy(), ti.numpy(), to.numpy()) for (s, ti), to in ds]


def test_teacher_forcing_shifts_the_target_by_exactly_one():
    src, tgt = [[5, 6, 7]], [[10, 11, 12, 13]]
    [(s, ti, to)] = epoch(training_dataset(src, tgt, Buckets((8,), 64), shuffle=False))
    row_in, row_out = ti[0], to[0]
    n = len(tgt[0]) + 1
    assert list(row_in[:n]) == [BOS_ID, 10, 11, 12, 13]
    assert list(row_out[:n]) == [10, 11, 12, 13, EOS_ID]
    assert list(row_in[1:n]) == list(row_out[: n - 1])  # input at t+1 is the target at t
    assert not row_in[n:].any() and not row_out[n:].any()
    assert list(s[0][:3]) == [5, 6, 7] and not s[0][3:].any()


@pytest.mark.parametrize("multiple", [1, 2, 4])
def test_every_pair_appears_once_per_epoch_with_one_shape_per_bucket(multiple):
    rng = np.random.default_rng(0)
    src, tgt = pairs(rng)
    buckets = Buckets((8, 12, 16, 24), 96, row_multiple=multiple)
    ds = training_dataset(src, tgt, buckets, shuffle=True, seed=3)
    batches = epoch(ds)
    assert (
        len(batches)
        == int(ds.cardinality())
        == buckets.steps_per_epoch(np.maximum([len(s) for s in src], [len(t) + 1 for t in tgt]))
    )
    # One shape per bucket, rows a multiple of the replicas (96 // 23 = 4 rows in the last).
    allowed = {(96 // (b - 1) // multiple * multiple, b - 1) for b in buckets.boundaries}
    assert {s.shape for s, _, _ in batches} <= allowed
    assert all(s.shape == ti.shape == to.shape for s, ti, to in batches)
    seen = sorted(
        (tuple(s[s != PAD_ID]), tuple(to[to != PAD_ID][:-1]))
        for batch_src, _, batch_out in batches
        for s, to in zip(batch_src, batch_out, strict=True)
        if s.any()
    )
    assert seen == sorted((tuple(s), tuple(t)) for s, t in zip(src, tgt, strict=True))


def test_filter_long_counts_what_it_removes():
    src, tgt, dropped = filter_long([[4] * 3, [4] * 9], [[5] * 3, [5] * 2], Buckets((8,), 64))
    assert (len(src), len(tgt), dropped) == (1, 1, 1)
    with pytest.raises(ValueError, match="filter_long"):
        training_dataset([[4] * 9], [[5]], Buckets((8,), 64))


def test_pad_batch_pads_with_zero():
    out = pad_batch([[4, 5, 6], [7]])
    assert out.tolist() == [[4, 5, 6], [7, 0, 0]]
    assert pad_batch([[]]).shape == (1, 1)


# -- subword regularisation ----------------------------------------------------------------


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Tokenizer:
    rng = np.random.default_rng(0)
    words = ["tomorrow", "school", "going", "home", "doesn't", "want", "together", "weather"]
    sentences = [" ".join(rng.choice(words, size=rng.integers(1, 8))) for _ in range(2000)]
    folder = tmp_path_factory.mktemp("spm")
    return Tokenizer(train_sentencepiece(sentences, folder / "sp", vocab_size=60, lang="en"))


def draws(tok: Tokenizer, ids: list[int], n: int, max_length: int = 64, alpha: float = 0.1):
    model = tok.serialized()
    cut = resegment(SubwordSampling(model, model, alpha=alpha, nbest=-1), max_length)
    src = tf.constant(ids, tf.int32)
    return [tuple(cut(src, src)[0].numpy()) for _ in range(n)]


def test_sampled_cuts_vary_and_spell_the_same_text(spm_model):
    text = "tomorrow we are going home together"
    [best] = spm_model.encode([text])
    cuts = draws(spm_model, best, 40)
    assert len(set(cuts)) > 5
    assert {spm_model.decode([c])[0] for c in cuts} == {text}
    assert sum(map(len, cuts)) > 40 * len(best)  # mostly finer than the best cut


def test_a_large_alpha_keeps_mostly_the_best_cut(spm_model):
    [best] = spm_model.encode(["going home together"])
    cuts = draws(spm_model, best, 40, alpha=50.0)
    assert cuts.count(tuple(best)) >= 36


def test_a_side_with_unk_or_too_long_a_cut_keeps_its_ids(spm_model):
    [best] = spm_model.encode(["the weather tomorrow"])
    with_unk = [*best, UNK_ID, *best]
    assert set(draws(spm_model, with_unk, 10)) == {tuple(with_unk)}
    [best] = spm_model.encode(["going home tomorrow"])  # 3 pieces; most samples are 9 or more
    limit = len(best) + 5
    cuts = draws(spm_model, best, 60, max_length=limit)
    assert all(len(c) <= limit for c in cuts) and len(set(cuts)) > 1
    assert {spm_model.decode([c])[0] for c in cuts} == {"going home tomorrow"}
