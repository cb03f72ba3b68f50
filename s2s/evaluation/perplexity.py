"""How well a language model predicts held-out text: perplexity per piece and bits per
character (comparable across vocabularies)."""

from __future__ import annotations

import math

import numpy as np

from s2s.data.sets import EvalSet
from s2s.models.language_model import RecurrentLM, sentence_log_probs
from s2s.text.normalize import normalize
from s2s.text.tokenizer import Tokenizer


def perplexity(nll: float) -> float:
    """``exp(nll)``, capped so that an untrained model's figure stays finite."""
    return math.exp(min(nll, 50.0))


def sentences_of(eval_set: EvalSet, side: str) -> list[str]:
    """A dev/test set's sentences on one side: its sources, or its distinct references."""
    if side == "src":
        return list(eval_set.sources)
    return list(dict.fromkeys(r for refs in eval_set.references for r in refs))


def evaluate_lm(
    lm: RecurrentLM, tokenizer: Tokenizer, sentences: list[str], lang: str, script: str = "keep"
) -> dict:
    """Perplexity per piece (``</s>`` counted) and bits per character (a sentence's characters
    and its end) of normalised ``sentences``."""
    texts = [normalize(s, lang, script) for s in sentences]
    texts = [t for t in texts if t]
    ids = tokenizer.encode(texts)
    log_probs = sentence_log_probs(lm, ids)
    pieces = sum(len(x) + 1 for x in ids)
    chars = sum(len(t) + 1 for t in texts)
    nll = -float(np.sum(log_probs))
    return {
        "sentences": len(texts),
        "pieces": pieces,
        "characters": chars,
        "nll_per_piece": nll / pieces,
        "perplexity": perplexity(nll / pieces),
        "bits_per_char": nll / math.log(2) / chars,
    }
