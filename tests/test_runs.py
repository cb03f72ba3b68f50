"""The run folder: a run made by an earlier version (fewer config keys) resumes and loads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from conftest import TINY

from s2s import runs
from s2s.config import load_config


def test_a_run_whose_config_lacks_todays_keys_resumes_and_loads(trained_run, tmp_path):
    """``check_resumable`` compared whole saved sections with today's config, so any key added
    to the defaults since a run was made refused to resume it; loading filled in ``search``
    only."""
    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    paths = runs.RunPaths(run)
    saved = yaml.safe_load(paths.config.read_text(encoding="utf-8"))
    for section, key in (("model", "tie_embeddings"), ("model", "bridge"), ("train", "precision")):
        del saved[section][key]  # keys that today's defaults have
    paths.config.write_text(yaml.safe_dump(saved), encoding="utf-8")
    paths.model.unlink()  # load from the checkpoint, building the model from the config

    runs.check_resumable(paths, load_config("zh-en", overrides=TINY))
    config = runs.read_config(paths)
    assert config["model"]["bridge"] == "final" and config["train"]["precision"] == "auto"
    _, model, src_tok, _ = runs.load_trained(run, weights="last")
    _, reference, _, _ = runs.load_trained(trained_run, weights="last")
    src = np.asarray([src_tok.encode(["我们走吧。"])[0]], "int32")
    tgt_in = np.asarray([[2, 5, 6]], "int32")
    np.testing.assert_allclose(model((src, tgt_in)), reference((src, tgt_in)), rtol=1e-5)


def test_a_speed_only_setting_may_change_between_resumes_but_a_result_setting_may_not(
    trained_run,
):
    paths = runs.RunPaths(trained_run)
    runs.check_resumable(paths, load_config("zh-en", overrides=[*TINY, "data.workers=3"]))
    with pytest.raises(runs.ConfigError, match="different data settings"):
        runs.check_resumable(paths, load_config("zh-en", overrides=[*TINY, "data.seed=7"]))
