import json
import shutil

import pytest
from conftest import TINY

from s2s import runs
from s2s.config import ConfigError, load_config
from s2s.train import train


def test_a_finished_run_chooses_its_length_penalty_on_dev_once(trained_run, tmp_path, corpus_file):
    """The tuned alpha is the best of the list on dev, recorded in state.json, used for the
    test set and by every later load of the run; running again does not tune again."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    said = []
    config = load_config("zh-en", overrides=[*TINY, "search.tune_alpha=[2.0, 0.0, 0.6]"])
    train(config, run, corpus_file, log=said.append)
    tuned = runs.read_state(runs.RunPaths(run))["tuned"]
    alphas = [a for a, _ in tuned["dev_bleu"]]
    assert alphas == [2.0, 0.0, 0.6]
    best = max(bleu for _, bleu in tuned["dev_bleu"])
    assert tuned["alpha"] == next(a for a, bleu in tuned["dev_bleu"] if bleu == best)
    assert any(line.startswith("length penalty on dev (beam 3)") for line in said)
    assert json.loads((run / "eval" / "test.json").read_text())["alpha"] == tuned["alpha"]
    assert runs.load_trained(run)[0]["search"]["alpha"] == tuned["alpha"]

    said.clear()
    train(config, run, corpus_file, log=said.append)
    assert not any(line.startswith("length penalty") for line in said)


def test_greedy_search_or_an_empty_list_tunes_nothing(trained_run, tmp_path, corpus_file):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = load_config("zh-en", overrides=[*TINY, "search.beam_size=1"])
    config["search"]["tune_alpha"] = [0.0, 1.0]
    train(config, run, corpus_file, log=lambda *_: None)
    assert runs.read_state(runs.RunPaths(run))["tuned"] is None
    assert runs.load_trained(run)[0]["search"]["alpha"] == 0.6


@pytest.mark.parametrize("value", ["[-1.0]", "0.6", "[true]"])
def test_tune_alpha_must_be_a_list_of_penalties(value):
    with pytest.raises(ConfigError, match="tune_alpha"):
        load_config("zh-en", overrides=[f"search.tune_alpha={value}"])
