"""A prepared data folder, read back (the data stage writes it: :mod:`s2s.data.stage`): its
summary, its dev and test sets, and the training pairs in chunks or as a seeded sample. Nothing
here reads all of ``train.tsv`` into memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from s2s.data.errors import CorpusError
from s2s.data.readers import CHUNK_LINES, count_lines, read_table
from s2s.data.sets import EvalSet, read_set

SUMMARY = "summary.json"
TRAIN_HEADER = "line\tsrc\ttgt\n"


def saved_summary(folder: Path) -> dict | None:
    """The summary of a finished data stage in ``folder``, or None (nothing, or incomplete)."""
    path = Path(folder) / SUMMARY
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    files = [summary["train"]["file"], *(s["file"] for s in summary["sets"].values())]
    return summary if all((Path(folder) / f).is_file() for f in files) else None


def load_eval_sets(folder: Path) -> dict[str, EvalSet]:
    """The prepared dev and test sets of a data folder: ``dev`` first (when there is one), then
    each test set. Only the set files are read, never ``train.tsv``."""
    folder = Path(folder)
    summary = saved_summary(folder)
    if summary is None:
        raise CorpusError(f"{folder}: no prepared data (no {SUMMARY}); run the data stage first")
    return {
        name: read_set(folder / info["file"], name, info["lowercase"])
        for name, info in summary["sets"].items()
    }


def iter_train(
    folder: Path, chunk_lines: int = CHUNK_LINES, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """``train.tsv`` in frames of at most ``chunk_lines`` pairs (columns line, src, tgt, or
    those of ``columns``)."""
    with read_table(Path(folder) / "train.tsv", chunksize=chunk_lines, usecols=columns) as chunks:
        yield from chunks


def count_train(folder: Path) -> int:
    """Training pairs in the folder (from its summary; counted when there is none)."""
    summary = saved_summary(Path(folder))
    if summary is not None:
        return int(summary["train"]["pairs"])
    return max(count_lines(Path(folder) / "train.tsv") - 1, 0)


def sample_train(
    folder: Path, n: int, seed: int, *, chunk_lines: int = CHUNK_LINES
) -> tuple[list[str], list[str]]:
    """A uniform random sample of at most ``n`` training pairs: (sources, targets), in file
    order, the same for the same seed. For SentencePiece, which needs a sample, not the corpus.

    The pair count is known, so ``n`` of the line numbers are drawn without replacement and
    the file is streamed once, ``chunk_lines`` pairs at a time; what is held is the sample,
    the chosen line numbers and one chunk.
    """
    total = count_train(folder)
    chosen = (
        np.arange(total)
        if n >= total
        else np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    )
    sources, targets, start = [], [], 0
    for chunk in iter_train(folder, chunk_lines, ["src", "tgt"]):
        low, high = np.searchsorted(chosen, [start, start + len(chunk)])
        rows = chosen[low:high] - start
        sources += chunk["src"].to_numpy(dtype=object)[rows].tolist()
        targets += chunk["tgt"].to_numpy(dtype=object)[rows].tolist()
        start += len(chunk)
    return sources, targets
