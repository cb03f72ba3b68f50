"""Where training runs: one device, several local devices, or several machines.

``train.distribute`` picks the ``tf.distribute`` strategy:

- ``one_device`` (default): TensorFlow's default strategy;
- ``mirrored``: ``MirroredStrategy`` over every local GPU, or, without GPUs, over
  ``train.cpu_replicas`` logical CPU devices (data parallelism on one CPU; mostly for tests);
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` configured by the ``TF_CONFIG`` environment
  variable, one process per machine. Every worker runs the same ``python -m s2s train``; the
  chief (worker 0) writes the run folder, the others write under ``<run>/worker-<i>/``.

The shared train step (:meth:`s2s.models.base.SequenceModel.train_step`) makes every strategy
compute the update a single device would compute on the whole batch; the precision a run trains
in is :mod:`s2s.models.precision`'s.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from s2s.config.choices import STRATEGIES


def split_cpu(replicas: int) -> None:
    """Present the CPU as ``replicas`` logical devices (only before TensorFlow starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing and len(existing) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError as e:
        raise RuntimeError(
            f"cannot split the CPU into {replicas} devices once TensorFlow has started; "
            "choose train.distribute before anything else runs"
        ) from e


def make_strategy(train: dict) -> tf.distribute.Strategy:
    """The strategy named by ``train.distribute``."""
    kind = train["distribute"]
    if kind not in STRATEGIES:
        raise ValueError(f"train.distribute must be one of {STRATEGIES}, not {kind!r}")
    if kind == "one_device":
        return tf.distribute.get_strategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("train.distribute=multi_worker needs TF_CONFIG (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    split_cpu(train["cpu_replicas"])
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    # NCCL is for GPUs: reduce on the CPU itself.
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def worker_index() -> int:
    """This process's index among the workers (0 without ``TF_CONFIG``): 0 is the chief."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else 0


def worker_count() -> int:
    """How many workers ``TF_CONFIG`` names (1 without it)."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    )


def any_worker(strategy: tf.distribute.Strategy):
    """``agree(flag) -> bool``: True on every worker when ``flag`` is True on any of them."""

    @tf.function
    def reduce_sum(value):
        per_replica = strategy.run(lambda: tf.identity(value))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return lambda flag: bool(reduce_sum(tf.constant(float(flag))) > 0)
