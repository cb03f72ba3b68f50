import time

import keras
import pytest
import tensorflow as tf

from s2s.training.logs import Progress
from s2s.training.loop import Interval, Loop, run_loop, train_interval
from s2s.training.schedules import BudgetDecay


def test_the_first_step_is_reported_once_with_the_set_up_time():
    said = []
    progress = Progress(100, 0, 600.0, started=time.perf_counter() - 42.0, say=said.append)
    for _ in range(3):
        progress.update(loss=1.0, tok_s=1000.0, elapsed_s=1.0)
    progress.close()
    assert len(said) == 1 and said[0].startswith("first step 42 s after the run started")


def test_an_interval_ends_by_steps_or_by_minutes_whichever_first():
    interval = Interval(steps=100, minutes=5)
    assert not interval.due(99, 299.0)
    assert interval.due(100, 1.0) and interval.due(1, 300.0)
    assert not Interval(steps=100).due(99, 1e9)


def test_the_budget_schedule_holds_the_peak_then_falls_linearly_to_zero():
    decay = BudgetDecay(peak=0.002, start=0.5)
    assert decay.rate(0.0) == decay.rate(0.5) == 0.002
    assert decay.rate(0.75) == pytest.approx(0.001)
    assert decay.rate(1.0) == 0.0 and decay.rate(1.2) == 0.0
    assert BudgetDecay(peak=1.0, start=0.0).rate(0.25) == pytest.approx(0.75)


class _Optimizer:
    def __init__(self):
        self.learning_rate = tf.Variable(1.0)


class _Model:
    """Records the learning rate each step ran with; a step takes ``seconds`` of a clock of its
    own (no real time passes)."""

    def __init__(self, seconds: float):
        self.optimizer, self.seconds, self.rates, self.now = _Optimizer(), seconds, [], 0.0

    def train_function(self, iterator):
        self.rates.append(float(self.optimizer.learning_rate.numpy()))
        self.now += self.seconds
        return {"loss": 1.0, "tokens": 100.0}


def _loop(model, max_steps: int, budget_s: float) -> Loop:
    return Loop(
        model=model, iterator=None, inputs=None, interval=Interval(steps=max_steps),
        checkpoints=None, scorer=None, patience=None, log=None, max_steps=max_steps,
        steps_per_epoch=max_steps, budget_s=budget_s, decay=BudgetDecay(1.0, 0.5),
        clock=lambda: model.now,
    )  # fmt: skip


def test_the_loop_sets_the_budget_rate_before_each_step_by_steps_or_by_time():
    """By steps: 10 steps of a 10-step cap, half at the peak, then down by 0.2 a step. By time:
    a 1 s budget and steps of 0.125 s (on the loop's clock) end the budget first, whatever the
    step cap."""
    model = _Model(seconds=0.0)
    state = {"step": 0, "elapsed_s": 0.0}
    progress = Progress(10, 0, 1e9, say=lambda _: None)
    train_interval(_loop(model, max_steps=10, budget_s=1e9), state, progress)
    assert model.rates == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])

    model = _Model(seconds=0.125)  # eight steps fill the budget
    train_interval(_loop(model, max_steps=10_000, budget_s=1.0), state, progress)
    assert model.rates == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]


class _ClosedLog:
    closed = False

    def close(self):
        self.closed = True


def test_the_loop_closes_its_logs_however_it_ends():
    """The TensorBoard writer was never closed (its last events could stay unwritten)."""
    model = _Model(seconds=0.0)
    model.make_train_function = lambda: None
    loop = _loop(model, max_steps=10, budget_s=1e9)
    loop.log = _ClosedLog()
    loop.interval = Interval(steps=100)

    def broken(iterator):
        raise RuntimeError("the input stream failed")

    model.train_function = broken
    with pytest.raises(RuntimeError, match="input stream"):
        run_loop(loop, {"step": 0, "elapsed_s": 0.0}, say=lambda _: None)
    assert loop.log.closed


class _FlatScorer:
    """Dev says the same every time: the first interval is the best, every later one stale."""

    def __call__(self, model):
        return {}

    @staticmethod
    def objective(dev):
        return 1.0

    @staticmethod
    def summary(dev):
        return ""


def test_the_plateau_rate_is_in_the_checkpoint_written_after_it(tmp_path):
    """A stalled interval halves the rate before its checkpoint is written, so a run resumed
    from that checkpoint trains at the halved rate (it used to save first and halve after:
    a resumed run trained at twice the intended rate until the next plateau)."""
    from s2s.config.run_folder import RunPaths, read_state
    from s2s.training.checkpoints import Checkpoints
    from s2s.training.logs import TrainLog
    from s2s.training.loop import Patience, end_interval
    from tests.helpers import random_model

    paths = RunPaths(tmp_path)

    def compiled():
        model = random_model()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))
        model.optimizer.build(model.trainable_variables)
        return model

    model = compiled()
    loop = Loop(
        model=model, iterator=None, inputs=None, interval=Interval(steps=10),
        checkpoints=Checkpoints(paths, keep=2), scorer=_FlatScorer(),
        patience=Patience(10, plateau=1), log=TrainLog(paths), max_steps=100,
        steps_per_epoch=10, budget_s=1e9,
    )  # fmt: skip
    state = read_state(paths)
    logs = {"loss": 1.0, "nll": 1.0, "grad_norm": 1.0, "tokens": 100.0}
    for _ in range(2):  # the best, then a stalled interval
        end_interval(loop, state, logs, steps=10, seconds=1.0, say=lambda _: None)
    loop.log.close()
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.005)
    resumed = compiled()
    resumed.load_weights(paths.step_weights(state["step"]))
    assert float(resumed.optimizer.learning_rate.numpy()) == pytest.approx(0.005)
