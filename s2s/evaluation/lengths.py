"""Output length against the references by source length: where a system runs short."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from sacrebleu.metrics import BLEU

from s2s.evaluation.metrics import bleu_tokenizer

# Source lengths (in the source language's BLEU tokens) that start a bucket of length_ratios.
LENGTH_BUCKETS = (1, 5, 10, 15, 20, 30)


def length_ratios(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    src_lang: str,
    tgt_lang: str,
    tokenize: str | None = None,
    starts: Sequence[int] = LENGTH_BUCKETS,
) -> list[dict]:
    """Output length against the references by source length: where a system runs short.

    Lengths are BLEU tokens (a Chinese character is one with the ``zh`` tokenizer); each
    hypothesis is measured against its closest reference, the shorter on a tie, as BLEU's
    brevity penalty does, so the buckets' lengths add up to BLEU's ``hyp_len`` and ``ref_len``.
    Returns one row per non-empty bucket: ``{"source_tokens": "5-9", "sentences",
    "hyp_len", "ref_len", "ratio"}``; sources shorter than the first start are left out.
    """
    counts = (len(sources), len(hypotheses), len(references))
    if len(set(counts)) > 1:
        raise ValueError("{} sources, {} hypotheses, {} reference sets".format(*counts))
    count_src = BLEU(tokenize=bleu_tokenizer(src_lang)).tokenizer
    count_tgt = BLEU(tokenize=bleu_tokenizer(tgt_lang, tokenize)).tokenizer

    def size(tokenizer, text: str) -> int:
        return len(tokenizer(text.rstrip()).split())

    totals: dict[int, tuple[int, int, int]] = {}  # bucket -> sentences, hyp_len, ref_len
    for src, hyp, refs in zip(sources, hypotheses, references, strict=True):
        at = bisect.bisect_right(starts, size(count_src, src)) - 1
        if at < 0:
            continue
        hyp_len = size(count_tgt, hyp)
        ref_len = min((size(count_tgt, r) for r in refs), key=lambda r: (abs(r - hyp_len), r))
        sentences, hyp_total, ref_total = totals.get(at, (0, 0, 0))
        totals[at] = (sentences + 1, hyp_total + hyp_len, ref_total + ref_len)
    rows = []
    for at, (sentences, hyp_len, ref_len) in sorted(totals.items()):
        last = f"-{starts[at + 1] - 1}" if at + 1 < len(starts) else "+"
        rows.append(
            {
                "source_tokens": f"{starts[at]}{last}",
                "sentences": sentences,
                "hyp_len": hyp_len,
                "ref_len": ref_len,
                "ratio": round(hyp_len / max(ref_len, 1), 3),
            }
        )
    return rows


def format_length_ratios(rows: Sequence[dict]) -> str:
    """One line: ``output/reference length by source tokens: 1-4 0.944 (29), ...``."""
    cells = [f"{r['source_tokens']} {r['ratio']:.3f} ({r['sentences']})" for r in rows]
    return "output/reference length by source tokens: " + ", ".join(cells)
