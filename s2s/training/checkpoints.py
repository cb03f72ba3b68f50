"""Checkpoints of a run: ``step-N.weights.h5`` (weights and optimizer state) and
``step-N.input.*`` (the input stream's position) for the last ``keep`` intervals, the best
weights, and the average of the kept ones."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from s2s.config.run_folder import RunPaths, write_state


class Checkpoints:
    """Saving, pruning and restoring a run's checkpoints (see the module)."""

    def __init__(self, paths: RunPaths, keep: int):
        self.paths, self.keep = paths, max(1, keep)
        paths.checkpoints.mkdir(parents=True, exist_ok=True)

    def save(self, step: int, model: keras.Model, inputs: tf.train.Checkpoint | None, state: dict):
        """Write step ``step``'s checkpoint, then ``state.json`` naming it (the commit point),
        then remove the checkpoints no longer kept."""
        model.save_weights(self.paths.step_weights(step))
        if inputs is not None:
            inputs.write(str(self.paths.step_input(step)))
        earlier = [s for s in state["checkpoints"] if s != step]
        kept = [*(earlier[-(self.keep - 1) :] if self.keep > 1 else []), step]
        dropped = [s for s in state["checkpoints"] if s not in kept]
        state.update(step=step, checkpoints=kept)
        write_state(self.paths, state)
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

    def kept(self, state: dict) -> list[int]:
        """The steps of the kept checkpoints whose weights exist, oldest first."""
        return [s for s in state["checkpoints"] if self.paths.step_weights(s).exists()]


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
