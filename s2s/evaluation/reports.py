"""Translate a dev or test set with a :class:`~s2s.decoding.translator.Translator`, score it
against all its references, and write the report a run keeps: ``eval/<set>.json`` (scores with
their signatures, search settings, output length by source length) and ``eval/<set>.hyp.txt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from s2s.data.sets import EvalSet
from s2s.decoding.translator import Translator
from s2s.evaluation.lengths import format_length_ratios, length_ratios
from s2s.evaluation.metrics import Scores, score


def set_scores(translator: Translator, eval_set: EvalSet, config: dict) -> Scores:
    """BLEU, chrF and TER of ``translator`` on ``eval_set`` against all its references
    (case-insensitively if the set says so)."""
    hyps = [h.text for h in translator.translate(eval_set.sources)]
    return _score(hyps, eval_set, config)


def _score(hyps: list[str], eval_set: EvalSet, config: dict) -> Scores:
    tgt_lang, tokenize = config["data"]["tgt_lang"], config["eval"]["tokenize"]
    return score(hyps, eval_set.references, tgt_lang, tokenize, lowercase=eval_set.lowercase)


def evaluate_set(
    translator: Translator,
    eval_set: EvalSet,
    config: dict,
    folder: Path,
    state: dict | None = None,
    log=print,
    about: dict | None = None,
) -> dict:
    """Search ``eval_set`` with ``translator``, score it and write its report into ``folder``
    (a run's ``eval/``); ``state``: the run's ``state.json``, whose progress the report
    repeats; ``about``: more to record (an ensemble's members). Returns the report."""
    sources, refs = eval_set.sources, eval_set.references
    t = time.perf_counter()
    hyps = [h.text for h in translator.translate(sources)]
    seconds = time.perf_counter() - t
    scores = _score(hyps, eval_set, config)
    src_lang, tgt_lang = config["data"]["src_lang"], config["data"]["tgt_lang"]
    lengths = length_ratios(sources, hyps, refs, src_lang, tgt_lang, config["eval"]["tokenize"])
    state = state or {}
    extra = {
        "split": eval_set.name,
        "beam_size": translator.beam_size,
        "alpha": translator.alpha,
        "decode_seconds": round(seconds, 2),
        "best_step": state.get("best_step"),
        "averaged": state.get("averaged"),
        "steps": state.get("step"),
        "epochs": state.get("epoch"),
        "train_minutes": round(state.get("elapsed_s", 0) / 60, 2),
        "trained_on": state.get("trained_on"),
        "parent": state.get("parent"),
        "length_by_source": lengths,
        **(about or {}),
    }
    write_report(folder, eval_set.name, sources, hyps, scores, extra)
    log(
        f"{eval_set.name}: {len(sources)} sentences, beam {translator.beam_size}, "
        f"{len(sources) / max(seconds, 1e-9):.0f} sentences/s\n{scores.summary()}\n"
        f"{format_length_ratios(lengths)}"
    )
    return {**scores.as_dict(), **extra}


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
