"""``train.init_from``: a run that starts from a trained one (fine-tuning, domain adaptation)."""

from __future__ import annotations

import numpy as np
import pytest

from s2s.config import ConfigError, load_config
from s2s.config.run_folder import RunPaths, read_state
from s2s.data.pipeline import Buckets
from s2s.data.prepared import load_eval_sets
from s2s.data.stage import prepare
from s2s.models.loading import build_model, load_trained
from s2s.training.init_from import Parent, initialise
from s2s.training.runner import compile_model, train
from s2s.training.scorers import dev_loss, pair_batches
from s2s.training.tasks import TranslationTask
from tests.helpers import TINY


def child_config(parent, *overrides: str) -> dict:
    return load_config("zh-en", overrides=[*TINY, f"train.init_from={parent}", *overrides])


def test_a_child_starts_at_its_parents_dev_loss(trained_run):
    """The parent's weights, not a fresh model's: the same dev loss, within float noise."""
    _, parent_model, src_tok, tgt_tok = load_trained(trained_run)
    config = child_config(trained_run)
    dev = load_eval_sets(RunPaths(trained_run).data)["dev"]
    batches = pair_batches(dev, src_tok, tgt_tok, Buckets((8, 16, 32), 1024))
    expected = dev_loss(compile_model(parent_model, config), batches)
    child = compile_model(build_model(config, src_tok, tgt_tok), config)
    fresh = dev_loss(child, batches)
    parent = Parent.of(config)
    tokenizers = {"src": src_tok, "tgt": tgt_tok}
    initialise(child, parent, config, tokenizers, TranslationTask.builder(parent.config))
    started = dev_loss(child, batches)
    assert started["nll"] == pytest.approx(expected["nll"], rel=1e-5)
    assert fresh["nll"] > started["nll"] + 0.5  # a fresh model is far from it


def test_a_child_run_records_its_parent_and_keeps_its_vocabulary(
    trained_run, tmp_path, corpus_file
):
    said = []
    config = child_config(trained_run, "train.epochs=1", "tokenizer.tgt.vocab_size=999")
    train(config, tmp_path / "child", corpus_file, log=said.append)
    state = read_state(RunPaths(tmp_path / "child"))
    assert state["parent"]["path"] == str(trained_run.resolve())
    assert state["parent"]["step"] == read_state(RunPaths(trained_run))["step"]
    assert any(line.startswith(f"starting from {trained_run}") for line in said)
    _, _, src_tok, tgt_tok = load_trained(tmp_path / "child")
    _, _, parent_src, parent_tgt = load_trained(trained_run)
    assert src_tok.same_vocabulary(parent_src) and tgt_tok.same_vocabulary(parent_tgt)
    saved = load_config(None, tmp_path / "child" / "config.yaml")
    assert saved["tokenizer"]["tgt"]["vocab_size"] == 700  # the parent's, not the asked 999


def test_a_new_vocabulary_keeps_the_rows_of_shared_pieces_bit_for_bit(
    trained_run, tmp_path, corpus_file
):
    config = child_config(
        trained_run, "train.init_vocab=update", "tokenizer.tgt.vocab_size=600", "data.seed=9"
    )
    data = prepare(config, RunPaths(tmp_path / "child"), corpus_file, log=lambda *_: None)
    _, parent_model, _, parent_tgt = load_trained(trained_run)
    assert not data.tgt_tok.same_vocabulary(parent_tgt)
    child = compile_model(build_model(config, data.src_tok, data.tgt_tok), config)
    parent = Parent.of(config)
    tokenizers = {"src": data.src_tok, "tgt": data.tgt_tok}
    initialise(child, parent, config, tokenizers, TranslationTask.builder(parent.config))
    theirs = {
        piece: i for i in range(parent_tgt.vocab_size) if (piece := parent_tgt.sp.id_to_piece(i))
    }
    shared = [(i, theirs[p]) for i in range(data.tgt_tok.vocab_size)
              if (p := data.tgt_tok.sp.id_to_piece(i)) in theirs]  # fmt: skip
    new = [
        i for i in range(data.tgt_tok.vocab_size) if data.tgt_tok.sp.id_to_piece(i) not in theirs
    ]
    assert len(shared) > 300 and new
    ours_e = child.decoder.embedding.embeddings.numpy()
    theirs_e = parent_model.decoder.embedding.embeddings.numpy()
    ours_k = child.decoder.output_proj.kernel.numpy()
    theirs_k = parent_model.decoder.output_proj.kernel.numpy()
    for i, j in shared:
        assert np.array_equal(ours_e[i], theirs_e[j]) and np.array_equal(
            ours_k[:, i], theirs_k[:, j]
        )
    np.testing.assert_array_equal(  # every other weight is the parent's too
        child.decoder.combine.kernel.numpy(), parent_model.decoder.combine.kernel.numpy()
    )


def test_a_parent_of_another_shape_is_refused_naming_the_key(trained_run, tmp_path):
    config = child_config(trained_run, "model.encoder_units=48")
    with pytest.raises(ConfigError, match=r"train\.init_from: model\.encoder_units is 48"):
        train(config, tmp_path / "child", log=lambda *_: None)
    assert not (tmp_path / "child").exists()
