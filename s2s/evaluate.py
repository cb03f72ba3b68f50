"""Score detokenised translations with sacreBLEU (BLEU, chrF, TER) against all references.

The BLEU tokenizer follows the target language: ``zh`` for Chinese (``13a`` would treat a run of
Chinese characters as one word), ``13a`` otherwise; TER scores Chinese targets by character
(sacreBLEU's Asian-script support, which acts only on normalised text: ``norm:yes|asian:yes``).
``lowercase=True`` scores case-insensitively (sets whose references are lower-cased, such as
TVsub's dev set): BLEU and chrF then show ``case:lc`` in their signatures; sacreBLEU's TER is
case-insensitive already.
Scores are reported with their signatures. :func:`compare` ranks several runs'
test translations with sacreBLEU's paired bootstrap test.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from sacrebleu.metrics import BLEU, CHRF, TER


def bleu_tokenizer(tgt_lang: str, override: str | None = None) -> str:
    if override:
        return override
    return "zh" if tgt_lang.startswith("zh") else "13a"


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence reference lists -> sacreBLEU's streams (``None`` where a sentence has fewer)."""
    width = max((len(r) for r in references), default=0)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


@dataclass
class Scores:
    """Corpus scores, unrounded: decisions (best checkpoint, averaging) compare these; reports
    and logs round them to 2 decimals for display."""

    bleu: float
    chrf: float
    ter: float
    bleu_signature: str
    chrf_signature: str
    ter_signature: str
    bleu_detail: str
    sentences: int

    def as_dict(self) -> dict:
        """For reports: the scores rounded to 2 decimals, as sacreBLEU prints them."""
        out = asdict(self)
        return {**out, **{k: round(out[k], 2) for k in ("bleu", "chrf", "ter")}}

    def summary(self) -> str:
        return (
            f"BLEU = {self.bleu:.2f}  ({self.bleu_detail})\n  {self.bleu_signature}\n"
            f"chrF = {self.chrf:.2f}\n  {self.chrf_signature}\n"
            f"TER  = {self.ter:.2f}\n  {self.ter_signature}"
        )


def metrics(tgt_lang: str, tokenize: str | None = None, lowercase: bool = False) -> dict:
    """The sacreBLEU metric objects used for a target language (case-insensitive if asked).

    TER keeps sacreBLEU's default, ``case_sensitive=False``, whatever ``lowercase`` says. For
    Chinese it normalises too: sacreBLEU splits Chinese characters only in normalised text, so
    ``asian_support`` alone leaves a sentence of Chinese one TER word (TER then counts whole
    sentences, not edits).
    """
    chinese = tgt_lang.startswith("zh")
    return {
        "BLEU": BLEU(tokenize=bleu_tokenizer(tgt_lang, tokenize), lowercase=lowercase),
        "chrF": CHRF(lowercase=lowercase),
        "TER": TER(normalized=chinese, asian_support=chinese, case_sensitive=False),
    }


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


def score(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    tgt_lang: str,
    tokenize: str | None = None,
    lowercase: bool = False,
) -> Scores:
    """Corpus BLEU, chrF and TER of ``hypotheses[i]`` against every string in ``references[i]``.

    ``lowercase``: compare case-insensitively (an :class:`s2s.data.EvalSet`'s ``lowercase``).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    streams = reference_streams(references)
    m = metrics(tgt_lang, tokenize, lowercase)
    b, c, t = (m[name].corpus_score(list(hypotheses), streams) for name in ("BLEU", "chrF", "TER"))
    return Scores(
        bleu=b.score,
        chrf=c.score,
        ter=t.score,
        bleu_signature=str(m["BLEU"].get_signature()),
        chrf_signature=str(m["chrF"].get_signature()),
        ter_signature=str(m["TER"].get_signature()),
        bleu_detail=b.format(score_only=False, signature="").split("=", 1)[-1].strip(),
        sentences=len(hypotheses),
    )


def write_report(
    folder: Path,
    name: str,
    sources: Sequence[str],
    hypotheses: Sequence[str],
    scores: Scores,
    extra: dict | None = None,
) -> Path:
    """Save ``<name>.hyp.txt`` (one translation a line) and ``<name>.json`` (scores)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.hyp.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    (folder / f"{name}.src.txt").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    report = {**scores.as_dict(), **(extra or {})}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def compare(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[Sequence[str]],
    tgt_lang: str,
    tokenize: str | None = None,
    samples: int = 1000,
    lowercase: bool = False,
) -> pd.DataFrame:
    """Scores of several systems on the same sentences, with paired bootstrap resampling.

    The first system is the baseline: each other row has the p-value of its difference from it
    (sacreBLEU's ``PairedTest``, seeded by ``SACREBLEU_SEED``) and a 95% confidence interval.
    """
    from sacrebleu.significance import PairedTest

    for name, hyps in systems:
        if len(hyps) != len(references):
            raise ValueError(f"{name}: {len(hyps)} translations for {len(references)} sentences")
    test = PairedTest(
        [(name, list(hyps)) for name, hyps in systems],
        metrics(tgt_lang, tokenize, lowercase),
        reference_streams(references),
        test_type="bs",
        n_samples=samples,
    )
    _, results = test()
    rows = []
    for i, name in enumerate(results["System"]):
        row = {"system": name.replace("Baseline: ", "")}
        for metric, key in (("BLEU", "BLEU"), ("chrF", "chrF2"), ("TER", "TER")):
            r = results[key][i]  # sacreBLEU names chrF after its beta
            row[metric] = round(r.score, 2)
            row[f"{metric} 95% CI"] = f"± {r.ci:.2f}" if r.ci is not None else ""
            row[f"{metric} p"] = r.p_value
        rows.append(row)
    return pd.DataFrame(rows)
