"""Score detokenised translations with sacreBLEU (BLEU, chrF, TER) against all references.

The BLEU tokenizer follows the target language: ``zh`` for Chinese (``13a`` would treat a run of
Chinese characters as one word), ``13a`` otherwise; TER scores Chinese targets by character
(sacreBLEU's Asian-script support, which acts only on normalised text: ``norm:yes|asian:yes``).
``lowercase=True`` scores case-insensitively (sets whose references are lower-cased, such as
TVsub's dev set): BLEU and chrF then show ``case:lc`` in their signatures; sacreBLEU's TER is
case-insensitive already. Scores are reported with their signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

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
