"""How the learning rate moves: a constant, a warm-up and ``1/sqrt(step)`` (``inverse_sqrt``),
halving when dev stalls (``plateau``, applied by :class:`~s2s.training.loop.Patience`), or a
linear fall to zero as the run's budget ends (``budget``)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf


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
    """The optimizer's learning rate: a number (``constant``, ``plateau``, ``budget``, which the
    loop sets) or a schedule (``inverse_sqrt``)."""
    if train["lr_schedule"] == "inverse_sqrt":
        return InverseSqrt(train["learning_rate"], train["warmup_steps"])
    return train["learning_rate"]


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


def budget_decay(train: dict) -> BudgetDecay | None:
    """The rate setter for ``train.lr_schedule: budget`` (None under the other schedules)."""
    if train["lr_schedule"] != "budget":
        return None
    return BudgetDecay(train["learning_rate"], train["decay_from"])
