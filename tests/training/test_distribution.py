"""tf.distribute: mirrored replicas make the single-device update; workers agree on weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from s2s.models.precision import precision
from s2s.training.distribution import make_strategy
from tests.helpers import ROOT

SCRIPT = str(ROOT / "tests" / "scripts" / "distributed.py")


def env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def test_mirrored_over_two_cpu_devices_makes_the_single_device_update(tmp_path):
    out = tmp_path / "mirrored.npz"
    done = subprocess.run(
        [sys.executable, SCRIPT, "mirrored", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = np.load(out)
    np.testing.assert_allclose(r["mirrored_loss"], r["single_loss"], rtol=1e-5)
    np.testing.assert_allclose(r["mirrored_norm"], r["single_norm"], rtol=1e-5)
    assert r["mirrored_tokens"] == r["single_tokens"] > 0  # the epoch counts each token once
    assert r["single_norm"] > 0.1  # the clipping at 0.1 was active
    deltas = [k for k in r.files if k.startswith("single_delta_")]
    assert len(deltas) > 5
    for key in deltas:  # SGD with rate 1: the update is minus the clipped gradient
        mirrored_key = key.replace("single", "mirrored")
        np.testing.assert_allclose(r[mirrored_key], r[key], rtol=1e-4, atol=1e-7)
    # One all-reduce of the gradients per replica and trace: the step's own, before clipping.
    # Keras's optimizer used to sum them a second time.
    sizes = list(r["all_reduce_sizes"])
    assert sizes.count(int(r["gradients"])) == sizes.count(2) > 0  # [loss, nll]: once a step


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_and_agree_on_the_weights(tmp_path, corpus_file):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, SCRIPT, "worker", str(tmp_path / "run")),
                    *(str(tmp_path / f"w{index}.npz"), str(corpus_file), str(index)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
                env=env(TF_CONFIG=tf_config),
            )
        )
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, output in zip(procs, outputs, strict=True):
        assert p.returncode == 0, output[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) == len(w1.files) > 5
    assert w0["steps"] == w1["steps"] < w0["max_steps"]  # worker 1's budget stopped both
    for key in w0.files:
        np.testing.assert_allclose(w0[key], w1[key], rtol=1e-5, atol=1e-6)
    assert (tmp_path / "run" / "eval" / "test.json").exists()  # the chief's run folder
    worker1 = tmp_path / "run" / "worker-1" / "checkpoints"
    assert list(worker1.glob("step-*.weights.h5")) and (worker1 / "state.json").exists()


def test_unknown_settings_are_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"train\.distribute"):
        make_strategy({"distribute": "tpu"})
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="multi_worker needs TF_CONFIG"):
        make_strategy({"distribute": "multi_worker"})
    with pytest.raises(ValueError, match=r"train\.precision"):
        with precision("float8"):
            pass


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("cell, attention", [("lstm", "general"), ("mgu", "additive")])
def test_mixed_precision_trains_like_float32_and_searches(policy, cell, attention):
    import keras
    import tensorflow as tf

    from s2s.decoding.search import beam_search
    from tests.helpers import random_batch, random_model

    rng = np.random.default_rng(0)
    src, tgt = random_batch(rng, 8, 9, 50), random_batch(rng, 8, 8, 40, min_len=2)
    batch = tf.data.Dataset.from_tensors(((src, tgt[:, :-1]), tgt[:, 1:]))
    results = {}
    for name in ("float32", policy):
        with precision(name):
            model = random_model(cell=cell, attention=attention, seed=1, sharpen=1.0)
        model.compile(optimizer=keras.optimizers.SGD(0.1), clipnorm=5.0, jit_compile=False)
        history = model.fit(batch, epochs=1, verbose=0).history
        results[name] = history["loss"][0], history["grad_norm"][0]
        _, scores = beam_search(model, src, beam_size=3)
        assert np.isfinite(scores.numpy()).all()
    assert model.decoder.compute_dtype == policy.removeprefix("mixed_")
    assert all(v.dtype == "float32" for v in model.trainable_weights)
    if policy == "mixed_float16":  # the loss is scaled, the gradient unscaled before clipping
        assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    np.testing.assert_allclose(results[policy], results["float32"], rtol=2e-2)
    assert keras.config.dtype_policy().name == "float32"  # the policy was put back
