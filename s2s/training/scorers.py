"""What dev says at the end of each interval, per task: a scorer is called with the model and
returns the row's dev columns; ``objective`` (higher is better) is what patience, the best
checkpoint and checkpoint averaging follow, ``summary`` what the log line shows.

- :class:`TranslationScorer`: dev loss and perplexity (teacher forcing) and dev BLEU/chrF by
  search; the objective is BLEU.
- :class:`LanguageModelScorer`: dev loss and perplexity; the objective is minus the NLL.
- :class:`NoDevScorer`: a run without a dev set; every interval counts as the best, so the last
  checkpoint is the one kept.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from s2s.data.pipeline import Buckets, filter_long, training_dataset
from s2s.data.sets import EvalSet
from s2s.decoding.translator import Translator
from s2s.evaluation.perplexity import perplexity
from s2s.evaluation.reports import set_scores
from s2s.text.tokenizer import Tokenizer


def dev_loss(model: keras.Model, batches: tf.data.Dataset) -> dict[str, float]:
    """The model's test step over every batch of ``batches`` (distributed over the replicas of
    the model's strategy): ``{"loss", "nll"}``, token-weighted means."""
    strategy = model.distribute_strategy
    data = batches
    if strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        data = strategy.experimental_distribute_dataset(batches)
    for metric in model.metrics:
        metric.reset_state()
    model.make_test_function()
    iterator = iter(data)
    for _ in range(int(batches.cardinality())):
        model.test_function(iterator)
    return {m.name: float(m.result()) for m in model.metrics if m.name in ("loss", "nll")}


def pair_batches(dev: EvalSet, src_tok: Tokenizer, tgt_tok: Tokenizer, buckets: Buckets):
    """Teacher-forced batches of every (source, reference) pair of a dev set, in order."""
    pairs = [(s, r) for s, refs in zip(dev.sources, dev.references, strict=True) for r in refs]
    src_ids = src_tok.encode([s for s, _ in pairs])
    tgt_ids = tgt_tok.encode([r for _, r in pairs])
    src_ids, tgt_ids, _ = filter_long(src_ids, tgt_ids, buckets)
    return training_dataset(src_ids, tgt_ids, buckets, shuffle=False)


def sentence_batches(ids: list[list[int]], buckets: Buckets) -> tf.data.Dataset:
    """Teacher-forced batches of sentences (an empty source each), in order."""
    _, ids, _ = filter_long([[]] * len(ids), ids, buckets)
    return training_dataset([[]] * len(ids), ids, buckets, shuffle=False)


class TranslationScorer:
    """Dev loss (teacher forcing) and dev BLEU/chrF (search with ``train.dev_beam_size``)."""

    def __init__(self, config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer, dev: EvalSet, batches):
        self.config, self.src_tok, self.tgt_tok = config, src_tok, tgt_tok
        self.dev, self.batches = dev, batches
        self._translators: dict[int, Translator] = {}  # by model: each traces its search once

    def translator(self, model: keras.Model) -> Translator:
        if id(model) not in self._translators:
            self._translators[id(model)] = Translator.from_config(
                model,
                self.src_tok,
                self.tgt_tok,
                self.config,
                beam_size=self.config["train"]["dev_beam_size"],
            )
        return self._translators[id(model)]

    @staticmethod
    def objective(dev: dict) -> float:
        return dev["val_bleu"]

    @staticmethod
    def best(objective: float) -> str:
        return f"best dev BLEU {objective:.2f}"

    @staticmethod
    def summary(dev: dict) -> str:
        return (
            f"dev ppl {perplexity(dev['val_nll']):.1f}  dev BLEU {dev['val_bleu']:.2f}  "
            f"chrF {dev['val_chrf']:.2f}"
        )

    def __call__(self, model: keras.Model) -> dict:
        losses = dev_loss(model, self.batches)
        scores = set_scores(self.translator(model), self.dev, self.config)
        return {
            "val_loss": losses["loss"],
            "val_nll": losses["nll"],
            "val_bleu": scores.bleu,
            "val_chrf": scores.chrf,
        }


class LanguageModelScorer:
    """Dev loss and perplexity (teacher forcing)."""

    def __init__(self, batches: tf.data.Dataset):
        self.batches = batches

    @staticmethod
    def objective(dev: dict) -> float:
        return -dev["val_nll"]

    @staticmethod
    def best(objective: float) -> str:
        return f"best dev perplexity {perplexity(-objective):.2f}"

    @staticmethod
    def summary(dev: dict) -> str:
        return f"dev ppl {dev['val_ppl']:.2f}"

    def __call__(self, model: keras.Model) -> dict:
        losses = dev_loss(model, self.batches)
        nll = losses["nll"]
        return {"val_loss": losses["loss"], "val_nll": nll, "val_ppl": perplexity(nll)}


class NoDevScorer:
    """No dev set (``data.dev_sources: 0`` and no ``data.dev``): nothing is scored; the objective
    is the optimizer's step, so every interval is the best so far and the last checkpoint is
    kept, and patience never stops the run."""

    def __call__(self, model: keras.Model) -> dict:
        self.step = int(model.optimizer.iterations.numpy())
        return {}

    def objective(self, dev: dict) -> float:
        return float(self.step)

    @staticmethod
    def best(objective: float) -> str:
        return "no dev set"

    @staticmethod
    def summary(dev: dict) -> str:
        return "no dev set"
