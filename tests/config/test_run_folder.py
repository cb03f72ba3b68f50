"""The run folder: a run made by an earlier version (fewer config keys) resumes and loads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from s2s.config import ConfigError, load_config
from s2s.config import run_folder as runs
from s2s.models import loading
from tests.helpers import TINY


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
    _, model, src_tok, _ = loading.load_trained(run, weights="last")
    _, reference, _, _ = loading.load_trained(trained_run, weights="last")
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


def test_search_precision_train_decodes_with_weights_stored_in_the_training_precision(
    trained_run,
):
    """``search.precision: train`` copies a loaded (float32) model into one built under the
    training precision's plain policy: weights stored in bfloat16 once instead of cast at every
    step, and the same translations as the mixed-precision model of the same weights."""
    from s2s.decoding.search import beam_search
    from s2s.models import precision as distribute

    config, model, src_tok, tgt_tok = loading.load_trained(trained_run, precision="float32")
    bf16 = {**config, "train": {**config["train"], "precision": "mixed_bfloat16"}}
    assert loading.in_precision(model, bf16, src_tok, tgt_tok) is model  # search.precision float32
    bf16["search"] = {**config["search"], "precision": "train"}
    copy = loading.in_precision(model, bf16, src_tok, tgt_tok)
    assert copy.decoder.compute_dtype == "bfloat16"
    assert {v.dtype for v in copy.weights} == {"bfloat16"}
    with distribute.precision("mixed_bfloat16"):
        mixed = loading.build_model(config, src_tok, tgt_tok)
    mixed.set_weights(model.get_weights())
    assert {v.dtype for v in mixed.weights} == {"float32"}

    src = np.asarray(src_tok.encode(["我们走吧。", "他一小时前走了。"]), dtype=object)
    width = max(len(s) for s in src)
    src = np.asarray([list(s) + [0] * (width - len(s)) for s in src], "int32")
    ids, scores = beam_search(copy, src, beam_size=3)
    mixed_ids, mixed_scores = beam_search(mixed, src, beam_size=3)
    np.testing.assert_array_equal(ids, mixed_ids)
    np.testing.assert_array_equal(scores, mixed_scores)


def test_an_unknown_search_precision_is_refused_before_loading(trained_run):
    with pytest.raises(ConfigError, match=r"search\.precision must be one of float32, train"):
        loading.load_trained(trained_run, precision="bfloat16")
