"""The precision a model trains and decodes in.

``train.precision`` is ``float32``, ``mixed_float16`` (GPUs; the loss is scaled),
``mixed_bfloat16`` (CPUs with bfloat16 instructions, and recent GPUs) or ``auto`` (default):
``mixed_float16`` on a GPU of compute capability 7.0 or more, ``mixed_bfloat16`` on a CPU with
AVX512-BF16 or AMX instructions, else ``float32``.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from s2s.config.choices import PRECISIONS

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# The CPU features that decide how fast a run trains and in which precision (``auto``).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", *BF16_CPU_FLAGS, "amx_tile")


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and flags (Linux: ``/proc/cpuinfo``; elsewhere unknown, none)."""
    name, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name == "unknown":
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, flags


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively."""
    return bool(cpu_info()[1] & set(BF16_CPU_FLAGS))


def machine(policy: str) -> dict:
    """What a run records of the machine it trains on: the precision ``policy`` resolved to,
    the CPU and its speed-relevant flags, cores, TensorFlow's threads, GPUs and versions."""
    import os

    name, flags = cpu_info()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "precision": resolve_precision(policy),
        "cpu": name,
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in flags],
        "cores": cores,
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "keras": keras.version(),
    }


def resolve_precision(policy: str) -> str:
    """``train.precision`` as a Keras dtype policy name (``auto`` decided for this machine)."""
    if policy != "auto":
        return policy
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return "mixed_float16" if capability and capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Build layers under the Keras dtype policy ``policy`` (any Keras policy name)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


@contextlib.contextmanager
def precision(policy: str):
    """Build layers under the training precision ``policy`` (variables stay float32)."""
    policy = resolve_precision(policy)
    if policy not in PRECISIONS:
        raise ValueError(f"train.precision must be auto or one of {PRECISIONS}, not {policy!r}")
    with dtype_policy(policy):
        yield


def decoding_policy(train_precision: str) -> str:
    """The policy a run decodes in under ``search.precision: train``: the compute dtype it trained
    in, with the weights stored in it too (``mixed_bfloat16`` -> ``bfloat16``). Mixed policies
    keep float32 variables and cast every weight at every use; a search step would re-cast the
    whole output layer each time. Stored once in bfloat16, the weights round exactly as those
    casts do, so the products are the same."""
    return resolve_precision(train_precision).removeprefix("mixed_")
