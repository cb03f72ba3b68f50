"""Run by tests/training/test_distribution.py in fresh processes (TensorFlow fixes its devices
at start).

``mirrored OUT``: one SGD step on the same global batch with the default strategy and with
``MirroredStrategy`` over 2 logical CPU devices; writes both losses, gradient norms and
weight updates to OUT (.npz), and how many tensors each all-reduce of the mirrored step took.
``worker RUN OUT``: one worker of a ``multi_worker`` training run (TF_CONFIG set by the test);
trains the tiny config through ``s2s.training.runner.train`` and writes the final weights to OUT.
"""

from __future__ import annotations

import sys

import numpy as np


def one_step(model, batch, strategy):
    import keras

    from s2s.training.runner import compile_model  # noqa: F401  (imports the custom objects)

    with strategy.scope():
        model.compile(optimizer=keras.optimizers.SGD(1.0), clipnorm=0.1, jit_compile=False)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(batch, epochs=1, verbose=0, shuffle=False)
    after = [w.numpy() for w in model.trainable_weights]
    return (
        history.history["loss"][0],
        history.history["grad_norm"][0],
        history.history["tokens"][0],
        [a - b for a, b in zip(after, before, strict=True)],
    )


def count_all_reduces(tf) -> list[int]:
    """Record, for every ``ReplicaContext.all_reduce`` call from now on, how many tensors it
    reduced (the calls happen while the train step is traced, once per replica)."""
    sizes = []
    original = tf.distribute.ReplicaContext.all_reduce

    def counting(self, reduce_op, value, options=None):
        sizes.append(len(tf.nest.flatten(value, expand_composites=False)))
        return original(self, reduce_op, value, options)

    tf.distribute.ReplicaContext.all_reduce = counting
    return sizes


def mirrored(out: str) -> None:
    import tensorflow as tf

    from s2s.training.distribution import make_strategy

    strategy = make_strategy({"distribute": "mirrored", "cpu_replicas": 2})
    assert strategy.num_replicas_in_sync == 2
    from tests.helpers import random_batch, random_model

    rng = np.random.default_rng(0)
    # 8 rows of mixed lengths: the two replicas get different numbers of tokens.
    src, tgt = random_batch(rng, 8, 9, 50), random_batch(rng, 8, 8, 40, min_len=2)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    batch = tf.data.Dataset.from_tensors(((src, tgt_in), tgt_out))
    results = {}
    for name, strat in (("single", tf.distribute.get_strategy()), ("mirrored", strategy)):
        if name == "mirrored":
            reduced_sizes = count_all_reduces(tf)
        with strat.scope():
            model = random_model(seed=1, sharpen=1.0)
        loss, norm, tokens, deltas = one_step(model, batch, strat)
        results[f"{name}_loss"], results[f"{name}_norm"] = loss, norm
        results[f"{name}_tokens"] = tokens
        for i, d in enumerate(deltas):
            results[f"{name}_delta_{i}"] = d
    results["all_reduce_sizes"] = np.asarray(reduced_sizes)
    results["gradients"] = len(model.trainable_weights)
    np.savez(out, **results)


def worker(run: str, out: str) -> None:
    import keras

    from s2s.config import load_config
    from s2s.models.loading import load_trained
    from s2s.training.runner import train
    from tests.helpers import TINY

    keras.config.disable_traceback_filtering()
    # Worker 1 alone runs out of time (during epoch 1): both must stop after it, together.
    minutes = 0.02 if sys.argv[5] == "1" else 100
    overrides = [*TINY, "train.epochs=4", "train.distribute=multi_worker", "data.limit=1200"]
    overrides += [f"train.max_minutes={minutes}"]
    train(load_config("zh-en", overrides=overrides), run, sys.argv[4], log=print)
    from s2s.training.distribution import worker_index

    folder = run if worker_index() == 0 else f"{run}/worker-{worker_index()}"
    _, model, _, _ = load_trained(folder, weights="last")
    from s2s.config.run_folder import RunPaths, read_state

    state = read_state(RunPaths(__import__("pathlib").Path(folder)))
    max_steps = round(4 * state["step"] / state["epoch"])  # train.epochs=4
    np.savez(out, *[w.numpy() for w in model.weights], steps=state["step"], max_steps=max_steps)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2])
    else:
        worker(sys.argv[2], sys.argv[3])
