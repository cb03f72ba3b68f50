"""The training loop: steps over the shard stream, scored and saved at intervals.

An *interval* ends every ``train.eval_steps`` steps (default: once an epoch, a pass over the
training data) or after ``train.eval_minutes`` of training, whichever comes first. At its end
the run scores the dev set, saves a checkpoint (weights with the optimizer state, and the input
stream's position) and then ``state.json``, which names the checkpoint: a killed run resumes
from the last interval with the very next batch, losing at most one interval. Patience, the
plateau schedule and checkpoint averaging count intervals.

Each concern is a small piece: :class:`Interval` (when), :class:`~.checkpoints.Checkpoints`
(saving and pruning), a scorer (:mod:`.scorers`: what dev says), :class:`Patience` (stopping and
the plateau rate), :class:`~.logs.TrainLog` (CSV and TensorBoard), :class:`~.logs.Progress` (the
bar) and :class:`~.schedules.BudgetDecay` (the rate under the ``budget`` schedule);
:func:`run_loop` puts them together. The loop knows nothing of the task: translation and
language models run it alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras

from s2s.training.checkpoints import Checkpoints
from s2s.training.logs import Progress, TrainLog
from s2s.training.schedules import BudgetDecay


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


class Patience:
    """Stop after ``patience`` intervals without a dev gain (the scorer's ``objective``: BLEU
    for translation, minus the NLL for a language model); under the plateau schedule, halve
    the learning rate after every ``plateau`` intervals without one. ``state["best_objective"]``
    holds the best objective."""

    def __init__(self, patience: int, plateau: int | None):
        self.patience, self.plateau = patience, plateau

    def update(self, state: dict, objective: float, step: int) -> bool:
        """Record an interval's dev objective; returns whether it is the best so far."""
        improved = state["best_objective"] is None or objective > state["best_objective"]
        if improved:
            state.update(
                best_objective=objective, best_step=step, best_eval=state["evals"], stale=0
            )
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


@dataclass
class Loop:
    """Everything :func:`run_loop` drives."""

    model: keras.Model
    iterator: object  # tf.data iterator (or distributed iterator) over training batches
    inputs: object  # tf.train.Checkpoint tracking ``iterator`` (None: not checkpointable)
    interval: Interval
    checkpoints: Checkpoints
    scorer: object  # a scorer of s2s.training.scorers: __call__, objective, summary
    patience: Patience
    log: TrainLog
    max_steps: int
    steps_per_epoch: int
    budget_s: float
    agree: object = None  # multi_worker: agree(flag) -> whether any worker raised it
    agree_every: int = 20
    started: float | None = None  # time.perf_counter() when the run started (for the log)
    decay: BudgetDecay | None = None  # the budget schedule sets the rate before each step
    clock: Callable[[], float] = time.perf_counter  # seconds, for intervals and the budget


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
        loop.log.close()


def train_interval(loop: Loop, state: dict, progress: Progress) -> tuple[dict, int, float]:
    """Train steps until the interval ends; returns the last logs, the steps and seconds."""
    start, steps, seconds = loop.clock(), 0, 0.0
    while True:
        if loop.decay is not None:
            used = budget_progress(loop, state["step"] + steps, state["elapsed_s"] + seconds)
            loop.model.optimizer.learning_rate.assign(loop.decay.rate(used))
        logs = loop.model.train_function(loop.iterator)
        steps += 1
        loss, seconds = float(logs["loss"]), loop.clock() - start
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
    """Score dev, set the plateau rate, checkpoint, write state and logs; returns whether
    patience ran out. The rate is set before the checkpoint is written, so a run resumed from
    it trains at the rate an uninterrupted run would."""
    model, step = loop.model, state["step"] + steps
    train_logs = {name: float(value) for name, value in logs.items()}
    t = time.perf_counter()
    dev = loop.scorer(model)
    state["evals"] += 1
    improved = loop.patience.update(state, loop.scorer.objective(dev), step)
    if improved:
        loop.checkpoints.save_best(model)
    rate = loop.patience.adjust_rate(state, model.optimizer)
    state["epoch"] = round(step / loop.steps_per_epoch, 3)
    loop.checkpoints.save(step, model, loop.inputs, state)
    row = {
        "step": step,
        "epoch": state["epoch"],
        "elapsed_min": round(state["elapsed_s"] / 60, 2),
        "loss": train_logs["loss"],
        "nll": train_logs["nll"],
        "grad_norm": train_logs["grad_norm"],
        "tok_s": round(train_logs["tokens"] / max(seconds, 1e-9)),
        **dev,
        "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
    }
    loop.log.write(row)
    for metric in model.metrics:
        metric.reset_state()
    say(
        f"step {step:,} (epoch {row['epoch']:.2f}): loss {row['loss']:.3f}  "
        f"{loop.scorer.summary(dev)}{'  (best)' if improved else ''}  "
        f"[{row['tok_s']:,} tok/s, dev {time.perf_counter() - t:.0f}s, "
        f"{state['elapsed_s'] / 60:.1f} min in]"
        + (f"  learning rate -> {rate:g}" if rate is not None else "")
    )
    if loop.patience.should_stop(state):
        say(f"no dev gain for {loop.patience.patience} intervals: stopping")
        return True
    return False
