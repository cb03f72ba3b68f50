import json
import subprocess
import sys

import pytest
from conftest import ROOT

from s2s.train import load_trained
from s2s.translate import Translator

ENV_PATH = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "LANG": "zh-en"}


@pytest.fixture(scope="module")
def translator(trained_run):
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    return Translator.from_config(model, src_tok, tgt_tok, config)


def test_empty_and_over_long_input_get_defined_answers(translator, capsys):
    long_line = "我们" * 500
    out = translator.translate(["", "   ", "我们走吧。", long_line])
    assert out[0].text == "" and out[1].text == ""
    assert out[2].text and out[3].text is not None
    assert "translating its first" in capsys.readouterr().err


def test_a_sentence_translates_the_same_alone_and_in_a_batch(translator):
    sentences = ["我们走吧。", "你好。", "汤姆不想去那里，因为他很累。", "这是我的书。", "他来了。"]
    together = [h.text for h in translator.translate(sentences)]
    alone = [translator.translate([s])[0].text for s in sentences]
    assert together == alone


def test_cli_translates_stdin_in_order_under_any_locale(trained_run, translator):
    import os

    lines = ["我们走吧。", "", "你好。", "这是我的书。"]
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--run", str(trained_run)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        env={**os.environ, **ENV_PATH},
        timeout=300,
        encoding="utf-8",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout.split("\n")[:-1]
    assert len(out) == len(lines) and out[1] == ""
    assert out == [h.text for h in translator.translate(lines)]


def test_cli_evaluate_scores_the_test_split(trained_run):
    import os

    done = subprocess.run(
        [sys.executable, "-m", "s2s", "evaluate", "--run", str(trained_run), "--beam", "2"],
        capture_output=True,
        env={**os.environ, **ENV_PATH},
        timeout=300,
        encoding="utf-8",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BLEU" in done.stderr and "nrefs:var" in done.stderr
    report = json.loads((trained_run / "eval" / "test.json").read_text())
    assert report["beam_size"] == 2
