"""A language model run end to end: trained on a translation run's target side, its report,
the CLI's samples and scores, fusion in Translator and in the SavedModel."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from s2s.config import ConfigError, load_config
from s2s.config.run_folder import RunPaths, read_state
from s2s.data.prepared import load_eval_sets
from s2s.decoding.translator import Translator
from s2s.models.language_model import sentence_log_probs
from s2s.models.loading import load_language_model, load_trained
from s2s.training.runner import train
from s2s.training.tasks import lm_side
from tests.helpers import TINY

LM = ["lm.embedding_dim=16", "lm.units=32", "train.epochs=1", "train.eval_steps=20"]


@pytest.fixture(scope="module")
def lm_run(trained_run, tmp_path_factory) -> Path:
    config = load_config("zh-en", overrides=[*TINY, *LM, f"lm.data_from={trained_run}"])
    config["lm"]["side"] = lm_side(config, "en")
    run = tmp_path_factory.mktemp("lm") / "lm-en"
    train(config, run, log=lambda *_: None)
    return run


def run_cli(*args: str, stdin: str = "") -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "s2s", *args], input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_side_is_a_language_of_the_pair_or_src_or_tgt_and_named_when_wrong():
    config = load_config("zh-en")
    assert lm_side(config, "zh") == "src" and lm_side(config, "en") == "tgt"
    assert lm_side(config, "src") == "src" and lm_side(config, "tgt") == "tgt"
    with pytest.raises(ConfigError, match="zh-en has no such side"):
        lm_side(config, "fr")


def test_a_run_trains_in_intervals_and_reports_test_perplexity(lm_run):
    paths = RunPaths(lm_run)
    state = read_state(paths)
    assert state["finished"] and state["step"] > 0 and len(state["checkpoints"]) >= 1
    log = (paths.logs / "train.csv").read_text().splitlines()
    assert log[0].split(",")[:4] == ["step", "epoch", "elapsed_min", "loss"] and "val_ppl" in log[0]
    report = json.loads((paths.eval / "lm-test.json").read_text())
    assert 1 < report["perplexity"] < 700  # below a uniform guess over the 700 pieces
    nats_per_char = report["bits_per_char"] * math.log(2)
    pieces_per_char = report["pieces"] / report["characters"]
    assert nats_per_char == pytest.approx(math.log(report["perplexity"]) * pieces_per_char)
    config, lm, _ = load_language_model(lm_run)
    assert config["lm"]["side"] == "tgt" and lm.hparams["units"] == 32


def test_cli_samples_follow_their_seed_and_scores_match_the_model(lm_run):
    args = ("lm", "sample", "--run", str(lm_run), "--n", "4", "--seed", "5", "--scores")
    one, two = run_cli(*args), run_cli(*args)
    assert one == two and len(one) == 4
    prefixed = run_cli("lm", "sample", "--run", str(lm_run), "--n", "2", "--prefix", "Tom")
    assert all(line.startswith("Tom") for line in prefixed)
    lines = ["I like tea.", "", "Tom is here."]
    scored = run_cli("lm", "score", "--run", str(lm_run), stdin="\n".join(lines) + "\n")
    assert scored[0] == "log_prob\tperplexity\tpieces\tsentence" and len(scored) == 4
    _, lm, tokenizer = load_language_model(lm_run)
    expected = sentence_log_probs(lm, tokenizer.encode(lines))
    got = [float(row.split("\t")[0]) for row in scored[1:]]
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_fusion_in_translator_and_export(trained_run, lm_run, tmp_path):
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    sources = load_eval_sets(RunPaths(trained_run).data)["test"].sources[:40]

    def translate(**fusion):
        translator = Translator.from_config(model, src_tok, tgt_tok, config, **fusion)
        hyps = translator.translate(sources)
        return [h.text for h in hyps], np.array([h.score for h in hyps])

    plain, plain_scores = translate()
    zero, zero_scores = translate(lm_run=lm_run, lm_weight=0.0)
    assert zero == plain and np.array_equal(zero_scores, plain_scores)
    fused, fused_scores = translate(lm_run=str(lm_run), lm_weight=0.5)
    assert np.all(fused_scores < plain_scores - 1e-3)  # the language model's log P is added

    from s2s.serving.export import export

    target = export(trained_run, tmp_path, lm_run=str(lm_run), lm_weight=0.5)
    out = tf.saved_model.load(str(target)).signatures["serving_default"](text=tf.constant(sources))
    assert [t.decode() for t in out["translation"].numpy()] == fused
    np.testing.assert_allclose(out["score"].numpy(), fused_scores, atol=1e-4)
    meta = json.loads((target / "assets" / "meta.json").read_text())
    assert meta["search"]["lm_weight"] == 0.5


def test_a_language_model_of_another_vocabulary_is_refused(trained_run, lm_run, tmp_path):
    other = tmp_path / "other-lm"
    shutil.copytree(lm_run, other)
    vocab = tmp_path / "vocab"
    (vocab / "spm").mkdir(parents=True)
    for side in ("src", "tgt"):  # the translation run's *source* vocabulary on both sides
        shutil.copy(RunPaths(trained_run).spm("src"), vocab / "spm" / f"{side}.model")
    text = (other / "config.yaml").read_text().replace(str(trained_run), str(vocab))
    (other / "config.yaml").write_text(text)
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    with pytest.raises(ConfigError, match=r"lm\.data_from"):
        Translator.from_config(model, src_tok, tgt_tok, config, lm_run=other, lm_weight=0.2)


def test_prepare_reports_the_pairs_the_language_model_finds_least_likely(
    lm_run, corpus_file, tmp_path
):
    tiny = [arg for item in TINY for arg in ("--set", item)]
    args = ("--corpus", str(corpus_file), "--lm-run", str(lm_run), "--least-likely", "3")
    out = run_cli("prepare", "--lang", "zh-en", "--run", str(tmp_path / "run"), *tiny, *args)
    header = out.index("perplexity\tline\tsrc\ttgt")
    rows = [line.split("\t") for line in out[header + 1 :]]
    assert len(rows) == 3 and all(len(row) == 4 for row in rows)
    perplexities = [float(row[0]) for row in rows]
    assert perplexities == sorted(perplexities, reverse=True)  # the least likely first


def test_a_language_model_takes_every_train_key_the_translation_runner_takes(
    trained_run, tmp_path, monkeypatch
):
    """The one runner: bfloat16, the plateau schedule and checkpoint averaging, which the
    language model's own copy of the training stack used to ignore. Dev perplexity is held flat
    (the objective patched), so every interval after the first is a plateau and halves the rate."""
    from s2s.training import scorers

    monkeypatch.setattr(scorers.LanguageModelScorer, "objective", staticmethod(lambda dev: 0.0))
    overrides = [
        *TINY,
        *LM,
        f"lm.data_from={trained_run}",
        "train.eval_steps=10",
        "train.precision=mixed_bfloat16",
        "train.lr_schedule=plateau",
        "train.plateau_patience=1",
        "train.patience=100",
        "train.average_last=3",
    ]
    config = load_config("zh-en", overrides=overrides)
    config["lm"]["side"] = "tgt"
    said = []
    train(config, tmp_path / "lm", log=said.append)
    log = (tmp_path / "lm" / "logs" / "train.csv").read_text().splitlines()
    rates = [float(row.split(",")[-1]) for row in log[1:]]
    assert len(rates) >= 3 and rates[0] == pytest.approx(0.01)
    assert rates == pytest.approx([0.01 / 2**i for i in range(len(rates))])
    state = read_state(RunPaths(tmp_path / "lm"))
    assert len(state["averaged"]["steps"]) == 3 and "val_ppl" in state["averaged"]["dev"]
    assert any(line.startswith("average of the last 3 checkpoints") for line in said)
    assert any("mixed_bfloat16" in line for line in said)  # the model line names the precision
    lm = keras.saving.load_model(tmp_path / "lm" / "model.keras", compile=False)
    assert lm.dtype_policy.name == "mixed_bfloat16"


def test_a_language_model_refuses_a_dev_beam(trained_run, tmp_path):
    config = load_config("zh-en", overrides=[*TINY, *LM, "train.dev_beam_size=4"])
    config["lm"]["side"] = "tgt"
    with pytest.raises(ConfigError, match=r"train\.dev_beam_size"):
        train(config, tmp_path / "lm", log=lambda *_: None)
    assert not (tmp_path / "lm").exists()  # refused before any work
