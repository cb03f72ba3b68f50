"""Training pairs as piece ids in TFRecord shards: tokenised once, read as a stream.

``write_shards`` tokenises the cleaned training pairs a chunk at a time and writes them to
``<run>/shards/``: ``train-NNNNN.tfrecord`` files (one record a pair: the source length, the
source ids and the target ids, as raw ``int32`` bytes) and ``index.json`` (files, pair counts,
the histogram of pair lengths that gives the steps of an epoch, pairs too long for the largest
bucket). Memory holds one chunk at a time, whatever the corpus size; ``index.json`` is written
last, so a killed run redoes the shards rather than reading half of them.

:func:`s2s.data.pipeline.shard_dataset` reads them back as an endless, shuffled, bucketed stream
whose position can be saved in a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from s2s.data.parallel import ordered_map
from s2s.data.records import encode_chunk, encode_in_worker

MIN_SHARDS = 8  # so that up to 8 workers each read a share of whole files
SHARD_PAIRS = 100_000  # pairs a shard holds at most: what the shuffling pass keeps in memory
FLUSH_BYTES = 64 << 20  # records held for the shards before they are appended to their files


@dataclass(frozen=True)
class ShardIndex:
    """What ``index.json`` says of a folder of shards."""

    folder: Path
    files: tuple[str, ...]
    pairs: tuple[int, ...]  # per file
    length_counts: tuple[int, ...]  # [n]: pairs whose bucketing length is n
    too_long: int
    src_tokens: int
    tgt_tokens: int

    @property
    def total_pairs(self) -> int:
        return sum(self.pairs)

    @property
    def max_length(self) -> int:
        """The longest pair the shards were built to hold (longer ones were left out): the
        histogram of lengths runs from 0 to it."""
        return len(self.length_counts) - 1

    def paths(self) -> list[str]:
        return [str(self.folder / name) for name in self.files]

    def lengths(self) -> np.ndarray:
        """Every pair's bucketing length (for :meth:`s2s.data.pipeline.Buckets.steps_per_epoch`)."""
        return np.repeat(np.arange(len(self.length_counts)), self.length_counts)

    @classmethod
    def read(cls, folder: Path) -> ShardIndex | None:
        """The index of ``folder``, or ``None`` when the shards are missing or unfinished."""
        path = folder / "index.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            folder=folder,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()},
        )

    def write(self) -> None:
        raw = {k: v for k, v in self.__dict__.items() if k != "folder"}
        raw = {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}
        tmp = self.folder / "index.json.tmp"
        tmp.write_text(json.dumps(raw), encoding="utf-8")
        tmp.replace(self.folder / "index.json")


def decode_record(record):
    """A record (a string tensor) -> ``(src [S], tgt [T])`` ``int32`` ids (graph code, for
    tf.data)."""
    import tensorflow as tf  # TensorFlow loads only where it is used: errors come first

    values = tf.io.decode_raw(record, tf.int32, little_endian=True)
    n = values[0]
    return values[1 : n + 1], values[n + 1 :]


def write_shards(
    chunks: Iterable[pd.DataFrame],
    src_tok,
    tgt_tok,
    folder: Path,
    max_length: int,
    total_pairs: int,
    seed: int = 0,
    workers: int = 1,
) -> ShardIndex:
    """Tokenise the pairs of ``chunks`` (frames with ``src`` and ``tgt`` columns) into shards;
    ``workers`` processes tokenise chunks side by side (see :mod:`s2s.data.parallel`).

    Each pair goes to a random shard, and each shard is then shuffled on its own, so that the
    shards are a random permutation of the corpus cut in pieces (a corpus is often in document
    order: TV episodes, news days; a bounded shuffle buffer alone would train on one stretch
    at a time). Pairs longer than ``max_length`` pieces (the target counted with ``</s>``) are
    left out and counted. Deterministic under ``seed``, whatever the number of workers.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").unlink(missing_ok=True)
    shards = max(MIN_SHARDS, -(-total_pairs // SHARD_PAIRS))
    names = tuple(f"train-{i:05d}.tfrecord" for i in range(shards))
    rng = np.random.default_rng(seed)
    # First pass: plain length-prefixed records (TFRecord's per-record Python reads cost 16 s a
    # shard to shuffle; these are read back whole in a fraction of a second).
    unshuffled = _ShardBuffers([folder / f"{name}.unshuffled" for name in names])
    pairs, counts = [0] * shards, np.zeros(max_length + 1, np.int64)
    too_long = src_tokens = tgt_tokens = 0
    if workers > 1:  # each process loads the models once
        encoded = ordered_map(encode_in_worker, chunks, workers, src_tok.path, tgt_tok.path)
    else:
        encoded = (encode_chunk(chunk, src_tok, tgt_tok) for chunk in chunks)
    bar = tqdm(total=total_pairs, desc="tokenising", unit="pair", unit_scale=True, delay=2)
    try:
        for records, lengths, src_lengths in encoded:
            targets = rng.integers(0, shards, size=len(records))
            for record, length, src_length, shard in zip(
                records, lengths, src_lengths, targets, strict=True
            ):
                if length > max_length:
                    too_long += 1
                    continue
                unshuffled.add(shard, record)
                pairs[shard] += 1
                counts[length] += 1
                src_tokens += src_length
                tgt_tokens += len(record) // 4 - 1 - src_length
            bar.update(len(records))
        unshuffled.flush()
    finally:
        bar.close()
    for name in tqdm(names, desc="shuffling shards", unit="shard", delay=2):
        _shuffle_file(folder / f"{name}.unshuffled", folder / name, rng)
    index = ShardIndex(
        folder, names, tuple(pairs), tuple(int(c) for c in counts), too_long, src_tokens, tgt_tokens
    )
    index.write()
    return index


class _ShardBuffers:
    """Length-prefixed records bound for each shard, held until ``limit`` bytes wait and then
    appended to their files one file at a time: one file is open at any moment, whatever the
    number of shards (a corpus of 100M+ pairs has more shards than a process may open files)."""

    def __init__(self, paths: list[Path], limit: int | None = None):
        self.paths, self.limit = paths, limit or FLUSH_BYTES
        self.pending: list[list[bytes]] = [[] for _ in paths]
        self.size = 0
        for path in paths:  # every shard gets a file, however few pairs it draws
            path.write_bytes(b"")

    def add(self, shard: int, record: bytes) -> None:
        self.pending[shard].append(len(record).to_bytes(4, "little") + record)
        self.size += len(record) + 4
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        for path, records in zip(self.paths, self.pending, strict=True):
            if records:
                with open(path, "ab") as f:
                    f.write(b"".join(records))
                records.clear()
        self.size = 0


def _shuffle_file(source: Path, target: Path, rng: np.random.Generator) -> None:
    """Write the length-prefixed records of ``source`` to the TFRecord file ``target`` in a
    random order; remove ``source``."""
    import tensorflow as tf

    raw = source.read_bytes()
    records, at = [], 0
    while at < len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        records.append(raw[at + 4 : at + 4 + size])
        at += 4 + size
    with tf.io.TFRecordWriter(str(target)) as writer:
        for i in rng.permutation(len(records)):
            writer.write(records[i])
    source.unlink()


def iter_records(index: ShardIndex) -> Iterator[tuple[list[int], list[int]]]:
    """Every pair of the shards, file by file (for tests and inspection, not for training)."""
    import tensorflow as tf

    for path in index.paths():
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            values = np.frombuffer(record, dtype="<i4")
            n = int(values[0])
            yield values[1 : n + 1].tolist(), values[n + 1 :].tolist()
