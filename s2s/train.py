"""Training: data stage, SentencePiece, shards, the step loop, averaging, the final test sets.

``train(config, run_dir)`` is what ``make train`` runs. Every stage writes into the run folder
and is skipped when its output is there, so running it again on the same folder resumes: from
the last checkpoint (weights, optimizer state, the input stream's position), losing at most one
interval (see :mod:`s2s.trainer`). A finished run is not retrained; it is evaluated again.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import tensorflow as tf

from s2s import data as data_lib
from s2s import distribute, runs
from s2s.data import EvalSet
from s2s.evaluate import format_length_ratios, length_ratios, score, write_report
from s2s.loss import sequence_loss
from s2s.model import Seq2Seq
from s2s.parallel import worker_count
from s2s.pipeline import Buckets, SubwordSampling, filter_long, shard_dataset, training_dataset
from s2s.runs import build_model, load_trained
from s2s.shards import ShardIndex, write_shards
from s2s.tokenizer import Tokenizer, train_sentencepiece
from s2s.trainer import (
    Checkpoints,
    DevScorer,
    Interval,
    Loop,
    Patience,
    TrainingDiverged,
    TrainLog,
    budget_decay,
    dev_scores,
    run_loop,
)
from s2s.translate import Translator
from s2s.tune import search_grid, tune_search

__all__ = ["TrainingDiverged", "train"]


# -- stages -----------------------------------------------------------------------------------


def prepare_data(
    config: dict, paths: runs.RunPaths, corpus: Path | None = None, log=print
) -> dict[str, EvalSet]:
    """Clean the corpus into ``data/train.tsv`` once per run (streamed; see
    :func:`s2s.data.prepare_run_data`); returns the dev and test sets."""
    data_lib.prepare_run_data(config, paths.data, corpus, log)
    return data_lib.load_eval_sets(paths.data)


def prepare_tokenizers(config: dict, paths: runs.RunPaths) -> tuple[Tokenizer, Tokenizer]:
    """Train (once) and load the SentencePiece models, on a random sample of the training pairs
    (``tokenizer.sample_sentences``; all of them on a small corpus)."""
    if not all(paths.spm(side).exists() for side in ("src", "tgt")):
        seed = config["data"]["seed"]
        sample = data_lib.sample_train(paths.data, config["tokenizer"]["sample_sentences"], seed)
        for side, sentences in zip(("src", "tgt"), sample, strict=True):
            train_sentencepiece(
                sentences,
                paths.spm(side).with_suffix(""),
                seed=seed,
                lang=config["data"][f"{side}_lang"],
                script=config["data"]["chinese_script"],
                **config["tokenizer"][side],
            )
    return Tokenizer(paths.spm("src")), Tokenizer(paths.spm("tgt"))


def prepare_shards(
    config: dict, paths: runs.RunPaths, src_tok, tgt_tok, buckets: Buckets, log=print
) -> ShardIndex:
    """Tokenise the training pairs into shards once per run (see :mod:`s2s.shards`)."""
    index = ShardIndex.read(paths.shards)
    if index is None:
        total = data_lib.count_train(paths.data)
        index = write_shards(
            data_lib.iter_train(paths.data),
            src_tok,
            tgt_tok,
            paths.shards,
            buckets.max_length,
            total_pairs=total,
            seed=config["data"]["seed"],
            workers=worker_count(config["data"]["workers"], total, data_lib.CHUNK_LINES),
        )
    if index.too_long:
        log(f"left out {index.too_long:,} training pairs longer than {buckets.max_length} pieces")
    return index


@keras.saving.register_keras_serializable(package="s2s")
class InverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then ``peak * sqrt(warmup / step)``."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = peak, warmup

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warmup = float(max(self.warmup, 1))
        return self.peak * tf.minimum(step / warmup, tf.sqrt(warmup / step))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


def learning_rate(train: dict):
    """The optimizer's learning rate: a number (``constant``, ``plateau``) or a schedule."""
    if train["lr_schedule"] == "inverse_sqrt":
        return InverseSqrt(train["learning_rate"], train["warmup_steps"])
    return train["learning_rate"]


def compile_model(
    model: Seq2Seq, config: dict, jit_compile: bool | None = None, loss=sequence_loss
) -> Seq2Seq:
    """Adam, clipping and label smoothing of ``config["train"]``, and the training ``loss``."""
    train = config["train"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(train)),
        label_smoothing=train["label_smoothing"],
        clipnorm=train["clipnorm"],
        sequence_loss=loss,
        jit_compile=train["jit_compile"] if jit_compile is None else jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def average_checkpoints(model: keras.Model, files: list[Path]) -> keras.Model:
    """Set ``model``'s weights to the mean of the weight files (float variables only)."""
    total = None
    for path in files:
        model.load_weights(path)
        values = [v.numpy() for v in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values, strict=True)]
    for variable, value in zip(model.weights, total, strict=True):
        if variable.dtype.startswith("float"):
            variable.assign(value / len(files))
    return model


# -- the whole run ----------------------------------------------------------------------------


def train(
    config: dict, run_dir: str | Path, corpus: Path | None = None, log=print, loss=sequence_loss
) -> dict:
    """Train (or resume) the run in ``run_dir`` and score its best model on every test set.

    ``loss``: the training loss (:func:`s2s.loss.sequence_loss`; tests pass others). Returns
    the scores of the test set named ``test`` (or the first one).
    """
    started = time.perf_counter()
    keras.utils.set_random_seed(config["train"]["seed"])
    if config["train"]["distribute"] == "multi_worker" and distribute.worker_index():
        # Only the chief writes the run folder; the others keep their own copies apart.
        run_dir = Path(run_dir) / f"worker-{distribute.worker_index()}"
    paths = runs.RunPaths(Path(run_dir))
    runs.start(paths, config)
    state = runs.read_state(paths)
    sets = prepare_data(config, paths, corpus, log)
    src_tok, tgt_tok = prepare_tokenizers(config, paths)
    if not state["finished"]:
        fit(config, paths, state, sets["dev"], src_tok, tgt_tok, log, loss, started)
    _, model, _, _ = load_trained(paths.root)
    if state["tuned"] is None and search_grid(config["search"]):
        state["tuned"] = tune_search(model, src_tok, tgt_tok, config, sets["dev"], log)
        runs.write_state(paths, state)
    config = runs.with_tuned(config, state)
    results = {
        name: evaluate_set(config, paths, model, src_tok, tgt_tok, eval_set, log)
        for name, eval_set in sets.items()
        if name != "dev"
    }
    return results.get("test") or next(iter(results.values()))


def fit(
    config,
    paths,
    state,
    dev: EvalSet,
    src_tok,
    tgt_tok,
    log=print,
    loss=sequence_loss,
    started: float | None = None,
):
    """Train until the step cap, the time budget or patience; save the best (or averaged)
    model as ``model.keras``."""
    train_cfg = config["train"]
    strategy = distribute.make_strategy(train_cfg)
    buckets = Buckets(
        tuple(train_cfg["bucket_boundaries"]),
        train_cfg["batch_tokens"],
        row_multiple=strategy.num_replicas_in_sync,
    )
    index = prepare_shards(config, paths, src_tok, tgt_tok, buckets, log)
    steps_per_epoch = buckets.steps_per_epoch(index.lengths())
    # XLA does not compile a step that holds cross-replica reductions.
    jit = train_cfg["jit_compile"] and not distribute.is_distributed(strategy)
    with strategy.scope(), distribute.precision(train_cfg["precision"]):
        model = compile_model(build_model(config, src_tok, tgt_tok), config, jit, loss)
    if distribute.is_distributed(strategy):
        log(
            f"{train_cfg['distribute']}: {strategy.num_replicas_in_sync} replicas, "
            f"batches of ~{buckets.batch_tokens} tokens split between them"
            + ("; no XLA under distribution" if train_cfg["jit_compile"] else "")
        )
    sampling = subword_sampling(config, src_tok, tgt_tok)
    iterator = training_stream(strategy, index, buckets, train_cfg, state["step"], sampling)
    # tf.distribute's iterators cannot be checkpointed: a distributed run resumes on a stream
    # reshuffled by the step instead of at the exact next batch.
    distributed = distribute.is_distributed(strategy)
    inputs = None if distributed else tf.train.Checkpoint(iterator=iterator)
    checkpoints = Checkpoints(paths, train_cfg["average_last"])
    if state["step"]:
        checkpoints.restore(state["step"], model, inputs)
        log(
            f"resuming from step {state['step']:,} ({state['elapsed_s'] / 60:.1f} min trained, "
            f"optimizer step {int(model.optimizer.iterations.numpy())}, "
            f"best dev BLEU {state['best_bleu']:.2f})"
        )
    interval = Interval(train_cfg["eval_steps"] or steps_per_epoch, train_cfg["eval_minutes"])
    log(
        f"model: {model.count_params():,} parameters, "
        f"{distribute.resolve_precision(train_cfg['precision'])}; {index.total_pairs:,} training "
        f"pairs, {steps_per_epoch:,} steps an epoch of ~{buckets.batch_tokens} tokens; dev "
        f"scoring and a checkpoint every {interval.steps:,} steps"
        + (f" or {interval.minutes:g} min" if interval.minutes else "")
    )
    translator = Translator.from_config(
        model, src_tok, tgt_tok, config, beam_size=train_cfg["dev_beam_size"]
    )
    loop = Loop(
        model=model,
        iterator=iterator,
        inputs=inputs,
        interval=interval,
        checkpoints=checkpoints,
        scorer=DevScorer(translator, dev_batches(dev, src_tok, tgt_tok, buckets), dev, config),
        patience=Patience(
            train_cfg["patience"],
            train_cfg["plateau_patience"] if train_cfg["lr_schedule"] == "plateau" else None,
        ),
        log=TrainLog(paths),
        max_steps=train_cfg["epochs"] * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        budget_s=60.0 * train_cfg["max_minutes"],
        agree=distribute.any_worker(strategy)
        if train_cfg["distribute"] == "multi_worker"
        else None,
        started=started,
        decay=budget_decay(train_cfg),
    )
    try:
        run_loop(loop, state, log)
    except TrainingDiverged as e:
        kept = f"step {state['step']:,}" if state["step"] else "none yet"
        raise TrainingDiverged(
            f"{e}: training stopped. The last good checkpoint is kept ({kept}); lower "
            f"train.learning_rate or train.clipnorm and run again to resume from it."
        ) from None
    model.load_weights(paths.best_weights)
    averaged = try_averaging(config, paths, state, dev, src_tok, tgt_tok, log)
    (averaged or model).save(paths.model, include_optimizer=False)
    state["finished"] = True
    runs.write_state(paths, state)


def subword_sampling(
    config: dict, src_tok: Tokenizer, tgt_tok: Tokenizer
) -> SubwordSampling | None:
    """What ``tokenizer.sampling_*`` asks of the training stream (None: the best cut)."""
    tokenizer = config["tokenizer"]
    if not tokenizer["sampling_alpha"]:
        return None
    return SubwordSampling(
        src_tok.serialized(),
        tgt_tok.serialized(),
        tokenizer["sampling_alpha"],
        tokenizer["sampling_nbest"],
    )


def training_stream(
    strategy,
    index: ShardIndex,
    buckets: Buckets,
    train_cfg: dict,
    step: int,
    sampling: SubwordSampling | None = None,
):
    """An iterator over the training batches; under ``multi_worker`` each worker reads its own
    share of the shards. One device restores the stream's position from the checkpoint; a
    distributed run resumed at ``step`` reads a stream seeded by the step."""
    workers, worker = 1, 0
    if train_cfg["distribute"] == "multi_worker":
        workers, worker = distribute.worker_count(), distribute.worker_index()
    seed = train_cfg["seed"]
    if distribute.is_distributed(strategy):
        seed += step
    dataset = shard_dataset(
        index.paths(),
        buckets,
        seed,
        train_cfg["shuffle_buffer"],
        workers,
        worker,
        sampling=sampling,
    )
    if distribute.is_distributed(strategy):
        return iter(strategy.experimental_distribute_dataset(dataset))
    return iter(dataset)


def dev_batches(dev: EvalSet, src_tok, tgt_tok, buckets: Buckets) -> tf.data.Dataset:
    """Teacher-forced batches of every (source, reference) pair of the dev set, for dev loss."""
    pairs = [(s, r) for s, refs in zip(dev.sources, dev.references, strict=True) for r in refs]
    src_ids = src_tok.encode([s for s, _ in pairs])
    tgt_ids = tgt_tok.encode([r for _, r in pairs])
    src_ids, tgt_ids, _ = filter_long(src_ids, tgt_ids, buckets)
    return training_dataset(src_ids, tgt_ids, buckets, shuffle=False)


def try_averaging(config, paths, state, dev: EvalSet, src_tok, tgt_tok, log=print):
    """Average the kept checkpoints' weights; return that model if it beats the best on dev."""
    steps = [s for s in state["checkpoints"] if paths.step_weights(s).exists()]
    if len(steps) < 2:
        return None
    with distribute.precision(config["train"]["precision"]):
        model = build_model(config, src_tok, tgt_tok)
    files = [paths.step_weights(s) for s in steps]
    model = average_checkpoints(compile_model(model, config), files)
    translator = Translator.from_config(
        model, src_tok, tgt_tok, config, beam_size=config["train"]["dev_beam_size"]
    )
    bleu = dev_scores(translator, dev, config).bleu
    better = bleu > state["best_bleu"]
    log(
        f"average of the last {len(files)} checkpoints: dev BLEU {bleu:.2f} vs best single "
        f"{state['best_bleu']:.2f} (step {state['best_step']:,}): "
        f"{'using the average' if better else 'keeping the single best'}"
    )
    state["averaged"] = {"steps": steps, "dev_bleu": bleu, "used": bool(better)}
    return model if better else None


def evaluate_set(
    config, paths, model, src_tok, tgt_tok, eval_set: EvalSet, log=print, beam_size=None
) -> dict:
    """Beam-search a test (or dev) set with the run's search settings and score it; writes
    ``eval/<name>.json`` (scores, and output length against the references by source length)
    and ``eval/<name>.hyp.txt``."""
    translator = Translator.from_config(model, src_tok, tgt_tok, config, beam_size=beam_size)
    sources, refs = eval_set.sources, eval_set.references
    t = time.perf_counter()
    hyps = [h.text for h in translator.translate(sources)]
    seconds = time.perf_counter() - t
    tgt_lang, tokenize = config["data"]["tgt_lang"], config["eval"]["tokenize"]
    scores = score(hyps, refs, tgt_lang, tokenize, lowercase=eval_set.lowercase)
    state = runs.read_state(paths)
    src_lang = config["data"]["src_lang"]
    lengths = length_ratios(sources, hyps, refs, src_lang, tgt_lang, tokenize)
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
        "length_by_source": lengths,
    }
    write_report(paths.eval, eval_set.name, sources, hyps, scores, extra)
    log(
        f"{eval_set.name}: {len(sources)} sentences, beam {translator.beam_size}, "
        f"{len(sources) / seconds:.0f} sentences/s\n{scores.summary()}\n"
        f"{format_length_ratios(lengths)}"
    )
    return {**scores.as_dict(), **extra}
