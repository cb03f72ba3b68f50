"""The Python API (``s2s.load``, ``TranslationModel.translate``, ``s2s.train``) and the README's
Python block, run as a user would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import s2s
from s2s.config import ConfigError, load_config
from s2s.config.run_folder import RunError
from tests.helpers import ROOT, TINY

SENTENCES = ["我们走吧。", "", "他一小时前走了。", "你好！"]


@pytest.fixture(scope="module")
def model(trained_run) -> s2s.TranslationModel:
    return s2s.load(trained_run)


def test_translate_returns_what_the_command_line_prints(model, trained_run):
    done = subprocess.run(
        [sys.executable, "-m", "s2s", "translate", "--run", str(trained_run)],
        input="\n".join(SENTENCES) + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert model.translate(SENTENCES) == done.stdout.split("\n")[: len(SENTENCES)]
    assert model.translate(SENTENCES)[1] == ""


def test_nbest_gives_candidates_with_text_and_score_best_first(model):
    lists = model.translate(SENTENCES, nbest=3)
    assert [len(c) for c in lists] == [3, 3, 3, 3]
    best = model.translate(SENTENCES)
    for candidates, text in zip(lists, best, strict=True):
        assert candidates[0].text == text
        scores = [c.score for c in candidates]
        assert scores == sorted(scores, reverse=True)
    assert [c.text for c in lists[1]] == ["", "", ""]  # an empty line


def test_bad_calls_are_refused_with_what_to_do(model, tmp_path):
    with pytest.raises(ValueError, match=rf"beam of {model.beam_size}"):
        model.translate(SENTENCES, nbest=model.beam_size + 1)
    with pytest.raises(TypeError, match=r"translate\(\[text\]\)"):
        model.translate("我们走吧。")
    with pytest.raises(RunError, match="neither a run folder"):
        s2s.load(tmp_path)


def test_an_export_loads_and_translates_like_its_run(trained_run, tmp_path):
    from s2s.serving.export import export

    export(trained_run, tmp_path / "exports")
    exported = s2s.load(tmp_path / "exports")  # the folder of versions: the highest one
    assert exported.source == tmp_path / "exports" / "1"
    run = s2s.load(trained_run)
    assert exported.translate(SENTENCES) == run.translate(SENTENCES)
    nbest = exported.translate(SENTENCES, nbest=2)
    assert [c.text for c in nbest[0]] == [c.text for c in run.translate(SENTENCES, nbest=2)[0]]
    with pytest.raises(ConfigError, match="fixed when it was exported"):
        s2s.load(tmp_path / "exports" / "1", beam_size=8)


def test_train_takes_a_config_dict_and_refuses_an_unknown_key_before_work(tmp_path, corpus_file):
    config = load_config("zh-en", overrides=TINY)
    config["train"]["epoch"] = 3  # a typo
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        s2s.train(config=config, run=tmp_path / "bad", corpus=corpus_file)
    assert not (tmp_path / "bad").exists()
    del config["train"]["epoch"]
    report = s2s.train(
        config=config,
        run=tmp_path / "run",
        corpus=corpus_file,
        overrides=["train.epochs=1"],
        log=lambda *_: None,
    )
    assert report["bleu"] >= 0 and "nrefs" in report["bleu_signature"]
    translations = s2s.load(tmp_path / "run").translate(["你好！", ""])
    assert len(translations) == 2 and translations[1] == "" and isinstance(translations[0], str)


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_python_block_runs(trained_run, tmp_path, monkeypatch):
    """The README's Python block as it is, in a folder whose runs/zh-en is the tiny run."""
    [block] = readme_python_blocks()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "zh-en").symlink_to(trained_run)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert isinstance(namespace["model"], s2s.TranslationModel)
