"""The training loop: steps over the shard stream, scored and saved at intervals.

An *interval* ends every ``train.eval_steps`` steps (default: once an epoch, a pass over the
training data) or after ``train.eval_minutes`` of training, whichever comes first. At its end
the run scores the dev set (loss, and BLEU/chrF by search), saves a checkpoint (weights with the
optimizer state, and the input stream's position) and then ``state.json``, which names the
checkpoint: a killed run resumes from the last interval with the very next batch, losing at
most one interval. Patience, the plateau schedule and checkpoint averaging count intervals.

Each concern is a small piece: :class:`Interval` (when), :class:`Checkpoints` (saving and
pruning), :class:`DevScorer` (scoring), :class:`Patience` (stopping and the plateau rate),
:class:`TrainLog` (CSV and TensorBoard), :class:`Progress` (the bar) and :class:`BudgetDecay`
(the rate under the ``budget`` schedule); :func:`run_loop` puts them together.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from s2s import runs
from s2s.data import EvalSet
from s2s.evaluate import score
from s2s.translate import Translator


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


@dataclass(frozen=True)
class Interval:
    """When an interval ends: after ``steps`` steps, or ``minutes`` of training, if sooner."""

    steps: int
    minutes: float | None = None

    def due(self, steps_done: int, seconds: float) -> bool:
        """``steps_done`` steps and ``seconds`` of training since the last interval ended."""
        by_time = self.minutes is not None and seconds >= 60.0 * self.minutes
        return steps_done >= self.steps or by_time


@dataclass(frozen=True)
class BudgetDecay:
    """The ``budget`` schedule: the peak rate until ``start`` (a fraction) of the run's budget
    has passed, then linearly down to zero as the budget ends. The budget is whichever of the
    step cap and the time budget is nearer, so the rate reaches zero when the run stops
    (budgeted training: Li et al. 2020 find this beats a constant rate at every budget)."""

    peak: float
    start: float

    def rate(self, progress: float) -> float:
        """The rate once ``progress`` (0 to 1) of the budget has been used."""
        if progress <= self.start:
            return self.peak
        return self.peak * max(0.0, 1.0 - progress) / (1.0 - self.start)


class Checkpoints:
    """``step-N.weights.h5`` (weights and optimizer state) and ``step-N.input.*`` (the input
    stream's position) for the last ``keep`` intervals, and ``best.weights.h5``."""

    def __init__(self, paths: runs.RunPaths, keep: int):
        self.paths, self.keep = paths, max(1, keep)
        paths.checkpoints.mkdir(parents=True, exist_ok=True)

    def save(self, step: int, model: keras.Model, inputs: tf.train.Checkpoint, state: dict):
        """Write step ``step``'s checkpoint, then ``state.json`` naming it (the commit point),
        then remove the checkpoints no longer kept."""
        model.save_weights(self.paths.step_weights(step))
        if inputs is not None:
            inputs.write(str(self.paths.step_input(step)))
        earlier = [s for s in state["checkpoints"] if s != step]
        kept = [*(earlier[-(self.keep - 1) :] if self.keep > 1 else []), step]
        dropped = [s for s in state["checkpoints"] if s not in kept]
        state.update(step=step, checkpoints=kept)
        runs.write_state(self.paths, state)
        for old in dropped:
            self.remove(old)

    def remove(self, step: int) -> None:
        self.paths.step_weights(step).unlink(missing_ok=True)
        for path in self.paths.checkpoints.glob(f"{self.paths.step_input(step).name}.*"):
            path.unlink()

    def restore(self, step: int, model: keras.Model, inputs: tf.train.Checkpoint | None) -> None:
        model.load_weights(self.paths.step_weights(step))
        if inputs is not None:
            inputs.read(str(self.paths.step_input(step))).assert_consumed()

    def save_best(self, model: keras.Model) -> None:
        model.save_weights(self.paths.best_weights)


class DevScorer:
    """Dev loss (teacher forcing) and dev BLEU/chrF (search with ``translator``)."""

    def __init__(self, translator: Translator, dev_batches, dev: EvalSet, config: dict):
        self.translator, self.dev_batches, self.dev, self.config = (
            translator,
            dev_batches,
            dev,
            config,
        )

    @staticmethod
    def objective(dev: dict) -> float:
        """What patience and the best checkpoint follow (higher is better)."""
        return dev["val_bleu"]

    @staticmethod
    def summary(dev: dict) -> str:
        return (
            f"dev ppl {math.exp(min(dev['val_nll'], 50)):.1f}  dev BLEU {dev['val_bleu']:.2f}  "
            f"chrF {dev['val_chrf']:.2f}"
        )

    def __call__(self, model: keras.Model) -> dict:
        losses = model.evaluate(self.dev_batches, verbose=0, return_dict=True)
        scores = dev_scores(self.translator, self.dev, self.config)
        return {
            "val_loss": float(losses["loss"]),
            "val_nll": float(losses["nll"]),
            "val_bleu": scores.bleu,
            "val_chrf": scores.chrf,
        }


def dev_scores(translator: Translator, dev: EvalSet, config: dict):
    """BLEU and chrF of ``translator`` on ``dev`` against all its references (lower-cased if
    the set says so)."""
    hyps = [h.text for h in translator.translate(dev.sources)]
    tgt_lang, tokenize = config["data"]["tgt_lang"], config["eval"]["tokenize"]
    return score(hyps, dev.references, tgt_lang, tokenize, lowercase=dev.lowercase)


class Patience:
    """Stop after ``patience`` intervals without a dev gain (the scorer's ``objective``: BLEU
    for translation); under the plateau schedule, halve the learning rate after ``plateau``
    intervals without one. ``state["best_bleu"]`` holds the best objective."""

    def __init__(self, patience: int, plateau: int | None):
        self.patience, self.plateau = patience, plateau

    def update(self, state: dict, objective: float, step: int) -> bool:
        """Record an interval's dev objective; returns whether it is the best so far."""
        improved = state["best_bleu"] is None or objective > state["best_bleu"]
        if improved:
            state.update(best_bleu=objective, best_step=step, best_eval=state["evals"], stale=0)
        else:
            state["stale"] += 1
        return improved

    def should_stop(self, state: dict) -> bool:
        return state["stale"] >= self.patience

    def adjust_rate(self, state: dict, optimizer) -> float | None:
        """Halve the rate when the plateau count is reached; returns the new rate if changed."""
        if self.plateau is None or not state["stale"] or state["stale"] % self.plateau:
            return None
        rate = float(optimizer.learning_rate.numpy()) * 0.5
        optimizer.learning_rate.assign(rate)
        return rate


class TrainLog:
    """One row per interval in ``logs/train.csv`` and TensorBoard scalars at the step."""

    def __init__(self, paths: runs.RunPaths):
        paths.logs.mkdir(parents=True, exist_ok=True)
        self.csv_path = paths.logs / "train.csv"
        self.writer = tf.summary.create_file_writer(str(paths.logs / "tensorboard"))

    def write(self, row: dict) -> None:
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        with self.writer.as_default(step=row["step"]):
            for name, value in row.items():
                if name != "step" and isinstance(value, (int, float)):
                    tf.summary.scalar(name, value)
        self.writer.flush()


class Progress:
    """A bar over the run's steps: loss, target tokens/s, and the time left of the budget."""

    def __init__(
        self, total: int, done: int, budget_s: float, started: float | None = None, say=print
    ):
        self.budget_s, self.started, self.say = budget_s, started, say
        self.bar = tqdm(
            total=total,
            initial=done,
            desc="training",
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0 if os.isatty(2) else 30.0,
        )

    def update(self, loss: float, tok_s: float, elapsed_s: float) -> None:
        if self.started is not None:  # once: how long the set-up before training took
            self.say(
                f"first step {time.perf_counter() - self.started:.0f} s after the run started "
                f"(data, SentencePiece, shards, loading, tracing)"
            )
            self.started = None
        left = max(self.budget_s - elapsed_s, 0.0)
        self.bar.set_postfix(
            loss=f"{loss:.3f}",
            tok_s=f"{tok_s:,.0f}",
            budget_left=f"{left / 60:.1f}min",
            refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@dataclass
class Loop:
    """Everything :func:`run_loop` drives."""

    model: keras.Model
    iterator: object  # tf.data iterator (or distributed iterator) over training batches
    inputs: tf.train.Checkpoint | None  # tracks ``iterator`` (None: not checkpointable)
    interval: Interval
    checkpoints: Checkpoints
    scorer: DevScorer  # or any callable with objective() and summary() (train_lm.LMScorer)
    patience: Patience
    log: TrainLog
    max_steps: int
    steps_per_epoch: int
    budget_s: float
    agree: object = None  # multi_worker: agree(flag) -> whether any worker raised it
    agree_every: int = 20
    started: float | None = None  # time.perf_counter() when the run started (for the log)
    decay: BudgetDecay | None = None  # the budget schedule sets the rate before each step


def budget_decay(train: dict) -> BudgetDecay | None:
    """The rate setter for ``train.lr_schedule: budget`` (None under the other schedules)."""
    if train["lr_schedule"] != "budget":
        return None
    return BudgetDecay(train["learning_rate"], train["decay_from"])


def budget_progress(loop: Loop, step: int, elapsed_s: float) -> float:
    """How much of the run's budget (steps or seconds, the nearer end) ``step`` has used."""
    return min(1.0, max(step / max(loop.max_steps, 1), elapsed_s / max(loop.budget_s, 1e-9)))


def run_loop(loop: Loop, state: dict, say=print) -> None:
    """Train from ``state["step"]`` until the step cap, the time budget or patience ends it.

    Raises :class:`TrainingDiverged` at a non-finite loss, leaving the last checkpoint as it was.
    """
    loop.model.make_train_function()
    progress = Progress(loop.max_steps, state["step"], loop.budget_s, loop.started, say)
    try:
        while state["step"] < loop.max_steps:
            logs, steps, seconds = train_interval(loop, state, progress)
            state["elapsed_s"] += seconds
            stop = end_interval(loop, state, logs, steps, seconds, say)
            out_of_time = state["elapsed_s"] >= loop.budget_s
            if loop.agree is not None:  # the workers stop together or not at all
                out_of_time = loop.agree(out_of_time)
            if out_of_time:
                say(f"time budget of {loop.budget_s / 60:g} min reached: stopping")
            if stop or out_of_time:
                break
    finally:
        progress.close()


def train_interval(loop: Loop, state: dict, progress: Progress) -> tuple[dict, int, float]:
    """Train steps until the interval ends; returns the last logs, the steps and seconds."""
    start, steps, seconds = time.perf_counter(), 0, 0.0
    while True:
        if loop.decay is not None:
            used = budget_progress(loop, state["step"] + steps, state["elapsed_s"] + seconds)
            loop.model.optimizer.learning_rate.assign(loop.decay.rate(used))
        logs = loop.model.train_function(loop.iterator)
        steps += 1
        loss, seconds = float(logs["loss"]), time.perf_counter() - start
        progress.update(
            loss, float(logs["tokens"]) / max(seconds, 1e-9), state["elapsed_s"] + seconds
        )
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss became {loss} at step {state['step'] + steps}"
            )
        due = loop.interval.due(steps, seconds) or state["elapsed_s"] + seconds >= loop.budget_s
        if loop.agree is not None:  # multi_worker: every worker ends the interval at one step
            by_steps = steps >= loop.interval.steps
            due = by_steps or (steps % loop.agree_every == 0 and loop.agree(due))
        if due or state["step"] + steps >= loop.max_steps:
            return logs, steps, seconds


def end_interval(loop: Loop, state: dict, logs: dict, steps: int, seconds: float, say) -> bool:
    """Score dev, checkpoint, write state and logs; returns whether patience ran out."""
    model, step = loop.model, state["step"] + steps
    train_logs = {name: float(value) for name, value in logs.items()}
    t = time.perf_counter()
    dev = loop.scorer(model)
    state["evals"] += 1
    improved = loop.patience.update(state, loop.scorer.objective(dev), step)
    if improved:
        loop.checkpoints.save_best(model)
    loop.checkpoints.save(step, model, loop.inputs, state)
    rate = loop.patience.adjust_rate(state, model.optimizer)
    row = {
        "step": step,
        "epoch": round(step / loop.steps_per_epoch, 3),
        "elapsed_min": round(state["elapsed_s"] / 60, 2),
        "loss": train_logs["loss"],
        "nll": train_logs["nll"],
        "grad_norm": train_logs["grad_norm"],
        "tok_s": round(train_logs["tokens"] / max(seconds, 1e-9)),
        **dev,
        "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
    }
    state["epoch"] = row["epoch"]
    loop.log.write(row)
    for metric in model.metrics:
        metric.reset_state()
    say(
        f"step {step:,} (epoch {row['epoch']:.2f}): loss {row['loss']:.3f}  "
        f"{loop.scorer.summary(dev)}{'  (best)' if improved else ''}  "
        f"[{row['tok_s']:,} tok/s, dev {time.perf_counter() - t:.0f}s, "
        f"{state['elapsed_s'] / 60:.1f} min in]" + (f"  learning rate -> {rate:g}" if rate else "")
    )
    if loop.patience.should_stop(state):
        say(f"no dev gain for {loop.patience.patience} intervals: stopping")
        return True
    return False
