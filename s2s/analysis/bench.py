"""``make bench``: how fast training, the input pipeline and search run here (the SavedModel's
figures are :mod:`s2s.serving.bench`'s; ``s2s bench`` adds them).

Every figure is the median of repeated measurements, reported with its spread (min, max, n),
and written to ``bench/results.json``. Training is measured on real batches of the pair's corpus
with a freshly initialised model of the pair's config; decoding uses a trained run when there is
one (``--run``, default ``runs/<pair>``), otherwise the fresh model, whose outputs run to the
length limit (a pessimistic figure, flagged in the results).

``train_mfu`` divides the model's FLOPs per second (counted layer by layer from the padded batch
shapes, backward pass = 2 x forward) by the fp32 matmul throughput measured in the same run.
Decoding is counted the same way (:func:`decode_flops`: what a search must compute, ``K``
hypotheses a sentence stepped once per piece of its translation): ``flops_per_piece`` per output
piece, and ``mfu`` against the matmul peak of the dtype the model computes in. Beam 5 is timed at
batch 1, 16 and 64 and, at batch 64, on sources of 5, 20 and 60 pieces, where sentences/s
should fall with the output length (each step costs the same whatever came before it).
"""

from __future__ import annotations

import itertools
import json
import platform
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from s2s.analysis.flops import decode_flops, flops_per_target_token
from s2s.config import ConfigError
from s2s.config.run_folder import RunPaths, start
from s2s.data.pipeline import Buckets, filter_long, shard_dataset, training_dataset
from s2s.data.prepared import iter_train, load_eval_sets
from s2s.data.sets import primary_test_set
from s2s.data.stage import PreparedData, prepare
from s2s.decoding.translator import Translator
from s2s.models.loading import build_model, load_trained
from s2s.models.precision import precision as precision_scope
from s2s.models.precision import resolve_precision
from s2s.training.runner import compile_model, subword_sampling


def spread(values: list[float]) -> dict:
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "n": len(values),
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the machine ------------------------------------------------------------------------------


def matmul_gflops(
    size: int = 1024, repeats: int = 7, seconds: float = 1.0, dtype: str = "float32"
) -> list[float]:
    """``[size, size] @ [size, size]`` throughput in ``dtype``, one figure per ~``seconds``."""
    a = tf.cast(tf.random.normal([size, size]), dtype)
    b = tf.cast(tf.random.normal([size, size]), dtype)

    @tf.function
    def chain(a, b, n):
        for _ in tf.range(n):
            a = tf.matmul(a, b)
            a = a / tf.reduce_max(tf.abs(a))  # no overflow or denormals; O(n^2) next to O(n^3)
        return a

    chain(a, b, tf.constant(2)).numpy()
    flops = 2.0 * size**3
    n = max(1, int(seconds * 50e9 / flops))
    figures = []
    for _ in range(repeats):
        t = time.perf_counter()
        chain(a, b, tf.constant(n)).numpy()
        figures.append(n * flops / (time.perf_counter() - t) / 1e9)
    return figures


# -- measurements -----------------------------------------------------------------------------


class _Windows(keras.callbacks.Callback):
    """Target tokens/s of each epoch (a measurement window)."""

    def __init__(self):
        super().__init__()
        self.figures: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.figures.append(float(logs["tokens"]) / (time.perf_counter() - self.t))


def train_tokens_per_s(model, dataset, seconds: float = 60.0, windows: int = 6) -> list[float]:
    """Warm up (every bucket compiled), then ``windows`` windows of ``seconds / windows`` each."""
    warmup = _Windows()
    model.fit(dataset, steps_per_epoch=200, epochs=1, verbose=0, callbacks=[warmup])
    steps_per_s = 200 / (time.perf_counter() - warmup.t)
    steps = max(20, int(steps_per_s * seconds / windows))
    timer = _Windows()
    model.fit(dataset, steps_per_epoch=steps, epochs=windows, verbose=0, callbacks=[timer])
    return timer.figures


def input_tokens_per_s(dataset: tf.data.Dataset, repeats: int = 3) -> list[float]:
    """The tf.data pipeline alone: target tokens/s over whole epochs."""
    figures = []
    for _ in range(repeats):
        t, tokens = time.perf_counter(), 0
        for _, tgt_out in dataset:
            tokens += int(tf.math.count_nonzero(tgt_out))
        figures.append(tokens / (time.perf_counter() - t))
    return figures


def sentences_per_s(translator: Translator, sentences: list[str], repeats: int = 3):
    """Sentences/s of ``translator`` over ``sentences``, ``repeats`` times after a warm-up pass
    (it traces the search, and compiles each shape a compiled search meets); returns the
    figures and the last run's hypotheses."""
    translator.translate(sentences)
    figures = []
    for _ in range(repeats):
        t = time.perf_counter()
        hyps = translator.translate(sentences)
        figures.append(len(sentences) / (time.perf_counter() - t))
    return figures, hyps


def sources_of_length(sources: list[str], src_tok, pieces: int, count: int) -> list[str]:
    """``count`` sources of about ``pieces`` pieces each: consecutive test sources joined until
    they have that many, cut there (the tokenizer may split the cut text slightly otherwise)."""
    ids = src_tok.encode(sources)
    out, run = [], []
    for seq in itertools.cycle(ids):
        run += seq
        if len(run) >= pieces:
            out.append(src_tok.sp.decode(run[:pieces]))
            run = []
            if len(out) == count:
                return out
    return out


def decode_figures(translator: Translator, sentences: list[str], peak_gflops: float) -> dict:
    """Sentences/s, output pieces/s, FLOPs per output piece and MFU of one search setting."""
    figures, hyps = sentences_per_s(translator, sentences)
    src_lens = [len(x) for x in translator.encode_sources(sentences)]
    out_lens = [h.length for h in hyps]
    flops = decode_flops(translator.model.hparams, src_lens, out_lens, translator.beam_size)
    per_sentence = flops / len(sentences)
    return {
        "sent_per_s": spread(figures),
        "pieces_per_s": spread([f * sum(out_lens) / len(sentences) for f in figures]),
        "src_pieces": float(np.mean(src_lens)),
        "out_pieces": float(np.mean(out_lens)),
        "flops_per_piece": flops / max(sum(out_lens), 1),
        "mfu": spread([f * per_sentence / (peak_gflops * 1e9) for f in figures]),
    }


# -- the whole benchmark ----------------------------------------------------------------------


def run_bench(
    config: dict,
    work_dir: Path,
    trained_run: Path | None,
    seconds: float = 60.0,
    corpus: Path | None = None,
    decoding: bool = True,
    training: bool = True,
    max_sentences: int | None = None,
) -> dict:
    """Every figure: the machine, the input pipeline and training (``training``), search
    (``decoding``, on at most ``max_sentences`` test sentences a setting)."""
    keras.utils.set_random_seed(config["train"]["seed"])
    paths = RunPaths(work_dir)
    try:
        start(paths, config)
    except ConfigError:  # the scratch folder of an older config: start it again
        shutil.rmtree(work_dir)
        start(paths, config)
    data = prepare(config, paths, corpus, log=log)
    src_tok, tgt_tok = data.src_tok, data.tgt_tok
    results: dict = {"machine": {"platform": platform.platform(), "cpus": _cpus()}}

    log("matmul throughput ...")
    results["matmul_gflops"] = spread(matmul_gflops())
    precision = resolve_precision(config["train"]["precision"])
    results["train_precision"] = precision
    results["threads"] = {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    if precision == "mixed_bfloat16":
        results["matmul_gflops_bfloat16"] = spread(matmul_gflops(dtype="bfloat16"))
    if training:
        results.update(training_figures(config, paths, data, results, seconds))
    if decoding:
        sources = bench_sources(work_dir)[:max_sentences]
        results.update(decoding_figures(config, trained_run, src_tok, tgt_tok, sources, results))
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def bench_sources(work_dir: Path) -> list[str]:
    """The sentences decoding is timed on: the bench folder's test set (or its first set)."""
    sets = load_eval_sets(RunPaths(work_dir).data)
    return sets[primary_test_set(sets) or next(iter(sets))].sources


def training_figures(
    config: dict, paths: RunPaths, data: PreparedData, results: dict, seconds: float
) -> dict:
    """Input pipeline and training tokens/s, in memory and from the shard stream; MFU."""
    src_tok, tgt_tok, index = data.src_tok, data.tgt_tok, data.shards
    train_cfg = config["train"]
    buckets = Buckets(tuple(train_cfg["bucket_boundaries"]), train_cfg["batch_tokens"])
    first = next(iter_train(paths.data))  # the in-memory pipeline: up to 100k pairs
    src_ids, tgt_ids, _ = filter_long(
        src_tok.encode(first["src"]), tgt_tok.encode(first["tgt"]), buckets
    )
    dataset = training_dataset(src_ids, tgt_ids, buckets, seed=train_cfg["seed"])
    sampling = subword_sampling(config, src_tok, tgt_tok)
    stream = shard_dataset(
        index.paths(), buckets, train_cfg["seed"], train_cfg["shuffle_buffer"], sampling=sampling
    )
    stream_epoch = stream.take(buckets.steps_per_epoch(index.lengths()))
    out: dict = {"train_jit_compile": train_cfg["jit_compile"]}

    log("input pipeline ...")
    out["input_tokens_per_s"] = spread(input_tokens_per_s(dataset))
    out["input_tokens_per_s_shards"] = spread(input_tokens_per_s(stream_epoch))

    log(f"training ({seconds:.0f} s of steps after warm-up) ...")
    precision = results["train_precision"]
    with precision_scope(precision):
        model = compile_model(build_model(config, src_tok, tgt_tok), config)
    tokens_per_s = train_tokens_per_s(model, dataset.repeat(), seconds)
    log(f"training from the shard stream ({seconds:.0f} s) ...")
    out["train_tokens_per_s_shards"] = spread(train_tokens_per_s(model, stream, seconds))
    per_token = flops_per_target_token(dataset, model.hparams)
    peak = results["matmul_gflops"]["median"] * 1e9
    out["train_tokens_per_s"] = spread(tokens_per_s)
    out["train_flops_per_token"] = per_token
    out["train_mfu"] = spread([t * per_token / peak for t in tokens_per_s])
    if precision == "mixed_bfloat16":  # also against the bfloat16 matmul it runs on
        peak16 = results["matmul_gflops_bfloat16"]["median"] * 1e9
        out["train_mfu_vs_bfloat16"] = spread([t * per_token / peak16 for t in tokens_per_s])
    return out


def compute_dtype(model: keras.Model) -> str:
    """The dtype the model's weighted layers compute in: ``bfloat16``, ``float32`` or ``mixed``.

    Not ``model.dtype_policy``: ``keras.saving.load_model`` gives a run trained under
    ``mixed_bfloat16`` that policy on the top model only; its layers are rebuilt under the
    global policy (float32), so a loaded run decodes in float32.
    """
    found = {layer.compute_dtype for layer in model.layers if layer.weights}
    return found.pop() if len(found) == 1 else "mixed"


def decoding_figures(config, trained_run, src_tok, tgt_tok, sources, results: dict) -> dict:
    """Greedy and beam-5 sentences/s at batch 1, 16 and 64; beam 5 by source length, with
    FLOPs per output piece and MFU."""
    trained = trained_run is not None and RunPaths(trained_run).model.exists()
    precision = config["search"]["precision"]  # the bench's config (--set search.precision=..)
    jit = config["search"]["jit_compile"]  # ... and --set search.jit_compile=true
    if trained:
        config, model, src_tok, tgt_tok = load_trained(trained_run, precision=precision)
    else:
        model = build_model(config, src_tok, tgt_tok)
    out: dict = {
        "decoding_model": str(trained_run)
        if trained
        else "untrained (outputs run to the length limit)",
        "decode_compute_dtype": compute_dtype(model),
        "decode_jit_compile": jit,
    }
    peak = results["matmul_gflops"]["median"]
    if out["decode_compute_dtype"] == "bfloat16" and "matmul_gflops_bfloat16" in results:
        peak = results["matmul_gflops_bfloat16"]["median"]

    def figures(beam: int, batch: int, sentences: list[str]) -> dict:
        log(f"beam {beam}, batch {batch}, {len(sentences)} sentences ...")
        translator = Translator.from_config(
            model, src_tok, tgt_tok, config, beam_size=beam, batch_size=batch, jit_compile=jit
        )
        return decode_figures(translator, sentences, peak)

    for beam, name in ((1, "greedy"), (5, "beam5")):
        for batch, subset in ((1, sources[:200]), (16, sources), (64, sources)):
            found = figures(beam, batch, subset)
            out[f"{name}_sent_per_s_batch{batch}"] = found["sent_per_s"]
            if beam == 5:
                out[f"{name}_batch{batch}"] = found
    for pieces in (5, 20, 60):
        subset = sources_of_length(sources, src_tok, pieces, count=min(128, len(sources)))
        out[f"beam5_batch64_src{pieces}"] = figures(5, 64, subset)
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def table(results: dict, prefix: str = "") -> str:
    """The figures as an aligned text table (nested groups as ``group.figure``)."""
    rows = []
    for key, value in results.items():
        key = prefix + key
        if isinstance(value, dict) and "median" in value:
            rows.append(
                f"{key:<36} {value['median']:>14,.2f}   "
                f"(min {value['min']:,.2f}, max {value['max']:,.2f}, n={value['n']})"
            )
        elif isinstance(value, dict) and key != "machine":
            rows.append(table(value, f"{key}."))
        elif isinstance(value, float):
            rows.append(f"{key:<36} {value:>14,.2f}")
        else:
            rows.append(f"{key:<36} {value}")
    return "\n".join(rows)


def write_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
