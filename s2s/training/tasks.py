"""The two things s2s trains, as tasks of the one runner (:mod:`s2s.training.runner`).

A task says what differs between them: where the run's data live, the model it builds, the side
of the shards the model reads, how dev scores it, and what happens once training ends. The
runner does everything else for both alike: the data stage, precision, distribution, the loop,
checkpoints, averaging, resume.

- :class:`TranslationTask`: a :class:`~s2s.models.seq2seq.Seq2Seq` on pairs; dev BLEU; then the
  search settings are tuned on dev and every test set is translated and scored.
- :class:`LanguageModelTask`: a :class:`~s2s.models.language_model.RecurrentLM` on one side of the
  pairs (``lm.side``), in its own folder or on a translation run's data (``lm.data_from``, the same
  vocabulary, as shallow fusion needs); dev perplexity; then test perplexity.
"""

from __future__ import annotations

import json

import keras

from s2s.config import ConfigError, defaults
from s2s.config.run_folder import RunPaths, data_paths, read_config, with_tuned, write_state
from s2s.data.pipeline import Buckets
from s2s.data.sets import primary_test_set
from s2s.data.stage import PreparedData
from s2s.decoding.translator import Translator
from s2s.evaluation.perplexity import evaluate_lm, sentences_of
from s2s.evaluation.reports import evaluate_set
from s2s.models.language_model import from_config_dict as lm_from_config
from s2s.models.loading import build_model, load_trained
from s2s.training.scorers import (
    LanguageModelScorer,
    TranslationScorer,
    pair_batches,
    sentence_batches,
)
from s2s.training.tuning import search_grid, tune_search


def lm_side(config: dict, side: str) -> str:
    """``src`` or ``tgt``: the side of the pair ``side`` names (``src``, ``tgt``, or a language
    of the pair), refused naming the pair when it names neither."""
    for name in ("src", "tgt"):
        if side in (name, config["data"][f"{name}_lang"]):
            return name
    pair = f"{config['data']['src_lang']}-{config['data']['tgt_lang']}"
    raise ConfigError(f"--side {side}: the pair {pair} has no such side (src, tgt, or a language)")


def task_for(config: dict):
    """The task a config describes: a language model when ``lm.side`` is set."""
    side = config["lm"]["side"]
    return LanguageModelTask(side) if side else TranslationTask()


class TranslationTask:
    """Translation: pairs in, a :class:`~s2s.models.seq2seq.Seq2Seq` out (see the module)."""

    side = None  # the model reads both sides of each pair
    name = "translation model"

    def check(self, config: dict) -> None:
        """Nothing to refuse: every ``train.*`` key applies."""

    def data_config(self, config: dict, paths: RunPaths) -> tuple[dict, RunPaths]:
        return config, paths

    def build(self, config: dict, data: PreparedData) -> keras.Model:
        return build_model(config, data.src_tok, data.tgt_tok)

    @staticmethod
    def tokenizers(data: PreparedData) -> dict:
        """The vocabularies the model's weights are indexed by, by side."""
        return {"src": data.src_tok, "tgt": data.tgt_tok}

    @staticmethod
    def builder(config: dict):
        """Builds an untrained model of ``config`` for given vocabularies (a parent's)."""
        return lambda tokenizers: build_model(config, tokenizers["src"], tokenizers["tgt"])

    def scorer(self, config: dict, data: PreparedData, buckets: Buckets) -> TranslationScorer:
        dev = data.sets["dev"]
        batches = pair_batches(dev, data.src_tok, data.tgt_tok, buckets)
        return TranslationScorer(config, data.src_tok, data.tgt_tok, dev, batches)

    def finish(self, config: dict, paths: RunPaths, data: PreparedData, state: dict, log) -> dict:
        """Tune the search on dev (once), then translate and score every test set; returns the
        report of the run's test set (``{}`` when it has none)."""
        _, model, src_tok, tgt_tok = load_trained(paths.root)
        if state["tuned"] is None and search_grid(config["search"]):
            if "dev" in data.sets:
                state["tuned"] = tune_search(model, src_tok, tgt_tok, config, data.sets["dev"], log)
                write_state(paths, state)
            else:
                log("no dev set: search.tune_alpha and search.tune_beam are not tried")
        config = with_tuned(config, state)
        results = {}
        for name, eval_set in data.sets.items():
            if name != "dev":
                translator = Translator.from_config(model, src_tok, tgt_tok, config)
                results[name] = evaluate_set(translator, eval_set, config, paths.eval, state, log)
        if not results:
            log("no test set (data.test_sources: 0 and no data.test): nothing to score")
        return results.get(primary_test_set(results), {})


class LanguageModelTask:
    """A language model of one side of the pairs (see the module)."""

    name = "language model"

    def __init__(self, side: str):
        self.side = side

    def check(self, config: dict) -> None:
        """Refuse the ``train.*`` keys that mean nothing without search."""
        if config["train"]["dev_beam_size"] != defaults()["train"]["dev_beam_size"]:
            raise ConfigError(
                "train.dev_beam_size: a language model is scored by dev perplexity, not by "
                "search; leave it unset for lm runs"
            )

    def data_config(self, config: dict, paths: RunPaths) -> tuple[dict, RunPaths]:
        """The run's own folder, or with ``lm.data_from`` that translation run's folder, whose
        data and tokenizer settings then replace the config's (as that run made them)."""
        source = data_paths(config, paths)
        if source == paths:
            return config, paths
        made = read_config(source)
        return {**config, "data": made["data"], "tokenizer": made["tokenizer"]}, source

    def build(self, config: dict, data: PreparedData) -> keras.Model:
        return self.builder(config)(self.tokenizers(data))

    def tokenizers(self, data: PreparedData) -> dict:
        return {"lm": data.tokenizer(self.side)}

    @staticmethod
    def builder(config: dict):
        cell = config["model"]["cell"]
        return lambda tokenizers: lm_from_config(config["lm"], cell, tokenizers["lm"].vocab_size)

    def scorer(self, config: dict, data: PreparedData, buckets: Buckets) -> LanguageModelScorer:
        ids = data.tokenizer(self.side).encode(sentences_of(data.sets["dev"], self.side))
        return LanguageModelScorer(sentence_batches(ids, buckets))

    def finish(self, config: dict, paths: RunPaths, data: PreparedData, state: dict, log) -> dict:
        """Perplexity and bits per character of the run's test set (its dev set when it has no
        test set), in ``eval/lm-test.json``."""
        lm = keras.saving.load_model(paths.model, compile=False)
        name = primary_test_set(data.sets) or ("dev" if "dev" in data.sets else None)
        if name is None:
            log("no dev or test set: nothing to score")
            return {}
        lang = config["data"][f"{self.side}_lang"]
        sentences = sentences_of(data.sets[name], self.side)
        script = config["data"]["chinese_script"]
        report = evaluate_lm(lm, data.tokenizer(self.side), sentences, lang, script)
        report["split"] = name
        paths.eval.mkdir(parents=True, exist_ok=True)
        (paths.eval / "lm-test.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        log(
            f"{name} ({report['sentences']:,} sentences): perplexity {report['perplexity']:.2f} "
            f"per piece, {report['bits_per_char']:.3f} bits per character"
        )
        return report
