"""What a person watching a run sees: a progress bar with loss, target tokens/s and the budget
left, and per interval a row of ``logs/train.csv`` and TensorBoard scalars."""

from __future__ import annotations

import csv
import os
import time

import tensorflow as tf
from tqdm.auto import tqdm

from s2s.config.run_folder import RunPaths


class TrainLog:
    """One row per interval in ``logs/train.csv`` and TensorBoard scalars at the step."""

    def __init__(self, paths: RunPaths):
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

    def close(self) -> None:
        self.writer.close()


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
