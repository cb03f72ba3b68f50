"""The exported SavedModel against the Python path on the same sentences (``s2s bench``):
batch-1 latency per request and batch-32 throughput."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from s2s.analysis.bench import spread
from s2s.decoding.translator import Translator
from s2s.serving.export import export


def serving_figures(
    run_dir: Path,
    translator: Translator,
    sentences: list[str],
    precision: str = "float32",
    jit_compile: bool = False,
) -> dict:
    """The exported ``serving_default`` against the Python path on the same sentences:
    batch-1 latency per request (ms) and batch-32 throughput (sentences/s)."""

    def timed(call, batches) -> list[float]:
        for batch in batches:  # warm up: traces, and compiles each shape a compiled search meets
            call(batch)
        figures = []
        for batch in batches:
            t = time.perf_counter()
            call(batch)
            figures.append(time.perf_counter() - t)
        return figures

    singles = [[s] for s in sentences]
    thirty_twos = [sentences[i : i + 32] for i in range(0, len(sentences) - 31, 32)]
    with tempfile.TemporaryDirectory() as tmp:
        exported = export(run_dir, Path(tmp), precision=precision, jit_compile=jit_compile)
        served = tf.saved_model.load(str(exported))
        signature = served.signatures["serving_default"]

        def serve(batch):
            return signature(text=tf.constant(batch))["translation"].numpy()

        paths = {"savedmodel": serve, "python": translator.translate}
        out = {}
        for name, call in paths.items():
            latency = [1000 * x for x in timed(call, singles)]
            out[f"{name}_p50_ms"] = float(np.percentile(latency, 50))
            out[f"{name}_p95_ms"] = float(np.percentile(latency, 95))
            out[f"{name}_batch32_sent_per_s"] = spread([32 / x for x in timed(call, thirty_twos)])
    return out
