import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from s2s.config import ConfigError, load_config
from s2s.config import run_folder as runs
from s2s.models.loading import last_checkpoint
from s2s.models.loss import sequence_loss
from s2s.text.tokenizer import Tokenizer
from s2s.training.checkpoints import Checkpoints, average_checkpoints
from s2s.training.runner import TrainingDiverged, compile_model, subword_sampling, train
from s2s.training.schedules import InverseSqrt
from tests.helpers import ROOT, TINY, random_model

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_trained_run_writes_everything_a_user_looks_for(trained_run):
    paths = runs.RunPaths(trained_run)
    for path in (
        paths.config,
        paths.spm("src"),
        paths.spm("tgt"),
        paths.best_weights,
        last_checkpoint(paths),
        paths.shards / "index.json",
        paths.model,
        paths.logs / "train.csv",
        paths.cleaning,
        paths.eval / "test.json",
        paths.eval / "test.hyp.txt",
    ):
        assert path.exists(), path
    assert any((paths.logs / "tensorboard").rglob("events.out.tfevents.*"))
    log = pd.read_csv(paths.logs / "train.csv")
    state = runs.read_state(paths)
    assert list(log["epoch"]) == [1.0, 2.0] and log["step"].iloc[-1] == state["step"]
    columns = {"step", "loss", "nll", "grad_norm", "tok_s", "val_bleu", "val_chrf", "val_nll", "lr"}
    assert columns <= set(log.columns)
    assert log["loss"].iloc[1] < log["loss"].iloc[0]
    report = json.loads((paths.eval / "test.json").read_text())
    assert report["sentences"] == 100 and "nrefs:var" in report["bleu_signature"]
    lengths = report["length_by_source"]  # BLEU's hyp_len and ref_len, split by source length
    assert sum(row["sentences"] for row in lengths) == 100
    hyp_len, ref_len = (
        int(x) for x in re.findall(r"(?:hyp|ref)_len = (\d+)", report["bleu_detail"])
    )
    assert sum(row["hyp_len"] for row in lengths) == hyp_len
    assert sum(row["ref_len"] for row in lengths) == ref_len
    cleaning = json.loads(paths.cleaning.read_text())
    assert cleaning["kept"] + sum(cleaning["dropped"].values()) == cleaning["lines_read"] == 2500
    assert state["averaged"]["steps"] == state["checkpoints"] == list(log["step"])
    assert report["averaged"] == state["averaged"]


def test_inverse_sqrt_warms_up_then_decays():
    schedule = InverseSqrt(peak=2e-3, warmup=100)
    rates = [float(schedule(step)) for step in (0, 49, 99, 399)]
    np.testing.assert_allclose(rates, [2e-5, 1e-3, 2e-3, 1e-3], rtol=1e-5)


@pytest.mark.slow
def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(trained_run, tmp_path):
    run = tmp_path / "zh-en"
    shutil.copytree(trained_run, run)
    paths = runs.RunPaths(run)
    state = runs.read_state(paths)
    runs.write_state(paths, {**state, "finished": False})
    before = last_checkpoint(paths).read_bytes()

    def diverging_loss(logits, targets, label_smoothing=0.0):
        loss, nll, tokens = sequence_loss(logits, targets, label_smoothing)
        return loss * float("nan"), nll, tokens

    config = load_config("zh-en", overrides=[*TINY, "train.epochs=3"])
    with pytest.raises(TrainingDiverged, match="last good checkpoint is kept"):
        train(config, run, log=lambda *_: None, loss=diverging_loss)
    assert last_checkpoint(paths).read_bytes() == before
    assert runs.read_state(paths)["step"] == state["step"]


def test_checkpoint_averaging_takes_the_mean_of_every_float_weight(tmp_path):
    first, second = random_model(seed=1), random_model(seed=2)
    first.save_weights(tmp_path / "a.weights.h5")
    second.save_weights(tmp_path / "b.weights.h5")
    averaged = average_checkpoints(
        random_model(seed=3), [tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"]
    )
    for a, b, mean in zip(first.weights, second.weights, averaged.weights, strict=True):
        np.testing.assert_allclose(mean.numpy(), (a.numpy() + b.numpy()) / 2, rtol=1e-6)


def test_a_run_with_other_model_settings_is_not_silently_continued(trained_run):
    config = load_config("zh-en", overrides=[*TINY, "model.encoder_units=64"])
    with pytest.raises(ConfigError, match="model"):
        runs.check_resumable(runs.RunPaths(trained_run), config)


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_last_saved_step(tmp_path, corpus_file):
    """kill -9 mid-epoch, then the same command: it continues from the last interval's step
    (weights, Adam's state and the input stream), not from the start of an epoch. Under the
    budget schedule the rate goes on falling where it was and reaches ~0 at the step cap."""
    run = tmp_path / "run"
    overrides = [*TINY, "train.epochs=3", "train.eval_steps=15", "train.lr_schedule=budget"]
    sets = [a for s in overrides for a in ("--set", s)]
    cmd = [sys.executable, "-m", "s2s", "train", "--run", str(run), "--corpus", str(corpus_file)]
    cmd += sets
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoints" / "state.json"
    deadline = time.time() + 240
    while not (state.exists() and json.loads(state.read_text())["step"] >= 30):
        assert proc.poll() is None and time.time() < deadline, "no interval finished"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = json.loads(state.read_text())["step"]
    assert stopped_at % 15 == 0
    saved = saved_optimizer(run)  # what the last checkpoint holds: weights and Adam's state
    assert saved["iterations"] == stopped_at and np.abs(saved["moment"]).max() > 0

    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from step {stopped_at}" in done.stderr
    assert f"optimizer step {saved['iterations']}," in done.stderr  # Adam's state came back
    log = pd.read_csv(run / "logs" / "train.csv")
    steps = list(log["step"])
    assert steps == sorted(set(steps)) and stopped_at in steps  # no interval scored twice
    final = json.loads(state.read_text())
    assert final["finished"] is True and steps[-1] == final["step"] > stopped_at
    rates = list(log["lr"])
    assert rates == sorted(rates, reverse=True) and rates[0] == pytest.approx(0.01)
    assert rates[-1] < 0.001

    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming" not in again.stderr  # finished: not retrained


def test_checkpoints_keep_the_last_intervals_and_name_them_in_the_state(tmp_path):
    model = random_model()
    model.compile(optimizer="adam")
    paths = runs.RunPaths(tmp_path)
    inputs = tf.train.Checkpoint(iterator=iter(tf.data.Dataset.range(10)))
    checkpoints, state = Checkpoints(paths, keep=3), runs.read_state(paths)
    for step in (100, 200, 300, 1000, 1100):
        checkpoints.save(step, model, inputs, state)
    assert runs.read_state(paths)["checkpoints"] == [300, 1000, 1100] == state["checkpoints"]
    assert runs.read_state(paths)["step"] == 1100
    kept = sorted(p.name for p in paths.checkpoints.glob("step-*.weights.h5"))
    assert kept == [paths.step_weights(s).name for s in (300, 1000, 1100)]
    assert not list(paths.checkpoints.glob(f"{paths.step_input(200).name}*"))


def saved_optimizer(run) -> dict:
    """The optimizer step and the first Adam moment stored in a run's last checkpoint."""
    from s2s.models.loading import load_trained

    config, model, _, _ = load_trained(run, weights="last")
    compile_model(model, config)
    model.load_weights(last_checkpoint(runs.RunPaths(run)))  # now with the optimizer
    moment = next(v for v in model.optimizer.variables if "momentum" in v.path)
    return {"iterations": int(model.optimizer.iterations.numpy()), "moment": moment.numpy()}


def test_subword_sampling_reads_the_runs_sentencepiece_models_when_asked(trained_run):
    paths = runs.RunPaths(trained_run)
    src_tok, tgt_tok = Tokenizer(paths.spm("src")), Tokenizer(paths.spm("tgt"))
    assert subword_sampling(load_config("zh-en", overrides=TINY), src_tok, tgt_tok) is None
    config = load_config("zh-en", overrides=[*TINY, "tokenizer.sampling_alpha=0.2"])
    sampling = subword_sampling(config, src_tok, tgt_tok)
    assert sampling.src_model == paths.spm("src").read_bytes() != sampling.tgt_model
    assert (sampling.alpha, sampling.nbest) == (0.2, 64)


def test_a_run_without_dev_or_test_sets_trains_keeps_its_last_checkpoint_and_says_so(
    tmp_path, corpus_file
):
    """``data.dev_sources: 0`` and ``data.test_sources: 0`` are documented ("0: no such set");
    they used to crash after cleaning and SentencePiece (no dev) or after training (no test),
    and again on every rerun."""
    overrides = [*TINY, "data.dev_sources=0", "data.test_sources=0", "train.eval_steps=15"]
    config = load_config("zh-en", overrides=[*overrides, "train.epochs=1"])
    said = []
    assert train(config, tmp_path / "run", corpus_file, log=said.append) == {}
    state = runs.read_state(runs.RunPaths(tmp_path / "run"))
    assert state["finished"] and state["best_step"] == state["step"] > 15  # the last is kept
    assert "averaged" not in state
    assert any(line.startswith("no dev set") for line in said)
    assert any(line.startswith("no test set") for line in said)
    assert train(config, tmp_path / "run", corpus_file, log=said.append) == {}  # a rerun too


def test_shards_for_other_buckets_are_rebuilt_before_training_and_refused_after(
    trained_run, tmp_path, corpus_file
):
    """The shards record the longest pair they hold. Other train.bucket_boundaries rebuild
    them while nothing has trained on them; a run that has is refused, naming the key (it used
    to fail mid-training in tf.data, or keep long pairs silently excluded)."""
    from s2s.data.stage import prepare

    wider = load_config("zh-en", overrides=[*TINY, "train.bucket_boundaries=[8, 16, 48]"])
    with pytest.raises(ConfigError, match=r"train\.bucket_boundaries .*trained \d+ steps"):
        train(wider, trained_run, corpus_file, log=lambda *_: None)
    paths = runs.RunPaths(tmp_path / "fresh")
    short = load_config("zh-en", overrides=[*TINY, "train.bucket_boundaries=[4, 8]"])
    narrow = prepare(short, paths, corpus_file, log=lambda *_: None)
    said = []
    wide = prepare(load_config("zh-en", overrides=TINY), paths, corpus_file, log=said.append)
    assert narrow.shards.max_length == 7 and wide.shards.max_length == 31
    assert narrow.shards.too_long > wide.shards.too_long
    assert narrow.shards.total_pairs + narrow.shards.too_long == wide.shards.total_pairs
    assert any("at most 7 pieces" in line and "building them again" in line for line in said)


def test_a_run_records_the_precision_and_machine_it_trained_on(trained_run):
    state = runs.read_state(runs.RunPaths(trained_run))
    [session] = state["trained_on"]
    assert session["from_step"] == 0 and session["precision"] in ("float32", "mixed_bfloat16")
    assert session["cores"] >= 1 and session["tensorflow"] and "threads" in session
    report = json.loads((trained_run / "eval" / "test.json").read_text())
    assert report["trained_on"] == state["trained_on"]
