"""A language model run: one side of a pair's corpus, the translation run's stages and loop.

``python -m s2s lm train --lang en`` prepares the data as ``train`` does (cleaning, split,
SentencePiece, shards; or reuses a translation run's, ``lm.data_from``, so that the model shares
that run's target vocabulary, as shallow fusion needs), then trains a :class:`RecurrentLM` with
:func:`s2s.trainer.run_loop`: intervals, dev perplexity, checkpoints with the input position,
resume after ``kill -9``, CSV and TensorBoard logs. The test report gives perplexity per piece
and bits per character.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from s2s import runs
from s2s.config import ConfigError
from s2s.data import EvalSet, normalize
from s2s.language_model import RecurrentLM, from_config_dict, sentence_log_probs
from s2s.pipeline import Buckets, filter_long, shard_dataset, training_dataset
from s2s.tokenizer import Tokenizer
from s2s.train import learning_rate, prepare_data, prepare_shards, prepare_tokenizers
from s2s.trainer import (
    Checkpoints,
    Interval,
    Loop,
    Patience,
    TrainingDiverged,
    TrainLog,
    budget_decay,
    run_loop,
)


def side_of(config: dict, lang: str) -> str:
    """``src`` or ``tgt``: the side of the pair in language ``lang``."""
    for side in ("src", "tgt"):
        if config["data"][f"{side}_lang"] == lang:
            return side
    pair = f"{config['data']['src_lang']}-{config['data']['tgt_lang']}"
    raise ConfigError(f"--lang {lang}: the pair {pair} has no such side (choose one of its two)")


def sentences_of(eval_set: EvalSet, side: str) -> list[str]:
    """A dev/test set's sentences on one side: its sources, or its distinct references."""
    if side == "src":
        return list(eval_set.sources)
    return list(dict.fromkeys(r for refs in eval_set.references for r in refs))


class LMScorer:
    """Dev loss and perplexity (teacher forcing); higher ``objective`` is better."""

    def __init__(self, dev_batches):
        self.dev_batches = dev_batches

    def __call__(self, model: keras.Model) -> dict:
        losses = model.evaluate(self.dev_batches, verbose=0, return_dict=True)
        nll = float(losses["nll"])
        return {"val_loss": float(losses["loss"]), "val_nll": nll, "val_ppl": _ppl(nll)}

    @staticmethod
    def objective(dev: dict) -> float:
        return -dev["val_nll"]

    @staticmethod
    def summary(dev: dict) -> str:
        return f"dev ppl {dev['val_ppl']:.2f}"


def _ppl(nll: float) -> float:
    return math.exp(min(nll, 50.0))


def lm_batches(ids: list[list[int]], buckets: Buckets) -> tf.data.Dataset:
    """Teacher-forced batches of sentences (an empty source each), in order."""
    _, ids, _ = filter_long([[]] * len(ids), ids, buckets)
    return training_dataset([[]] * len(ids), ids, buckets, shuffle=False)


def train_lm(config: dict, run_dir: str | Path, corpus: Path | None = None, log=print) -> dict:
    """Train (or resume) the language model in ``run_dir``; returns its test report."""
    started = time.perf_counter()
    keras.utils.set_random_seed(config["train"]["seed"])
    paths = runs.RunPaths(Path(run_dir))
    source = runs.data_paths(config, paths)
    if source != paths:  # the translation run's data and vocabularies, as that run made them
        made = runs.read_config(source)
        config = {**config, "data": made["data"], "tokenizer": made["tokenizer"]}
    runs.start(paths, config)
    state = runs.read_state(paths)
    sets = prepare_data(config, source, corpus, log)
    side = config["lm"]["side"]
    tokenizer = prepare_tokenizers(config, source)[0 if side == "src" else 1]
    if not state["finished"]:
        fit_lm(config, paths, source, state, sets["dev"], tokenizer, log, started)
    lm = keras.saving.load_model(paths.model, compile=False)
    test = next((s for name, s in sets.items() if name != "dev"), sets["dev"])
    lang, script = config["data"][f"{side}_lang"], config["data"]["chinese_script"]
    report = evaluate_lm(lm, tokenizer, sentences_of(test, side), lang, script)
    paths.eval.mkdir(parents=True, exist_ok=True)
    (paths.eval / "lm-test.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(
        f"test ({report['sentences']:,} sentences): perplexity {report['perplexity']:.2f} per "
        f"piece, {report['bits_per_char']:.3f} bits per character"
    )
    return report


def fit_lm(config, paths, source, state, dev: EvalSet, tokenizer, log, started=None) -> None:
    """Train until the step cap, the time budget or patience; save the best as model.keras."""
    train_cfg, side = config["train"], config["lm"]["side"]
    buckets = Buckets(tuple(train_cfg["bucket_boundaries"]), train_cfg["batch_tokens"])
    src_tok, tgt_tok = Tokenizer(source.spm("src")), Tokenizer(source.spm("tgt"))
    index = prepare_shards(config, source, src_tok, tgt_tok, buckets, log)
    steps_per_epoch = buckets.steps_per_epoch(index.lengths())
    model = from_config_dict(config["lm"], config["model"]["cell"], tokenizer.vocab_size)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(train_cfg)),
        clipnorm=train_cfg["clipnorm"],
        jit_compile=False,
    )
    model.optimizer.build(model.trainable_variables)
    stream = shard_dataset(
        index.paths(), buckets, train_cfg["seed"], train_cfg["shuffle_buffer"], side=side
    )
    iterator = iter(stream)
    inputs = tf.train.Checkpoint(iterator=iterator)
    checkpoints = Checkpoints(paths, train_cfg["average_last"])  # kept: samples over time
    if state["step"]:
        checkpoints.restore(state["step"], model, inputs)
        log(
            f"resuming from step {state['step']:,} ({state['elapsed_s'] / 60:.1f} min trained, "
            f"best dev perplexity {_ppl(-state['best_bleu']):.2f})"
        )
    interval = Interval(train_cfg["eval_steps"] or steps_per_epoch, train_cfg["eval_minutes"])
    log(
        f"language model ({side} side): {model.count_params():,} parameters; "
        f"{index.total_pairs:,} training sentences, {steps_per_epoch:,} steps an epoch; dev "
        f"perplexity and a checkpoint every {interval.steps:,} steps"
        + (f" or {interval.minutes:g} min" if interval.minutes else "")
    )
    dev_ids = tokenizer.encode(sentences_of(dev, side))
    loop = Loop(
        model=model,
        iterator=iterator,
        inputs=inputs,
        interval=interval,
        checkpoints=checkpoints,
        scorer=LMScorer(lm_batches(dev_ids, buckets)),
        patience=Patience(train_cfg["patience"], None),
        log=TrainLog(paths),
        max_steps=train_cfg["epochs"] * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        budget_s=60.0 * train_cfg["max_minutes"],
        started=started,
        decay=budget_decay(train_cfg),
    )
    try:
        run_loop(loop, state, log)
    except TrainingDiverged as e:
        raise TrainingDiverged(f"{e}: lower train.learning_rate and run again") from None
    model.load_weights(paths.best_weights)
    model.save(paths.model, include_optimizer=False)
    state["finished"] = True
    runs.write_state(paths, state)


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
        "perplexity": _ppl(nll / pieces),
        "bits_per_char": nll / math.log(2) / chars,
    }
