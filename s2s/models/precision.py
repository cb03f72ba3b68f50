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


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux: the flags in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


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
