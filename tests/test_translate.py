import json
import subprocess
import sys

import pytest
from conftest import ROOT

from s2s.runs import load_trained
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
    [unknown] = translator.translate(["𓀀𓀁𓀂 ꙮꙮ"])  # nothing the vocabulary knows
    assert translator.src_tok.encode(["𓀀𓀁𓀂 ꙮꙮ"])[0].count(1) >= 2  # unknown pieces
    assert isinstance(unknown.text, str) and unknown.nbest


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


def test_nbest_is_ranked_and_its_first_entry_is_the_translation(translator):
    sentences = ["我们走吧。", "", "汤姆不想去那里，因为他很累。"]
    out = translator.translate(sentences)
    assert len(out[0].nbest) == translator.beam_size == 3
    for hyp in (out[0], out[2]):
        assert hyp.nbest[0] == (hyp.text, hyp.score)
        scores = [score for _, score in hyp.nbest]
        assert scores == sorted(scores, reverse=True)
    assert out[1].text == ""


def test_new_batch_shapes_do_not_retrace_the_search(translator):
    translator.translate(["我们走吧。"])
    traces = translator.traces
    translator.translate(["你好。", "汤姆不想去那里，因为他很累。", "这是我的书。"] * 30)
    assert translator.traces == traces == 1


def test_attention_of_one_sentence_for_plots(translator):
    source, output, weights = translator.attention("我们走吧。")
    assert weights.shape == (len(output), len(source)) and output[-1] == "</s>"
    assert abs(weights.sum(axis=1) - 1).max() < 1e-5


def test_cli_writes_nbest_and_samples_reproducibly(trained_run, tmp_path):
    import os

    (tmp_path / "in.txt").write_text("我们走吧。\n\n你好。\n", encoding="utf-8")
    run = [sys.executable, "-m", "s2s", "translate", "--run", str(trained_run)]
    env = {**os.environ, **ENV_PATH}

    def translate(*args):
        done = subprocess.run(
            [*run, "--input", str(tmp_path / "in.txt"), *args],
            capture_output=True,
            env=env,
            timeout=300,
            encoding="utf-8",
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split("\n")[:-1], done.stderr

    nbest, err = translate("--nbest", "2")
    assert len(nbest) == 3 and "translating" in err  # a progress bar for file input
    assert len(nbest[0].split("\t")) == 4 and nbest[1] == "\t".join(["", "0.0000"] * 2)
    sampled, _ = translate("--sample", "--temperature", "1.2", "--top-k", "20", "--seed", "5")
    again, _ = translate("--sample", "--temperature", "1.2", "--top-k", "20", "--seed", "5")
    assert sampled == again and len(sampled) == 3


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
