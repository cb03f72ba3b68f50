import json
import shutil

import pytest

from s2s.config import ConfigError, load_config
from s2s.config import run_folder as runs
from s2s.models.loading import load_trained
from s2s.training.runner import train
from s2s.training.tuning import search_grid
from tests.helpers import TINY


def test_a_finished_run_chooses_its_length_penalty_on_dev_once(trained_run, tmp_path, corpus_file):
    """The tuned alpha is the best of the list on dev, recorded in state.json, used for the
    test set and by every later load of the run; running again does not tune again."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    said = []
    config = load_config("zh-en", overrides=[*TINY, "search.tune_alpha=[2.0, 0.0, 0.6]"])
    train(config, run, corpus_file, log=said.append)
    tuned = runs.read_state(runs.RunPaths(run))["tuned"]
    assert [(b, a) for b, a, _ in tuned["dev_bleu"]] == [(3, 2.0), (3, 0.0), (3, 0.6)]
    best = max(bleu for _, _, bleu in tuned["dev_bleu"])
    assert tuned["alpha"] == next(a for _, a, bleu in tuned["dev_bleu"] if bleu == best)
    assert tuned["beam_size"] == 3
    assert any(line.startswith("beam size and length penalty on dev") for line in said)
    assert json.loads((run / "eval" / "test.json").read_text())["alpha"] == tuned["alpha"]
    assert load_trained(run)[0]["search"]["alpha"] == tuned["alpha"]

    said.clear()
    train(config, run, corpus_file, log=said.append)
    assert not any(line.startswith("beam size and length penalty") for line in said)


def test_a_run_chooses_its_beam_size_on_dev(trained_run, tmp_path, corpus_file):
    """Every beam size x alpha is decoded on dev (beam 1, greedy, once); the best pair is what
    the test set, the run's report and later loads use."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    overrides = [*TINY, "search.tune_beam=[1, 4]", "search.tune_alpha=[0.0, 1.0]"]
    train(load_config("zh-en", overrides=overrides), run, corpus_file, log=lambda *_: None)
    tuned = runs.read_state(runs.RunPaths(run))["tuned"]
    assert [(b, a) for b, a, _ in tuned["dev_bleu"]] == [(1, 0.0), (4, 0.0), (4, 1.0)]
    best = max(tuned["dev_bleu"], key=lambda row: row[2])
    assert (tuned["beam_size"], tuned["alpha"]) == tuple(best[:2])
    report = json.loads((run / "eval" / "test.json").read_text())
    assert (report["beam_size"], report["alpha"]) == tuple(best[:2])
    search = load_trained(run)[0]["search"]
    assert (search["beam_size"], search["alpha"]) == tuple(best[:2])


def test_search_grid_pairs_each_beam_with_each_penalty():
    base = {"beam_size": 5, "alpha": 0.6, "tune_beam": [], "tune_alpha": []}
    assert search_grid(base) == []
    assert search_grid({**base, "tune_alpha": [0.8, 1.0]}) == [(5, 0.8), (5, 1.0)]
    assert search_grid({**base, "tune_beam": [5, 8]}) == [(5, 0.6), (8, 0.6)]
    both = {**base, "tune_beam": [1, 8], "tune_alpha": [0.8, 1.0]}
    assert search_grid(both) == [(1, 0.8), (8, 0.8), (8, 1.0)]
    assert search_grid({**base, "beam_size": 1, "tune_alpha": [0.8, 1.0]}) == []


def test_a_run_tuned_before_beam_sizes_keeps_its_beam():
    config = {"search": {"beam_size": 5, "alpha": 0.6}}
    old = {"tuned": {"alpha": 1.2, "dev_bleu": [[0.6, 1.0], [1.2, 2.0]]}}
    assert runs.with_tuned(config, old)["search"] == {"beam_size": 5, "alpha": 1.2}
    new = {"tuned": {"beam_size": 8, "alpha": 0.8, "dev_bleu": [[8, 0.8, 2.0]]}}
    assert runs.with_tuned(config, new)["search"] == {"beam_size": 8, "alpha": 0.8}


def test_greedy_search_or_an_empty_list_tunes_nothing(trained_run, tmp_path, corpus_file):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = load_config("zh-en", overrides=[*TINY, "search.beam_size=1"])
    config["search"]["tune_alpha"] = [0.0, 1.0]
    train(config, run, corpus_file, log=lambda *_: None)
    assert runs.read_state(runs.RunPaths(run))["tuned"] is None
    assert load_trained(run)[0]["search"]["alpha"] == 0.6


@pytest.mark.parametrize("value", ["[-1.0]", "0.6", "[true]"])
def test_tune_alpha_must_be_a_list_of_penalties(value):
    with pytest.raises(ConfigError, match="tune_alpha"):
        load_config("zh-en", overrides=[f"search.tune_alpha={value}"])


@pytest.mark.parametrize("value", ["[0]", "5", "[true]", "[2.5]"])
def test_tune_beam_must_be_a_list_of_beam_sizes(value):
    with pytest.raises(ConfigError, match="tune_beam"):
        load_config("zh-en", overrides=[f"search.tune_beam={value}"])
