"""tf.data input pipeline: bucketed by length, batched by token count, padded with 0, prefetched.

Every batch of a bucket has the same shape ``[B_b, L_b]`` (the last, partial batch of a bucket is
topped up with all-padding rows, which the loss ignores), so a ``jit_compile``d train step is
compiled once per bucket rather than once per batch shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from s2s.data.shards import decode_record
from s2s.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@dataclass(frozen=True)
class Buckets:
    """Length buckets: a pair of length ``n`` goes to the first bucket with ``n < boundary``."""

    boundaries: tuple[int, ...]
    batch_tokens: int
    row_multiple: int = 1  # rows per batch are a multiple of this (replicas split batches evenly)

    @property
    def max_length(self) -> int:
        return self.boundaries[-1] - 1

    def batch_sizes(self) -> list[int]:
        # bucket_by_sequence_length wants one size per bucket plus one for lengths >= last boundary
        m = self.row_multiple
        sizes = [max(m, self.batch_tokens // (b - 1) // m * m) for b in self.boundaries]
        return [*sizes, sizes[-1]]

    def bucket_of(self, lengths: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.boundaries), lengths, side="right")

    def steps_per_epoch(self, lengths: np.ndarray) -> int:
        counts = np.bincount(self.bucket_of(lengths), minlength=len(self.boundaries) + 1)
        return int(sum(-(-c // s) for c, s in zip(counts, self.batch_sizes(), strict=True)))


def pair_lengths(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """The length that buckets a pair: its longer side, the target counted with ``</s>``."""
    return np.maximum([len(s) for s in src_ids], [len(t) + 1 for t in tgt_ids])


def _ragged(ids: Sequence[Sequence[int]]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((i for x in ids for i in x), dtype=np.int32, count=int(lengths.sum()))
    return tf.RaggedTensor.from_row_lengths(flat, lengths)


def filter_long(src_ids, tgt_ids, buckets: Buckets):
    """Split off the pairs too long for the largest bucket; returns (src, tgt, dropped count)."""
    keep = pair_lengths(src_ids, tgt_ids) <= buckets.max_length
    src = [s for s, k in zip(src_ids, keep, strict=True) if k]
    tgt = [t for t, k in zip(tgt_ids, keep, strict=True) if k]
    return src, tgt, int((~keep).sum())


def teacher_forcing(src, tgt):
    """``(src, tgt)`` -> ``((src, <s> y1..y(n-1) yn), y1..yn </s>)``: the target shifted by one."""
    tgt_in = tf.concat([[BOS_ID], tgt], axis=0)
    tgt_out = tf.concat([tgt, [EOS_ID]], axis=0)
    return src, tgt_in, tgt_out


def training_dataset(
    src_ids, tgt_ids, buckets: Buckets, shuffle: bool = True, seed: int = 0
) -> tf.data.Dataset:
    """Batches ``((src [B,L], tgt_in [B,L]), tgt_out [B,L])`` for ``Model.fit``.

    Pairs longer than ``buckets.max_length`` must have been removed (see :func:`filter_long`).
    """
    lengths = pair_lengths(src_ids, tgt_ids)
    if len(lengths) and lengths.max() > buckets.max_length:
        raise ValueError(
            f"a pair has {lengths.max()} pieces; the largest bucket holds "
            f"{buckets.max_length} (call filter_long first)"
        )
    steps = buckets.steps_per_epoch(lengths)
    ds = tf.data.Dataset.from_tensor_slices((_ragged(src_ids), _ragged(tgt_ids)))
    if shuffle:
        ds = ds.shuffle(len(lengths), seed=seed, reshuffle_each_iteration=True)
    ds = bucketed_batches(ds, buckets)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class SubwordSampling:
    """Subword regularisation (Kudo 2018): every time a training pair is read, each side is cut
    into pieces anew, a segmentation drawn from its SentencePiece model's ``nbest`` best ones
    (-1: all of them) with probabilities proportional to ``p ** alpha`` (smaller ``alpha``:
    more varied). The model learns that ``▁g o`` and ``▁go`` mean the same; dev, test and
    serving keep the one best segmentation."""

    src_model: bytes  # serialized SentencePiece models
    tgt_model: bytes
    alpha: float
    nbest: int = 64


def resegment(sampling: SubwordSampling, max_length: int):
    """``(src, tgt)`` ids -> the same texts in sampled pieces.

    The ids are turned back into text and cut again. A side keeps its ids when they hold
    ``<unk>`` (its text is not in the ids any more) or when the new cut would not fit the
    largest bucket (``max_length`` pieces, the target's ``</s>`` counted): no pair is lost.
    Random on every pass and not seeded: a resumed run reads the same pairs in the same order,
    cut differently.
    """
    import tensorflow_text as tf_text  # its ops load with it; only runs that sample need them

    def side(model: bytes, limit: int):
        # One model serves both ways: detokenizing ignores the sampling settings.
        sp = tf_text.SentencepieceTokenizer(
            model=model, nbest_size=sampling.nbest, alpha=sampling.alpha
        )

        def cut(ids):
            new = tf.cast(sp.tokenize(sp.detokenize(ids)), tf.int32)
            keep = tf.reduce_any(tf.equal(ids, UNK_ID)) | (tf.size(new) > limit)
            return tf.cond(keep, lambda: ids, lambda: new)

        return cut

    cut_src = side(sampling.src_model, max_length)
    cut_tgt = side(sampling.tgt_model, max_length - 1)
    return lambda src, tgt: (cut_src(src), cut_tgt(tgt))


def shard_dataset(
    files: Sequence[str],
    buckets: Buckets,
    seed: int,
    shuffle_buffer: int,
    workers: int = 1,
    worker: int = 0,
    side: str | None = None,
    sampling: SubwordSampling | None = None,
) -> tf.data.Dataset:
    """The endless training stream over TFRecord shards (:mod:`s2s.data.shards`), batched as
    :func:`training_dataset` batches.

    Each pass visits the files (``worker``'s share of them when ``workers > 1``) in a new
    random order, reads 4 at a time interleaved, and shuffles pairs in a buffer of
    ``shuffle_buffer``: memory is bounded by the buffer, not the corpus. Every stage is one
    that ``tf.train.Checkpoint`` can save the position of, so a resumed run continues with
    the very next batch. Deterministic under ``seed`` (but for ``sampling``, see
    :func:`resegment`). ``side`` (``src`` or ``tgt``): one side of each pair, as a language
    model reads it (see :func:`one_side`).
    """
    if workers > len(files):
        raise ValueError(f"{len(files)} shards cannot be shared by {workers} workers")
    paths = tf.data.Dataset.from_tensor_slices(list(files)).shard(workers, worker)
    paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = paths.interleave(tf.data.TFRecordDataset, cycle_length=4, block_length=1)
    ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = ds.map(decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if sampling is not None:
        cut = resegment(sampling, buckets.max_length)
        ds = ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if side is not None:
        ds = ds.map(one_side(side), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = bucketed_batches(ds, buckets)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def one_side(side: str):
    """``(src, tgt)`` -> ``(empty, side's ids)``: a language model's sentences, batched as pairs
    with an empty source."""
    pick = 0 if side == "src" else 1
    return lambda src, tgt: (tf.zeros([0], tf.int32), (src, tgt)[pick])


def bucketed_batches(pairs: tf.data.Dataset, buckets: Buckets) -> tf.data.Dataset:
    """``(src, tgt)`` id pairs -> teacher-forced batches of one shape per bucket."""
    ds = pairs.map(teacher_forcing, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda s, ti, to: tf.maximum(tf.shape(s)[0], tf.shape(ti)[0]),
        bucket_boundaries=list(buckets.boundaries),
        bucket_batch_sizes=buckets.batch_sizes(),
        padded_shapes=([None], [None], [None]),
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
        pad_to_bucket_boundary=True,
    )
    batch_tokens, multiple = buckets.batch_tokens, buckets.row_multiple

    def fill_batch(src, tgt_in, tgt_out):
        # Top up a bucket's last, partial batch with padding rows: one shape per bucket
        # (the bucket's batch size, as in Buckets.batch_sizes).
        full = tf.maximum(multiple, batch_tokens // tf.shape(src)[1] // multiple * multiple)
        rows = full - tf.shape(src)[0]
        pad = [[0, rows], [0, 0]]
        return (tf.pad(src, pad), tf.pad(tgt_in, pad)), tf.pad(tgt_out, pad)

    return ds.map(fill_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def pad_batch(ids: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """Right-pad id lists with 0 into an ``int32`` array ``[len(ids), length]``."""
    length = max((len(x) for x in ids), default=0) if length is None else length
    out = np.full((len(ids), max(length, 1)), PAD_ID, dtype=np.int32)
    for row, seq in enumerate(ids):
        seq = seq[:length]
        out[row, : len(seq)] = seq
    return out
