"""The Python API: load a trained run (or an exported SavedModel) and translate lists of
strings; train a run from a recipe or a config.

    import s2s

    model = s2s.load("runs/zh-en")              # a run folder, or an export
    model.translate(["我们走吧。"])               # ["Let's go."]
    model.translate(["我们走吧。"], nbest=3)      # [[Candidate(text=..., score=...), ...]]
    s2s.train("zh-en", run="runs/zh-en-short", overrides=["train.max_minutes=5"])

Everything heavy (TensorFlow) is imported on first use, so ``import s2s`` stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from s2s.config import ConfigError
from s2s.config.run_folder import RunError
from s2s.decoding.hypotheses import Candidate

__all__ = ["Candidate", "TranslationModel", "load", "train"]


class TranslationModel:
    """Translates lists of sentences with a trained run or an exported SavedModel (see
    :func:`load`). ``source`` is the folder it came from; ``beam_size`` the search it runs."""

    def __init__(self, source: Path, beam_size: int, translate_nbest):
        self.source, self.beam_size = source, beam_size
        self._translate_nbest = translate_nbest  # sentences -> [[Candidate, ...] per sentence]

    def __repr__(self) -> str:
        return f"TranslationModel({str(self.source)!r}, beam_size={self.beam_size})"

    def translate(self, sentences: Sequence[str], nbest: int | None = None):
        """Translate ``sentences`` (a list of strings, batched by length inside).

        Returns one string per sentence, in order; with ``nbest=k``, a list of ``k``
        :class:`~s2s.decoding.translator.Candidate` per sentence (``.text``, ``.score``, best
        first). An empty sentence translates to ``""``; ``k`` may not exceed the beam size.
        """
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences: translate([text])")
        if nbest is not None and not 1 <= nbest <= self.beam_size:
            raise ValueError(
                f"nbest={nbest}: this model searches with a beam of {self.beam_size}, so "
                f"nbest may be 1 to {self.beam_size} (s2s.load(..., beam_size=N) for more)"
            )
        lists = self._translate_nbest(list(sentences))
        if nbest is None:
            return [candidates[0].text for candidates in lists]
        return [_padded(candidates, nbest) for candidates in lists]


def _padded(candidates: list, k: int) -> list:
    """The first ``k`` candidates; an empty sentence's one empty candidate stands for all."""
    return (candidates + [candidates[-1]] * k)[:k]


def load(
    path: str | Path,
    *,
    beam_size: int | None = None,
    alpha: float | None = None,
    precision: str | None = None,
) -> TranslationModel:
    """A trained run folder (``runs/zh-en``), an export version folder (``exports/zh-en/1``) or
    an export folder (its highest version), ready to translate.

    For a run, ``beam_size``, ``alpha`` and ``precision`` (``float32`` or ``train``) override
    the settings it chose on dev; an export searches as it was exported.
    """
    path = Path(path)
    if (path / "config.yaml").is_file():
        return _load_run(path, beam_size, alpha, precision)
    version = _export_version(path)
    if version is None:
        raise RunError(
            f"{path} is neither a run folder (no config.yaml) nor a SavedModel export "
            "(no saved_model.pb): train one with `s2s train` or export one with `s2s export`"
        )
    if any(v is not None for v in (beam_size, alpha, precision)):
        raise ConfigError(f"{version} is an export: its search was fixed when it was exported")
    return _load_export(version)


def _load_run(path: Path, beam_size, alpha, precision) -> TranslationModel:
    from s2s.decoding.translator import Translator
    from s2s.models.loading import load_trained

    config, model, src_tok, tgt_tok = load_trained(path, precision=precision)
    translator = Translator.from_config(
        model, src_tok, tgt_tok, config, beam_size=beam_size, alpha=alpha
    )

    def translate_nbest(sentences: list[str]) -> list[list]:
        return [hyp.nbest for hyp in translator.translate(sentences)]

    return TranslationModel(path, translator.beam_size, translate_nbest)


def _export_version(path: Path) -> Path | None:
    """``path`` when it holds a SavedModel, else its highest integer-named version that does."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name), default=None)


def _load_export(version: Path) -> TranslationModel:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph holds)

    meta = json.loads((version / "assets" / "meta.json").read_text(encoding="utf-8"))
    signature = tf.saved_model.load(str(version)).signatures["translate_nbest"]

    def translate_nbest(sentences: list[str]) -> list[list]:
        if not sentences:
            return []
        out = signature(text=tf.constant(sentences, tf.string))
        texts, scores = out["translations"].numpy(), out["scores"].numpy()
        return [
            [Candidate(t.decode("utf-8"), float(s)) for t, s in zip(row, row_scores, strict=True)]
            if sentence.strip()
            else [Candidate("", 0.0)]
            for sentence, row, row_scores in zip(sentences, texts, scores, strict=True)
        ]

    return TranslationModel(version, int(meta["search"]["beam_size"]), translate_nbest)


def train(
    lang: str | None = "zh-en",
    *,
    run: str | Path | None = None,
    config: str | Path | dict | None = None,
    overrides: Sequence[str] = (),
    corpus: str | Path | None = None,
    log=print,
) -> dict:
    """Train (or resume) a run and evaluate it, as ``s2s train`` does; returns the report of its
    test set (BLEU, chrF, TER with their signatures, or a language model's perplexity).

    ``lang`` names a recipe (``zh-en``); ``config`` a config file, or a config dict (as
    :func:`s2s.config.load_config` returns, checked again here); ``overrides`` are
    ``section.key=value`` strings; ``run`` defaults to ``runs/<lang>``.
    """
    from s2s.config import load_config
    from s2s.config.validation import check_known, coerce_types, validate
    from s2s.training.runner import train as run_training

    if isinstance(config, dict):
        from s2s.config import apply_override, defaults

        check_known(defaults(), config, "config")
        for assignment in overrides:
            apply_override(config, assignment)
        settings = coerce_types(defaults(), config)
        validate(settings)
    else:
        settings = load_config(lang if config is None else None, config, list(overrides))
    folder = Path(run) if run is not None else Path("runs") / (lang or "run")
    return run_training(settings, folder, Path(corpus) if corpus else None, log=log)
