"""The training pairs a language model finds least likely per piece: the odd lines of a corpus
(wrong language, misaligned, boilerplate), found by ``s2s prepare --lm-run RUN``.

The training pairs are streamed a chunk at a time and only the ``n`` worst are kept, so any
corpus size fits in memory.
"""

from __future__ import annotations

import heapq
import math
from pathlib import Path

from s2s.data.prepared import iter_train
from s2s.models.language_model import sentence_log_probs
from s2s.models.loading import load_language_model


def least_likely(data_folder: Path, lm_run: str | Path, n: int) -> tuple[str, list[tuple]]:
    """The language model's side and the ``n`` training pairs of ``data_folder`` with the
    highest perplexity per piece: ``[(perplexity, line, src, tgt), ...]``, worst first."""
    config, lm, tokenizer = load_language_model(lm_run)
    side = config["lm"]["side"]
    worst: list[tuple] = []  # a min-heap of the n highest (per-piece NLL, line, src, tgt)
    for chunk in iter_train(data_folder, chunk_lines=10_000):
        ids = tokenizer.encode(chunk[side].tolist())
        nll = -sentence_log_probs(lm, ids)
        rows = zip(chunk["line"], chunk["src"], chunk["tgt"], strict=True)
        for (line, src, tgt), value, seq in zip(rows, nll, ids, strict=True):
            item = (float(value) / (len(seq) + 1), int(line), src, tgt)
            if len(worst) < n:
                heapq.heappush(worst, item)
            elif item > worst[0]:
                heapq.heapreplace(worst, item)
    ranked = sorted(worst, reverse=True)
    return side, [(math.exp(v), line, src, tgt) for v, line, src, tgt in ranked]
