"""The one training runner: ``train(config, run_dir)`` is what ``s2s train``, ``s2s lm train``
and ``make train`` run, for a translation model and a language model alike (the config's task,
:mod:`s2s.training.tasks`, says which).

Every stage writes into the run folder and is skipped when its output is there, so running it
again on the same folder resumes: from the last checkpoint (weights, optimizer state, the input
stream's position), losing at most one interval (see :mod:`s2s.training.loop`). A finished run
is not retrained; it is evaluated again.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import tensorflow as tf

from s2s.config.run_folder import RunPaths, read_state, start, write_state
from s2s.data.pipeline import Buckets, SubwordSampling, shard_dataset
from s2s.data.shards import ShardIndex
from s2s.data.stage import PreparedData, fixed_shards, prepare
from s2s.models.loss import sequence_loss
from s2s.models.precision import machine, precision, resolve_precision
from s2s.text.tokenizer import Tokenizer
from s2s.training import distribution
from s2s.training.checkpoints import Checkpoints, average_checkpoints
from s2s.training.init_from import Parent, initialise
from s2s.training.logs import TrainLog
from s2s.training.loop import Interval, Loop, Patience, TrainingDiverged, run_loop
from s2s.training.schedules import budget_decay, learning_rate
from s2s.training.scorers import NoDevScorer
from s2s.training.tasks import task_for

__all__ = ["TrainingDiverged", "compile_model", "train"]


def train(
    config: dict, run_dir: str | Path, corpus: Path | None = None, log=print, loss=sequence_loss
) -> dict:
    """Train (or resume) the run in ``run_dir``, then evaluate it (see the task's ``finish``).

    ``corpus``: a TSV file instead of the configured corpus; ``loss``: the training loss
    (:func:`s2s.models.loss.sequence_loss`; tests pass others). Returns the report of the run's
    test set (translation: scores; language model: perplexity).
    """
    started = time.perf_counter()
    task = task_for(config)
    strategy = distribution.make_strategy(config["train"])  # before TensorFlow does anything else
    keras.utils.set_random_seed(config["train"]["seed"])
    if config["train"]["distribute"] == "multi_worker" and distribution.worker_index():
        # Only the chief writes the run folder; the others keep their own copies apart.
        run_dir = Path(run_dir) / f"worker-{distribution.worker_index()}"
    paths = RunPaths(Path(run_dir))
    config, data_at = task.data_config(config, paths)
    parent = Parent.of(config)
    if parent is not None:
        config = parent.adopt(config)
    task.check(config)
    start(paths, config)
    state = read_state(paths)
    if parent is not None and config["train"]["init_vocab"] == "parent":
        parent.give_vocabularies(data_at)
    data = prepare(config, data_at, corpus, log, fixed_shards=fixed_shards(paths, data_at, state))
    if not state["finished"]:
        fit(task, config, paths, state, data, strategy, log, loss, started, parent)
    return task.finish(config, paths, data, state, log)


def compile_model(
    model: keras.Model, config: dict, jit_compile: bool | None = None, loss=sequence_loss
) -> keras.Model:
    """Adam, clipping and label smoothing of ``config["train"]``, and the training ``loss``."""
    train_cfg = config["train"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(train_cfg)),
        label_smoothing=train_cfg["label_smoothing"],
        clipnorm=train_cfg["clipnorm"],
        sequence_loss=loss,
        jit_compile=train_cfg["jit_compile"] if jit_compile is None else jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def fit(
    task, config, paths, state, data: PreparedData, strategy, log, loss, started=None, parent=None
):
    """Train until the step cap, the time budget or patience; save the best (or averaged)
    model as ``model.keras``."""
    train_cfg = config["train"]
    distributed = distribution.is_distributed(strategy)
    buckets = Buckets(
        tuple(train_cfg["bucket_boundaries"]),
        train_cfg["batch_tokens"],
        row_multiple=strategy.num_replicas_in_sync,
    )
    steps_per_epoch = buckets.steps_per_epoch(data.shards.lengths())
    # Each session records what it trained in, and on what: ``auto`` resolves per machine.
    state["trained_on"] = [
        *state.get("trained_on", []),
        {"from_step": state["step"], **machine(train_cfg["precision"])},
    ]
    jit = train_cfg["jit_compile"] and not distributed  # XLA cannot hold cross-replica sums
    with strategy.scope(), precision(train_cfg["precision"]):
        model = compile_model(task.build(config, data), config, jit, loss)
    if distributed:
        log(
            f"{train_cfg['distribute']}: {strategy.num_replicas_in_sync} replicas, "
            f"batches of ~{buckets.batch_tokens} tokens split between them"
            + ("; no XLA under distribution" if train_cfg["jit_compile"] else "")
        )
    sampling = subword_sampling(config, data.src_tok, data.tgt_tok)
    iterator = training_stream(
        strategy, data.shards, buckets, train_cfg, state["step"], sampling, task.side
    )
    # tf.distribute's iterators cannot be checkpointed: a distributed run resumes on a stream
    # reshuffled by the step instead of at the exact next batch.
    inputs = None if distributed else tf.train.Checkpoint(iterator=iterator)
    checkpoints = Checkpoints(paths, train_cfg["average_last"])
    scorer = task.scorer(config, data, buckets) if "dev" in data.sets else NoDevScorer()
    if isinstance(scorer, NoDevScorer):
        log("no dev set: no dev scoring; the last checkpoint is kept, not averaged")
    if parent is not None and not state["step"]:
        initialise(model, parent, config, task.tokenizers(data), task.builder(parent.config))
        state["parent"] = parent.record()
        log(
            f"starting from {parent.paths.root} (step {parent.state['step']:,}; "
            f"vocabulary: {config['train']['init_vocab']}, reset: {config['train']['init_reset']})"
        )
    if state["step"]:
        checkpoints.restore(state["step"], model, inputs)
        log(
            f"resuming from step {state['step']:,} ({state['elapsed_s'] / 60:.1f} min trained, "
            f"optimizer step {int(model.optimizer.iterations.numpy())}, "
            f"{scorer.best(state['best_objective'])})"
        )
    interval = Interval(train_cfg["eval_steps"] or steps_per_epoch, train_cfg["eval_minutes"])
    reads = "pairs" if task.side is None else f"{task.side} sentences"
    log(
        f"{task.name}: {model.count_params():,} parameters, "
        f"{resolve_precision(train_cfg['precision'])}; {data.shards.total_pairs:,} training "
        f"{reads}, {steps_per_epoch:,} steps an epoch of ~{buckets.batch_tokens} tokens; dev "
        f"scoring and a checkpoint every {interval.steps:,} steps"
        + (f" or {interval.minutes:g} min" if interval.minutes else "")
    )
    multi_worker = train_cfg["distribute"] == "multi_worker"
    loop = Loop(
        model=model,
        iterator=iterator,
        inputs=inputs,
        interval=interval,
        checkpoints=checkpoints,
        scorer=scorer,
        patience=Patience(
            train_cfg["patience"],
            train_cfg["plateau_patience"] if train_cfg["lr_schedule"] == "plateau" else None,
        ),
        log=TrainLog(paths),
        max_steps=train_cfg["epochs"] * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        budget_s=60.0 * train_cfg["max_minutes"],
        agree=distribution.any_worker(strategy) if multi_worker else None,
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
    averaged = None
    if not isinstance(scorer, NoDevScorer):
        averaged = average_if_better(task, config, data, state, checkpoints, scorer, log)
    (averaged or model).save(paths.model, include_optimizer=False)
    state["finished"] = True
    write_state(paths, state)


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
    side: str | None = None,
):
    """An iterator over the training batches (pairs, or one ``side`` of them); under
    ``multi_worker`` each worker reads its own share of the shards. One device restores the
    stream's position from the checkpoint; a distributed run resumed at ``step`` reads a stream
    seeded by the step."""
    workers, worker = 1, 0
    if train_cfg["distribute"] == "multi_worker":
        workers, worker = distribution.worker_count(), distribution.worker_index()
    distributed = distribution.is_distributed(strategy)
    seed = train_cfg["seed"] + (step if distributed else 0)
    dataset = shard_dataset(
        index.paths(),
        buckets,
        seed,
        train_cfg["shuffle_buffer"],
        workers,
        worker,
        side=side,
        sampling=sampling,
    )
    if distributed:
        return iter(strategy.experimental_distribute_dataset(dataset))
    return iter(dataset)


def average_if_better(task, config, data, state, checkpoints: Checkpoints, scorer, log):
    """Average the kept checkpoints' weights; return that model if it beats the best on dev."""
    steps = checkpoints.kept(state)
    files = [checkpoints.paths.step_weights(step) for step in steps]
    if len(files) < 2:
        return None
    with precision(config["train"]["precision"]):
        model = compile_model(task.build(config, data), config)
    model = average_checkpoints(model, files)
    dev = scorer(model)
    objective = scorer.objective(dev)
    better = objective > state["best_objective"]
    log(
        f"average of the last {len(files)} checkpoints: {scorer.summary(dev)}; the best single "
        f"(step {state['best_step']:,}): {scorer.best(state['best_objective'])}: "
        f"{'using the average' if better else 'keeping the single best'}"
    )
    state["averaged"] = {"steps": steps, "dev": dev, "used": bool(better)}
    return model if better else None
