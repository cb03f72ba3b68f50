"""Shards round-trip exactly; the stream over them resumes at the very next batch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from s2s.data.pipeline import Buckets, SubwordSampling, shard_dataset
from s2s.data.shards import ShardIndex, iter_records, write_shards
from s2s.text.tokenizer import Tokenizer, train_sentencepiece

WORDS = [
    "the",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "a",
    "mat",
    "big",
    "small",
    "red",
    "tree",
    "house",
    "went",
    "home",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[pd.DataFrame, Tokenizer]:
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=rng.integers(1, 14))) for _ in range(3000)]
    frame = pd.DataFrame({"src": sentences, "tgt": [s.upper() for s in sentences]})
    frame = frame.drop_duplicates("src", ignore_index=True)  # distinct pairs
    folder = tmp_path_factory.mktemp("spm")
    path = train_sentencepiece([*frame["src"], *frame["tgt"]], folder / "sp", vocab_size=60)
    return frame, Tokenizer(path)


def chunks(frame: pd.DataFrame, size: int = 700):
    return (frame.iloc[i : i + size] for i in range(0, len(frame), size))


def test_shards_hold_every_pair_exactly_and_count_the_long_ones(corpus, tmp_path):
    frame, tok = corpus
    index = write_shards(chunks(frame), tok, tok, tmp_path, max_length=12, total_pairs=len(frame))
    src, tgt = tok.encode(frame["src"]), tok.encode(frame["tgt"])
    expected = Counter(
        (tuple(s), tuple(t)) for s, t in zip(src, tgt, strict=True) if max(len(s), len(t) + 1) <= 12
    )
    got = Counter((tuple(s), tuple(t)) for s, t in iter_records(index))
    assert got == expected and index.too_long == len(frame) - sum(expected.values()) > 0
    assert index.total_pairs == sum(expected.values()) and len(index.files) == 8
    lengths = sorted(max(len(s), len(t) + 1) for s, t in expected.elements())
    assert sorted(index.lengths().tolist()) == lengths
    assert ShardIndex.read(tmp_path) == index
    assert index.tgt_tokens == sum(len(t) for _, t in expected.elements())


def test_shards_are_shuffled_deterministically_under_the_seed(corpus, tmp_path):
    frame, tok = corpus
    orders = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        index = write_shards(chunks(frame), tok, tok, tmp_path / name, 40, len(frame), seed=seed)
        orders.append([s for s, _ in iter_records(index)])
    assert orders[0] == orders[1] != orders[2]
    in_corpus_order = [s for s in tok.encode(frame["src"])]
    first_shard = orders[0][: ShardIndex.read(tmp_path / "a").pairs[0]]
    positions = [in_corpus_order.index(s) for s in first_shard[:50]]
    assert positions != sorted(positions)  # not in corpus order within a shard


def test_worker_processes_write_the_same_shards_as_one_process(corpus, tmp_path):
    frame, tok = corpus
    alone = write_shards(chunks(frame, 300), tok, tok, tmp_path / "a", 12, len(frame), seed=3)
    shared = write_shards(
        chunks(frame, 300), tok, tok, tmp_path / "b", 12, len(frame), seed=3, workers=2
    )
    assert {k: v for k, v in alone.__dict__.items() if k != "folder"} == {
        k: v for k, v in shared.__dict__.items() if k != "folder"
    }
    for a, b in zip(alone.paths(), shared.paths(), strict=True):
        assert Path(a).read_bytes() == Path(b).read_bytes()


def batches(iterator, n: int) -> list[np.ndarray]:
    return [np.concatenate([x.numpy() for x in tf.nest.flatten(next(iterator))]) for _ in range(n)]


def test_a_restored_stream_continues_with_the_next_batch(corpus, tmp_path):
    frame, tok = corpus
    index = write_shards(chunks(frame), tok, tok, tmp_path / "s", 40, len(frame))
    buckets = Buckets((8, 16, 41), 96)

    def stream():
        return iter(shard_dataset(index.paths(), buckets, seed=5, shuffle_buffer=500))

    uninterrupted = batches(stream(), 900)  # more than a pass over the data (~200 batches)
    first = stream()
    batches(first, 640)
    checkpoint = tf.train.Checkpoint(iterator=first)
    prefix = checkpoint.write(str(tmp_path / "ckpt" / "input"))
    resumed = stream()
    tf.train.Checkpoint(iterator=resumed).read(prefix).assert_consumed()
    for a, b in zip(batches(resumed, 260), uninterrupted[640:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_read_disjoint_shares_of_the_shards(corpus, tmp_path):
    frame, tok = corpus
    index = write_shards(chunks(frame), tok, tok, tmp_path, 40, len(frame))
    buckets = Buckets((41,), 4000)
    seen = []
    for worker in range(2):
        ds = shard_dataset(index.paths(), buckets, 0, 100, workers=2, worker=worker)
        rows = set()
        for (src, _), _ in ds.take(20):  # 2,000 rows: more than a pass over a worker's half
            rows |= {tuple(r[r > 0]) for r in src.numpy()}
        seen.append(rows)
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == {tuple(s) for s, _ in iter_records(index)}


def test_a_sampling_stream_reads_the_same_texts_in_new_pieces_and_saves_its_position(
    corpus, tmp_path
):
    frame, tok = corpus
    index = write_shards(chunks(frame), tok, tok, tmp_path, 40, len(frame))
    sampling = SubwordSampling(tok.serialized(), tok.serialized(), alpha=0.1, nbest=-1)
    stream = iter(shard_dataset(index.paths(), Buckets((41,), 4000), 0, 100, sampling=sampling))
    best = {tuple(s) for s, _ in iter_records(index)}
    rows = [tuple(r[r > 0]) for _ in range(3) for r in next(stream)[0][0].numpy()]
    assert set(tok.decode(rows)) <= set(frame["src"]) and len(set(rows) - best) > len(rows) / 2
    tf.train.Checkpoint(iterator=stream).write(str(tmp_path / "ckpt" / "input"))


def test_the_writer_holds_one_shard_file_open_at_a_time(corpus, tmp_path, monkeypatch):
    """50 shards (as a large corpus has hundreds): the writer used to open all of them at once,
    which past ~1,024 files exceeds what a process may hold open."""
    from s2s.data import shards

    frame, tok = corpus
    open_now, most = [0], [0]
    real_open = open

    class Counted:
        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])

        def write(self, data):
            return self.file.write(data)

        def close(self):
            if not self.file.closed:
                open_now[0] -= 1
            self.file.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    monkeypatch.setattr(shards, "SHARD_PAIRS", len(frame) // 50 + 1)
    total = len(frame)
    whole = write_shards(chunks(frame), tok, tok, tmp_path / "a", max_length=40, total_pairs=total)
    monkeypatch.setattr(shards, "open", Counted, raising=False)
    monkeypatch.setattr(shards, "FLUSH_BYTES", 4096)  # many small appends to every shard
    index = write_shards(chunks(frame), tok, tok, tmp_path / "b", max_length=40, total_pairs=total)
    assert len(index.files) == 50 and index.total_pairs + index.too_long == len(frame)
    assert most[0] == 1
    read = [Path(p).read_bytes() for p in index.paths()]
    assert read == [Path(p).read_bytes() for p in whole.paths()]  # the same shards


def test_the_index_knows_the_longest_pair_its_shards_hold(corpus, tmp_path):
    frame, tok = corpus
    index = write_shards(chunks(frame), tok, tok, tmp_path, max_length=12, total_pairs=len(frame))
    assert index.max_length == 12 and ShardIndex.read(tmp_path).max_length == 12
