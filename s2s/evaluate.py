"""Score detokenised translations with sacreBLEU (BLEU and chrF) against all references.

The BLEU tokenizer follows the target language: ``zh`` for Chinese (``13a`` would treat a run of
Chinese characters as one word), ``13a`` otherwise. Scores are reported with their signature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF


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
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_detail: str
    sentences: int

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"BLEU = {self.bleu:.2f}  ({self.bleu_detail})\n  {self.bleu_signature}\n"
            f"chrF = {self.chrf:.2f}\n  {self.chrf_signature}"
        )


def score(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    tgt_lang: str,
    tokenize: str | None = None,
) -> Scores:
    """Corpus BLEU and chrF of ``hypotheses[i]`` against every string in ``references[i]``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    streams = reference_streams(references)
    bleu = BLEU(tokenize=bleu_tokenizer(tgt_lang, tokenize))
    chrf = CHRF()
    b = bleu.corpus_score(list(hypotheses), streams)
    c = chrf.corpus_score(list(hypotheses), streams)
    return Scores(
        bleu=round(b.score, 2),
        chrf=round(c.score, 2),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
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
