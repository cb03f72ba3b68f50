import json
import subprocess
import sys

import pytest

from s2s.data.pipeline import pad_batch
from s2s.decoding.translator import Translator
from s2s.models.loading import load_trained
from tests.helpers import ROOT

ENV_PATH = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "LANG": "zh-en"}


@pytest.fixture(scope="module")
def translator(trained_run):
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    return Translator.from_config(model, src_tok, tgt_tok, config)


def test_empty_and_over_long_input_get_defined_answers(translator, capsys):
    long_line = "我们" * 500
    out = translator.translate(["", "   ", "我们走吧。", long_line])
    assert out[0].text == "" and out[1].text == ""
    assert out[2].score < 0.0 and out[2].length >= 1  # searched (an empty line is not)
    # The over-long line translates as its first max_src_len pieces do, n-best and all.
    [first] = translator.encode_sources([long_line])
    assert len(first) == translator.max_src_len
    ids, scores = translator.search_ids(pad_batch([first]))
    assert [text for text, _ in out[3].nbest] == translator.tgt_tok.decode(ids[0])
    assert [score for _, score in out[3].nbest] == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert out[3].nbest[0] == (out[3].text, out[3].score)
    assert "translating its first" in capsys.readouterr().err
    [unknown] = translator.translate(["𓀀𓀁𓀂 ꙮꙮ"])  # nothing the vocabulary knows
    [pieces] = translator.encode_sources(["𓀀𓀁𓀂 ꙮꙮ"])
    assert pieces.count(1) >= 2  # unknown pieces, searched like any others
    ids, scores = translator.search_ids(pad_batch([pieces]))
    assert unknown.text == translator.tgt_tok.decode(ids[0])[0]
    assert unknown.score == pytest.approx(float(scores[0, 0]), abs=1e-5) and unknown.score < 0


class NoPieces:
    """A tokenizer stand-in that finds no pieces in any line: every line is an empty one."""

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [[] for _ in texts]


def test_each_empty_line_gets_a_hypothesis_of_its_own():
    translator = Translator(None, NoPieces(), NoPieces(), "zh")  # the model is never run
    out = translator.translate(["", "   ", ""])
    assert len({id(h) for h in out}) == len({id(h.nbest) for h in out}) == 3
    out[0].text = "changed"
    out[0].nbest.append(("changed", -1.0))  # as a caller padding an n-best list might
    assert [(h.text, h.score, h.nbest) for h in out[1:]] == [("", 0.0, [("", 0.0)])] * 2


def test_a_sentence_translates_the_same_alone_and_in_a_batch(translator):
    sentences = ["我们走吧。", "你好。", "汤姆不想去那里，因为他很累。", "这是我的书。", "他来了。"]
    together = [h.text for h in translator.translate(sentences)]
    alone = [translator.translate([s])[0].text for s in sentences]
    assert together == alone


def test_the_compiled_search_translates_as_the_compacting_one(trained_run, translator):
    """``search.jit_compile``: one sentence at a time, and in batches padded with rows."""
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    sentences = ["我们走吧。", "你好。", "汤姆不想去那里，因为他很累。", "这是我的书。", "他来了。"]
    want = translator.translate(sentences)
    for batch_size in (1, 3):  # 3: batches of 3 and 2 sentences, padded to 4 and 2
        compiled = Translator.from_config(
            model, src_tok, tgt_tok, config, batch_size=batch_size, jit_compile=True
        )
        got = compiled.translate(sentences)
        assert [h.text for h in got] == [h.text for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert [h.length for h in got] == [h.length for h in want]


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


def test_sampling_settings_the_search_cannot_run_are_refused_naming_them(translator):
    """top_k above the vocabulary made tf.math.top_k fail deep in the graph (a traceback)."""
    from s2s.config import ConfigError
    from s2s.decoding.translator import Sampling

    model, src_tok, tgt_tok = translator.model, translator.src_tok, translator.tgt_tok
    too_many = Sampling(top_k=tgt_tok.vocab_size + 1)
    with pytest.raises(ConfigError, match=rf"top_k must be 0 .* not {tgt_tok.vocab_size + 1:,}"):
        Translator(model, src_tok, tgt_tok, "zh", sampling=too_many)
    with pytest.raises(ConfigError, match="temperature must be positive"):
        Translator(model, src_tok, tgt_tok, "zh", sampling=Sampling(temperature=0.0))


def test_new_batch_shapes_and_new_alphas_do_not_retrace_the_search(trained_run):
    """A translator of its own (a shared one has been traced by other tests): one tracing for
    every batch shape and every length penalty."""
    config, model, src_tok, tgt_tok = load_trained(trained_run)
    translator = Translator.from_config(model, src_tok, tgt_tok, config)
    assert translator.traces == 0
    translator.translate(["我们走吧。"])
    translator.translate(["你好。", "汤姆不想去那里，因为他很累。", "这是我的书。"] * 30)
    batch = pad_batch(translator.encode_sources(["汤姆不想去那里，因为他很累。"]))
    by_alpha = {alpha: translator.search_ids(batch, alpha=alpha)[0] for alpha in (0.0, 0.6, 3.0)}
    assert translator.traces == 1
    for alpha, ids in by_alpha.items():  # each call searched with its own alpha
        own = Translator.from_config(model, src_tok, tgt_tok, config, alpha=alpha)
        assert (own.search_ids(batch)[0] == ids).all()


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


def test_cli_evaluate_scores_the_test_split(trained_run, tmp_path):
    """On a copy: ``eval/test.json`` of the shared trained run is read by other tests."""
    import os
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = (trained_run / "eval" / "test.json").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "evaluate", "--run", str(run), "--beam", "2"],
        capture_output=True,
        env={**os.environ, **ENV_PATH},
        timeout=300,
        encoding="utf-8",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BLEU" in done.stderr and "nrefs:var" in done.stderr
    report = json.loads((run / "eval" / "test.json").read_text())
    assert report["beam_size"] == 2
    assert (trained_run / "eval" / "test.json").read_text() == before
